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
an id-like one (:data:`ID_LIKE`: ``C001``, ``CUST-0042``) is recorded as the SHA-256 of its
key, ``q_sha256`` (:func:`audit_search`), in the event's detail and in its resource (the
request's query string), by :func:`segflow.server._audit.record`. The key is the one the
exports' ``hash`` policy hashes for that kind of value, so the hash equals the exported
``email_sha256``, ``phone_sha256`` or ``name_sha256`` of the person searched for.
"""

from __future__ import annotations

from typing import Any

#: The table of a served copy holding every customer's e-mail key (``customer_id``,
#: ``email_key``), sorted by key.
EMAIL_KEYS = "_serve_email_keys"


def email_key(text: str) -> str:
    """The searched text as the stored e-mails are keyed: ``str.strip().lower()``, the
    normalisation of :func:`segflow.exports._pii.hash_key` (for an e-mail)."""
    return text.strip().lower()


def searched_key(text: str) -> str:
    """The SHA-256 hex of a searched e-mail as its key (:func:`email_key`): what the audit log
    records instead of the address (:func:`audit_search`), equal to the ``email_sha256`` the
    exports and the CSV downloads write for that address (:func:`segflow.exports._pii.hash_key`
    is ``str.strip().lower()``), so an auditor finds who searched for an address by its hash,
    and the log holds no address."""
    import hashlib

    return hashlib.sha256(email_key(text).encode("utf-8")).hexdigest()


#: A search text kept in clear in the audit log: an id or its prefix, i.e. 1 to 32 ASCII
#: letters, digits, ``-`` and ``_`` with a digit, and with a letter too unless it has at most
#: 6 digits (a run of 7 or more digits may be a phone number). A name (no digit), an
#: address, a phone number is none.
ID_LIKE = r"(?=.*[0-9])(?:(?=.*[A-Za-z])[A-Za-z0-9_-]{1,32}|[_-]*(?:[0-9][_-]*){1,6})"


def audit_key(q: str) -> str:
    """The SHA-256 hex the audit log records for a search text ``q`` (:func:`audit_search`):
    of its key as the exports hash that kind of value, so an auditor finds who searched for a
    person by the hash the exports hold: an e-mail (holding ``@``) as :func:`searched_key`
    (``email_sha256``), a phone number (the content check's rule,
    :func:`segflow.exports._pii_content.is_phone_like`) in E.164 as
    :func:`segflow.exports._pii.phone_key` (``phone_sha256``: ``+44 7700 900123`` and
    ``0044 7700-900123`` alike), any other text trimmed and lower-cased (``name_sha256``)."""
    import hashlib

    from segflow.exports._pii import phone_key
    from segflow.exports._pii_content import is_phone_like

    text = q.strip()
    if "@" not in text and is_phone_like(text):
        return hashlib.sha256((phone_key(text) or "").encode("utf-8")).hexdigest()
    return searched_key(q)


def audit_search(q: str) -> tuple[str, str]:
    """The ``(name, value)`` the audit log records for a search text ``q``: an id-like text
    (:data:`ID_LIKE`, once trimmed: ``C001``) or a blank one as ``("q", q)``; any other (an e-mail, a phone
    number, a name or part of one) as ``("q_sha256",`` :func:`audit_key` ``)``."""
    import re

    text = q.strip()
    return ("q", q) if not text or re.fullmatch(ID_LIKE, text) else ("q_sha256", audit_key(q))


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
