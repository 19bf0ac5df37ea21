"""Multi-period paths of customers, time spent in segments, and the customers behind a cell.

A *run* is a stretch of consecutive snapshots a customer spends in one segment; an absence
at a snapshot ends the run. A *path* is the sequence of a customer's runs, written
``A → B → C``, with ``(new)`` in front when the customer first appears after the first
snapshot, ``(gone)`` between runs separated by an absence and at the end when the customer
is absent at the last snapshot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

import ibis
import pandas as pd
from ibis import _

from segflow._result import TableResult, json_records
from segflow._suggest import did_you_mean
from segflow.errors import SegflowError
from segflow.migration._pairs import (
    GONE,
    NEW,
    _dates_table,
    pair_rows,
    scheme_rows,
    snapshot_list,
)

if TYPE_CHECKING:
    import plotly.graph_objects as go

ARROW = " → "


def _runs(a: ibis.Table, dates: Sequence[dt.date]) -> ibis.Table:
    """Assignment rows tagged with the snapshot index, run start flag, gap flag and run number."""
    d = _dates_table(dates)
    r = a.join(d, a.snapshot_date == d.d_snapshot).select("customer_id", "segment", idx=_.d_idx)
    w = ibis.window(group_by="customer_id", order_by="idx")
    r = r.mutate(prev_seg=r.segment.lag().over(w), prev_idx=r.idx.lag().over(w))
    gap = r.prev_idx.notnull() & (r.idx != r.prev_idx + 1)
    start = r.prev_seg.isnull() | (r.segment != r.prev_seg) | gap
    r = r.mutate(gap=gap, is_start=start)
    cum = ibis.window(group_by="customer_id", order_by="idx", preceding=None, following=0)
    return r.mutate(
        run_no=r.is_start.cast("int64").sum().over(cum),
        last_idx=r.idx.max().over(ibis.window(group_by="customer_id")),
    )


def path_table(a: ibis.Table, dates: Sequence[dt.date]) -> ibis.Table:
    """One row per customer with their ``path`` string (see the module docstring)."""
    r = _runs(a, dates)
    return _paths_from_starts(r.filter(r.is_start), len(dates))


def _paths_from_starts(starts: ibis.Table, n: int) -> ibis.Table:
    """Path strings from one row per run: ``customer_id, idx`` (first snapshot index),
    ``gap`` (an absence before it), ``segment``, ``run_no``, ``last_idx`` (the customer's)."""
    starts = starts.mutate(
        token=ibis.ifelse(starts.gap, GONE + ARROW + starts.segment, starts.segment)
    )
    # a customer has at most n runs: one aggregate per run number keeps the concatenation in
    # order on every engine (ordered string aggregation is not portable, e.g. to Spark)
    aggs = {f"t{k}": starts.token.max(where=starts.run_no == k) for k in range(1, n + 1)}
    per = starts.group_by("customer_id").agg(
        first_idx=starts.idx.min(), last_idx=starts.last_idx.max(), **aggs
    )
    body = per.t1
    for k in range(2, n + 1):
        body = body + (ARROW + per[f"t{k}"]).fill_null("")
    path = (
        ibis.ifelse(per.first_idx > 0, NEW + ARROW, "")
        + body
        + ibis.ifelse(per.last_idx < n - 1, ARROW + GONE, "")
    )
    return per.select("customer_id", path=path)


class Paths(TableResult):
    """The most frequent customer paths and the time spent in each segment.

    ``to_pandas()``: ``path``, ``customers``, ``share`` (of all customers with at least one
    assignment in the dates), most frequent first. ``time_in_segment``: see
    :func:`customer_paths`.
    """

    def __init__(
        self,
        paths: pd.DataFrame,
        time_in_segment: pd.DataFrame,
        *,
        scheme: str,
        dates: list[dt.date],
        customers: int,
        distinct_paths: int,
    ) -> None:
        self.paths = paths
        self.time_in_segment = time_in_segment
        self.scheme = scheme
        self.dates = dates
        self.customers = customers
        self.distinct_paths = distinct_paths

    def to_pandas(self) -> pd.DataFrame:
        return self.paths.copy()

    def to_dict(self) -> dict[str, object]:

        payload = super().to_dict()
        payload.update(
            scheme=self.scheme,
            dates=[d.isoformat() for d in self.dates],
            customers=self.customers,
            distinct_paths=self.distinct_paths,
            time_in_segment=json_records(self.time_in_segment),
        )
        return payload

    def figure(self) -> go.Figure:
        """Horizontal bars of the most frequent paths."""
        import plotly.graph_objects as go

        p = self.paths.iloc[::-1]
        fig = go.Figure(
            go.Bar(
                x=p["customers"],
                y=p["path"],
                orientation="h",
                text=(p["share"] * 100).round(1).astype(str) + "%",
            )
        )
        fig.update_layout(
            title=f"{self.scheme}: most frequent paths {self.dates[0]} … {self.dates[-1]}",
            xaxis_title="customers",
        )
        return fig

    def __repr__(self) -> str:
        return f"Paths(scheme={self.scheme!r}, {len(self.dates)} snapshots, {self.customers:,} customers, {self.distinct_paths:,} distinct paths)"


def customer_paths(
    assignments: ibis.Table,
    scheme: str,
    dates: Sequence[dt.date | str] | None = None,
    *,
    top: int = 20,
) -> Paths:
    """Most frequent multi-period paths, and the time customers spend in each segment.

    Parameters
    ----------
    assignments : ibis.Table
    scheme : str
    dates : sequence of date, optional
        Snapshots to follow (default: all snapshots of the scheme).
    top : int, default=20
        Number of paths returned (most frequent first; ties by path text).

    Returns
    -------
    Paths
        ``time_in_segment`` has one row per segment: ``runs`` (stretches of consecutive
        snapshots in the segment), ``completed_runs`` (runs that ended before the last
        snapshot, by a move or an absence, and did not start at the first snapshot),
        ``mean_periods_completed`` (mean length of completed runs, in snapshots), and
        ``mean_periods_all`` (all runs, including censored ones). Both are biased low when
        runs are long next to the history (long runs are rarely complete, and censored
        ones are cut short); ``1 / (1 - P_ii)`` of the pooled transition matrix is the
        censoring-aware expected run length under the Markov model (docs/migration.md).
    """
    from segflow.migration._spells import has_spells, spell_runs

    runs = starts = None
    if has_spells(assignments) and dates is None:
        # all snapshots of a scheme: the runs are the stored change rows
        found = spell_runs(assignments, scheme)  # type: ignore[arg-type]
        if found is not None:
            snaps, runs, starts = found
    if runs is None:
        view = assignments.table("segment_assignments") if has_spells(assignments) else (
            assignments)
        a = scheme_rows(view, scheme)
        snaps = snapshot_list(a, dates=dates)
    n = len(snaps)
    per = _paths_from_starts(starts, n) if starts is not None else path_table(a, snaps)
    # one row per distinct path: small next to the base, so it is brought back once
    counts = per.group_by("path").agg(customers=_.count()).execute()
    total = int(counts["customers"].sum())
    top_paths = counts.sort_values(["customers", "path"], ascending=[False, True]).head(top)
    top_paths = top_paths.reset_index(drop=True)
    top_paths["share"] = top_paths["customers"] / total if total else 0.0
    if runs is None:
        r = _runs(a, snaps)
        runs = r.group_by("customer_id", "run_no").agg(
            segment=_.segment.max(), length=_.count(), first=_.idx.min(), last=_.idx.max()
        )
    completed = (runs["last"] < n - 1) & (runs["first"] > 0)
    tis = (
        runs.group_by("segment")
        .agg(
            runs=_.count(),
            completed_runs=completed.sum(),
            mean_periods_completed=runs.length.cast("float64").mean(where=completed),
            mean_periods_all=runs.length.cast("float64").mean(),
        )
        .execute()
    )
    return Paths(
        top_paths[["path", "customers", "share"]],
        tis.sort_values("segment").reset_index(drop=True),
        scheme=scheme,
        dates=snaps,
        customers=total,
        distinct_paths=len(counts),
    )


def movers(
    assignments: ibis.Table,
    scheme: str,
    from_date: dt.date | str,
    to_date: dt.date | str,
    from_segment: str,
    to_segment: str,
) -> ibis.Table:
    """The customers behind one cell of a transition matrix (a lazy Ibis table).

    Parameters
    ----------
    from_segment, to_segment : str
        Segment names; ``"(new)"`` and ``"(gone)"`` select entries and exits.

    Returns
    -------
    ibis.Table
        ``customer_id, from_segment, to_segment`` for every customer in the cell.

    Raises
    ------
    SegflowError
        ``from_date`` not before ``to_date`` (as :func:`transition_matrix`), a date that is
        not a snapshot, or a segment the scheme never had.
    """
    from segflow.migration._transitions import date_pair

    a = scheme_rows(assignments, scheme)
    f, t = date_pair(from_date, to_date)  # reversed or equal dates: no cell of any matrix
    dates = snapshot_list(a, dates=[f, t])
    # a mistyped segment ('champions', '(gone)' as the from side) would select nobody and
    # read as "no customer moved": refuse it, naming the scheme's segments
    known = sorted(str(v) for v in a.select("segment").distinct().execute()["segment"].dropna())
    for side, name, extra in (("from", from_segment, NEW), ("to", to_segment, GONE)):
        if name not in known and name != extra:
            raise SegflowError(
                f"{side} segment {name!r} is not a segment of scheme {scheme!r}; "
                f"{did_you_mean(name, [*known, extra])}segments: {', '.join(known)} (and {extra!r})"
            )
    p = pair_rows(a, dates)
    return p.filter((p.from_segment == from_segment) & (p.to_segment == to_segment)).select(
        "customer_id", "from_segment", "to_segment"
    )
