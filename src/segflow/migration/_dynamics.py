"""Migration over many snapshots: the Markov backtest and the stability of a scheme.

Both start from one engine query, the per-pair transition counts of every consecutive pair
of snapshots (:func:`segflow.migration._pairs.cell_counts`); everything after that works on
that small table (pairs x cells).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pandas as pd

from segflow._dates import as_date
from segflow._result import TableResult, json_records
from segflow.errors import SegflowError
from segflow.migration._markov import MarkovChain
from segflow.migration._pairs import (
    GONE,
    NEW,
    cell_counts,
    check_one_row_per_customer,
    scheme_rows,
    snapshot_list,
)
from segflow.migration._spells import has_spells, spell_cell_counts, spell_snapshots
from segflow.migration._transitions import _spell_range

if TYPE_CHECKING:
    import plotly.graph_objects as go

#: Scale factor that turns a median absolute deviation into a normal-consistent SD.
MAD_TO_SD = 1.4826


def _pair_table(
    assignments: ibis.Table | Any, scheme: str, start: Any = None, end: Any = None
) -> tuple[list[dt.date], pd.DataFrame]:
    """The snapshots in ``[start, end]`` and the cells of every consecutive pair, from a
    per-snapshot assignments table or a store's change rows (one spell per customer and date
    by construction; the per-snapshot view would expand every row)."""
    if has_spells(assignments):
        dates = _spell_range(spell_snapshots(assignments, scheme), scheme, None, start, end)
    else:
        a = scheme_rows(assignments, scheme)
        dates = snapshot_list(a, start=start, end=end)
    if len(dates) < 2:
        raise SegflowError(
            f"scheme {scheme!r} has {len(dates)} snapshot(s); this needs two or more"
        )
    if has_spells(assignments):
        return dates, spell_cell_counts(assignments, scheme, dates)
    check_one_row_per_customer(a, dates)
    return dates, cell_counts(a, dates)


def _segment_order(cells: pd.DataFrame) -> list[str]:
    ranks = pd.concat(
        [
            cells[["from_segment", "from_rank"]].set_axis(["segment", "rank"], axis=1),
            cells[["to_segment", "to_rank"]].set_axis(["segment", "rank"], axis=1),
        ]
    )
    ranks = ranks[~ranks["segment"].isin([NEW, GONE])]
    best = ranks.groupby("segment")["rank"].min()
    return sorted(best.index, key=lambda s: (best[s] if pd.notna(best[s]) else np.inf, s))


def _sizes(cells: pd.DataFrame, dates: list[dt.date], segments: list[str]) -> pd.DataFrame:
    """Customers per segment at every snapshot (rows: dates, columns: segments)."""
    first = cells[(cells["pair"] == 0) & (cells["from_segment"] != NEW)]
    at0 = first.groupby("from_segment")["customers"].sum().rename(dates[0])
    later = cells[cells["to_segment"] != GONE].groupby(["to_date", "to_segment"])["customers"].sum()
    wide = later.unstack("to_segment")
    frame = pd.concat([at0.to_frame().T, wide])
    return frame.reindex(index=dates, columns=segments).fillna(0.0)


class Backtest(TableResult):
    """Forecast of the segment mix from a chain fitted up to ``train_end``, against actuals.

    ``to_pandas()`` columns: ``snapshot_date``, ``horizon`` (periods after ``train_end``),
    ``segment``, ``forecast`` and ``actual`` (customers), ``error`` (forecast - actual),
    ``abs_pct_error`` (|error| / actual, NaN when actual is 0), ``share_forecast``,
    ``share_actual`` (the mix as shares of the customers in segments).
    """

    def __init__(
        self, table: pd.DataFrame, chain: MarkovChain, scheme: str, train_end: dt.date
    ) -> None:
        self.table = table
        self.chain = chain
        self.scheme = scheme
        self.train_end = train_end

    def to_pandas(self) -> pd.DataFrame:
        return self.table.copy()

    def errors(self) -> pd.DataFrame:
        """Per horizon: mean absolute percentage error over segments and the largest
        absolute error in share points."""
        t = self.table
        return (
            t.assign(share_gap=(t["share_forecast"] - t["share_actual"]).abs())
            .groupby("horizon")
            .agg(mape=("abs_pct_error", "mean"), max_share_gap=("share_gap", "max"))
            .reset_index()
        )

    def figure(self) -> go.Figure:
        from segflow.viz._migration import forecast_chart

        fc = self.table.pivot(index="snapshot_date", columns="segment", values="forecast")
        ac = self.table.pivot(index="snapshot_date", columns="segment", values="actual")
        return forecast_chart(fc, actual=ac, title=f"{self.scheme}: backtest from {self.train_end}")

    def __repr__(self) -> str:
        e = self.errors()
        return f"Backtest(scheme={self.scheme!r}, train_end={self.train_end}, horizons={len(e)}, mape={e['mape'].round(3).tolist()})"


def backtest(
    assignments: ibis.Table | Any,
    *,
    scheme: str,
    train_end: dt.date | str,
    horizon: int = 3,
    start: dt.date | str | None = None,
    prior: float = 0.0,
) -> Backtest:
    """Fit the chain on transitions up to ``train_end``, forecast the next ``horizon`` snapshots.

    Parameters
    ----------
    assignments : ibis.Table or Store
        Per-snapshot assignments, or a store: its change rows are read (the same counts).
    scheme : str
    train_end : date
        A snapshot date; pairs ending on or before it train the chain, and the actual mix
        at it is the starting point.
    horizon : int, default=3
        Periods to forecast (fewer if the history ends sooner).
    start : date, optional
        First snapshot used for training.
    prior : float, default=0
        Passed to :class:`MarkovChain`.

    Notes
    -----
    New customers arriving after ``train_end`` are taken as observed (their number per
    period) and placed by the fitted entry distribution: the backtest judges the migration
    model, not an acquisition forecast.
    """
    t_end = as_date(train_end)
    dates, cells = _pair_table(assignments, scheme, start=start)
    if t_end not in dates or dates.index(t_end) == 0:
        raise SegflowError(
            f"train_end {t_end} must be a snapshot date after the first one ({dates[0]})"
        )
    t = dates.index(t_end)
    steps = min(horizon, len(dates) - 1 - t)
    if steps < 1:
        raise SegflowError(f"no snapshot after train_end {t_end} to compare with")
    segments = _segment_order(cells)
    train = cells[cells["pair"] < t]
    counts = train.pivot_table(
        index="from_segment", columns="to_segment", values="customers", aggfunc="sum"
    )
    chain = MarkovChain(prior=prior).fit(
        counts.reindex(index=[NEW, *segments], columns=[*segments, GONE]).fillna(0.0)
    )
    sizes = _sizes(cells, dates, segments)
    arrivals = cells[cells["from_segment"] == NEW].groupby("pair")["customers"].sum()
    fc = chain.forecast(
        sizes.loc[t_end].to_dict(),
        steps,
        arrivals=[float(arrivals.get(t + h, 0.0)) for h in range(steps)],
    )
    rows = []
    for h in range(1, steps + 1):  # a handful of horizons
        f = fc.loc[h, segments]
        act = sizes.loc[dates[t + h], segments]
        rows.append(
            pd.DataFrame(
                {
                    "snapshot_date": dates[t + h],
                    "horizon": h,
                    "segment": segments,
                    "forecast": f.to_numpy(),
                    "actual": act.to_numpy(),
                    "share_forecast": (f / f.sum()).to_numpy(),
                    "share_actual": (act / act.sum()).to_numpy(),
                }
            )
        )
    table = pd.concat(rows, ignore_index=True)
    table["error"] = table["forecast"] - table["actual"]
    table["abs_pct_error"] = np.where(
        table["actual"] > 0,
        table["error"].abs() / table["actual"].where(table["actual"] > 0, 1),
        np.nan,
    )
    return Backtest(table, chain, scheme, t_end)


class Stability(TableResult):
    """Stability of a scheme over consecutive snapshot pairs, with drift alarms.

    ``to_pandas()`` has one row per pair and segment: ``from_date``, ``to_date``,
    ``segment``, ``size_from``, ``size_to``, ``stay`` (customers in the segment at both
    dates), ``inflow`` (entered from any other state, ``(new)`` included), ``outflow``
    (left to any other state, ``(gone)`` included), ``stay_rate = stay / size_from``,
    ``churn_rate = outflow / size_from`` (membership churn), and the alarm columns
    ``size_alarm`` / ``inflow_alarm`` (see :func:`stability`).
    """

    def __init__(
        self, table: pd.DataFrame, overall: pd.DataFrame, scheme: str, rule: dict[str, float]
    ) -> None:
        self.table = table
        self.overall = overall
        self.scheme = scheme
        self.rule = rule

    def to_pandas(self) -> pd.DataFrame:
        return self.table.copy()

    def alarms(self) -> pd.DataFrame:
        """Rows where a segment's size or inflow left its usual range."""
        t = self.table
        return t[t["size_alarm"] | t["inflow_alarm"]].reset_index(drop=True)

    def to_dict(self) -> dict[str, Any]:

        payload = super().to_dict()
        payload["overall"] = json_records(self.overall)
        payload["rule"] = self.rule
        return payload

    def figure(self) -> go.Figure:
        import plotly.graph_objects as go

        fig = go.Figure()
        for seg, part in self.table.groupby("segment", sort=False):
            fig.add_scatter(
                x=part["to_date"], y=part["stay_rate"], name=str(seg), mode="lines+markers"
            )
        fig.add_scatter(
            x=self.overall["to_date"],
            y=self.overall["stay_rate"],
            name="all customers",
            line={"color": "black", "width": 3},
        )
        fig.update_layout(
            title=f"{self.scheme}: share who stay in their segment",
            yaxis_title="stay rate",
            yaxis_tickformat=".0%",
        )
        return fig

    def __repr__(self) -> str:
        return f"Stability(scheme={self.scheme!r}, pairs={len(self.overall)}, alarms={len(self.alarms())})"


