"""Plotly views of customer migration: Sankey, alluvial, heat-map, net-flow bars, forecast.

Every builder takes a migration result (or a small pandas table) and returns a
``plotly.graph_objects.Figure``; nothing here computes statistics. Plotly is imported inside
each function so that importing segflow stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from segflow.migration._transitions import TransitionMatrix

NEW, GONE = "(new)", "(gone)"
_PALETTE = (
    "#4C78A8",
    "#F58518",
    "#54A24B",
    "#E45756",
    "#72B7B2",
    "#EECA3B",
    "#B279A2",
    "#FF9DA6",
    "#9D755D",
    "#BAB0AC",
    "#1F77B4",
    "#2CA02C",
)
_MUTED = "#BBBBBB"


def _colours(segments: Sequence[str]) -> dict[str, str]:
    colours = {s: _PALETTE[i % len(_PALETTE)] for i, s in enumerate(segments)}
    colours[NEW] = colours[GONE] = _MUTED
    return colours


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def transition_heatmap(tm: TransitionMatrix, *, title: str | None = None) -> go.Figure:
    """Heat-map of row shares; each cell shows the share (percent) and the count.

    Rows are the segment at the first snapshot (plus ``(new)``), columns the segment at the
    second (plus ``(gone)``). Colour is the row share, so rows of different sizes compare.
    """
    import plotly.graph_objects as go

    shares = tm.shares()
    counts = tm.counts()
    pct = shares.to_numpy(dtype=float)
    n = counts.to_numpy(dtype=float)
    text = [
        ["" if np.isnan(p) else f"{p:.1%}<br>n={c:,.0f}" for p, c in zip(prow, crow, strict=True)]
        for prow, crow in zip(pct, n, strict=True)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=shares.to_numpy(dtype=float),
            x=list(shares.columns),
            y=list(shares.index),
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0.0,
            zmax=1.0,
            colorbar={"title": "row share"},
            hovertemplate="from %{y}<br>to %{x}<br>%{text}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or f"{tm.scheme}: transitions {tm.from_date} → {tm.to_date}",
        xaxis={"title": f"segment at {tm.to_date}", "side": "top"},
        yaxis={"title": f"segment at {tm.from_date}", "autorange": "reversed"},
    )
    return fig


def sankey(
    tm: TransitionMatrix, *, title: str | None = None, min_customers: float = 0
) -> go.Figure:
    """Sankey of flows between two snapshots (left: first snapshot, right: second).

    Link width is the number of customers; ``(new)`` enters on the left and ``(gone)``
    leaves on the right. Links below ``min_customers`` are omitted (their customers are still
    counted in the node totals shown on hover).
    """
    import plotly.graph_objects as go

    cells = tm.to_pandas()
    cells = cells[(cells["customers"] > 0) & (cells["customers"] >= min_customers)]
    left = [NEW, *tm.segments]
    right = [*tm.segments, GONE]
    colours = _colours(tm.segments)
    labels = [f"{s} ({tm.from_date})" if s != NEW else NEW for s in left] + [
        f"{s} ({tm.to_date})" if s != GONE else GONE for s in right
    ]
    li = {s: i for i, s in enumerate(left)}
    ri = {s: len(left) + i for i, s in enumerate(right)}
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            node={
                "label": labels,
                "color": [colours[s] for s in left] + [colours[s] for s in right],
                "pad": 12,
            },
            link={
                "source": cells["from_segment"].map(li).tolist(),
                "target": cells["to_segment"].map(ri).tolist(),
                "value": cells["customers"].astype(float).tolist(),
                "color": [_rgba(colours[s], 0.35) for s in cells["from_segment"]],
                "customdata": (cells["share"] * 100).round(1).tolist(),
                "hovertemplate": "%{source.label} → %{target.label}<br>%{value:,} customers"
                " (%{customdata}% of row)<extra></extra>",
            },
        )
    )
    fig.update_layout(title=title or f"{tm.scheme}: customer flows {tm.from_date} → {tm.to_date}")
    return fig


def alluvial(pair_cells: pd.DataFrame, segments: Sequence[str], *, title: str = "") -> go.Figure:
    """Alluvial plot over several snapshots: one column of nodes per snapshot date.

    Parameters
    ----------
    pair_cells : pandas.DataFrame
        Long per-pair counts (``from_date, to_date, from_segment, to_segment, customers``),
        e.g. :attr:`TransitionMatrix.pair_cells` of a pooled matrix.
    segments : sequence of str
        Segment order (top to bottom).
    """
    import plotly.graph_objects as go

    cells = pair_cells[pair_cells["customers"] > 0]
    dates = sorted(set(cells["from_date"]) | set(cells["to_date"]))
    colours = _colours(segments)
    states = [NEW, *segments, GONE]
    index = {(d, s): i for i, (d, s) in enumerate((d, s) for d in dates for s in states)}
    labels = [f"{s} ({d})" for d in dates for s in states]
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            node={"label": labels, "color": [colours[s] for _d in dates for s in states], "pad": 8},
            link={
                "source": [
                    index[(d, s)]
                    for d, s in zip(cells["from_date"], cells["from_segment"], strict=True)
                ],
                "target": [
                    index[(d, s)]
                    for d, s in zip(cells["to_date"], cells["to_segment"], strict=True)
                ],
                "value": cells["customers"].astype(float).tolist(),
                "color": [_rgba(colours[s], 0.35) for s in cells["from_segment"]],
            },
        )
    )
    fig.update_layout(title=title or "Customer flows across snapshots")
    return fig


def net_flow_bars(net: pd.DataFrame, *, title: str = "Net migration per segment") -> go.Figure:
    """Bars of inflow (up), outflow (down) and the net change per segment.

    ``net`` is :meth:`TransitionMatrix.net_migration` (columns segment, inflow, outflow, net).
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_bar(x=net["segment"], y=net["inflow"], name="inflow", marker_color="#54A24B")
    fig.add_bar(x=net["segment"], y=-net["outflow"], name="outflow", marker_color="#E45756")
    fig.add_scatter(
        x=net["segment"],
        y=net["net"],
        name="net",
        mode="markers",
        marker={"size": 12, "color": "black", "symbol": "diamond"},
    )
    fig.update_layout(title=title, barmode="relative", yaxis_title="customers")
    return fig


def forecast_chart(
    forecast: pd.DataFrame,
    *,
    actual: pd.DataFrame | None = None,
    title: str = "Segment mix forecast",
) -> go.Figure:
    """Lines of customers per segment over forecast periods; dashed actuals when given.

    ``forecast`` (and ``actual``) are wide: one row per period (index), one column per state.
    """
    import plotly.graph_objects as go

    colours = _colours([c for c in forecast.columns if c not in (NEW, GONE)])
    fig = go.Figure()
    for col in forecast.columns:
        fig.add_scatter(
            x=list(forecast.index),
            y=forecast[col],
            name=f"{col} (forecast)",
            mode="lines+markers",
            line={"color": colours.get(col, _MUTED)},
        )
        if actual is not None and col in actual:
            fig.add_scatter(
                x=list(actual.index),
                y=actual[col],
                name=f"{col} (actual)",
                mode="lines",
                line={"color": colours.get(col, _MUTED), "dash": "dash"},
            )
    fig.update_layout(title=title, xaxis_title="period", yaxis_title="customers")
    return fig
