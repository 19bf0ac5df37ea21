"""Plotly figure builders shared by the report and the CLI (Plotly imported inside), and the
house style every report chart gets: readable fonts, axes that make room for their labels,
distinct colours, human axis titles."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import plotly.graph_objects as go

#: Smallest font (px) used in any chart; heat-map numbers that do not fit at this size are
#: left to the hover label instead of being shrunk.
MIN_FONT_PX = 11

#: Twenty distinguishable colours (the first ten are Tableau 10), used in order per segment.
PALETTE = (
    "#4E79A7", "#F28E2B", "#59A14F", "#E15759", "#76B7B2", "#EDC948", "#B07AA1", "#FF9DA7",
    "#9C755F", "#BAB0AC", "#8B008B", "#333333", "#2E8B57", "#1F4E79", "#008B8B", "#B8860B",
    "#4B0082", "#DC143C", "#556B2F", "#708090",
)


def _white_template(fig: go.Figure) -> None:
    """Set Plotly's registered ``plotly_white`` template without validating it again, as
    Plotly itself applies its default template (validating the copy costs about 50 ms a
    figure, most of a report's rendering time at any size). The figure's JSON is the same."""
    import plotly.io as pio

    layout = fig.layout
    layout._validate = False  # noqa: SLF001 - Plotly's own switch for pre-validated templates
    try:
        layout.template = pio.templates["plotly_white"]
    finally:
        layout._validate = fig._validate  # noqa: SLF001


def house_style(fig: go.Figure, *, height: int | None = None) -> go.Figure:
    """Apply the report's style in place (fonts >= :data:`MIN_FONT_PX`, automatic margins,
    white background, legend below the plot) and return the figure."""
    _white_template(fig)
    fig.update_layout(
        font={"size": 13, "family": "-apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"},
        title={"font": {"size": 15}, "x": 0, "xanchor": "left"},
        autosize=True,
        hoverlabel={"font": {"size": 13}},
    )
    if height is not None:
        fig.update_layout(height=height)
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig


def segment_size_value_bars(sizes: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Horizontal grouped bars: share of customers and share of 12-month revenue per segment
    (segments top to bottom in the table's order, so long names stay readable)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    labels = [str(s) for s in sizes["segment"]]
    fig.add_bar(name="customers", y=labels, x=sizes["share"], orientation="h", marker_color=PALETTE[0],
                hovertemplate="%{y}: %{x:.1%} of customers<extra></extra>")
    fig.add_bar(name="revenue (12 months)", y=labels, x=sizes["revenue_share"], orientation="h",
                marker_color=PALETTE[1], hovertemplate="%{y}: %{x:.1%} of revenue<extra></extra>")
    fig.update_layout(
        title=title or "Segment size and value",
        barmode="group",
        xaxis={"tickformat": ".0%", "title": "share of total"},
        yaxis={"autorange": "reversed", "type": "category"},
        height=max(300, 90 + 34 * len(sizes)),
        margin={"l": 10, "r": 10, "t": 50, "b": 50},
    )
    return house_style(fig)
