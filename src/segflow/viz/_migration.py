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
_MUTED = "#BBBBBB"
_GONE_COLOUR = "#7F7F7F"
#: Vertical gap (px) between Sankey nodes: more than a label's height, so labels never touch.
_NODE_PAD = 20
_LABEL_PX = 12


def _colours(segments: Sequence[str]) -> dict[str, str]:
    from segflow.viz._core import PALETTE

    colours = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(segments)}
    colours[NEW] = _MUTED
    colours[GONE] = _GONE_COLOUR
    return colours


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _node_positions(columns: list[list[float]], height: int) -> tuple[list[float], list[float]]:
    """Normalised (x, y) centres of Sankey nodes given per column, top to bottom in the given
    order, so that plotly keeps that order (segment rank) in every column.

    Node heights follow plotly's scale (the tightest column fills the plot); nodes with no
    customers get a position too (plotly does not draw them)."""
    inner = height - 2 * 10
    scale = min(
        (inner - _NODE_PAD * max(sum(v > 0 for v in col) - 1, 0)) / max(sum(col), 1e-9)
        for col in columns
    )
    xs: list[float] = []
    ys: list[float] = []
    n = len(columns)
    for c, col in enumerate(columns):
        top = 0.0
        for v in col:
            size = v * scale
            xs.append(0.001 + 0.998 * c / max(n - 1, 1))
            ys.append(min(max((top + size / 2) / inner, 0.001), 0.999))
            if v > 0:
                top += size + _NODE_PAD
    return xs, ys


def _heatmap_text_fits(n_cols: int, lines: int, width_px: int = 1100, chars: int = 8) -> bool:
    """Whether cell numbers fit at the minimum font size in a ``n_cols``-wide heat-map."""
    from segflow.viz._core import MIN_FONT_PX

    return width_px / max(n_cols, 1) >= chars * MIN_FONT_PX * 0.62 + 6 and lines <= 2


