"""Plotly figure builders shared by the report and the CLI (Plotly imported inside), and the
house style every report chart gets: readable fonts, axes that make room for their labels,
distinct colours, human axis titles."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np
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


#: Plotly draws chart text as a small HTML dialect: ``<b>``, ``<i>``, ``<sup>``, ``<a>``... are
#: markup and ``&lt;`` an entity. The markup segflow's own figures use, kept as markup; any
#: other ``<``, ``>`` and ``&`` (a segment named "<25k & more", a scheme "<b>VIP</b>") is
#: escaped so that it is drawn as written.
_KEPT_IN_DATA = ("<br>",)
_KEPT_IN_TITLES = ("<br>", "<sup>", "</sup>")
_KEPT_IN_TEMPLATES = ("<br>", "<extra>", "</extra>")
#: Trace properties holding text from the data or the settings (drawn, or shown on hover).
_DATA_KEYS = frozenset({"x", "y", "labels", "text", "hovertext", "name", "customdata", "label",
                        "categoryarray", "ticktext"})
_TEMPLATE_KEYS = frozenset({"hovertemplate", "texttemplate"})
#: A run of this many characters without a space in a title is cut (a 300-character scheme
#: name ran off the chart): "LLLL…".
TITLE_WORD_CHARS = 40


def plotly_text(text: str, kept: tuple[str, ...] = _KEPT_IN_DATA) -> str:
    """``text`` as Plotly draws it literally: ``&``, ``<`` and ``>`` as entities, except
    the markup tags in ``kept`` (by default the line break ``<br>``).

    >>> plotly_text("<25k & more<br>(B2B)")
    '&lt;25k &amp; more<br>(B2B)'
    """
    pattern = "(" + "|".join(re.escape(k) for k in kept) + ")"
    parts = re.split(pattern, text) if kept else [text]
    return "".join(
        p if p in kept else p.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        for p in parts
    )


def _title_text(text: str) -> str:
    def cut(match: re.Match[str]) -> str:
        return match.group(0)[: TITLE_WORD_CHARS - 1] + "…"

    # a run of letters, digits and the like (punctuation around it kept: "LLLL…:")
    return plotly_text(re.sub(rf"[^\s<>:;,()]{{{TITLE_WORD_CHARS + 1},}}", cut, text), _KEPT_IN_TITLES)


def _literal(value: Any, kept: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return plotly_text(value, kept)
    if isinstance(value, list | tuple):
        return [_literal(v, kept) for v in value]
    if isinstance(value, np.ndarray) and value.dtype == object:
        return [_literal(v, kept) for v in value.tolist()]
    return value


def _literal_node(node: Any, key: str = "") -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "template":  # Plotly's theme: no text of ours, and large
                out[k] = v
            elif k == "title" and isinstance(v, dict) and isinstance(v.get("text"), str):
                out[k] = {**_literal_node(v, k), "text": _title_text(v["text"])}
            elif k == "title" and isinstance(v, str):
                out[k] = _title_text(v)
            elif k == "annotations" and isinstance(v, list | tuple):
                out[k] = [{**_literal_node(a, k), "text": _title_text(a["text"])}
                          if isinstance(a, dict) and isinstance(a.get("text"), str) else a for a in v]
            elif k in _TEMPLATE_KEYS:
                out[k] = _literal(v, _KEPT_IN_TEMPLATES)
            elif k in _DATA_KEYS:
                out[k] = _literal(v, _KEPT_IN_DATA)
            else:
                out[k] = _literal_node(v, k)
        return out
    if isinstance(node, list | tuple) and key in ("data", "annotations", "shapes"):
        return [_literal_node(v) for v in node]
    return node


def literal_figure(fig: go.Figure) -> dict[str, Any]:
    """The figure as a dict whose text from the data and the settings Plotly draws as
    written (:func:`plotly_text`): segment, scheme and campaign names on axes, in legends,
    Sankey nodes, hover labels and titles. Titles also cut runs of more than
    :data:`TITLE_WORD_CHARS` characters without a space. ``fig`` is not changed.

    The figure's own markup survives: ``<br>`` everywhere, ``<sup>`` in titles, ``<extra>``
    in hover templates. A click handler reading a point's ``x`` or ``y`` gets the escaped
    category (decode ``&lt;``, ``&gt;`` and ``&amp;``)."""
    return _literal_node(fig.to_dict())


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
