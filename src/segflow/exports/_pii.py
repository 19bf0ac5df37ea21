"""Personal data in exports: hashed, masked, left out, or (when asked explicitly) in clear.

The canonical ``customers`` table holds two personal columns, ``email`` and ``phone``
(:data:`PII_COLUMNS`; name and address columns, where a project maps them, are treated the
same way). Policies, applied in the engine:

``hash`` (default)
    SHA-256 of the trimmed, lower-cased value, as 64 hex digits: the form ad platforms and
    CRMs match customer lists on (e.g. customer-match uploads), without the value itself.
``mask``
    Enough left to recognise a record by eye: ``j***@example.com``, ``*******1234``.
``omit``
    The columns are left out.
``include``
    The values in clear. Only on explicit request (``--pii include``); the export log
    records the policy of every export.
"""

from __future__ import annotations

from typing import Literal

import ibis

from segflow.errors import InputError

PiiPolicy = Literal["hash", "mask", "omit", "include"]
PII_POLICIES: tuple[str, ...] = ("hash", "mask", "omit", "include")

#: Columns of ``customers`` holding personal data (those absent from a store are skipped).
PII_COLUMNS: tuple[str, ...] = ("email", "phone", "name", "first_name", "last_name", "address")


def check_policy(policy: str) -> PiiPolicy:
    """``policy`` if it is one of :data:`PII_POLICIES`, else an :class:`InputError`."""
    if policy not in PII_POLICIES:
        raise InputError(f"unknown personal-data policy {policy!r}; expected one of {', '.join(PII_POLICIES)}")
    return policy  # type: ignore[return-value]


def _mask(column: str, value: ibis.Value) -> ibis.Value:
    text = value.cast("string")
    if column == "email":
        at = text.find("@")
        local = text.substr(0, 1)
        domain = text.substr(at)  # from the '@' on
        return ibis.ifelse(at > 0, local.concat("***").concat(domain), ibis.literal("***"))
    if column == "phone":
        n = text.length()
        return ibis.ifelse(n > 4, ibis.literal("*").repeat(n - 4).concat(text.right(4)), ibis.literal("****"))
    return ibis.ifelse(text.length() > 0, text.substr(0, 1).concat("***"), text)


def personal_columns(customers: ibis.Table, policy: str) -> ibis.Table:
    """``customer_id`` plus the personal columns of ``customers`` under ``policy``.

    Column names say what they hold: ``email`` (clear or masked) or ``email_sha256``.
    With ``omit`` only ``customer_id`` is returned.
    """
    policy = check_policy(policy)
    present = [c for c in PII_COLUMNS if c in customers.columns]
    cols: dict[str, ibis.Value] = {"customer_id": customers.customer_id}
    for c in present if policy != "omit" else []:
        v = customers[c]
        if policy == "hash":
            cols[f"{c}_sha256"] = v.cast("string").strip().lower().hexdigest("sha256")
        elif policy == "mask":
            cols[c] = ibis.ifelse(v.isnull(), ibis.null("string"), _mask(c, v))
        else:
            cols[c] = v.cast("string")
    # one row per customer; should a store hold two records of one customer, the larger
    # value is taken, so the output does not depend on the order rows are read in
    t = customers.select(**cols)
    others = [c for c in t.columns if c != "customer_id"]
    return t.group_by("customer_id").agg(**{c: t[c].max() for c in others})
