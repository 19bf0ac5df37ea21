"""Figures of segment profiles: feature heat-map, snake plot, size and value bars.

Each builder takes a :class:`segflow.segments._profile.SegmentProfile` (or anything with the
same ``table``, ``std_diff`` attributes) and returns a Plotly figure; Plotly is imported inside.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import plotly.graph_objects as go


def _labels(profile: Any) -> list[str]:
    table = profile.table
    return [f"{seg}: {name}" if name != seg else str(seg) for seg, name in zip(table["segment"], table["name"], strict=True)]


def profile_heatmap(profile: Any, *, title: str = "") -> go.Figure:
    """Segments (rows) by features (columns), coloured by the standardised difference from the
    base mean, in base standard deviations (diverging scale centred on 0, clipped at +-2)."""
    import plotly.graph_objects as go

    diff = profile.std_diff
    values = diff.to_numpy(dtype=float)
    text = np.where(np.isnan(values), "", np.vectorize(lambda v: f"{v:+.2f}")(np.nan_to_num(values)))
    fig = go.Figure(
        go.Heatmap(
            z=np.clip(values, -2, 2),
            x=list(diff.columns),
            y=_labels(profile),
            text=text,
            texttemplate="%{text}",
            colorscale="RdBu",
            reversescale=True,
            zmid=0,
            zmin=-2,
            zmax=2,
            colorbar=dict(title="sd from base"),
            hovertemplate="%{y}<br>%{x}: %{text} sd<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or "Segment profiles (standardised difference from the whole base)",
        height=max(300, 60 + 40 * len(diff)),
        yaxis=dict(autorange="reversed"),
        margin=dict(l=200, r=20, t=60, b=80),
    )
    return fig


def snake_plot(profile: Any, *, title: str = "") -> go.Figure:
    """One line per segment across the features: its standardised mean (base = 0)."""
    import plotly.graph_objects as go

    diff = profile.std_diff
    fig = go.Figure()
    for label, (_, row) in zip(_labels(profile), diff.iterrows(), strict=True):
        fig.add_scatter(x=list(diff.columns), y=row.to_numpy(dtype=float), mode="lines+markers", name=label)
    fig.add_hline(y=0, line_dash="dot", line_color="grey")
    fig.update_layout(
        title=title or "Snake plot: standardised feature means by segment",
        yaxis_title="standard deviations from the base mean",
        height=420,
        margin=dict(l=60, r=20, t=60, b=80),
    )
    return fig


def segment_size_value_bars(profile: Any, *, title: str = "") -> go.Figure:
    """Share of customers and share of value (``revenue_share``) per segment."""
    from segflow.viz._core import segment_size_value_bars as bars

    table = profile.table.assign(segment=_labels(profile))
    fig = bars(table, title=title or "Segment size and value")
    value = getattr(profile, "value_col", None)
    if value:
        fig.data[1].name = f"value ({value})"
    return fig
