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
