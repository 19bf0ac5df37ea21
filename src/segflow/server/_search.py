"""The customer search's e-mail rule: one normalisation, the one the exports hash.

A search by e-mail finds a customer when the searched text and the stored e-mail are equal
once trimmed and lower-cased as Python's ``str.strip().lower()`` does (Unicode white space
around the value, full case mapping: ``İ`` is ``i̇``, a final ``Σ`` is ``ς``): the text the
exports' ``hash`` policy and the server's CSV downloads hash
(:func:`segflow.exports._pii.hash_key`), so a customer is found by exactly the addresses
that hash to its ``email_sha256``. The engine's ``lower()`` does otherwise (``İ`` is ``i``,
a final ``Σ`` is ``σ``, no trimming), which is what the search compared before: a customer
stored as ``ΟΔΥΣΣΕΥΣ@x.gr`` was not found by ``οδυσσευς@x.gr``, nor one stored with a
no-break space around the address by the address.

The stored side is normalised once per copy of the store, by the exports' own expression,
as a whole column in the engine (:func:`build_email_keys`, when the copy is prepared: only
values that are not printable ASCII go through Python), into a table sorted by the key, so
a search is one equality on that column (DuckDB skips the row groups whose key range
cannot hold it) and never a Python loop over the customers.

The audit log never holds a searched address, phone number or name: every search text but
an id-like one (:data:`ID_LIKE`: ``C001``, ``CUST-0042``) is recorded as ``q_hmac``
(:func:`audit_search`), the HMAC-SHA-256 under the project's secret (the one the
pseudonymous ids are made with, :func:`segflow.exports._pseudonym.id_key`) of the key the
exports' ``hash`` policy hashes for that kind of value, in the event's detail and in its
resource (the request's query string), by :func:`segflow.server._audit.record`. Before, it
was the plain SHA-256 of that key (``q_sha256``): anyone holding the log could test a list
of addresses against it. An admin finds who searched for a person with ``segflow tokens
audit --searched TEXT`` (:func:`searched_names`), which matches the lines of older servers
(``q_sha256``) too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: The table of a served copy holding every customer's e-mail key (``customer_id``,
#: ``email_key``), sorted by key.
EMAIL_KEYS = "_serve_email_keys"


def email_key(text: str) -> str:
    """The searched text as the stored e-mails are keyed: ``str.strip().lower()``, the
    normalisation of :func:`segflow.exports._pii.hash_key` (for an e-mail)."""
    return text.strip().lower()


#: A search text kept in clear in the audit log: an id or its prefix, i.e. 1 to 32 ASCII
#: letters, digits, ``-`` and ``_`` with a digit, and with a letter too unless it has at most
#: 6 digits (a run of 7 or more digits may be a phone number). A name (no digit), an
#: address, a phone number is none.
ID_LIKE = r"(?=.*[0-9])(?:(?=.*[A-Za-z])[A-Za-z0-9_-]{1,32}|[_-]*(?:[0-9][_-]*){1,6})"


#: What the audit log's search HMAC is of, before the key text: keeps it apart from the
#: pseudonymous ids made with the same secret (HMAC of the id alone).
AUDIT_CONTEXT = b"segflow audit search\x00"


def search_key_text(q: str) -> str:
    """The key of a search text ``q`` as the exports hash that kind of value: an e-mail
    (holding ``@``) as :func:`email_key` (``email_sha256``), a phone number (the content
    check's rule, :func:`segflow.exports._pii_content.is_phone_like`) in E.164 as
    :func:`segflow.exports._pii.phone_key` (``phone_sha256``: ``+44 7700 900123`` and
    ``0044 7700-900123`` alike), any other text trimmed and lower-cased (``name_sha256``)."""
    from segflow.exports._pii import phone_key
    from segflow.exports._pii_content import is_phone_like

    text = q.strip()
    if "@" not in text and is_phone_like(text):
        return phone_key(text) or ""
    return email_key(q)


def audit_key(q: str, secret: bytes) -> str:
    """The hex the audit log records for a search text ``q`` (:func:`audit_search`):
    HMAC-SHA-256 under the project's ``secret`` of :data:`AUDIT_CONTEXT` and
    :func:`search_key_text` (so ``Jane@Example.com`` and ``jane@example.com `` record alike),
    which nobody without the secret can test a guessed address against."""
    import hmac

    return hmac.digest(secret, AUDIT_CONTEXT + search_key_text(q).encode("utf-8", "surrogatepass"),
                       "sha256").hex()


def legacy_audit_key(q: str) -> str:
    """The plain SHA-256 of :func:`search_key_text`: what servers before ``q_hmac``
    recorded as ``q_sha256`` (read only, to find those lines)."""
    import hashlib

    return hashlib.sha256(search_key_text(q).encode("utf-8", "surrogatepass")).hexdigest()


def audit_search(q: str, secret: Callable[[], bytes]) -> tuple[str, str]:
    """The ``(name, value)`` the audit log records for a search text ``q``: an id-like text
    (:data:`ID_LIKE`, once trimmed: ``C001``) or a blank one as ``("q", q)``; any other (an
    e-mail, a phone number, a name or part of one) as ``("q_hmac",`` :func:`audit_key` ``)``
    (``secret``: called for the project's secret only then)."""
    text = q.strip()
    return ("q", q) if is_id_like(text) else ("q_hmac", audit_key(q, secret()))


def is_id_like(text: str) -> bool:
    """Whether a (trimmed) search text is kept in clear: blank, or :data:`ID_LIKE`."""
    import re

    return not text or re.fullmatch(ID_LIKE, text) is not None


def searched_names(q: str, secret: bytes) -> dict[str, str]:
    """The detail fields an audit event may record for a search text ``q``: ``q`` itself
    when it is id-like, else ``q_hmac`` (:func:`audit_key`) and ``q_sha256`` (older servers'
    lines, :func:`legacy_audit_key`)."""
    if is_id_like(q.strip()):
        return {"q": q}
    return {"q_hmac": audit_key(q, secret), "q_sha256": legacy_audit_key(q)}


def build_email_keys(con: Any) -> bool:
    """Write :data:`EMAIL_KEYS` into the copy open on ``con`` (a writable DuckDB connection)
    from ``customers.email``, keyed by :func:`segflow.exports._pii.hash_key`; returns False
    (and writes nothing) when the copy has no such column."""
    import ibis

    from segflow.exports._pii import hash_key

    has = con.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = 'customers' "
                      "AND column_name = 'email'").fetchone()[0]
    if not has:
        return False
    backend = ibis.duckdb.from_connection(con)
    customers = backend.table("customers")
    keyed = customers.select("customer_id", email_key=hash_key("email", customers.email))
    backend.create_table(EMAIL_KEYS, keyed.filter(keyed.email_key.notnull()).order_by("email_key"),
                         overwrite=True)
    return True
