"""The customer base at a snapshot, customer attributes and pivoted survey answers."""

from __future__ import annotations

import ibis

from segflow.features._registry import SURVEY_QUESTIONS
from segflow.features._window import Frame

ATTRIBUTE_COLUMNS: tuple[str, ...] = (
    "age_band",
    "gender",
    "income_band",
    "region",
    "city",
    "signup_channel",
)


def customer_records(customers: ibis.Table, frame: Frame) -> ibis.Table:
    """One customer row per ``customer_id`` with attributes and ``signup_date`` (< s, else null).

    When a customer id appears on several rows, the row with the earliest ``created_at`` wins
    (missing dates last; then the lowest ``source_file``/``source_row`` when present).
    """
    c = customers.filter(customers.customer_id.notnull())
    order = [c.created_at.isnull(), c.created_at]
    order += [c[name] for name in ("source_file", "source_row") if name in c.columns]
    c = c.mutate(_rn=ibis.row_number().over(group_by="customer_id", order_by=order))
    c = c.filter(c._rn == 0)
    created_before = c.created_at.notnull() & frame.before(c.created_at)
    return c.select(
        customer_id=c.customer_id.cast("string"),
        _created_day=ibis.ifelse(
            created_before, c.created_at.date().epoch_days(), ibis.null("int64")
        ),
        signup_date=ibis.ifelse(created_before, c.created_at.date(), ibis.null("date")),
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


def survey_features(responses: ibis.Table, frame: Frame) -> ibis.Table:
    """The latest answer before ``s`` to each question of :data:`SURVEY_QUESTIONS`, one column
    per question (ties in ``ts``: the alphabetically last answer)."""
    r = responses
    question = r.question.lower().strip()
    r = r.filter(
        r.customer_id.notnull(),
        r.ts.notnull(),
        frame.before(r.ts),
        question.isin(SURVEY_QUESTIONS),
        r.answer.notnull(),
    ).mutate(_q=question)
    rn = ibis.row_number().over(
        group_by=["customer_id", "_q"], order_by=[ibis.desc("ts"), ibis.desc("answer")]
    )
    r = r.mutate(_rn=rn)
    latest = r.filter(r._rn == 0)
    return latest.group_by("customer_id").aggregate(
        **{q: latest.answer.cast("string").max(where=latest._q == q) for q in SURVEY_QUESTIONS}
    )
