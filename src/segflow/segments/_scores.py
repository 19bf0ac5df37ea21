"""Quantile scores with equal scores for equal values, from counts; and frozen cut points.

The rule (``score_method = "quantile"``, the default of every built-in quantile score)
------------------------------------------------------------------------------------
Among the ``n`` customers scored together, a customer whose value ``v`` is strictly better
than that of ``w`` customers (``w`` of them are strictly worse) gets::

    score = 1 + floor(bins * w / n)                       (1 .. bins, bins = best)

So a score is a function of the value alone (equal values, equal scores), and it is the
score of the lowest-placed customer of a tie: a value held by more than ``1 / bins`` of the
customers takes the lowest score its run covers, and the scores it spans stay empty (with
55 % one-order buyers and 5 bins, every one-order buyer has ``f_score = 1``, two-order buyers
start at 3, and score 2 is empty). Without ties the rule gives the same scores as ``ntile``.

It is computed from counts: one row per distinct value with its number of customers, and a
running sum over the distinct values; no sort of the customers themselves. The scores are
then given through cut points: ``c_k`` is the smallest value ``v`` with
``bins * (customers with a value <= v) >= k * n`` (the lower ``k / bins`` quantile of the
values, ``k = 1 .. bins - 1``), and ``score = 1 + #{k : v is strictly better than c_k}``
(``v`` is strictly better than ``c_k`` exactly when ``bins * w >= k * n``, so the count is
``floor(bins * w / n)``). Each group's ``bins - 1`` cut points are one row joined back on
the group (:func:`quantile_score`), not a row per distinct value: at 24 snapshots of 650k
buyers with distinct spends that is a join with 24 rows instead of 15M.
:func:`cut_points` returns them, so a scheme can keep the cut points of a reference snapshot
(or fixed values) and score later snapshots against them.

Determinism: money is rounded to cents before it is compared (:func:`comparable`), so sums
that differ in the last bits with the order of a parallel aggregation give the same score
on any engine and thread count; the comparisons are on integers otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd

#: Features compared after rounding to this many decimals (currency: cents).
CURRENCY_DECIMALS = 2
#: Other floating-point features are rounded to this many decimals before comparison.
FLOAT_DECIMALS = 9


def comparable(table: ibis.Table, column: str) -> ir.NumericValue:
    """``table[column]`` as it is compared when scoring: currency rounded to cents, other
    floats to 9 decimals, integers unchanged; a float64.

    The rounding is ``floor(x * 10^d + 0.5) / 10^d`` on the double: IEEE arithmetic that
    every engine (and the server's row evaluator) computes to the same bits. An engine's own
    ``round`` is not portable: DuckDB's rounds ``x * 100`` half away from zero (1.005 is
    1.00499999... as a double: 1.00), Spark's the double's shortest decimal text (1.01),
    so an average order value of 1.005 fell on either side of a cut point by engine. A value
    too large for its last kept decimal to exist in a double (``|x| * 10^d >= 2^52``) is
    left as it is."""
    from segflow.features import FEATURES

    col = table[column]
    if col.type().is_integer():
        return col
    feature = FEATURES.get(column)
    digits = CURRENCY_DECIMALS if feature is not None and feature.unit == "currency" else (
        FLOAT_DECIMALS)
    x = col.cast("float64")
    scale = 10.0 ** digits
    limit = 2.0 ** 52 / scale
    rounded = (x * scale + 0.5).floor().cast("float64") / scale
    return ibis.ifelse((x > -limit) & (x < limit), rounded, x)


#: Partition of a score: one column, several (snapshot and parent segment), or none.
GroupBy = str | Sequence[str] | None


def group_keys(group_by: GroupBy) -> list[str]:
    """``group_by`` as a list of column names (empty: score over all rows)."""
    if group_by is None:
        return []
    if isinstance(group_by, str):
        return [group_by]
    return list(group_by)


def worse_counts(
    table: ibis.Table, value: str, *, higher_is_better: bool, group_by: GroupBy
) -> ibis.Table:
    """Per distinct ``value`` (within ``group_by``): ``_n`` customers, ``_worse`` customers
    with a strictly worse value, ``_total`` customers. Null values are left out."""
    keys = group_keys(group_by)
    t = table.filter(table[value].notnull())
    counts = t.group_by([*keys, value]).aggregate(_n=t.count())
    order = counts[value] if higher_is_better else ibis.desc(counts[value])
    running = counts._n.sum().over(group_by=keys or None, order_by=order, rows=(None, 0))
    total = counts._n.sum().over(group_by=keys or None)
    return counts.mutate(_worse=(running - counts._n).cast("int64"), _total=total.cast("int64"))


def quantile_score(
    table: ibis.Table,
    value: str,
    name: str,
    *,
    bins: int,
    higher_is_better: bool,
    group_by: GroupBy = None,
) -> ibis.Table:
    """``table`` with column ``name``: ``1 + floor(bins * worse / n)`` (see the module notes).

    ``value`` must already hold the comparable values (see :func:`comparable`); rows with a
    null value get a null score. With ``group_by`` (a column or several: snapshot date,
    parent segment) customers are scored within each group.
    """
    counts = worse_counts(table, value, higher_is_better=higher_is_better, group_by=group_by)
    # the same scores from each group's bins - 1 cut points (module notes), joined back on
    # the group alone: a join with one row per group instead of one per distinct value
    names = unused_names(table.columns, "_cut", bins - 1)
    cuts = cut_aggregates(counts, value, names, bins=bins, higher_is_better=higher_is_better)
    out = with_group_cuts(table, counts, group_keys(group_by), cuts)
    v = out[value]
    score: ir.IntegerValue = ibis.literal(1, "int64")
    for c in names:
        better = v > out[c] if higher_is_better else v < out[c]
        score = score + better.cast("int64")
    score = ibis.ifelse(v.isnull(), ibis.null("int64"), score)
    return out.mutate(**{name: score}).drop(*names)


def cut_aggregates(counts: ibis.Table, value: str, names: Sequence[str], *, bins: int,
                   higher_is_better: bool) -> dict[str, ir.Value]:
    """The ``bins - 1`` cut points as aggregates over :func:`worse_counts` (named ``names``):
    ``c_k`` is the first value, from worst to best, at which at least ``k / bins`` of the
    group's customers have that value or a worse one (``bins * (worse + n) >= k * total``)."""
    reach = (counts._worse + counts._n) * bins
    first = counts[value].min if higher_is_better else counts[value].max
    return {c: first(where=reach >= (k + 1) * counts._total) for k, c in enumerate(names)}


