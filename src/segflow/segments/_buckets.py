"""Lifecycle buckets (from each customer's own history), value tiers, browse-but-rarely-buy.

Lifecycle buckets and browse segments are written in the rule language, so their
thresholds are visible (``docs/segments.md`` prints them from these tables).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import ibis

from segflow.errors import SegflowError
from segflow.segments._rules import compile_condition
from segflow.segments._scores import (
    GroupBy,
    comparable,
    group_keys,
    tier_aggregates,
    tier_thresholds,
    unused_names,
    with_group_cuts,
    worse_counts,
)


@dataclass(frozen=True)
class Bucket:
    """A named bucket: its condition in the rule language and what it means."""

    name: str
    condition: str
    description: str


#: Lifecycle bucket names by value, 1 = best.
LIFECYCLE_ORDER: tuple[str, ...] = (
    "loyalists",
    "seasonal",
    "steady",
    "under-performers",
    "two-time",
    "one-time",
    "inactive",
    "prospects",
)


def lifecycle_buckets(
    *,
    active_days: int = 365,
    loyal_orders_12m: int = 2,
    decline_ratio: float = 0.5,
    min_prior_orders: int = 2,
    seasonal: bool = True,
) -> tuple[tuple[Bucket, ...], Bucket]:
    """The lifecycle buckets (tested top to bottom, first match wins) and the default bucket.

    Parameters
    ----------
    active_days : int, default=365
        A buyer whose last purchase is more than this many days before the snapshot is
        ``inactive``.
    loyal_orders_12m : int, default=2
        Orders in the 365 days before the snapshot that make a (non-declining) ``loyalist``.
    decline_ratio : float, default=0.5
        An ``under-performer`` buys at most this share of their own previous year: orders
        ``frequency_12m <= decline_ratio * frequency_prev_12m`` or net spend
        ``monetary_12m <= decline_ratio * monetary_prev_12m``.
    min_prior_orders : int, default=2
        The decline is judged only with at least this many orders in the previous year
        (365 to 730 days before the snapshot): the minimum history.
    seasonal : bool, default=True
        Keep the ``seasonal`` bucket (``same_season_flag``); without it seasonal buyers
        fall into the other buckets.

    Returns
    -------
    (tuple of Bucket, Bucket)
        The tested buckets and the default (``steady``).
    """
    r = decline_ratio
    decline = (
        f"frequency_prev_12m >= {min_prior_orders} and (frequency_12m <= {r:g} * "
        f"frequency_prev_12m or monetary_12m <= {r:g} * monetary_prev_12m)"
    )
    buckets = [
        Bucket("prospects", "recency_days is null", "Known customers who have never purchased."),
        Bucket("inactive", f"recency_days > {active_days}",
               f"No purchase in the {active_days} days before the snapshot."),
        Bucket("under-performers", decline,
               f"Buying clearly below their own previous year: at least {min_prior_orders} "
               f"orders 365-730 days before the snapshot, and in the last 365 days at most "
               f"{r:.0%} of that year's orders or of its net spend."),
    ]
    if seasonal:
        buckets.append(Bucket(
            "seasonal", "same_season_flag",
            "Buy in the same calendar quarter year after year (>= 2 years, each with at least "
            "half of its orders in that quarter); active and not declining."))
    buckets += [
        Bucket("one-time", "orders_total = 1", "Exactly one order so far; active."),
        Bucket("two-time", "orders_total = 2", "Exactly two orders so far; active."),
        Bucket("loyalists", f"frequency_12m >= {loyal_orders_12m}",
               f"Three or more orders so far, at least {loyal_orders_12m} in the last 365 "
               "days, and not declining."),
    ]
    default = Bucket(
        "steady", "",
        f"Three or more orders so far, fewer than {loyal_orders_12m} in the last 365 days, "
        "and not buying clearly less than the year before (e.g. a steady once-a-year buyer).",
    )
    return tuple(buckets), default


#: The lifecycle buckets with the default settings, and the default bucket.
LIFECYCLE_BUCKETS, LIFECYCLE_DEFAULT = lifecycle_buckets()

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
    group_by: GroupBy = None,
    method: Literal["quantile", "ntile"] = "quantile",
    thresholds: Sequence[float | None] | None = None,
) -> ibis.Table:
    """``features`` with column ``segment``: the value tier of each customer among customers
    with ``value > 0`` (compared in cents for currency; see :func:`comparable`).

    ``method="quantile"`` (default): a customer's position ``i`` is the number of spenders
    with the same or a higher value, and the customer is in the first tier ``q`` with
    ``100 * i <= q * n`` (``n`` spenders): "top 10%" never holds more than 10 % of spenders
    and equal values share a tier (a tie that straddles a boundary goes to the lower tier).
    ``method="ntile"``: ``i`` is the row number by value descending, ties by
    ``customer_id`` (identical customers can land in different tiers).
    ``thresholds``: fixed lowest values per tier (one per entry of ``tiers``, ``None`` =
    empty tier); a customer is in the first tier whose threshold their value reaches.
    Customers with ``value <= 0`` or missing are ``no spend``. With ``group_by``, tiers are
    computed within each group
    (``group_by``: a column or several, e.g. snapshot date and parent segment).
    """
    names = tier_names(tiers)
    if value not in features.columns:
        raise SegflowError(f"value tiers: unknown feature {value!r}")
    col = comparable(features, value)
    spender = col.notnull() & (col > 0)
    no_spend = (~spender, ibis.literal(NO_SPEND))
    if thresholds is not None:
        if group_by:
            raise SegflowError("frozen value-tier thresholds cannot be used in a nested scheme")
        if len(thresholds) != len(tiers):
            raise SegflowError(f"value tiers: {len(tiers)} tiers need {len(tiers)} thresholds "
                               f"(cut_points.value), got {len(thresholds)}")
        branches = [(col >= t, ibis.literal(names[i]))
                    for i, t in enumerate(thresholds) if t is not None]
        return features.mutate(segment=ibis.cases(no_spend, *branches,
                                                  else_=ibis.literal(names[-2])))
    if method == "ntile":
        part = [*group_keys(group_by), spender]
        pos = ibis.row_number().over(
            group_by=part, order_by=[ibis.desc(col), features.customer_id]
        ) + 1
        n = col.count().over(group_by=part)
        out = features.mutate(_pos=pos, _n=n)
        pos_f = out._pos.cast("float64") * 100.0
        n_f = out._n.cast("float64")
        spender = comparable(out, value).notnull() & (comparable(out, value) > 0)
        branches = [(pos_f <= float(q) * n_f, ibis.literal(names[i])) for i, q in enumerate(tiers)]
        segment = ibis.cases((~spender, ibis.literal(NO_SPEND)), *branches,
                             else_=ibis.literal(names[-2]))
        return out.mutate(segment=segment).drop("_pos", "_n")
    # quantile: tier q holds the values v with 100 * pos(v) <= q * n, pos(v) the spenders
    # with v or more: as pos falls with v, those are the values from the group's lowest
    # qualifying one up (the threshold of tier_thresholds, the same float test): a join
    # with one row per group instead of one per distinct value
    (v,) = unused_names(features.columns, "_value", 1)
    keyed = features.mutate(**{v: ibis.ifelse(spender, col, ibis.null("float64"))})
    counts = worse_counts(keyed, v, higher_is_better=True, group_by=group_by)
    lows = unused_names(keyed.columns, "_tier", len(tiers))
    cuts = tier_aggregates(counts, v, lows, tiers)
    out = with_group_cuts(keyed, counts, group_keys(group_by), cuts)
    branches = [(out[v] >= out[c], ibis.literal(names[i])) for i, c in enumerate(lows)]
    segment = ibis.cases((out[v].isnull(), ibis.literal(NO_SPEND)), *branches,
                         else_=ibis.literal(names[-2]))
    return out.mutate(segment=segment).drop(v, *lows)


def value_tier_thresholds(
    features: ibis.Table, *, tiers: Sequence[float], value: str = "monetary_12m"
) -> list[float | None]:
    """Per tier, the lowest value (cents for currency) that is in it under the quantile rule
    on ``features``: the frozen thresholds of a reference snapshot."""
    col = comparable(features, value)
    t = features.filter(col.notnull() & (col > 0)).select(_v=col)
    return tier_thresholds(t, "_v", tiers)


def _check_tiers(tiers: Sequence[float]) -> None:
    values = list(tiers)
    if not values or any(not 0 < q < 100 for q in values) or values != sorted(set(values)):
        raise SegflowError(
            f"value tiers must be ascending, distinct percentages between 0 and 100, got {values}"
        )


def _pct(q: float) -> str:
    return f"{q:g}"
