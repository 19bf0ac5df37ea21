"""Report sections after the executive summary: segments (with change since the previous
snapshot), migration, predicted value with CLV diagnostics. Each reads the store through the
library and the shared :class:`ReportContext`; nothing here recomputes raw data."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from typing import Any

import pandas as pd

from segflow.errors import SegflowError
from segflow.report._context import ReportContext
from segflow.report._format import (
    count,
    figure_html,
    money,
    pct,
    retitle,
    scheme_title,
    table_html,
)
from segflow.report._queries import missing_events_note
from segflow.report._viewer import blank, shown_profile, withheld_note, withheld_segments

#: Profile heat-maps show this many features (the most distinguishing); the rest are listed
#: in a collapsed table.
PROFILE_FEATURES = 8
ALLUVIAL_SNAPSHOTS = 6


@dataclasses.dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    blocks: list[str] = dataclasses.field(default_factory=list)


def h3(text: str, anchor: str = "") -> str:
    ident = f' id="{html.escape(anchor)}"' if anchor else ""
    return f"<h3{ident}>{html.escape(text)}</h3>"


def note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def details(summary: str, body: str) -> str:
    return f"<details><summary>{html.escape(summary)}</summary>{body}</details>"


# -- segments ---------------------------------------------------------------------------
def segment_change_table(ctx: ReportContext, scheme: str) -> pd.DataFrame:
    """Per segment at the latest snapshot: action, customers, share, revenue (12 months),
    predicted value, and their change since the previous snapshot (size, share, revenue; the
    value change only when scores exist at both snapshots)."""
    dates = ctx.dates(scheme)
    now = ctx.sizes(scheme, dates[-1]).set_index("segment")
    out = pd.DataFrame(index=now.index)
    out["action"] = [ctx.playbook.entry_for(str(s)).action for s in now.index]
    out["customers"] = now["customers"].astype(int)
    out["share"] = now["share"]
    out["revenue_12m"] = now["revenue_12m"]
    value_now = ctx.value(scheme, dates[-1])
    if value_now is not None:
        out["clv"] = value_now.set_index("segment")["clv"].reindex(out.index)
    if len(dates) > 1:
        before = ctx.sizes(scheme, dates[-2]).set_index("segment")
        idx = out.index.union(before.index, sort=False)
        out = out.reindex(idx)
        out["customers"] = out["customers"].fillna(0).astype(int)
        b = before.reindex(idx)
        out["change_customers"] = out["customers"] - b["customers"].fillna(0)
        out["change_share"] = out["share"].fillna(0) - b["share"].fillna(0)
        out["change_revenue"] = out["revenue_12m"].fillna(0) - b["revenue_12m"].fillna(0)
        value_before = ctx.value(scheme, dates[-2])
        if value_now is not None and value_before is not None:
            out["change_clv"] = out["clv"].fillna(0) - value_before.set_index("segment")["clv"].reindex(idx).fillna(0)
        out["action"] = [ctx.playbook.entry_for(str(s)).action for s in out.index]
    return out.rename_axis("segment").reset_index()


def segments_section(ctx: ReportContext) -> Section:
    from segflow.viz import segment_size_value_bars

    section = Section(
        "segments",
        "Segments",
        "Size, revenue and predicted value of each segment at the latest snapshot, and the change "
        "since the previous snapshot. Revenue: net revenue of identified customers in the 365 "
        f"days before the snapshot (returns netted, {ctx.currency}; anonymous lines belong to no "
        "segment and count only in the overview's total). Predicted value: BG/NBD + Gamma-Gamma, "
        "next 52 weeks. Δ: change since the previous snapshot; pp: percentage points.",
    )
    cur = ctx.currency
    for scheme in ctx.schemes:
        dates = ctx.dates(scheme)
        since = f" (change since {dates[-2]})" if len(dates) > 1 else ""
        section.blocks.append(h3(f"{scheme_title(scheme)} at {dates[-1]}{since}", f"segments-{scheme}"))
        kind = next((s.kind for s in ctx.project.settings.schemes if s.name == scheme), "")
        note = missing_events_note(ctx.project.store, kind)
        if note:
            section.blocks.append(f'<p class="note warn">{html.escape(note)}</p>')
        table = segment_change_table(ctx, scheme)
        hidden = withheld_segments(ctx, scheme, dates[-1])
        if ctx.min_customers > 1:  # with the other snapshot's revenue, a change gives its small rows away
            table = blank(table.drop(columns=["change_revenue", "change_clv"], errors="ignore"), hidden)
            section.blocks.append(withheld_note(hidden))
        labels = {
            "change_customers": "Δ customers", "change_share": "Δ share",
            "change_revenue": "Δ revenue", "change_clv": "Δ predicted value",
            "action": "Suggested action",
        }
        section.blocks.append(table_html(
            table, percent=("share",), point_cols=("change_share",),
            money_cols=("revenue_12m", "clv", "change_revenue", "change_clv"), currency=cur,
            signed=("change_customers", "change_share", "change_revenue", "change_clv"), labels=labels,
        ))
        sizes = blank(ctx.sizes(scheme, dates[-1]), hidden)
        section.blocks.append(figure_html(
            segment_size_value_bars(sizes, title=f"{scheme_title(scheme)}: share of customers and of revenue"),
            name=f"{scheme}-size-value"))
        section.blocks.extend(_profile_blocks(ctx, scheme, hidden))
    return section


def _profile_blocks(ctx: ReportContext, scheme: str, hidden: dict[str, str]) -> list[str]:
    """The profile heat-map and table of ``scheme``, without the ``hidden`` segments (a
    report for viewers: :func:`segflow.report._viewer.withheld_segments`)."""
    from segflow.segments import profile_segments

    project = ctx.project
    if ctx.stored:
        return _stored_profile_blocks(ctx, scheme, hidden)
    if "customer_features" not in project.store.tables():
        return []
    snapshot = project.store.raw.execute("SELECT max(snapshot_date) FROM customer_features").fetchone()[0]
    features = project.store.table("customer_features")
    features = features.filter(features.snapshot_date == snapshot).drop("snapshot_date")
    a = project.store.table("segment_assignments")
    a = a.filter((a.scheme == scheme) & (a.snapshot_date == snapshot))
    a = a.select("customer_id", "segment", segment_rank=a.segment_rank.fill_null(10_000))
    segs = [str(s) for s in a.select("segment").distinct().execute()["segment"]]
    if not segs:
        return []
    # rule-based segments keep their rule names; suggested names are for clusters only
    names = {s: s for s in segs} if ctx.is_rule_based(scheme) else None
    try:
        profile = profile_segments(features, a, names=names)
    except SegflowError as exc:
        return [note(f"No profile for {scheme}: {exc}")]
    return _profile_figure_blocks(shown_profile(profile, hidden), scheme, snapshot, ctx.currency)


def _stored_profile_blocks(ctx: ReportContext, scheme: str, hidden: dict[str, str]) -> list[str]:
    """The profile heat-map and the collapsed table of all features, from the aggregates."""
    from segflow.summaries import profile_table

    profile = profile_table(ctx.project.store, scheme)
    if profile is None:
        return []
    snapshot = ctx.project.store.raw.execute(
        "SELECT max(snapshot_date) FROM summary_profile_segments WHERE scheme = ?", [scheme]).fetchone()[0]
    return _profile_figure_blocks(shown_profile(profile, hidden), scheme, snapshot, ctx.currency)


def _profile_figure_blocks(profile, scheme: str, snapshot: dt.date, currency: str) -> list[str]:  # noqa: ANN001
    from segflow.features._registry import FEATURES, SHARE_UNITS, feature_label
    from segflow.viz._segments import profile_heatmap

    fig = profile_heatmap(profile, max_features=PROFILE_FEATURES, currency=currency,
                          title=f"{scheme_title(scheme)}: what sets each segment apart (the {PROFILE_FEATURES} most distinguishing features)")
    means = profile.means.copy()
    means.index = [str(i) for i in means.index]
    full = means.T.rename_axis("feature").reset_index()
    units = [FEATURES[f].unit if f in FEATURES else "" for f in full["feature"]]
    for col in means.index:
        full[col] = [pct(v) if u in SHARE_UNITS else money(v, currency) if u == "currency" else _number(v)
                     for v, u in zip(full[col], units, strict=True)]
    full["feature"] = [feature_label(f, currency) for f in full["feature"]]
    return [
        figure_html(fig, name=f"{scheme}-profile"),
        details(f"All {means.shape[1]} features: mean per segment ({snapshot})", table_html(full, right=tuple(means.index))),
    ]


def _number(value: float | None) -> str:
    """A feature mean with two decimals (``1,234.50``); empty for missing."""
    return "" if value is None or pd.isna(value) else f"{value:,.2f}"


# -- migration --------------------------------------------------------------------------
def migration_section(ctx: ReportContext) -> Section:
    section = Section(
        "migration",
        "Migration",
        "Who moved between segments from the previous snapshot to the latest. (new) = customers "
        "who were not yet in the base at the earlier date; (gone) = customers no longer in the base.",
    )
    project = ctx.project
    for scheme in ctx.schemes:
        dates = ctx.dates(scheme)
        if len(dates) < 2:
            continue
        matrix = ctx.transitions(scheme, dates[-2], dates[-1])
        s = matrix.summary()
        section.blocks.append(h3(f"{scheme_title(scheme)}: {dates[-2]} → {dates[-1]}", f"migration-{scheme}"))
        section.blocks.append(note(_score_basis(project, scheme)))
        section.blocks.append(note(movement_sentence(s, dates[-2])))
        section.blocks.append(figure_html(retitle(matrix.sankey(), scheme), name=f"{scheme}-sankey"))
        section.blocks.append(figure_html(retitle(matrix.figure(), scheme), name=f"{scheme}-transitions"))
        section.blocks.append(figure_html(retitle(matrix.net_flow_figure(), scheme), name=f"{scheme}-net-flow"))
        section.blocks.extend(_history_blocks(ctx, scheme, dates))
    return section


def movement_sentence(summary: dict, before: dt.date) -> str:
    """One sentence on a transition matrix's :meth:`summary`: stayers, moves up and down (only
    when the scheme orders its segments; otherwise moves to another segment), exits, entries.

    >>> movement_sentence({"customers_from": 200, "stay": 150, "up": 0, "down": 0, "lateral": 0,
    ...                    "move": 40, "gone": 10, "new": 5}, dt.date(2025, 1, 1))
    'Of 200 customers at 2025-01-01, 75.0 % stayed in their segment, 40 moved to another segment (this scheme does not rank its segments) and 10 left the base; 5 customers joined.'
    """
    s = summary
    base = s["customers_from"] or 1
    ranked = s["up"] + s["down"]
    other = s.get("lateral", 0) + s.get("move", 0)
    moves = []
    if ranked or not other:
        moves.append(f"{count(s['up'])} moved to a better one, {count(s['down'])} to a worse one")
    if other:
        what = "a segment of the same rank" if s.get("lateral", 0) and not s.get("move", 0) else "another segment"
        moves.append(f"{count(other)} moved to {what}"
                     + (" (this scheme does not rank its segments)" if not ranked and not s.get("lateral", 0) else ""))
    return (f"Of {count(s['customers_from'])} customers at {before}, {pct(s['stay'] / base)} stayed in "
            f"their segment, {', '.join(moves)} and {count(s['gone'])} left the base; "
            f"{count(s['new'])} customers joined.")


def _score_basis(project, scheme: str) -> str:  # noqa: ANN001
    """Which kind of scheme a migration view shows (relative or fixed cut-offs)."""
    from segflow.pipeline import resolve_schemes
    from segflow.segments import builtin_schemes, score_basis

    for candidate in [*resolve_schemes(project.settings), *builtin_schemes()]:
        if candidate.name == scheme:
            return score_basis(candidate)
    return "Scheme no longer in segflow.toml: its kind of cut-offs is unknown."


def _history_blocks(ctx: ReportContext, scheme: str, dates: list[dt.date]) -> list[str]:
    """Alluvial over the last snapshots and the segment-size forecast on dates."""
    blocks = []
    if len(dates) > 2:
        recent = ctx.pooled(scheme, dates[-ALLUVIAL_SNAPSHOTS:])
        blocks.append(figure_html(retitle(recent.alluvial(), scheme), name=f"{scheme}-alluvial"))
    forecast = report_forecast(ctx, scheme, dates)
    blocks.append(figure_html(forecast.figure(title=f"{scheme_title(scheme)}: expected customers per segment"),
                              name=f"{scheme}-forecast"))
    blocks.append(note(forecast.meta["definition"]))
    return blocks


def report_forecast(ctx: ReportContext, scheme: str, dates: list[dt.date]) -> Any:
    """The report's forecast of ``scheme``: the run's stored one (the aggregates), else
    :func:`segflow.migration.segment_forecast` with its defaults on the pooled transitions of
    every consecutive pair of ``dates`` (stored aggregates, else computed): the one definition
    the CLI and the API use."""
    from segflow.migration import segment_forecast
    from segflow.summaries._results import stored_forecast

    stored = ctx.stored_result("forecasts")
    forecast = stored_forecast(stored[1], scheme, dates[-1]) if stored is not None else None
    return forecast if forecast is not None else segment_forecast(ctx.pooled(scheme, dates))