def stability(
    assignments: ibis.Table | Any,
    *,
    scheme: str,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    k: float = 3.0,
    min_history: int = 4,
) -> Stability:
    """Stay rates, membership churn and drift alarms for every consecutive pair.

    Parameters
    ----------
    assignments : ibis.Table or Store
        Per-snapshot assignments, or a store: its change rows are read (the same counts).
    scheme : str
    start, end : date, optional
        Snapshot range.
    k : float, default=3.0
        Alarm width in robust standard deviations.
    min_history : int, default=4
        Pairs of history needed before a segment can raise an alarm.

    Notes
    -----
    Drift rule: for each segment and each of ``size_to`` and ``inflow``, the value at pair
    ``i`` is compared with the values at the pairs before it. With ``m`` their median and
    ``s = max(1.4826 * MAD, sqrt(max(m, 1)))`` (a normal-consistent robust SD, floored at
    the Poisson noise of a count, at least one customer's worth, so that a flat or empty
    history does not alarm on noise), the alarm fires when
    ``|x_i - m| > k s``. The history is all earlier pairs (expanding window).
    """
    dates, cells = _pair_table(assignments, scheme, start=start, end=end)
    segments = _segment_order(cells)
    c = cells
    moved = c[c["from_segment"] != c["to_segment"]]
    idx = pd.MultiIndex.from_product([range(len(dates) - 1), segments], names=["pair", "segment"])

    def by(frame: pd.DataFrame, col: str) -> pd.Series:
        return (
            frame.groupby(["pair", col])["customers"]
            .sum()
            .rename_axis(["pair", "segment"])
            .reindex(idx)
        )

    t = pd.DataFrame(
        {
            "size_from": by(c, "from_segment"),
            "size_to": by(c, "to_segment"),
            "stay": by(c[c["from_segment"] == c["to_segment"]], "from_segment"),
            "inflow": by(moved, "to_segment"),
            "outflow": by(moved, "from_segment"),
        }
    ).fillna(0).astype("int64")  # counts of customers: whole numbers in every scheme
    with np.errstate(invalid="ignore", divide="ignore"):
        t["stay_rate"] = np.where(t["size_from"] > 0, t["stay"] / t["size_from"], np.nan)
        t["churn_rate"] = np.where(t["size_from"] > 0, t["outflow"] / t["size_from"], np.nan)
    t = t.reset_index()
    t["size_alarm"] = _alarms(t, "size_to", k, min_history)
    t["inflow_alarm"] = _alarms(t, "inflow", k, min_history)
    t.insert(1, "from_date", [dates[p] for p in t["pair"]])
    t.insert(2, "to_date", [dates[p + 1] for p in t["pair"]])
    overall = t.groupby(["pair", "from_date", "to_date"])[["stay", "size_from"]].sum().reset_index()
    overall["stay_rate"] = overall["stay"] / overall["size_from"].where(overall["size_from"] > 0)
    return Stability(
        t.drop(columns="pair"),
        overall.drop(columns="pair"),
        scheme,
        {"k": k, "min_history": min_history},
    )


def _alarms(t: pd.DataFrame, col: str, k: float, min_history: int) -> np.ndarray:
    wide = t.pivot(index="pair", columns="segment", values=col).sort_index()
    values = wide.to_numpy(dtype=float)
    flags = np.zeros_like(values, dtype=bool)
    for i in range(min_history, len(values)):  # one step per pair (a few dozen at most)
        hist = values[:i]
        med = np.median(hist, axis=0)
        mad = np.median(np.abs(hist - med), axis=0)
        spread = np.maximum(MAD_TO_SD * mad, np.sqrt(np.maximum(med, 1.0)))
        flags[i] = np.abs(values[i] - med) > k * spread
    flag_frame = pd.DataFrame(flags, index=wide.index, columns=wide.columns).stack()
    return flag_frame.reindex(pd.MultiIndex.from_frame(t[["pair", "segment"]])).to_numpy(dtype=bool)
