"""Plotly figure builders shared by the report, the dashboard and the CLI."""

from segflow.viz._campaigns import lift_forest, migration_lift_bars, qini_plot, transition_heatmaps
from segflow.viz._core import segment_size_value_bars
from segflow.viz._migration import (
    alluvial,
    forecast_chart,
    net_flow_bars,
    sankey,
    transition_heatmap,
)
from segflow.viz._segments import k_quality_figure, profile_heatmap, snake_plot, stability_figure

__all__ = [
    "alluvial",
    "forecast_chart",
    "k_quality_figure",
    "lift_forest",
    "migration_lift_bars",
    "net_flow_bars",
    "profile_heatmap",
    "qini_plot",
    "sankey",
    "segment_size_value_bars",
    "snake_plot",
    "stability_figure",
    "transition_heatmap",
    "transition_heatmaps",
]
