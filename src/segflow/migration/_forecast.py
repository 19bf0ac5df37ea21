"""The segment-size forecast: one definition for the CLI, the API, the dashboard, the report
and the run's stored aggregates.

Definition (docs/migration.md, "The segment-size forecast")
-----------------------------------------------------------
Take the consecutive snapshots ``s_0 < ... < s_m`` of a scheme in ``[start, end]`` (default:
the last year, ``start = end - 1 year`` with ``end`` the latest snapshot, and at least the
last pair; every snapshot when the history is shorter) and the counts ``n^k_ij`` of pair ``k = (s_k, s_{k+1})``, with ``i`` a
segment or ``(new)`` and ``j`` a segment or ``(gone)``. Each pair has a weight ``w_k``: 1, or
``0.5 ** ((m - 1 - k) / h)`` with a half-life of ``h`` periods.

* transition probabilities (pooled maximum likelihood of a chain that is time-homogeneous over
  the pooled pairs, Anderson and Goodman 1957): ``P_ij = sum_k w_k n^k_ij / sum_k sum_j' w_k n^k_ij'``; ``(gone)`` is
  absorbing; a segment with no customer at the first snapshot of any pooled pair (its exits
  are never observed) keeps its customers (``P_ii = 1``) and is named in ``held_segments``;
* entry distribution: ``e_j = sum_k w_k n^k_(new)j / sum_k sum_j' w_k n^k_(new)j'``;
* arrivals per period ``a``: ``"mean"`` (default) the weighted mean of the pairs' ``(new)``
  totals, ``sum_k w_k N^k_(new) / sum_k w_k`` (the maximum-likelihood rate of a constant
  Poisson inflow); a number; or ``"none"`` (0: the forecast of today's customers only);
* start: the segment sizes at ``s_m`` (the column sums of the last pair, ``(gone)`` left out);
* ``x_{h+1} = x_h P + a e`` for ``h = 0 .. periods - 1``, i.e.
  ``x_h = x_0 P^h + a e (I + P + ... + P^(h-1))`` (Pfeifer and Carraway 2000, with a constant
  inflow of new customers).

The arithmetic runs over the states sorted by name (``(gone)`` last), so equal counts give
bit-for-bit equal numbers whichever store or order they were read from; only the output
lists the segments in the scheme's order.

References
----------
Anderson, T. W. and Goodman, L. A. (1957). Statistical inference about Markov chains. Annals
of Mathematical Statistics 28(1), 89-110.
Pfeifer, P. E. and Carraway, R. L. (2000). Modeling customer relationships as Markov chains.
Journal of Interactive Marketing 14(2), 43-55.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from segflow._dates import as_date
from segflow._result import TableResult, json_records
from segflow.errors import SegflowError
from segflow.migration._pairs import GONE, NEW, _show_dates
from segflow.migration._transitions import TransitionMatrix, _pair_weights

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from segflow.migration._markov import MarkovChain

#: Periods ahead of the forecast when none is asked (CLI, API, dashboard, report, stored).
FORECAST_PERIODS = 6
#: Arrivals when none is asked: the mean number of new customers per pooled pair.
ARRIVALS_DEFAULT = "mean"
#: The pooled pairs when no ``start`` is asked: those of the last this many years before ``end``.
WINDOW_YEARS = 1
#: ``start`` that pools every pair.
FIRST = "first"
#: Columns of :meth:`SegmentForecast.to_pandas`.
COLUMNS = ("period", "snapshot_estimate", "segment", "expected_customers")

#: Largest number ``arrivals`` takes (new customers per period): 10^12, beyond any customer
#: base (10^12 customers is more than a hundred per person alive), so that the expected sizes
#: of every period stay below 2^53 (exact to the customer in float64; 36 periods of 10^12
#: make 3.6e13). Before, ``arrivals=1e308`` overflowed the forecast to infinities and NaN.
MAX_ARRIVALS = 10**12

Arrivals = float | Literal["mean", "none"]


def parse_arrivals(value: Any) -> Arrivals:
    """The ``arrivals`` option from user text: ``"mean"``, ``"none"`` or a number from 0 to
    :data:`MAX_ARRIVALS`: the one rule of the library (:func:`segment_forecast`), the CLI
    (``segflow migrate forecast --arrivals``), the API and the dashboard.

    Raises
    ------
    SegflowError
        For anything else (one line, naming the value and the bound).
    """
    if isinstance(value, str) and value.strip().lower() in ("mean", "none"):
        return value.strip().lower()  # type: ignore[return-value]
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise SegflowError(f"arrivals must be 'mean', 'none' or a number >= 0, got {value!r}")
    if number > MAX_ARRIVALS:
        raise SegflowError(f"arrivals must be at most {MAX_ARRIVALS:,} new customers per period "
                           f"(beyond any customer base), got {value!r}")
    return number


def step_dates(dates: list[dt.date], periods: int) -> list[dt.date]:
    """``periods + 1`` dates from the last snapshot on, stepping like the last two snapshots
    (whole months when both fall on the same day of the month, else whole days)."""
    last = dates[-1]
    prev = dates[-2] if len(dates) > 1 else last - dt.timedelta(days=30)
    months = (last.year - prev.year) * 12 + last.month - prev.month
    if last.day == prev.day and months > 0:
        return [(pd.Timestamp(last) + pd.DateOffset(months=months * k)).date() for k in range(periods + 1)]
    step = (last - prev).days or 30
    return [last + dt.timedelta(days=step * k) for k in range(periods + 1)]


class SegmentForecast(TableResult):
    """Expected customers per segment for the next periods (see the module's definition).

    Built by :func:`segment_forecast`; the stored aggregates keep its table and ``meta``
    (:func:`segflow.summaries._results.forecast_document`), so a reader gets the same object
    without the chain (``chain`` is None then).

    Attributes
    ----------
    meta : dict
        JSON-ready: ``scheme``, ``first_snapshot`` and ``from_snapshot`` (ISO dates: the pooled
        range; the forecast starts at ``from_snapshot``), ``pairs_pooled``, ``periods``,
        ``period_days`` (days between the last two snapshots), ``half_life`` (None =
        unweighted), ``arrivals`` (the option: ``"mean"``, ``"none"`` or the number given),
        ``new_customers_per_period`` (``a``), ``held_segments`` (segments without observed
        exits, kept in place), ``options`` (the options given, ``{}`` for the defaults) and
        ``definition`` (one sentence saying all of it).
    chain : MarkovChain or None
        The fitted chain (states sorted by name, ``(gone)`` last).
    """

    def __init__(self, table: pd.DataFrame, meta: dict[str, Any], chain: MarkovChain | None = None) -> None:
        self.table = table
        self.meta = meta
        self.chain = chain

    def to_pandas(self) -> pd.DataFrame:
        """One row per period and segment: ``period`` (0 = the start), ``snapshot_estimate``
        (date), ``segment``, ``expected_customers`` (float); segments in the scheme's order."""
        return self.table.copy()

    def wide(self) -> pd.DataFrame:
        """Index: ``snapshot_estimate`` dates; one column per segment (scheme order)."""
        order = list(dict.fromkeys(self.table["segment"]))
        wide = self.table.pivot(index="snapshot_estimate", columns="segment", values="expected_customers")
        return wide.reindex(columns=order).rename_axis(None).rename_axis(None, axis=1)

    def to_dict(self) -> dict[str, Any]:
        records = json_records(self.table)
        return {**self.meta, "data": records, "count": len(records)}

    def figure(self, title: str | None = None) -> go.Figure:
        """Lines of expected customers per segment (:func:`segflow.viz.forecast_chart`)."""
        from segflow.viz._migration import forecast_chart

        return forecast_chart(self.wide(), title=title or f"{self.meta['scheme']}: expected customers per segment")

    def __repr__(self) -> str:
        m = self.meta
        return (f"SegmentForecast(scheme={m['scheme']!r}, from {m['from_snapshot']}, {m['periods']} periods, "
                f"{m['pairs_pooled']} pairs pooled, {m['new_customers_per_period']:,.1f} new/period)")


def segment_forecast(
    pooled: TransitionMatrix,
    *,
    periods: int = FORECAST_PERIODS,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    half_life: float | None = None,
    arrivals: Arrivals = ARRIVALS_DEFAULT,
) -> SegmentForecast:
    """The segment-size forecast of the module's definition: the one every caller uses.

    Parameters
    ----------
    pooled : TransitionMatrix
        A pooled matrix with its per-pair counts (``pair_cells``), from
        :func:`~segflow.migration.pooled_transition_matrix` or the stored aggregates
        (:func:`segflow.summaries.pooled_table`); its own weights, if any, are ignored: the
        per-pair counts are read.
    periods : int, default=6
        Periods (snapshot steps) ahead, >= 0.
    start : date, ISO string or "first", optional
        Pool only the pairs with both snapshots in ``[start, end]``. Default: one year before
        ``end`` (the last year's moves: every season once; at least the last pair; all pairs
        when the history is shorter); ``"first"``: every pair.
    end : date or ISO string, optional
        The last snapshot pooled is the latest on or before ``end``; the forecast starts from
        its sizes, and the default window (one year) is counted back from it, not from
        ``end``. Default: the latest snapshot.
    half_life : float, optional
        Weight pair ``k`` of ``m`` by ``0.5 ** ((m - 1 - k) / half_life)`` (in periods), in
        the transition and entry counts and in the mean arrivals alike. Default: unweighted.
    arrivals : "mean", "none" or float, default="mean"
        New customers per period: the (weighted) mean of the pooled pairs' ``(new)`` totals,
        none, or this number; they enter the segments by the entry distribution.

    Returns
    -------
    SegmentForecast

    Raises
    ------
    SegflowError
        No per-pair counts, no pair in ``[start, end]``, a bad option, or arrivals to place
        when no customer ever entered.
    """
    from segflow.migration._markov import MarkovChain

    if pooled.pair_cells is None:
        raise SegflowError("the forecast needs a pooled matrix with per-pair counts (pooled_transition_matrix)")
    if isinstance(periods, bool) or not isinstance(periods, int | np.integer) or periods < 0:
        raise SegflowError(f"periods must be a whole number >= 0, got {periods!r}")  # (2.5: a TypeError)
    choice = parse_arrivals(arrivals)
    cells, dates = _window(pooled, start, end)
    m = len(dates) - 1
    weights = _pair_weights(half_life, m)
    w = np.ones(m) if weights is None else weights
    cells = cells.assign(weighted=cells["customers"].astype(float) * w[cells["pair"].to_numpy()])
    square = _square(cells)
    with warnings.catch_warnings():  # the held segments are reported in meta, not as a warning
        warnings.simplefilter("ignore", UserWarning)
        chain = MarkovChain().fit(square)
    held = [s for s in chain.absorbing_states_ if s != GONE]
    per_pair = cells[cells["from_segment"] == NEW].groupby("pair")["customers"].sum()
    per_pair = per_pair.reindex(range(m), fill_value=0).to_numpy(dtype=float)
    rate = float(w @ per_pair / w.sum()) if choice == "mean" else 0.0 if choice == "none" else float(choice)
    if rate > 0 and chain.entry_distribution_ is None:
        raise SegflowError(f"no customer entered {pooled.scheme!r} in the pooled pairs, so {rate:g} "
                           "arrivals per period cannot be placed in segments; use arrivals='none'")
    last = cells[(cells["pair"] == m - 1) & (cells["to_segment"] != GONE)]
    mix = last.groupby("to_segment")["customers"].sum().astype(float)
    x = chain.forecast(mix.to_dict(), periods, arrivals=rate)
    segments = [s for s in pooled.segments if s in chain.states_ and s != GONE]
    ahead = step_dates(dates, periods)
    table = pd.DataFrame({
        "period": np.repeat(np.arange(periods + 1), len(segments)),
        "snapshot_estimate": np.repeat(np.array(ahead, dtype=object), len(segments)),
        "segment": segments * (periods + 1),
        "expected_customers": x[segments].to_numpy(dtype=float).ravel(),
    })
    given = {"start": start if start is None or start == FIRST else as_date(start).isoformat(),
             "end": None if end is None else as_date(end).isoformat(),
             "half_life": None if half_life is None else float(half_life),
             "arrivals": None if choice == ARRIVALS_DEFAULT else choice}
    meta = _meta(pooled.scheme, dates, periods, {k: v for k, v in given.items() if v is not None}, rate, held)
    return SegmentForecast(table, meta, chain)


def _window(pooled: TransitionMatrix, start: dt.date | str | None, end: dt.date | str | None,
            ) -> tuple[pd.DataFrame, list[dt.date]]:
    """The pair cells with both snapshots in ``[start, end]`` (pairs renumbered from 0) and
    the snapshots of those pairs."""
    cells = pooled.pair_cells[["from_date", "to_date", "from_segment", "to_segment", "customers"]].copy()
    cells["from_date"] = [as_date(d) for d in cells["from_date"]]
    cells["to_date"] = [as_date(d) for d in cells["to_date"]]
    every = sorted(set(cells["from_date"]) | set(cells["to_date"]))
    hi = as_date(end) if end is not None else every[-1]
    if start is None:  # the last year, and at least the last pair (snapshots a year apart or more)
        # counted back from s_m, the last snapshot pooled, not from an `end` between snapshots
        last = max((d for d in every if d <= hi), default=hi)
        lo = (pd.Timestamp(last) - pd.DateOffset(years=WINDOW_YEARS)).date()
        before = cells.loc[cells["to_date"] <= hi, "from_date"]
        lo = min(lo, before.max()) if not before.empty else lo
    else:
        lo = every[0] if start == FIRST else as_date(start)
    cells = cells[(cells["from_date"] >= lo) & (cells["to_date"] <= hi)]
    if cells.empty:
        raise SegflowError(f"no pair of snapshots of {pooled.scheme!r} lies within {lo} .. {hi}; "
                           f"snapshots: {_show_dates(every)}")
    firsts = sorted(set(cells["from_date"]))
    dates = [*firsts, max(cells["to_date"])]
    cells["pair"] = cells["from_date"].map({d: k for k, d in enumerate(firsts)}).astype(int)
    cells = cells.sort_values(["pair", "from_segment", "to_segment"], kind="stable")
    return cells.reset_index(drop=True), dates


def _square(cells: pd.DataFrame) -> pd.DataFrame:
    """Weighted pooled counts: rows the states sorted by name (then ``(new)``), columns the
    states (``(gone)`` last); summed in pair order."""
    summed = cells.groupby(["from_segment", "to_segment"], sort=True)["weighted"].sum()
    segments = sorted((set(cells["from_segment"]) | set(cells["to_segment"])) - {NEW, GONE})
    states = [*segments, GONE]
    rows = [*segments, *([NEW] if NEW in set(cells["from_segment"]) else [])]
    return summed.unstack("to_segment").reindex(index=rows, columns=states).fillna(0.0)


def _meta(scheme: str, dates: list[dt.date], periods: int, options: dict[str, Any], rate: float,
          held: list[str]) -> dict[str, Any]:
    """The JSON-ready description of a forecast, with the sentence that states its options
    (``options``: those given, as given)."""
    m = len(dates) - 1
    start = options.get("start")
    which = "the last year" if start is None else "every pair" if start == FIRST else "from the start asked"
    half_life = options.get("half_life")
    weighting = f"weighted with a half-life of {half_life:g} periods" if half_life is not None else "unweighted"
    arrivals = options.get("arrivals", ARRIVALS_DEFAULT)
    if arrivals == "mean":
        inflow = f"{rate:,.1f} new customers per period (the {'weighted ' if half_life else ''}mean of those pairs)"
    elif arrivals == "none":
        inflow = "no new customers (arrivals=none: today's customers only)"
    else:
        inflow = f"{rate:,.1f} new customers per period (given)"
    pairs = f"{m} pair{'s' if m != 1 else ''}"
    text = (f"Markov chain on {pairs} of consecutive snapshots from {dates[0]} to {dates[-1]} "
            f"({which}, {weighting}), starting from the sizes at {dates[-1]}; {inflow}.")
    if held:
        text += f" Without observed exits, kept in place: {', '.join(held)}."
    return {
        "scheme": scheme,
        "first_snapshot": dates[0].isoformat(),
        "from_snapshot": dates[-1].isoformat(),
        "pairs_pooled": m,
        "periods": periods,
        "period_days": (dates[-1] - dates[-2]).days,
        "half_life": half_life,
        "arrivals": arrivals,
        "new_customers_per_period": rate,
        "held_segments": held,
        "options": options,
        "definition": text,
    }
