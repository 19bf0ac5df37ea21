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


def _top_features(diff: Any, max_features: int | None) -> Any:
    """The ``max_features`` columns of ``diff`` with the largest absolute standardised
    difference in any segment, most distinguishing first (all columns when None)."""
    if max_features is None or diff.shape[1] <= max_features:
        return diff
    strength = diff.abs().max(axis=0).fillna(0.0).sort_values(ascending=False, kind="stable")
    return diff[list(strength.index[:max_features])]


#: At most this many features go across the heat-map (labels wrapped onto lines of
#: :data:`_WRAP` characters, written horizontally); longer lists go down the side.
_ACROSS = 10
_WRAP = 16


def profile_heatmap(
    profile: Any, *, title: str = "", max_features: int | None = None, currency: str | None = None
) -> go.Figure:
    """Segments by features, coloured by the standardised difference of the segment's mean
    from the base mean, in base standard deviations (diverging scale centred on 0, clipped at
    +-2).

    Features are named by :func:`segflow.features._registry.feature_label` (words and unit;
    ``currency`` names the money unit) and every label is written horizontally: up to 10
    features go across (segments down the side, feature labels wrapped onto lines of 16
    characters), more go down the side (segments across). ``max_features`` keeps only the most
    distinguishing features (largest absolute difference in any segment). Cell numbers are
    drawn at a fixed, readable size."""
    import textwrap

    import plotly.graph_objects as go

    from segflow.features._registry import feature_label
    from segflow.viz._core import MIN_FONT_PX, house_style

    diff = _top_features(profile.std_diff, max_features)
    names = [feature_label(str(c), currency) for c in diff.columns]
    across = len(names) <= _ACROSS
    if across:
        x = ["<br>".join(textwrap.wrap(n, _WRAP)) for n in names]
        y, rows, hover = _labels(profile), len(diff), "%{y}<br>%{x}: %{text} sd<extra></extra>"
    else:
        diff = diff.T
        x, y, rows, hover = _labels(profile), names, len(names), "%{x}<br>%{y}: %{text} sd<extra></extra>"
    values = diff.to_numpy(dtype=float)
    text = np.where(np.isnan(values), "", np.vectorize(lambda v: f"{v:+.1f}")(np.nan_to_num(values)))
    fig = go.Figure(
        go.Heatmap(
            z=np.clip(values, -2, 2),
            x=x,
            y=y,
            text=text,
            texttemplate="%{text}" if len(x) <= 16 else None,
            textfont={"size": MIN_FONT_PX + 1},
            colorscale="RdBu",
            reversescale=True,
            zmid=0,
            zmin=-2,
            zmax=2,
            xgap=1,
            ygap=1,
            colorbar=dict(title=dict(text="sd from base", side="right")),
            hovertemplate=hover,
        )
    )
    fig.update_layout(
        title=title or "Segment profiles (standardised difference from the whole base)",
        height=max(320, 240 + 32 * rows),
        yaxis=dict(autorange="reversed", type="category"),
        xaxis=dict(type="category", tickangle=0),
        margin=dict(l=10, r=10, t=60, b=10),
    )
    return house_style(fig)


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


def k_quality_figure(quality: Any, *, title: str = "") -> go.Figure:
    """The quality table of automatic k: silhouette, Davies-Bouldin and Calinski-Harabasz by k,
    one panel each, the chosen k marked (``quality`` is a segmenter's ``quality_``)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    panels = [
        ("silhouette", "silhouette (higher is better)"),
        ("davies_bouldin", "Davies-Bouldin (lower is better)"),
        ("calinski_harabasz", "Calinski-Harabasz (higher is better)"),
    ]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for _, t in panels])
    chosen = quality.loc[quality["chosen"], "k"] if "chosen" in quality else []
    for i, (col, _) in enumerate(panels, start=1):
        fig.add_trace(
            go.Scatter(x=quality["k"], y=quality[col], mode="lines+markers", name=col, showlegend=False),
            row=1,
            col=i,
        )
        for k in chosen:
            fig.add_vline(x=int(k), line_dash="dot", line_color="firebrick", row=1, col=i)
    fig.update_xaxes(title_text="k", dtick=1)
    fig.update_layout(title=title or "Choosing k (dotted: chosen)", height=340, margin=dict(l=40, r=20, t=80, b=40))
    return fig


def stability_figure(per_segment: Any, names: list[str] | None = None, *, title: str = "") -> go.Figure:
    """Bootstrap Jaccard per segment (``stability_.per_segment``) against Hennig's 0.75 line."""
    import plotly.graph_objects as go

    from segflow.segments._stability import STABLE_JACCARD

    labels = [
        f"{r}: {names[int(r) - 1]}" if names else str(r) for r in per_segment["segment_rank"]
    ]
    colours = ["#4C78A8" if j >= STABLE_JACCARD else "#E45756" for j in per_segment["jaccard"]]
    fig = go.Figure(go.Bar(x=labels, y=per_segment["jaccard"], marker_color=colours))
    fig.add_hline(y=STABLE_JACCARD, line_dash="dot", annotation_text="stable (0.75)")
    fig.update_layout(
        title=title or "Segment stability (mean bootstrap Jaccard)",
        yaxis=dict(range=[0, 1], title="Jaccard"),
        height=360,
        margin=dict(l=50, r=20, t=60, b=100),
    )
    return fig
