"""Transition matrices between snapshots: counts, shares with intervals, revenue, flows.

A transition matrix of a scheme between snapshots ``s1 < s2`` counts the customers who were
in segment ``i`` at ``s1`` and in segment ``j`` at ``s2``. Rows also include the entry state
``(new)`` (absent at ``s1``, present at ``s2``) and columns the exit state ``(gone)``
(present at ``s1``, absent at ``s2``). The row share ``n_ij / N_i`` estimates the
probability of moving from ``i`` to ``j`` in one period.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pandas as pd

from segflow._dates import as_date
from segflow._result import TableResult, json_records
from segflow.errors import InputError, SegflowError
from segflow.migration._intervals import IntervalMethod, row_intervals
from segflow.migration._pairs import (
    GONE,
    NEW,
    _show_dates,
    cell_counts,
    check_one_row_per_customer,
    scheme_rows,
    snapshot_list,
)
from segflow.migration._spells import has_spells, spell_cell_counts, spell_snapshots

if TYPE_CHECKING:
    import plotly.graph_objects as go

DIRECTIONS = ("stay", "up", "down", "lateral", "move", "new", "gone")


class TransitionMatrix(TableResult):
    """Customers moving between the segments of a scheme from one snapshot to another.

    Built by :func:`transition_matrix` (one pair of snapshots) or
    :func:`pooled_transition_matrix` (consecutive pairs summed). Do not construct directly.

    Attributes
    ----------
    scheme : str
    from_date, to_date : date
        First and last snapshot (for a pooled matrix, the first and last of the range).
    segments : list of str
        Segment order used for rows and columns (best first when ranks exist).
    interval, level : str, float
        Interval method and level of ``share_lower`` / ``share_upper``.
    pairs : int
        Number of snapshot pairs summed (1 for a single transition).
    cells : pandas.DataFrame
        The long table (see :meth:`to_pandas`).
    """

    def __init__(
        self,
        cells: pd.DataFrame,
        *,
        scheme: str,
        from_date: dt.date,
        to_date: dt.date,
        order: Sequence[str] | None,
        interval: IntervalMethod,
        level: float,
        pairs: int = 1,
        pair_cells: pd.DataFrame | None = None,
    ) -> None:
        self.scheme = scheme
        self.from_date = from_date
        self.to_date = to_date
        self.interval = interval
        self.level = level
        self.pairs = pairs
        self.pair_cells = pair_cells
        self.ranks = _segment_ranks(cells)
        self.segments = _segment_order(cells, self.ranks, order)
        self.cells = _full_grid(cells, self.segments, self.ranks, interval, level)

    # -- tables -------------------------------------------------------------------------
    def to_pandas(self) -> pd.DataFrame:
        """Long form, one row per cell (empty cells included, ``(new)``→``(gone)`` excluded).

        Columns: ``from_segment``, ``to_segment``, ``customers`` (count; weighted for a
        weighted pooled matrix), ``share`` (customers / row total; rows sum to 1),
        ``share_lower``, ``share_upper`` (interval at ``level``), ``direction`` (stay, up,
        down, lateral, move, new, gone), and ``revenue`` (net revenue of the cell's customers
        between the two snapshots) and ``value`` (sum of the value table) when computed.
        """
        return self.cells.copy()

    def _wide(self, column: str) -> pd.DataFrame:
        wide = self.cells.pivot(index="from_segment", columns="to_segment", values=column)
        rows = [NEW, *self.segments]
        cols = [*self.segments, GONE]
        return wide.reindex(index=rows, columns=cols)

    def counts(self) -> pd.DataFrame:
        """Customers per cell: rows ``(new)`` + segments, columns segments + ``(gone)``."""
        # the (new) -> (gone) cell does not exist: 0 customers (also for weighted counts,
        # which MarkovChain.fit refuses when they hold NaN)
        wide = self._wide("customers").fillna(0)
        return wide.astype(int) if self.pairs == 1 or _is_integral(wide) else wide

    def shares(self) -> pd.DataFrame:
        """Row shares (transition probabilities); each row sums to 1 (``NaN`` where unused)."""
        return self._wide("share")

    def revenue(self) -> pd.DataFrame:
        """Net revenue per cell between the snapshots (needs ``transactions=``)."""
        if "revenue" not in self.cells:
            raise SegflowError("this matrix was computed without transactions; pass transactions=")
        return self._wide("revenue")

    def probabilities(self) -> pd.DataFrame:
        """The square one-period transition matrix over segments + ``(gone)`` for Markov models.

        ``(gone)`` is absorbing (its row is 0 except 1 on itself). Segments with no customers
        at the first snapshot (a row total of 0) get 1 on the diagonal; :meth:`counts` shows
        which rows those are. For smoothing or extra absorbing states use
        :class:`segflow.migration.MarkovChain`.
        """
        states = [*self.segments, GONE]
        wide = self._wide("customers").loc[self.segments, states].fillna(0.0).astype(float)
        probs = pd.DataFrame(0.0, index=states, columns=states)
        totals = wide.sum(axis=1)
        for seg in self.segments:  # small matrix: one pass over its rows
            if totals[seg] > 0:
                probs.loc[seg] = wide.loc[seg] / totals[seg]
            else:
                probs.loc[seg, seg] = 1.0
        probs.loc[GONE, GONE] = 1.0
        return probs

    def flows(self, top: int = 10, *, include_stay: bool = False) -> pd.DataFrame:
        """The ``top`` biggest cells by customers (movers only unless ``include_stay``).

        Columns as :meth:`to_pandas`; ``share`` is the share of the from-row. Ties are broken
        by segment names so the order is reproducible. ``top`` is a whole number >= 0
        (InputError otherwise: a negative one dropped the smallest cells instead).
        """
        import numbers

        if isinstance(top, bool) or not isinstance(top, numbers.Integral) or top < 0:
            raise InputError(f"top must be a whole number of cells >= 0, got {top!r}")
        c = self.cells
        if not include_stay:
            c = c[c["from_segment"] != c["to_segment"]]
        c = c[c["customers"] > 0]
        ordered = c.sort_values(
            ["customers", "from_segment", "to_segment"], ascending=[False, True, True]
        )
        return ordered.head(top).reset_index(drop=True)

    def alluvial(self) -> go.Figure:
        """Alluvial plot over every snapshot of a pooled matrix (one column per snapshot)."""
        from segflow.viz._migration import alluvial

        if self.pair_cells is None:
            return self.sankey()
        return alluvial(
            self.pair_cells, self.segments, title=f"{self.scheme}: flows across snapshots"
        )

    def net_flow_figure(self) -> go.Figure:
        """Bars of inflow, outflow and net migration per segment."""
        from segflow.viz._migration import net_flow_bars

        return net_flow_bars(
            self.net_migration(),
            title=f"{self.scheme}: net migration {self.from_date} → {self.to_date}",
        )

    def net_migration(self) -> pd.DataFrame:
        """Per segment: size at both snapshots, stayers, inflow, outflow and net migration.

        ``inflow`` counts customers entering the segment from any other state (``(new)``
        included), ``outflow`` those leaving it (``(gone)`` included); ``net = inflow -
        outflow = size_to - size_from``. With revenue: ``revenue_in`` / ``revenue_out`` are
        the movers' net revenue between the snapshots.
        """
        c = self.cells
        moved = c[c["from_segment"] != c["to_segment"]]
        stay = c[c["from_segment"] == c["to_segment"]].set_index("from_segment")["customers"]
        out = pd.DataFrame(index=pd.Index(self.segments, name="segment"))
        out["size_from"] = c.groupby("from_segment")["customers"].sum().reindex(self.segments)
        out["size_to"] = c.groupby("to_segment")["customers"].sum().reindex(self.segments)
        out["stay"] = stay.reindex(self.segments)
        out["inflow"] = moved.groupby("to_segment")["customers"].sum().reindex(self.segments)
        out["outflow"] = moved.groupby("from_segment")["customers"].sum().reindex(self.segments)
        if "revenue" in c:
            out["revenue_in"] = moved.groupby("to_segment")["revenue"].sum().reindex(self.segments)
            out["revenue_out"] = (
                moved.groupby("from_segment")["revenue"].sum().reindex(self.segments)
            )
        out = out.fillna(0)
        out["net"] = out["inflow"] - out["outflow"]
        return out.reset_index()

    def decomposition(self) -> pd.DataFrame:
        """Customers (and revenue) by direction: stay, up, down, lateral, move, new, gone.

        ``up`` means the destination segment has a better (smaller) ``segment_rank``;
        ``lateral`` equal rank, other segment; ``move`` a change between unranked segments.
        ``share`` is relative to all customers in the matrix (both snapshots' union).
        """
        cols = ["customers", "revenue"] if "revenue" in self.cells else ["customers"]
        out = self.cells.groupby("direction")[cols].sum().reindex(DIRECTIONS).fillna(0)
        total = float(out["customers"].sum())
        out["share"] = out["customers"] / total if total else 0.0
        return out.reset_index()

    def summary(self) -> dict[str, Any]:
        """Headline numbers: customers, stayers, upgrades, downgrades, entries, exits and
        revenue in motion (net revenue of customers whose state changed, ``(new)`` and
        ``(gone)`` included) with its share of all revenue in the matrix."""
        dec = self.decomposition().set_index("direction")
        c = self.cells
        out: dict[str, Any] = {
            "customers_from": _num(c.loc[c["from_segment"] != NEW, "customers"].sum()),
            "customers_to": _num(c.loc[c["to_segment"] != GONE, "customers"].sum()),
        }
        for direction in DIRECTIONS:
            out[direction] = _num(dec.loc[direction, "customers"])
        base = out["customers_from"]
        out["stay_share"] = float(out["stay"]) / base if base else None
        if "revenue" in c:
            moved = c["from_segment"] != c["to_segment"]
            total = float(c["revenue"].sum())
            out["revenue_total"] = total
            out["revenue_in_motion"] = float(c.loc[moved, "revenue"].sum())
            out["revenue_in_motion_share"] = out["revenue_in_motion"] / total if total else None
        return out

    # -- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        payload = super().to_dict()
        payload.update(
            scheme=self.scheme,
            from_date=self.from_date.isoformat(),
            to_date=self.to_date.isoformat(),
            pairs=self.pairs,
            interval=self.interval,
            level=self.level,
            segments=self.segments,
            summary=self.summary(),
            net=json_records(self.net_migration()),
        )
        return payload

    # -- figures ------------------------------------------------------------------------
    def figure(self) -> go.Figure:
        """Heat-map of the row shares, each cell labelled with share and count."""
        from segflow.viz._migration import transition_heatmap

        return transition_heatmap(self)

    def sankey(self) -> go.Figure:
        """Sankey diagram of the flows from the first to the second snapshot."""
        from segflow.viz._migration import sankey

        return sankey(self)

    def __repr__(self) -> str:
        s = self.summary()
        stay = f"{s['stay_share']:.1%}" if s["stay_share"] is not None else "n/a"
        span = f"{self.from_date}→{self.to_date}"
        pooled = f", {self.pairs} pairs pooled" if self.pairs > 1 else ""
        return (
            f"TransitionMatrix(scheme={self.scheme!r}, {span}{pooled}, "
            f"{len(self.segments)} segments, {s['customers_from']:,.0f} customers, stay {stay})"
        )


def _num(x: Any) -> int | float:
    x = float(x)
    return int(x) if x.is_integer() else x


def _is_integral(wide: pd.DataFrame) -> bool:
    values = wide.fillna(0).to_numpy(dtype=float)
    return bool(np.all(values == np.round(values)))


def _segment_ranks(cells: pd.DataFrame) -> dict[str, float]:
    ranks: dict[str, float] = {}
    for side in ("from", "to"):
        part = cells[[f"{side}_segment", f"{side}_rank"]].dropna()
        for seg, rank in part.groupby(f"{side}_segment")[f"{side}_rank"].min().items():
            ranks[seg] = min(ranks.get(seg, np.inf), float(rank))
    return ranks


def _segment_order(
    cells: pd.DataFrame, ranks: dict[str, float], order: Sequence[str] | None
) -> list[str]:
    present = (set(cells["from_segment"]) | set(cells["to_segment"])) - {NEW, GONE}
    if order is not None:
        order = list(order)
        unknown = sorted(present - set(order))
        # segments missing from `order` go last, so no customer is ever hidden
        return order + unknown
    return sorted(present, key=lambda s: (ranks.get(s, np.inf), s))


def _direction(frm: str, to: str, ranks: dict[str, float]) -> str:
    if frm == NEW:
        return "new"
    if to == GONE:
        return "gone"
    if frm == to:
        return "stay"
    r1, r2 = ranks.get(frm), ranks.get(to)
    if r1 is None or r2 is None:
        return "move"
    return "up" if r2 < r1 else "down" if r2 > r1 else "lateral"


def _full_grid(
    cells: pd.DataFrame,
    segments: list[str],
    ranks: dict[str, float],
    interval: IntervalMethod,
    level: float,
) -> pd.DataFrame:
    rows = [NEW, *segments]
    cols = [*segments, GONE]
    grid = pd.MultiIndex.from_tuples(
        [(r, c) for r in rows for c in cols if not (r == NEW and c == GONE)],
        names=["from_segment", "to_segment"],
    )
    measures = [m for m in ("customers", "revenue", "value") if m in cells]
    summed = cells.groupby(["from_segment", "to_segment"])[measures].sum()
    out = summed.reindex(grid).fillna(0.0).reset_index()
    totals = out.groupby("from_segment")["customers"].transform("sum")
    out["share"] = np.where(totals > 0, out["customers"] / totals.where(totals > 0, 1.0), np.nan)
    out["share_lower"], out["share_upper"] = np.nan, np.nan
    for idx in out.groupby("from_segment", sort=False).groups.values():  # one per matrix row
        counts = out.loc[idx, "customers"].to_numpy()[None, :]
        lo, hi = row_intervals(counts, method=interval, level=level)
        out.loc[idx, "share_lower"], out.loc[idx, "share_upper"] = lo[0], hi[0]
    out["direction"] = [
        _direction(f, t, ranks) for f, t in zip(out["from_segment"], out["to_segment"], strict=True)
    ]
    if _is_integral(out[["customers"]]):
        out["customers"] = out["customers"].astype(int)
    first = [
        "from_segment",
        "to_segment",
        "customers",
        "share",
        "share_lower",
        "share_upper",
        "direction",
    ]
    return out[first + [m for m in ("revenue", "value") if m in out]]


def date_pair(from_date: dt.date | str, to_date: dt.date | str) -> tuple[dt.date, dt.date]:
    """``(from_date, to_date)`` as dates, the first strictly before the second: the one rule
    of a pair of snapshots (the library's matrix, the server's matrix, cell and pages).

    Raises
    ------
    SegflowError
        ``from_date (2025-01-01) must be before to_date (2024-06-01)`` (equal dates too).
    """
    f, t = as_date(from_date), as_date(to_date)
    if not f < t:
        raise SegflowError(f"from_date ({f}) must be before to_date ({t})")
    return f, t


def snapshot_pair(dates: Sequence[dt.date], scheme: str, from_date: dt.date | None = None,
                  to_date: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The two snapshots of ``scheme`` (its snapshot dates ``dates``, ascending) a migration
    compares: the one rule of the library (:meth:`segflow.project.Project.snapshot_pair`,
    ``segflow migrate``) and the server's migration routes. ``to_date`` defaults to the
    latest snapshot, ``from_date`` to the snapshot before ``to_date``; the pair must be in
    order (:func:`date_pair`). Given dates must be among ``dates`` already: each caller
    refuses another date its own way (the library naming the nearest snapshots, the server
    with a 404).

    Raises
    ------
    SegflowError
        Fewer than two snapshots; ``to_date`` the first snapshot without ``from_date``;
        ``from_date`` not before ``to_date``.
    """
    if len(dates) < 2:
        raise SegflowError(f"scheme {scheme!r} has fewer than two snapshots; nothing to compare")
    to = dates[-1] if to_date is None else to_date
    if from_date is None:
        earlier = [d for d in dates if d < to]
        if not earlier:
            raise SegflowError(f"to_date ({to}) is the first snapshot of scheme {scheme!r}: no "
                               "earlier snapshot to compare with; give a later to_date")
        return earlier[-1], to
    return date_pair(from_date, to)


def transition_matrix(
    assignments: ibis.Table,
    *,
    scheme: str,
    from_date: dt.date | str,
    to_date: dt.date | str,
    transactions: ibis.Table | None = None,
    value: ibis.Table | None = None,
    order: Sequence[str] | None = None,
    interval: IntervalMethod = "dirichlet",
    level: float = 0.95,
    validate: bool = True,
) -> TransitionMatrix:
    """The transition matrix of ``scheme`` between two snapshots.

    Parameters
    ----------
    assignments : ibis.Table
        ``segment_assignments`` (scheme, snapshot_date, customer_id, segment, segment_rank):
        one row per customer per snapshot per scheme.
    scheme : str
        Scheme name.
    from_date, to_date : date or ISO string
        Snapshot dates with ``from_date < to_date``; both must have assignments.
    transactions : ibis.Table, optional
        Canonical transactions; adds ``revenue``: each cell's net revenue with
        ``from_date <= ts < to_date`` (returns netted as negative lines), in currency units.
    value : ibis.Table, optional
        A table ``customer_id, value`` (e.g. CLV at ``to_date``); adds ``value`` per cell.
    order : sequence of str, optional
        Segment order for rows and columns; default by ``segment_rank`` (1 = best), then name.
    interval : {"dirichlet", "goodman", "none"}, default="dirichlet"
        Interval for the row shares: pointwise Jeffreys (Dirichlet(1/2, 1/2)) posterior intervals or
        Goodman simultaneous intervals; see :mod:`segflow.migration._intervals`.
    level : float, default=0.95
    validate : bool, default=True
        Check first that no customer has two assignments at one snapshot (one extra pass over
        the two snapshots); such duplicates would be counted twice. Skip it only for tables
        known to be unique, such as those written by the segflow pipeline.

    Returns
    -------
    TransitionMatrix

    Examples
    --------
    >>> tm = transition_matrix(store.table("segment_assignments"), scheme="rfm",
    ...                        from_date="2024-01-01", to_date="2024-02-01")  # doctest: +SKIP
    >>> tm.counts()  # doctest: +SKIP
    """
    f, t = date_pair(from_date, to_date)
    if has_spells(assignments) and transactions is None and value is None:
        _check_dates(spell_snapshots(assignments, scheme), [f, t], scheme)
        cells = spell_cell_counts(assignments, scheme, [f, t])
        return TransitionMatrix(
            cells, scheme=scheme, from_date=f, to_date=t, order=order, interval=interval,
            level=level,
        )
    a = scheme_rows(assignments, scheme)
    dates = snapshot_list(a, dates=[f, t])
    if validate:
        check_one_row_per_customer(a, dates)
    cells = cell_counts(a, dates, transactions=transactions, value=value)
    return TransitionMatrix(
        cells, scheme=scheme, from_date=f, to_date=t, order=order, interval=interval, level=level
    )


def pooled_transition_matrix(
    assignments: ibis.Table,
    *,
    scheme: str,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    weights: Sequence[float] | float | None = None,
    dates: Sequence[dt.date | str] | None = None,
    order: Sequence[str] | None = None,
    interval: IntervalMethod = "dirichlet",
    level: float = 0.95,
    validate: bool = True,
) -> TransitionMatrix:
    """Transitions pooled over all consecutive snapshot pairs in ``[start, end]``.

    Parameters
    ----------
    assignments : ibis.Table
    scheme : str
    start, end : date or ISO string, optional
        Snapshot range (inclusive); default: every snapshot of the scheme.
    weights : sequence of float, float or None, default=None
        ``None``: every observed transition counts once (the maximum-likelihood estimate of a
        time-homogeneous chain). A sequence: one weight per pair, oldest first. A float
        ``h``: time weighting with half-life ``h`` periods, pair ``k`` of ``m`` weighted
        ``0.5 ** ((m - 1 - k) / h)`` so that recent behaviour counts more.
    dates : sequence of date, optional
        Explicit snapshot dates instead of ``start``/``end``.
    order, interval, level
        As in :func:`transition_matrix`. With weights, intervals use the weighted counts
        (an approximation: weighted counts are not multinomial).
    validate : bool, default=True
        As in :func:`transition_matrix`; the check is one pass over the whole range, about
        as costly as the counting itself on large histories.

    Returns
    -------
    TransitionMatrix
        With ``pairs`` > 1 and ``pair_cells``: the per-pair counts (long form).
    """
    if has_spells(assignments):
        snaps = _spell_range(spell_snapshots(assignments, scheme), scheme, dates, start, end)
    else:
        a = scheme_rows(assignments, scheme)
        snaps = snapshot_list(a, dates=dates, start=start, end=end)
    if len(snaps) < 2:
        raise SegflowError(
            f"scheme {scheme!r} has {len(snaps)} snapshot(s) in the range; pooling needs two or more"
        )
    if has_spells(assignments):  # unique by construction: one spell per customer and date
        per_pair = spell_cell_counts(assignments, scheme, snaps)
    else:
        if validate:
            check_one_row_per_customer(a, snaps)
        per_pair = cell_counts(a, snaps)
    w = _pair_weights(weights, len(snaps) - 1)
    pooled = per_pair.copy()
    if w is not None:
        pooled["customers"] = pooled["customers"] * w[pooled["pair"].to_numpy()]
    return TransitionMatrix(
        pooled,
        scheme=scheme,
        from_date=snaps[0],
        to_date=snaps[-1],
        order=order,
        interval=interval,
        level=level,
        pairs=len(snaps) - 1,
        pair_cells=per_pair,
    )


def _check_dates(available: list[dt.date], wanted: Sequence[dt.date], scheme: str) -> None:
    absent = [d for d in wanted if d not in set(available)]
    if absent:
        raise SegflowError(
            f"no assignments at snapshot date(s) {[d.isoformat() for d in absent]}; "
            f"available: {_show_dates(available)}"
        )


def _spell_range(
    available: list[dt.date],
    scheme: str,
    dates: Sequence[dt.date | str] | None,
    start: dt.date | str | None,
    end: dt.date | str | None,
) -> list[dt.date]:
    """As :func:`snapshot_list`, on the snapshot dates of a store's change rows."""
    if dates is not None:
        wanted = sorted({as_date(d) for d in dates})
        _check_dates(available, wanted, scheme)
        return wanted
    lo = as_date(start) if start is not None else None
    hi = as_date(end) if end is not None else None
    return [d for d in available if (lo is None or d >= lo) and (hi is None or d <= hi)]


def _pair_weights(weights: Sequence[float] | float | None, m: int) -> np.ndarray | None:
    if weights is None:
        return None
    if isinstance(weights, int | float):
        if not weights > 0:  # NaN too: it weighted every pair NaN
            raise SegflowError(f"half-life must be positive, got {weights}")
        return 0.5 ** ((m - 1 - np.arange(m)) / float(weights))
    w = np.asarray(list(weights), dtype=float)
    if w.shape != (m,) or np.any(w < 0):
        raise SegflowError(
            f"weights must be {m} non-negative numbers (one per pair), got {list(w)}"
        )
    return w