def tier_aggregates(counts: ibis.Table, value: str, names: Sequence[str],
                    tiers: Sequence[float]) -> dict[str, ir.Value]:
    """Per tier ``q`` (percent; named ``names``), as aggregates over :func:`worse_counts`
    (higher is better): the lowest value whose customers are in the top ``q`` %, the smallest
    ``v`` with ``100 * (customers with a value >= v) <= q * n``; null when none qualifies."""
    pos_f = (counts._total - counts._worse).cast("float64") * 100.0
    n_f = counts._total.cast("float64")
    return {c: counts[value].min(where=pos_f <= float(q) * n_f)
            for c, q in zip(names, tiers, strict=True)}


def unused_names(columns: Sequence[str], stem: str, n: int) -> list[str]:
    """``n`` column names ``stem0`` ... (as many ``_`` added to ``stem`` as it takes) that
    are not among ``columns``: helper columns never shadow a caller's."""
    taken = set(columns)
    while True:
        names = [f"{stem}{i}" for i in range(n)]
        if taken.isdisjoint(names):
            return names
        stem += "_"


def with_group_cuts(table: ibis.Table, counts: ibis.Table, keys: Sequence[str],
                    cuts: dict[str, ir.Value]) -> ibis.Table:
    """``table`` with the columns ``cuts`` (aggregates over ``counts``, per group of
    ``keys``; names not among ``table``'s columns) of each row's group; null where the
    group has no row in ``counts`` (as for a null key)."""
    if not cuts:
        return table
    if not keys:
        return table.cross_join(counts.aggregate(**cuts))
    aliases = unused_names([*table.columns, *cuts], "_key", len(keys))
    per = counts.group_by(list(keys)).aggregate(**cuts)
    per = per.rename(dict(zip(aliases, keys, strict=True)))
    out = table.left_join(per, [table[k] == per[a] for k, a in zip(keys, aliases, strict=True)])
    return out.drop(*aliases)


def cut_score(
    value: ir.NumericValue, cuts: Sequence[float], *, higher_is_better: bool
) -> ir.IntegerValue:
    """``1 + #{c in cuts : value strictly better than c}``; null where ``value`` is null."""
    score: ir.IntegerValue = ibis.literal(1, "int64")
    for c in cuts:
        better = value > c if higher_is_better else value < c
        score = score + better.cast("int64")
    return ibis.ifelse(value.isnull(), ibis.null("int64"), score)


def cut_points(
    table: ibis.Table, value: str, *, bins: int, higher_is_better: bool
) -> list[float]:
    """The ``bins - 1`` cut points of the quantile rule over all rows of ``table``
    (:func:`cut_aggregates`). Scoring with :func:`cut_score` against these cut points gives,
    on ``table`` itself, exactly the scores of :func:`quantile_score`.

    Returns
    -------
    list of float
        In the feature's unit; empty when ``table`` has no non-null value.
    """
    counts = worse_counts(table, value, higher_is_better=higher_is_better, group_by=None)
    names = unused_names(counts.columns, "_cut", bins - 1)
    row = counts.aggregate(_rows=counts.count(), **cut_aggregates(
        counts, value, names, bins=bins, higher_is_better=higher_is_better)).to_pandas()
    if not int(row["_rows"].iloc[0]):
        return []
    return [float(row[c].iloc[0]) for c in names]


def tier_thresholds(table: ibis.Table, value: str, tiers: Sequence[float]) -> list[float | None]:
    """Per tier ``q`` (percent) over all rows of ``table``, the threshold of
    :func:`tier_aggregates`; ``None`` when no value qualifies (the tier is empty)."""
    counts = worse_counts(table, value, higher_is_better=True, group_by=None)
    names = unused_names(counts.columns, "_tier", len(tiers))
    row = counts.aggregate(**tier_aggregates(counts, value, names, tiers)).to_pandas()
    return [None if pd.isna(row[c].iloc[0]) else float(row[c].iloc[0]) for c in names]