def transition_heatmap(tm: TransitionMatrix, *, title: str | None = None) -> go.Figure:
    """Heat-map of row shares; each cell shows the share (percent) and the count.

    Rows are the segment at the first snapshot (plus ``(new)``), columns the segment at the
    second (plus ``(gone)``). Colour is the row share, so rows of different sizes compare.
    Cell numbers are drawn at a fixed, readable size when they fit and are otherwise only in
    the hover label.
    """
    import plotly.graph_objects as go

    from segflow.viz._core import MIN_FONT_PX, house_style

    shares = tm.shares()
    counts = tm.counts()
    pct = shares.to_numpy(dtype=float)
    n = counts.to_numpy(dtype=float)
    text = [
        ["" if np.isnan(p) else f"{p:.0%}<br>n={c:,.0f}" for p, c in zip(prow, crow, strict=True)]
        for prow, crow in zip(pct, n, strict=True)
    ]
    fits = _heatmap_text_fits(shares.shape[1], 2)
    fig = go.Figure(
        go.Heatmap(
            z=pct,
            x=list(shares.columns),
            y=list(shares.index),
            text=text,
            texttemplate="%{text}" if fits else None,
            textfont={"size": MIN_FONT_PX + 1},
            colorscale="Blues",
            zmin=0.0,
            zmax=1.0,
            xgap=1,
            ygap=1,
            colorbar={"title": {"text": "share of row", "side": "right"}, "tickformat": ".0%"},
            hovertemplate="from %{y}<br>to %{x}<br>%{text}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or f"{tm.scheme}: where the customers of each segment went, {tm.from_date} → {tm.to_date}",
        xaxis={"title": {"text": f"segment at {tm.to_date}"}, "tickangle": -90, "type": "category"},
        yaxis={"title": {"text": f"segment at {tm.from_date}"}, "autorange": "reversed",
               "type": "category"},
        height=200 + 44 * len(shares.index),
        margin={"t": 60},
    )
    return house_style(fig)


def sankey(
    tm: TransitionMatrix, *, title: str | None = None, min_customers: float = 0
) -> go.Figure:
    """Sankey of flows between two snapshots (left: first snapshot, right: second).

    Link width is the number of customers; ``(new)`` enters on the left and ``(gone)``
    leaves on the right. Nodes keep the segment order (best rank first) in both columns.
    Links below ``min_customers`` are omitted (their customers are still counted in the node
    totals shown on hover).
    """
    import plotly.graph_objects as go

    from segflow.viz._core import house_style

    cells = tm.to_pandas()
    cells = cells[(cells["customers"] > 0) & (cells["customers"] >= min_customers)]
    colours = _colours(tm.segments)
    out_totals = cells.groupby("from_segment")["customers"].sum()
    in_totals = cells.groupby("to_segment")["customers"].sum()
    # only nodes with customers: plotly drops unlinked nodes, which would shift fixed positions
    left = [s for s in [NEW, *tm.segments] if out_totals.get(s, 0) > 0]
    right = [s for s in [*tm.segments, GONE] if in_totals.get(s, 0) > 0]
    columns = [[float(out_totals[s]) for s in left], [float(in_totals[s]) for s in right]]
    height = _sankey_height(columns)
    xs, ys = _node_positions(columns, height)
    li = {s: i for i, s in enumerate(left)}
    ri = {s: len(left) + i for i, s in enumerate(right)}
    fig = go.Figure(
        go.Sankey(
            arrangement="fixed",
            node={
                "label": [*left, *right],
                "x": xs,
                "y": ys,
                "color": [colours[s] for s in left] + [colours[s] for s in right],
                "pad": _NODE_PAD,
                "customdata": [str(tm.from_date)] * len(left) + [str(tm.to_date)] * len(right),
                "hovertemplate": "%{label} at %{customdata}: %{value:,} customers<extra></extra>",
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
            textfont={"size": _LABEL_PX},
        )
    )
    fig.update_layout(
        title=title or f"{tm.scheme}: customer flows {tm.from_date} (left) → {tm.to_date} (right)",
        height=height + 90,
        margin={"l": 10, "r": 10, "t": 60, "b": 20},
    )
    return house_style(fig)


def _sankey_height(columns: list[list[float]]) -> int:
    most = max(sum(v > 0 for v in col) for col in columns)
    return max(420, 40 + most * (_NODE_PAD + 26))


def alluvial(pair_cells: pd.DataFrame, segments: Sequence[str], *, title: str = "") -> go.Figure:
    """Alluvial plot over several snapshots: one column of nodes per snapshot date.

    Nodes keep the segment order (``segments``, top to bottom) in every column; the snapshot
    dates are written above the columns, so node labels are the plain segment names.

    Parameters
    ----------
    pair_cells : pandas.DataFrame
        Long per-pair counts (``from_date, to_date, from_segment, to_segment, customers``),
        e.g. :attr:`TransitionMatrix.pair_cells` of a pooled matrix.
    segments : sequence of str
        Segment order (top to bottom).
    """
    import plotly.graph_objects as go

    from segflow.viz._core import house_style

    cells = pair_cells[pair_cells["customers"] > 0]
    dates = sorted(set(cells["from_date"]) | set(cells["to_date"]))
    colours = _colours(segments)
    states = [NEW, *segments, GONE]
    outs = cells.groupby(["from_date", "from_segment"])["customers"].sum()
    ins = cells.groupby(["to_date", "to_segment"])["customers"].sum()
    # one node per (date, state) with customers, in segment order within each date: plotly
    # drops unlinked nodes, which would shift fixed positions
    nodes = [
        [(d, s) for s in states if max(outs.get((d, s), 0.0), ins.get((d, s), 0.0)) > 0] for d in dates
    ]
    columns = [[float(max(outs.get(k, 0.0), ins.get(k, 0.0))) for k in col] for col in nodes]
    flat = [k for col in nodes for k in col]
    index = {k: i for i, k in enumerate(flat)}
    height = _sankey_height(columns)
    xs, ys = _node_positions(columns, height)
    # name the nodes of the first and last column only; the middle columns show their names on
    # hover, so labels never cross the links of the next column
    first, last = dates[0], dates[-1]
    labels = [s if d in (first, last) else "" for d, s in flat]
    fig = go.Figure(
        go.Sankey(
            arrangement="fixed",
            node={
                "label": labels,
                "x": xs,
                "y": ys,
                "color": [colours[s] for _d, s in flat],
                "pad": _NODE_PAD,
                "customdata": [f"{s} at {d}" for d, s in flat],
                "hovertemplate": "%{customdata}: %{value:,} customers<extra></extra>",
            },
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
            textfont={"size": _LABEL_PX},
        )
    )
    for j, d in enumerate(dates):
        fig.add_annotation(
            x=0.001 + 0.998 * j / max(len(dates) - 1, 1), y=1.0, yref="paper", xref="paper",
            yanchor="bottom", yshift=14, text=str(d), showarrow=False,
            xanchor="left" if j == 0 else ("right" if j == len(dates) - 1 else "center"),
        )
    fig.update_layout(
        title=title or "Customer flows across snapshots",
        height=height + 110,
        margin={"l": 10, "r": 10, "t": 90, "b": 20},
    )
    return house_style(fig)


def net_flow_bars(net: pd.DataFrame, *, title: str = "Net migration per segment") -> go.Figure:
    """Horizontal bars of inflow (right), outflow (left) and the net change per segment.

    ``net`` is :meth:`TransitionMatrix.net_migration` (columns segment, inflow, outflow, net).
    """
    import plotly.graph_objects as go

    from segflow.viz._core import house_style

    labels = [str(s) for s in net["segment"]]
    fig = go.Figure()
    fig.add_bar(y=labels, x=net["inflow"], name="customers in", marker_color="#59A14F",
                orientation="h", hovertemplate="%{y}: %{x:,} in<extra></extra>")
    fig.add_bar(y=labels, x=-net["outflow"], name="customers out", marker_color="#E15759",
                orientation="h", customdata=net["outflow"],
                hovertemplate="%{y}: %{customdata:,} out<extra></extra>")
    fig.add_scatter(
        y=labels,
        x=net["net"],
        name="net change",
        mode="markers",
        marker={"size": 11, "color": "black", "symbol": "diamond"},
        hovertemplate="%{y}: net %{x:+,}<extra></extra>",
    )
    fig.update_layout(
        title=title, barmode="relative", xaxis={"title": {"text": "customers"}},
        # every segment labelled (dtick 1): 30 px a row leaves room for each label
        yaxis={"autorange": "reversed", "type": "category", "dtick": 1},
        height=140 + 30 * len(net),
        margin={"t": 60, "b": 50},
    )
    return house_style(fig)


def forecast_chart(
    forecast: pd.DataFrame,
    *,
    actual: pd.DataFrame | None = None,
    title: str = "Segment mix forecast",
    y_title: str = "customers",
) -> go.Figure:
    """Lines of customers per segment over forecast periods; dashed actuals when given.

    ``forecast`` (and ``actual``) are wide: one row per period (index: dates, or period
    numbers), one column per state. Every state has its own colour; ``(gone)`` is grey.
    """
    import plotly.graph_objects as go

    from segflow.viz._core import house_style

    colours = _colours([c for c in forecast.columns if c not in (NEW, GONE)])
    fig = go.Figure()
    for col in forecast.columns:
        fig.add_scatter(
            x=list(forecast.index),
            y=forecast[col],
            name=f"{col} (forecast)",
            mode="lines+markers",
            line={"color": colours.get(col, _MUTED)},
            hovertemplate=f"{col}<br>%{{x}}: %{{y:,.0f}}<extra></extra>",
        )
        if actual is not None and col in actual:
            fig.add_scatter(
                x=list(actual.index),
                y=actual[col],
                name=f"{col} (actual)",
                mode="lines",
                line={"color": colours.get(col, _MUTED), "dash": "dash"},
            )
    is_dates = len(forecast.index) > 0 and not isinstance(forecast.index[0], (int, np.integer))
    fig.update_layout(
        title=title,
        xaxis={"title": {"text": "date" if is_dates else "period"}},
        yaxis={"title": {"text": y_title}},
        height=460,
    )
    return house_style(fig)
