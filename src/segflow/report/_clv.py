"""CLV diagnostics for the report, the checks BTYD users expect (Fader, Hardie & Lee 2005):

* frequency/recency matrices of expected purchases (next 52 weeks) and of P(active) from the
  BG/NBD fitted on all history before the latest snapshot, for a customer of typical age;
* calibration vs holdout tracking, cumulative and per week: the model is refitted on history
  up to 26 weeks before the latest snapshot and predicts those 26 weeks
  (:func:`segflow.models.validate_holdout`);
* calibration by decile of predicted purchases (same split);
* plain-words caveats where the model is known to mislead.

``segflow run`` computes them at the latest CLV snapshot and stores them (``summary_results``,
:mod:`segflow.summaries._results`): the report reads the stored model parameters and tables
and refits nothing. Only aggregates leave the engine (compressed (x, t_x, T) triples and
per-week counts).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from segflow.errors import SegflowError
from segflow.summaries._results import HOLDOUT_WEEKS, HORIZON_WEEKS

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from segflow.store import Store

__all__ = ["HOLDOUT_WEEKS", "HORIZON_WEEKS", "ClvDiagnostics", "clv_diagnostics"]



@dataclasses.dataclass
class ClvDiagnostics:
    """Results of :func:`clv_diagnostics` (pandas tables; figures built on demand).

    ``model``: the BG/NBD fitted on all history before ``snapshot`` (the run's; its
    ``model_params``), ``expected``/``p_alive``: its matrices over ``grid_x`` (repeat
    purchases) x ``grid_recency`` (week of the last purchase); ``tracking_table``/``deciles``: the holdout check of the model refitted up to ``calibration_end``
    (:func:`segflow.models.validate_holdout`)."""

    snapshot: dt.date
    calibration_end: dt.date
    model_params: dict[str, Any]
    grid_x: np.ndarray
    grid_recency: np.ndarray
    typical_T: float
    expected: np.ndarray
    p_alive: np.ndarray
    tracking_table: pd.DataFrame
    deciles: pd.DataFrame
    one_time_share: float
    one_time_customers: int
    customers: int
    tracking_start: dt.date

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> ClvDiagnostics:
        """The diagnostics of a stored document (:func:`segflow.summaries._results.clv_diagnostics_document`)."""
        from segflow.summaries._results import document_frame

        if "error" in doc:
            raise SegflowError(doc["error"])
        typical_t = float(doc["typical_T"])
        total = int(doc["customers"])
        one_time = int(doc["one_time_customers"])
        return cls(
            snapshot=dt.date.fromisoformat(doc["snapshot"]),
            calibration_end=dt.date.fromisoformat(doc["calibration_end"]), model_params=doc["model"],
            grid_x=np.arange(0, int(doc["max_x"]) + 1), grid_recency=np.arange(0, int(typical_t) + 1),
            typical_T=typical_t, expected=np.asarray(doc["expected"], dtype=float),
            p_alive=np.asarray(doc["p_alive"], dtype=float),
            tracking_table=document_frame(doc["tracking"]), deciles=document_frame(doc["deciles"]),
            one_time_share=one_time / total if total else 0.0, one_time_customers=one_time, customers=total,
            tracking_start=dt.date.fromisoformat(doc["tracking_start"]),
        )

    @property
    def model(self) -> Any:
        """The fitted BG/NBD (a :class:`segflow.models.BetaGeoModel` with the stored parameters)."""
        from segflow.models._saved import models_from_document

        return models_from_document({"count": self.model_params, "spend": None, "horizon": HORIZON_WEEKS,
                                     "time_unit": "W", "annual_discount_rate": 0.0})["count"]

    def tracking(self) -> pd.DataFrame:
        """Weekly and cumulative repeat purchases, actual vs model, with each week's first
        date, its ``days`` observed before the snapshot (7, fewer for a last, partial week)
        and ``complete`` (all 7 days observed)."""
        tr = self.tracking_table.copy()
        start = self.tracking_start
        weeks = [start + dt.timedelta(weeks=int(p)) for p in tr["period"]]
        tr.insert(0, "week_starting", weeks)
        tr["days"] = [max(0, min(7, (self.snapshot - w).days)) for w in weeks]
        tr["complete"] = tr["days"] == 7
        return tr

    def figures(self, currency: str = "") -> dict[str, go.Figure]:
        """Plotly figures: ``matrix`` (two heat-maps), ``tracking`` (cumulative and weekly),
        ``deciles`` (predicted vs actual holdout purchases and P(active) vs share buying)."""
        return {"matrix": self._matrix_figure(), "tracking": self._tracking_figure(),
                "deciles": self._decile_figure()}

    def _matrix_figure(self) -> go.Figure:
        from plotly.subplots import make_subplots

        from segflow.viz._core import house_style

        fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14, subplot_titles=(
            "Expected purchases, next 52 weeks", "P(active)"))
        for col, (z, fmt, scale) in enumerate(
            [(self.expected, ".2f", "Viridis"), (self.p_alive, ".0%", "Blues")], start=1
        ):
            fig.add_heatmap(
                z=z, x=self.grid_recency, y=self.grid_x, colorscale=scale, row=1, col=col,
                colorbar={"x": 0.43 if col == 1 else 1.0, "len": 0.9, "tickformat": fmt},
                hovertemplate="repeat purchases %{y}<br>last purchase in week %{x} of "
                f"{self.typical_T:.0f}<br>%{{z:{fmt}}}<extra></extra>",
            )
        fig.update_xaxes(title_text="week of the last purchase (customer age in weeks)")
        fig.update_yaxes(title_text="repeat purchases", col=1)
        fig.update_layout(
            title=f"BG/NBD by purchase history, for a customer first seen {self.typical_T:.0f} weeks before {self.snapshot}",
            height=440, margin={"t": 80},
        )
        return house_style(fig)

    def _tracking_figure(self) -> go.Figure:
        from plotly.subplots import make_subplots

        from segflow.viz._core import PALETTE, house_style

        full = self.tracking()
        # a last week cut short by the snapshot holds only part of a week's purchases, while
        # the model's line runs to the week's end: it would read as a collapse; leave it out
        tr = full[full["complete"]]
        partial = full[~full["complete"]]
        fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
            "Cumulative repeat purchases", "Repeat purchases per week"))
        for col, (a, m) in enumerate([("actual_cumulative", "model_cumulative"), ("actual", "model")], start=1):
            fig.add_scatter(x=tr.week_starting, y=tr[a], name="actual", mode="lines",
                            line={"color": PALETTE[0]}, legendgroup="a", showlegend=col == 1, row=1, col=col)
            fig.add_scatter(x=tr.week_starting, y=tr[m], name="BG/NBD", mode="lines",
                            line={"color": PALETTE[1], "dash": "dash"}, legendgroup="m",
                            showlegend=col == 1, row=1, col=col)
            fig.add_vline(x=dt.datetime.combine(self.calibration_end, dt.time()).timestamp() * 1000,
                          line_dash="dot", line_color="grey", row=1, col=col)
        fig.update_yaxes(title_text="repeat purchases", col=1)
        # keep the first date label clear of the y axis' "0"
        fig.update_xaxes(ticklabelstandoff=8)
        title = f"Calibration (before {self.calibration_end}) and holdout (dotted line to {self.snapshot})"
        if len(partial):
            p = partial.iloc[0]
            title += (f"<br><sup>Complete weeks only: the last week, from {p.week_starting} "
                      f"({int(p.days)} of 7 days before the snapshot), is left out.</sup>")
        fig.update_layout(title=title, height=420, margin={"t": 100})
        return house_style(fig)

    def _decile_figure(self) -> go.Figure:
        from plotly.subplots import make_subplots

        from segflow.viz._core import PALETTE, house_style

        dc = self.deciles
        fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
            "Holdout purchases per customer", "Share buying in the holdout"))
        fig.add_bar(x=dc.decile, y=dc.predicted_purchases, name="predicted", marker_color=PALETTE[1], row=1, col=1)
        fig.add_bar(x=dc.decile, y=dc.actual_purchases, name="actual", marker_color=PALETTE[0], row=1, col=1)
        fig.add_scatter(x=dc.decile, y=dc.predicted_any_purchase, name="predicted P(buys)",
                        mode="lines+markers", line={"color": PALETTE[1]}, row=1, col=2)
        fig.add_scatter(x=dc.decile, y=dc.actual_any_purchase, name="actual share buying",
                        mode="lines+markers", line={"color": PALETTE[0]}, row=1, col=2)
        fig.add_scatter(x=dc.decile, y=dc.p_alive, name="average P(active)", mode="lines+markers",
                        line={"color": PALETTE[2], "dash": "dot"}, row=1, col=2)
        fig.update_xaxes(title_text="decile of predicted purchases (1 = highest)", dtick=1)
        fig.update_yaxes(tickformat=".0%", col=2)
        fig.update_layout(title=f"Calibration by decile, holdout {self.calibration_end} → {self.snapshot}",
                          barmode="group", height=400, margin={"t": 80})
        return house_style(fig)

    def __repr__(self) -> str:
        model = self.model_params.get("model", "model")
        return (f"ClvDiagnostics(snapshot={self.snapshot}, {model} on {self.customers:,} customers, "
                f"holdout {self.calibration_end}→{self.snapshot}, "
                f"{self.one_time_share:.0%} one-time buyers)")

    def _repr_html_(self) -> str:
        """Notebook view: what was checked, the caveats in words, and the decile table
        (``figures()`` has the charts)."""
        import html

        from segflow.report._format import table_html

        params = ", ".join(f"{k} = {float(v):.4g}" for k, v in self.model_params.get("params", {}).items())
        deciles = self.deciles[["decile", "customers", "predicted_purchases", "actual_purchases",
                                "predicted_any_purchase", "actual_any_purchase", "p_alive"]]
        labels = {"decile": "Decile (1 = highest)", "predicted_purchases": "Predicted purchases per customer",
                  "actual_purchases": "Actual purchases per customer", "predicted_any_purchase": "Predicted share buying",
                  "actual_any_purchase": "Actual share buying", "p_alive": "Average P(active)"}
        return (
            f"<p><b>CLV diagnostics at {self.snapshot}</b>: BG/NBD ({html.escape(params)}); holdout check "
            f"refitted on history before {self.calibration_end}, predicting the weeks up to {self.snapshot}.</p>"
            + "<ul>" + "".join(f"<li>{html.escape(c)}</li>" for c in self.caveats()) + "</ul>"
            + table_html(deciles, percent=("predicted_any_purchase", "actual_any_purchase", "p_alive"),
                         labels=labels)
        )

    def caveats(self) -> list[str]:
        """Plain-words warnings about where these numbers mislead."""
        notes = [
            f"{self.one_time_customers:,} customers ({self.one_time_share:.0%} of those scored) bought only "
            "once. BG/NBD gives every one-time buyer P(active) = 100 %, however long ago the "
            "purchase was (the bottom row of the right-hand matrix): do not read their P(active) "
            "as a sign of loyalty; look at the time since their purchase instead.",
            "P(active) and expected purchases assume purchases at a steady rate per customer; "
            "seasonal peaks (e.g. December) are averaged out, so a single week can differ from "
            "the weekly line above.",
        ]
        worst = self.deciles
        if len(worst):
            top = worst.iloc[0]
            if top.actual_purchases > 0:
                ratio = top.predicted_purchases / top.actual_purchases
                if abs(ratio - 1) > 0.2:
                    word = "over" if ratio > 1 else "under"
                    notes.append(
                        f"For the top decile the model {word}-predicted holdout purchases by "
                        f"{abs(ratio - 1):.0%}: treat the highest predicted values with care."
                    )
        gaps = worst.assign(gap=worst.actual_any_purchase - worst.predicted_any_purchase)
        off = gaps[gaps.gap.abs() > 0.1]
        if len(off):
            r = off.loc[off.gap.abs().idxmax()]
            notes.append(
                f"In decile {int(r.decile)} the model expected {r.predicted_any_purchase:.0%} of customers "
                f"to buy in the holdout and {r.actual_any_purchase:.0%} did: predictions for this group "
                "are the least reliable."
            )
        return notes


def clv_diagnostics(store: Store, snapshot: dt.date, *, holdout_weeks: int = HOLDOUT_WEEKS) -> ClvDiagnostics:
    """The CLV diagnostics at ``snapshot``: those the run stored (``summary_results``,
    :mod:`segflow.summaries._results`) when they are for ``snapshot`` and ``holdout_weeks``;
    else computed here (two BTYD summaries and BG/NBD fits on the transactions).

    Raises
    ------
    SegflowError
        When the models cannot be identified (e.g. no repeat buyers).
    """
    from segflow.summaries import stored_result, summaries_run
    from segflow.summaries._results import clv_diagnostics_document

    stored = stored_result(store, "clv_diagnostics") if summaries_run(store) is not None else None
    if stored is not None and stored[0] == snapshot and ("expected" in stored[1] or "error" in stored[1]):
        # an error stored by older code has no holdout: the run's default was asked
        stored_weeks = stored[1].get("holdout_weeks", HOLDOUT_WEEKS if "error" in stored[1] else None)
        if stored_weeks == holdout_weeks:  # the stored failure too: a reader (the report on
            return ClvDiagnostics.from_document(stored[1])  # Spark) may have no transactions
    return ClvDiagnostics.from_document(
        clv_diagnostics_document(store.table("transactions"), snapshot, holdout_weeks=holdout_weeks))
