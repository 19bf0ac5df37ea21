"""Lifecycle buckets, value tiers and the browse-but-rarely-buy scheme.

Lifecycle buckets and browse segments are written in the rule language, so their
thresholds are visible (``docs/segments.md`` prints them from these tables).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ibis

from segflow.errors import SegflowError
from segflow.segments._rules import compile_condition


@dataclass(frozen=True)
class Bucket:
    """A named bucket: its condition in the rule language and what it means."""

    name: str
    condition: str
    description: str


#: Lifecycle buckets, tested top to bottom (first match wins); customers no rule matches are
#: ``under-performers``. Days and orders are counted before the snapshot date.
LIFECYCLE_BUCKETS: tuple[Bucket, ...] = (
    Bucket("prospects", "recency_days is null", "Known customers who have never purchased."),
    Bucket("inactive", "recency_days > 365", "No purchase in the 365 days before the snapshot."),
    Bucket("seasonal", "same_season_flag",
           "Buy in the same calendar quarter year after year (>= 2 years, each with at least "
           "half of its orders in that quarter), and bought in the last 365 days."),
    Bucket("one-time", "orders_total = 1", "Exactly one order so far, in the last 365 days."),
    Bucket("two-time", "orders_total = 2", "Exactly two orders so far; active."),
    Bucket("loyalists", "frequency_12m >= 2",
           "Three or more orders so far and at least two in the last 365 days."),
)
LIFECYCLE_DEFAULT = Bucket(
    "under-performers", "",
    "Three or more orders so far but at most one in the last 365 days: buying less than before.",
)
#: Lifecycle buckets by value, 1 = best.
LIFECYCLE_ORDER: tuple[str, ...] = (
    "loyalists",
    "seasonal",
    "under-performers",
    "two-time",
    "one-time",
    "inactive",
    "prospects",
)

#: Browse-but-rarely-buy segments (web behaviour in the 90 days before the snapshot).
BROWSE_BUCKETS: tuple[Bucket, ...] = (
    Bucket("browse, rarely buy", "visits_90d >= 3 and browse_to_buy_90d < 0.1",
           "At least 3 sessions in 90 days, fewer than 1 in 10 ending in a purchase."),
    Bucket("browse and buy", "visits_90d >= 3",
           "At least 3 sessions in 90 days, 1 in 10 or more ending in a purchase."),
    Bucket("occasional visitors", "visits_90d >= 1", "One or two sessions in 90 days."),
)
BROWSE_DEFAULT = Bucket("no recent visits", "", "No web or app session in 90 days.")

NO_SPEND = "no spend"


def bucket_expr(buckets: Sequence[Bucket], default: str, features: ibis.Table) -> ibis.StringValue:
    """First-match-wins CASE expression over ``buckets``."""
    branches = [
        (compile_condition(b.condition, features, rule=b.name), ibis.literal(b.name))
        for b in buckets
    ]
    return ibis.cases(*branches, else_=ibis.literal(default))


def tier_names(tiers: Sequence[float]) -> tuple[str, ...]:
    """Names of the value tiers, best first: ``top 1%`` ... ``bottom 50%``, ``no spend``."""
    _check_tiers(tiers)
    names = [f"top {_pct(q)}%" for q in tiers]
    names.append(f"bottom {_pct(100 - tiers[-1])}%")
    return (*names, NO_SPEND)


def value_tier_expr(
    features: ibis.Table,
    *,
    tiers: Sequence[float] = (1, 5, 10, 25, 50),
    value: str = "monetary_12m",
    group_by: str | None = None,
) -> ibis.StringValue:
    """The value tier of each customer among customers with ``value > 0``.

    Customers are ranked by ``value`` descending (ties: ``customer_id`` ascending); the
    customer at position ``i`` of ``n`` (1-based) is in the first tier ``q`` with
    ``100 * i <= q * n`` (so "top 10%" holds at most 10 % of spenders, never more). Customers
    with ``value <= 0`` or missing are ``no spend``. With ``group_by``, tiers are computed
    within each group.
    """
    names = tier_names(tiers)
    if value not in features.columns:
        raise SegflowError(f"value tiers: unknown feature {value!r}")
    col = features[value].cast("float64")
    spender = col.notnull() & (col > 0)
    part = [group_by, spender] if group_by else [spender]
    pos = ibis.row_number().over(
        group_by=part, order_by=[ibis.desc(col), features.customer_id]
    ) + 1
    n = col.count().over(group_by=part)
    pos_f = pos.cast("float64") * 100.0
    n_f = n.cast("float64")
    branches = [(pos_f <= float(q) * n_f, ibis.literal(names[i])) for i, q in enumerate(tiers)]
    return ibis.cases(
        (~spender, ibis.literal(NO_SPEND)), *branches, else_=ibis.literal(names[-2])
    )


def _check_tiers(tiers: Sequence[float]) -> None:
    values = list(tiers)
    if not values or any(not 0 < q < 100 for q in values) or values != sorted(set(values)):
        raise SegflowError(
            f"value tiers must be ascending, distinct percentages between 0 and 100, got {values}"
        )


def _pct(q: float) -> str:
    return f"{q:g}"
