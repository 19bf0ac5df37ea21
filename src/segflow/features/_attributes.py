"""The customer base at a snapshot and the customer attributes valid at it."""

from __future__ import annotations

import ibis

from segflow.features._window import Frame

ATTRIBUTE_COLUMNS: tuple[str, ...] = (
    "age_band",
    "gender",
    "income_band",
    "region",
    "city",
    "signup_channel",
)


def known_from(valid_from: ibis.TimestampValue, created_at: ibis.TimestampValue) -> ibis.TimestampValue:
    """When a customer row starts to describe the customer at a snapshot: the later of its
    ``valid_from`` and its ``created_at`` (the one given when the other is missing; null
    when both are). A version dated before its record was created (``valid_from <
    created_at``: a back-dated change, a history loaded at registration) is known from
    ``created_at``: a snapshot before the record existed could not have read it, and the
    same data cut at that snapshot has no such row (ingest notes each such row in
    ``ingest_flags``, rule ``valid_from_before_created``)."""
    later = created_at.notnull() & (valid_from.isnull() | (created_at > valid_from))
    return ibis.ifelse(later, created_at, valid_from)


def customer_records(customers: ibis.Table, frame: Frame) -> ibis.Table:
    """One customer row per ``customer_id``: the attributes valid at ``s`` and ``signup_date``.

    A customer row is *valid at s* when its start (:func:`known_from`: the later of
    ``valid_from`` and the row's ``created_at``, either when the other is missing: a record
    made when a guest registered does not describe them before, and a version back-dated
    before its record was made is not known before it either) is missing or before ``s`` and ``valid_to`` is missing or on or after ``s`` (the half-open interval
    ``[valid_from, valid_to)`` holds the instant just before ``s``), so a change dated exactly
    ``s`` belongs to the next snapshot, like a transaction at ``s``. Among the rows valid at
    ``s`` the one with the latest ``valid_from`` wins (rows without one count as the oldest);
    then the earliest ``created_at`` (missing dates last; then the lowest
    ``source_file``/``source_row`` when present). Without ``valid_from``/``valid_to`` columns
    (or values) this is the earliest customer record, as before attribute history existed.
    ``signup_date`` is the earliest ``created_at`` of all the customer's rows (< s, else null).
    """
    c = customers.filter(customers.customer_id.notnull())
    none = ibis.null("timestamp")
    c = c.mutate(
        _vf=c.valid_from if "valid_from" in c.columns else none,
        _vt=c.valid_to if "valid_to" in c.columns else none,
    )
    signup = c.group_by("customer_id").aggregate(_created=c.created_at.min())
    # a row holds from its valid_from, and not before its created_at (a guest's record made
    # when they registered says nothing about them before): the snapshot may not read it earlier
    start = known_from(c._vf, c.created_at)
    valid = c.filter(
        start.isnull() | frame.before(start), c._vt.isnull() | ~frame.before(c._vt)
    )
    order = [valid._vf.isnull(), ibis.desc(valid._vf), valid.created_at.isnull(), valid.created_at]
    order += [valid[name] for name in ("source_file", "source_row") if name in valid.columns]
    valid = valid.mutate(_rn=ibis.row_number().over(group_by="customer_id", order_by=order))
    valid = valid.filter(valid._rn == 0).select(
        _vid=valid.customer_id, **{name: valid[name] for name in ATTRIBUTE_COLUMNS}
    )
    c = signup.left_join(valid, signup.customer_id == valid._vid)
    created_before = c._created.notnull() & frame.before(c._created)
    return c.select(
        customer_id=c.customer_id.cast("string"),
        _created_day=ibis.ifelse(
            created_before, c._created.date().epoch_days(), ibis.null("int64")
        ),
        signup_date=ibis.ifelse(created_before, c._created.date(), ibis.null("date")),
        **{name: c[name].cast("string") for name in ATTRIBUTE_COLUMNS},
    )


def customer_base(records: ibis.Table, transactions: ibis.Table, frame: Frame) -> ibis.Table:
    """Customer ids known at ``s``: signed up before ``s`` or with a transaction before ``s``."""
    signed = records.filter(records._created_day.notnull()).select("customer_id")
    t = transactions
    bought = (
        t.filter(t.customer_id.notnull(), t.ts.notnull(), frame.before(t.ts))
        .select(customer_id=t.customer_id.cast("string"))
        .distinct()
    )
    return signed.union(bought, distinct=True)
