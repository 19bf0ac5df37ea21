"""Plotly figure builders shared by the report and the CLI."""

from segflow.viz._core import segment_size_value_bars

__all__ = ["segment_size_value_bars"]
