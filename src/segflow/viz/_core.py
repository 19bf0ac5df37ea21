"""Plotly figure builders shared by the report and the CLI (Plotly imported inside)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import plotly.graph_objects as go


def segment_size_value_bars(sizes: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Side-by-side bars: share of customers and share of 12-month revenue per segment."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_bar(name="customers", x=sizes["segment"], y=sizes["share"], marker_color="#4C78A8")
    fig.add_bar(name="revenue (12 m)", x=sizes["segment"], y=sizes["revenue_share"], marker_color="#F58518")
    fig.update_layout(
        title=title or "Segment size and value",
        barmode="group",
        yaxis_tickformat=".0%",
        yaxis_title="share of total",
        height=380,
        margin=dict(l=40, r=10, t=50, b=90),
        legend=dict(orientation="h", y=1.12),
    )
    return fig
