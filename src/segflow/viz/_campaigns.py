"""Plotly figures of campaign read-outs: lift forest plots, migration lift, Qini curves.

Plotly is imported inside each builder so that importing segflow stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import plotly.graph_objects as go

_COLOURS = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2"]

#: Words for the usual outcomes of a read-out (others are de-snake-cased).
OUTCOME_LABELS = {"purchased": "Purchase rate", "revenue": "Revenue per customer", "orders": "Orders per customer"}


def outcome_label(outcome: str) -> str:
    """``purchased`` -> ``Purchase rate``; an unknown outcome in words (``gross_margin`` ->
    ``Gross margin``)."""
    text = OUTCOME_LABELS.get(outcome) or outcome.replace("_", " ")
    return text[:1].upper() + text[1:]


def in_currency(fig: go.Figure, currency: str) -> go.Figure:
    """A lift figure of a money outcome (:func:`lift_forest` of ``revenue``) with its axis in
    the project's currency (``treated minus control (GBP per customer)``), in place."""
    title = str(fig.layout.xaxis.title.text or "")
    if title.endswith("per customer)") and "revenue" in title:
        fig.update_xaxes(title_text=f"treated minus control ({currency} per customer)")
    return fig


def lift_forest(report: Any, outcome: str) -> go.Figure:
    """Forest plot: absolute lift vs control with its interval, per segment and treated arm.

    Parameters
    ----------
    report : EffectReport
    outcome : str
        The outcome to show. Rates are shown in percentage points.
    """
    import plotly.graph_objects as go

    t = report.table
    t = t[(t.outcome == outcome) & ~t.is_control]
    rate = bool((t.kind == "rate").all())
    scale = 100.0 if rate else 1.0
    single_by = t.loc[t.by != "(all)", "by"].nunique() <= 1
    fig = go.Figure()
    for i, (arm, sub) in enumerate(t.groupby("arm", sort=False)):
        # the segment's name alone when one grouping is shown ("Loyal", not "segment = Loyal")
        label = np.where(sub.by == "(all)", "all customers",
                         sub.segment.astype(str) if single_by else sub.by + ": " + sub.segment.astype(str))
        fig.add_scatter(
            x=sub.lift_abs * scale,
            y=label,
            mode="markers",
            name=str(arm),
            marker=dict(color=_COLOURS[i % len(_COLOURS)], size=9,
                        symbol=np.where(sub.significant, "diamond", "circle")),
            error_x=dict(type="data", symmetric=False,
                         array=(sub.lift_abs_high - sub.lift_abs) * scale,
                         arrayminus=(sub.lift_abs - sub.lift_abs_low) * scale),
            customdata=np.c_[sub.n, sub.n_control, sub.p_adjusted.fillna(np.nan)],
            hovertemplate="%{y}<br>lift %{x:.3g}<br>n %{customdata[0]} vs control "
            "%{customdata[1]}<br>adjusted p %{customdata[2]:.3g}<extra>%{fullData.name}</extra>",
        )
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    unit = "percentage points" if rate else f"{outcome.replace('_', ' ')} per customer"
    fig.update_layout(
        title=f"{outcome_label(outcome)}: lift vs the {report.control} arm, {report.level:.0%} intervals",
        xaxis_title=f"treated minus control ({unit})",
        yaxis=dict(autorange="reversed"),
        height=max(300, 40 + 28 * t[["by", "segment"]].drop_duplicates().shape[0]),
        margin=dict(l=160, r=20, t=60, b=50),
        legend=dict(orientation="h", y=1.08),
    )
    return fig


def migration_lift_bars(shares: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Grouped bars: share of customers moving up / staying / moving down / lapsing per arm,
    with Wilson intervals (``shares`` from :class:`MigrationLift.shares`)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (arm, sub) in enumerate(shares.groupby("arm", sort=False)):
        fig.add_bar(
            name=str(arm), x=sub.movement, y=sub.share, marker_color=_COLOURS[i % len(_COLOURS)],
            error_y=dict(type="data", symmetric=False, array=sub.share_high - sub.share,
                         arrayminus=sub.share - sub.share_low),
        )
    fig.update_layout(title=title or "Where customers went after the campaign",
                      barmode="group", yaxis_tickformat=".0%", yaxis_title="share of arm",
                      height=380, margin=dict(l=50, r=10, t=60, b=50))
    return fig


def transition_heatmaps(matrices: dict[str, pd.DataFrame], *, title: str = "") -> go.Figure:
    """Side-by-side heatmaps of row-normalised transition matrices (from-segment rows),
    one per arm plus their difference; cells and the difference's colour bar in percent
    (percentage points for the difference)."""
    from plotly.subplots import make_subplots

    names = list(matrices)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, shared_yaxes=True)
    for i, name in enumerate(names, start=1):
        m = matrices[name]
        diff = name.startswith("difference")
        z = m.to_numpy(dtype=float) * 100
        fig.add_heatmap(
            z=z, x=[str(c) for c in m.columns], y=[str(r) for r in m.index],
            colorscale="RdBu" if diff else "Blues", zmid=0 if diff else None,
            text=np.round(z, 1), texttemplate="%{text}",
            colorbar={"title": {"text": "points"}} if diff else None,
            hovertemplate="%{y} → %{x}: %{z:.1f}" + (" points" if diff else " %") + "<extra></extra>",
            showscale=diff, row=1, col=i,
        )
    fig.update_yaxes(autorange="reversed", title_text="before", col=1)
    fig.update_xaxes(title_text="after", tickangle=-90, type="category")
    fig.update_layout(title=title or "Transition shares (%) by arm", height=420,
                      margin=dict(l=90, r=10, t=70, b=60))
    return fig


def qini_plot(curve: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Qini curve of an uplift model against random targeting."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_scatter(x=curve.fraction, y=curve.qini, name="model", line_color=_COLOURS[0])
    fig.add_scatter(x=curve.fraction, y=curve.random, name="random", line=dict(dash="dot", color="grey"))
    fig.update_layout(title=title or "Qini curve (held-out customers)",
                      xaxis_title="share of customers targeted (by predicted uplift)",
                      xaxis_tickformat=".0%", yaxis_title="incremental responders",
                      height=380, margin=dict(l=60, r=10, t=60, b=50))
    return fig
