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

The audit log never holds a searched address: a search text with ``@`` is recorded as the
SHA-256 of its key, ``q_sha256`` (:func:`audit_search`), in the event's detail and in its
resource (the request's query string), by :func:`segflow.server._audit.record`.
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


def audit_search(q: str) -> tuple[str, str]:
    """The ``(name, value)`` the audit log records for a search text ``q``: an e-mail
    (any text holding ``@``, as the search by e-mail reads it) as ``("q_sha256",``
    :func:`searched_key` ``)``; anything else (an id prefix, a name part) as ``("q", q)``."""
    return ("q_sha256", searched_key(q)) if "@" in q else ("q", q)


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
