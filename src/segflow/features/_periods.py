"""The snapshot grid as periods, and the delta/running-sum machinery of the one-pass features.

Snapshots ``s_1 < ... < s_n`` cut time into periods: period ``k`` holds the rows with
``s_{k-1} <= ts < s_k`` (period 1 everything before ``s_1``), i.e. the rows snapshot ``k`` is
the first to see. Because every ``s_k`` is 00:00 of a day, ``ts < s_k`` exactly when the
calendar day of ``ts`` is before ``s_k``, so the period of any time, and of any time plus a
whole number of days (the end of a 365-day window), depends on its day alone: a small
calendar table (one row per day of the snapshot span) maps a day to those periods with an
equi-join, on any Ibis backend.

A windowed amount (one that counts at snapshot ``j`` while ``entry <= j < leave``) becomes a
*delta*: ``+v`` at period ``entry`` and ``-v`` at period ``leave``; the amount at every
snapshot is then the running sum of a customer's deltas over the periods. All deltas are
exact: counts and days 64-bit integers, money and quantities decimals of six places
(:data:`segflow.features._window.EXACT_MONEY`, up to 10^32 currency units), so leaving
cancels entering exactly and the result does not depend on the order of summation.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ibis
import pyarrow as pa

from segflow.features._window import EPOCH, EXACT_MONEY


def measure_type(value: ibis.Value) -> ibis.DataType:
    """The type of a delta measure: :data:`EXACT_MONEY` for money (decimal values), int64 for
    everything else (counts, days, flags)."""
    return EXACT_MONEY if value.type().is_decimal() else ibis.dtype("int64")


@dataclass(frozen=True)
class Periods:
    """Sorted distinct snapshot dates; period ``k`` (1-based) ends at ``dates[k - 1]``."""

    dates: tuple[dt.date, ...]

    @property
    def n(self) -> int:
        return len(self.dates)

    @property
    def days(self) -> list[int]:
        return [(d - EPOCH).days for d in self.dates]

    def period_of_day(self, day: int) -> int:
        """The first ``k`` with ``day < s_k`` (``n + 1`` when no snapshot sees the day)."""
        return bisect.bisect_right(self.days, day) + 1

    def end_ts(self) -> ibis.Scalar:
        """00:00 of the last snapshot: rows at or after it are seen by no snapshot."""
        return ibis.literal(dt.datetime.combine(self.dates[-1], dt.time()), type="timestamp")

    def snapshots(self) -> ibis.Table:
        """One row per snapshot: ``_k``, ``snapshot_date``, ``_sday`` (days since 1970)."""
        return ibis.memtable(
            pa.table(
                {
                    "_k": pa.array(range(1, self.n + 1), pa.int64()),
                    "snapshot_date": pa.array(self.dates, pa.date32()),
                    "_sday": pa.array(self.days, pa.int64()),
                }
            )
        )

    def lookup(self, t: ibis.Table, day: str, offsets: Mapping[str, int]) -> ibis.Table:
        """``t`` with one int64 column per ``offsets`` item: the period of day ``t[day] +
        offset`` (``n + 1``: after the last snapshot). ``t[day]`` must not be null."""
        lo = self.days[0] - 1 - max(max(offsets.values()), 0)
        hi = self.days[-1]
        span = range(lo, hi + 1)
        cal = ibis.memtable(
            pa.table(
                {
                    "_cday": pa.array(span, pa.int64()),
                    **{
                        name: pa.array([self.period_of_day(d + off) for d in span], pa.int64())
                        for name, off in offsets.items()
                    },
                }
            )
        )
        keyed = t.mutate(_cday=t[day].cast("int64").clip(lo, hi))
        return keyed.join(cal, "_cday").drop("_cday")


def emit(t: ibis.Table, pos: ibis.IntegerValue, values: Mapping[str, ibis.Value], *,
         negate: bool = False) -> ibis.Table:
    """Delta rows ``(customer_id, _k, measures...)`` of ``t`` at period ``pos``."""
    return t.select(
        customer_id=t.customer_id,
        _k=pos.cast("int64"),
        **{m: (-v if negate else v).cast(measure_type(v)) for m, v in values.items()},
    )


def live(value: ibis.Value, entry: ibis.IntegerValue,
         leave: ibis.IntegerValue | None) -> ibis.Value:
    """``value`` when an amount entering at ``entry`` and leaving at ``leave`` counts at some
    period (``leave > entry``; always when ``leave`` is None), else 0: the form in which
    several windows share one delta row per position (an entry and a leave at the same
    period would cancel anyway)."""
    if leave is None:
        return value
    return ibis.ifelse(leave > entry, value, ibis.literal(0, measure_type(value)))


def union_deltas(parts: Sequence[ibis.Table], mins: Sequence[str] = (),
                 maxs: Sequence[str] = (), *, n: int | None = None) -> ibis.Table:
    """One row per (customer, period): the sum of every measure (min/max for ``mins`` and
    ``maxs``) over ``parts``, which may each carry a different subset of the measures.
    With ``n``, rows of periods after ``n`` (seen by no snapshot) are left out first."""
    types: dict[str, ibis.DataType] = {}  # a measure missing from a part: a null of its type
    for p in parts:
        types |= {c: measure_type(p[c]) for c in p.columns
                  if c not in ("customer_id", "_k") and c not in types}
    measures = list(types)
    aligned = [
        p.select("customer_id", "_k",
                 **{m: p[m] if m in p.columns else ibis.null(types[m]) for m in measures})
        for p in parts
    ]
    u = aligned[0] if len(aligned) == 1 else ibis.union(*aligned, distinct=False)
    if n is not None:
        u = u.filter(u._k <= n)
    aggs = {}
    for m in measures:
        aggs[m] = u[m].min() if m in mins else u[m].max() if m in maxs else u[m].sum()
    return u.group_by(["customer_id", "_k"]).aggregate(**aggs)


def running_onto(grid: ibis.Table, families: Sequence[ibis.Table], mins: Sequence[str],
                 maxs: Sequence[str], n: int) -> ibis.Table:
    """``grid`` (one row per customer and snapshot ``_k``) with the running sums (0 when
    empty), minima and maxima of every measure of ``families`` (tables of one row per
    customer and period with deltas).

    The running values are computed on each family's own rows (a customer's periods with
    deltas, far fewer than the grid's rows), each valid from its period until the family's
    next one (``_next``), and joined onto the grid rows in that range: a window over the
    sparse rows instead of one over the grid, whose cost grows with rows x measures."""
    out = grid
    drop: list[str] = []
    sums: list[str] = []
    w = ibis.cumulative_window(group_by="customer_id", order_by="_k")
    for i, fam in enumerate(families):
        measures = [c for c in fam.columns if c not in ("customer_id", "_k")]
        sums += [m for m in measures if m not in mins and m not in maxs]
        nxt = fam._k.lead().over(group_by="customer_id", order_by="_k").fill_null(n + 1)
        cid, k, stop = f"_rc{i}", f"_rk{i}", f"_rn{i}"
        cum = fam.select(**{cid: fam.customer_id, k: fam._k, stop: nxt}, **{
            m: (fam[m].min() if m in mins else fam[m].max() if m in maxs else fam[m].sum()).over(w)
            for m in measures
        })
        out = out.left_join(cum, (grid.customer_id == cum[cid]) & (cum[k] <= grid._k)
                            & (grid._k < cum[stop]))
        drop += [cid, k, stop]
    out = out.drop(*drop)
    return out.mutate(**{m: out[m].fill_null(0) for m in sums})
