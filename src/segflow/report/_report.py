"""The self-contained HTML report: one file, Plotly's JavaScript inlined, no external URLs.

Sections are built by small functions, each reading results from the store through the
library (never recomputing raw data here): overview, data quality, segments, migration.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import pandas as pd

from segflow.report._queries import (
    quarantine_reasons,
    reconciliation,
    revenue_totals,
    segment_sizes,
    value_by_segment,
)

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from segflow.project import Project

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
)


@dataclasses.dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    blocks: list[str] = dataclasses.field(default_factory=list)


def figure_html(fig: go.Figure) -> str:
    """A Plotly figure as an HTML fragment that relies on the inlined plotly.js."""
    return fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})


def table_html(frame: pd.DataFrame, *, percent: tuple[str, ...] = (), money: tuple[str, ...] = (), digits: int = 2) -> str:
    """A DataFrame as an HTML table (values escaped): shares as percentages, money with two
    decimals and thousands separators, numbers right-aligned and text left-aligned."""
    shown = frame.reset_index(drop=True)
    formats: dict[str, object] = {}
    numeric: list[str] = []
    for col in shown.columns:
        if pd.api.types.is_bool_dtype(shown[col]) or not pd.api.types.is_numeric_dtype(shown[col]):
            continue
        numeric.append(col)
        if col in percent:
            formats[col] = "{:.1%}"
        elif col in money:
            formats[col] = "{:,.2f}"
        elif pd.api.types.is_float_dtype(shown[col]):
            formats[col] = "{:,.%sf}".replace("%s", str(digits))
        else:
            formats[col] = "{:,}"
    styler = (
        shown.style.format(formats, na_rep="", escape="html")
        .hide(axis="index")
        .set_table_attributes('class="data"')
        .set_properties(subset=numeric, **{"text-align": "right"})
    )
    return styler.to_html()


def _h3(text: str) -> str:
    return f"<h3>{html.escape(text)}</h3>"


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


# -- sections ---------------------------------------------------------------------------
def overview_section(project: Project) -> Section:
    tot = revenue_totals(project.store)
    dates = project.snapshot_dates()
    cur = project.settings.project.currency
    kpis = [
        ("customers with purchases", f"{tot['customers']:,}"),
        ("transactions (all, incl. anonymous)", f"{tot['transactions']:,}"),
        (f"net revenue ({cur}), all lines incl. anonymous, returns netted",
         f"{tot['net_revenue']:,.0f}"),
        (f"of which anonymous: {tot['anonymous_transactions']:,} lines without customer id ({cur})",
         f"{tot['anonymous_revenue']:,.0f}"),
        ("first / last purchase", f"{tot['first']} / {tot['last']}"),
        ("snapshots", f"{len(dates)} ({dates[0]} … {dates[-1]})" if dates else "none"),
        ("schemes", ", ".join(project.schemes())),
    ]
    body = "".join(
        f'<div class="kpi">{html.escape(k)}<b>{html.escape(v)}</b></div>' for k, v in kpis
    )
    return Section(
        "overview",
        "Overview",
        "A snapshot date s uses transactions with ts < s only; its segment assignments belong to s.",
        [f'<div class="kpis">{body}</div>'],
    )


def quality_section(project: Project) -> Section:
    section = Section(
        "quality",
        "Data quality",
        "Every input row is accepted, quarantined with a reason, or removed as an exact duplicate: "
        "rows read = accepted + quarantined + duplicates, per file.",
    )
    recon = reconciliation(project.store)
    section.blocks.append(_h3("Reconciliation per file"))
    section.blocks.append(table_html(recon) if not recon.empty else _note("No loads recorded."))
    reasons = quarantine_reasons(project.store)
    section.blocks.append(_h3("Quarantined rows by rule"))
    section.blocks.append(table_html(reasons) if not reasons.empty else _note("No quarantined rows."))
    from segflow.quality import audit

    checks = audit(project.store).to_pandas()
    flagged = checks[checks["severity"] != "ok"]
    section.blocks.append(_h3("Audit checks"))
    section.blocks.append(
        _note(f"{len(checks) - len(flagged)} of {len(checks)} checks passed; the others are listed below.")
    )
    if not flagged.empty:
        section.blocks.append(table_html(flagged))
    return section


def segments_section(project: Project) -> Section:
    from segflow.viz import segment_size_value_bars

    section = Section(
        "segments",
        "Segments",
        "Size and 12-month net revenue of each segment at the latest snapshot. Revenue counts "
        "transactions of identified customers in the 365 days before the snapshot, returns "
        "netted; anonymous lines belong to no segment (they are in the overview's total).",
    )
    for scheme in project.schemes():
        dates = project.snapshot_dates(scheme)
        if not dates:
            continue
        sizes = segment_sizes(project.store, scheme, dates[-1])
        section.blocks.append(_h3(f"Scheme {scheme} at {dates[-1]}"))
        section.blocks.append(figure_html(segment_size_value_bars(sizes, title=f"{scheme}: size and value")))
        section.blocks.append(
            table_html(sizes, percent=("share", "revenue_share"), money=("revenue_12m",))
        )
        section.blocks.extend(_profile_blocks(project, scheme))
    return section


def _profile_blocks(project: Project, scheme: str) -> list[str]:
    from segflow.segments import profile_segments

    if "customer_features" not in project.store.tables():
        return []
    features = project.store.table("customer_features")
    snapshot = project.store.raw.execute("SELECT max(snapshot_date) FROM customer_features").fetchone()[0]
    a = project.store.table("segment_assignments")
    a = a.filter((a.scheme == scheme) & (a.snapshot_date == snapshot)).select("customer_id", "segment")
    profile = profile_segments(features.drop("snapshot_date"), a)
    frame = profile.to_pandas()
    return [_h3(f"Profile of {scheme}"), figure_html(profile.figure()), table_html(frame.head(40))]


def migration_section(project: Project) -> Section:
    section = Section(
        "migration",
        "Migration",
        "Who moved between segments from the previous snapshot to the latest. (new) = customers "
        "not yet in the base at the first date; (gone) = customers no longer in the base.",
    )
    for scheme in project.schemes():
        dates = project.snapshot_dates(scheme)
        if len(dates) < 2:
            continue
        matrix = project.transitions(scheme, dates[-2], dates[-1])
        section.blocks.append(_h3(f"Scheme {scheme}: {dates[-2]} → {dates[-1]}"))
        section.blocks.append(_note(_score_basis(project, scheme)))
        summary = matrix.summary()
        section.blocks.append(_note(", ".join(f"{k}: {_fmt(v)}" for k, v in summary.items())))
        section.blocks.append(figure_html(matrix.sankey()))
        section.blocks.append(figure_html(matrix.figure()))
        section.blocks.append(figure_html(matrix.net_flow_figure()))
        section.blocks.extend(_history_blocks(project, scheme, dates))
    return section


def _score_basis(project: Project, scheme: str) -> str:
    """Which kind of scheme a migration view shows (relative or fixed cut-offs)."""
    from segflow.pipeline import resolve_schemes
    from segflow.segments import builtin_schemes, score_basis

    for candidate in [*resolve_schemes(project.settings), *builtin_schemes()]:
        if candidate.name == scheme:
            return score_basis(candidate)
    return "Scheme no longer in segflow.toml: its kind of cut-offs is unknown."


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1 else f"{value:,.0f}"
    return str(value)


def _history_blocks(project: Project, scheme: str, dates: list[dt.date]) -> list[str]:
    """Alluvial over the last snapshots and a Markov forecast of the segment mix."""
    from segflow.migration import MarkovChain, pooled_transition_matrix
    from segflow.viz import forecast_chart

    assignments = project.store.table("segment_assignments")
    blocks = []
    if len(dates) > 2:
        recent = pooled_transition_matrix(assignments, scheme=scheme, start=dates[-6:][0], end=dates[-1])
        blocks.append(_h3(f"Alluvial over the last {len(dates[-6:])} snapshots"))
        blocks.append(figure_html(recent.alluvial()))
    pooled = pooled_transition_matrix(assignments, scheme=scheme, start=dates[max(0, len(dates) - 13)], end=dates[-1])
    chain = MarkovChain().fit(pooled)
    sizes = segment_sizes(project.store, scheme, dates[-1]).set_index("segment")["customers"]
    mix = sizes.reindex(chain.states_).fillna(0.0)
    forecast = chain.forecast(mix, 6)
    blocks.append(_h3(f"Markov forecast of the {scheme} mix, 6 periods ahead (pooled over the last 12 transitions)"))
    blocks.append(figure_html(forecast_chart(forecast, title=f"{scheme}: forecast segment mix")))
    return blocks


def value_section(project: Project) -> Section:
    from segflow.pipeline import CLV_ANNUAL_DISCOUNT_RATE, CLV_HORIZON_WEEKS, CLV_MODEL

    section = Section(
        "value",
        "Predicted value",
        f"BG/NBD + Gamma-Gamma fitted on all history before the latest snapshot (weekly unit): "
        f"P(alive), expected purchases and revenue CLV over the next {CLV_HORIZON_WEEKS:.0f} weeks, "
        f"discounted at {CLV_ANNUAL_DISCOUNT_RATE:.0%} a year. See docs/models.md.",
    )
    rows = project.store.raw.execute(
        "SELECT max(snapshot_date) FROM customer_scores WHERE model = ?", [CLV_MODEL]
    ).fetchone()
    # what the latest run could not do (a skipped stage, customers left out of a fit)
    last = project.store.raw.execute(
        "SELECT message FROM runs WHERE command = 'run' AND status = 'ok' "
        "ORDER BY started_at DESC LIMIT 1"
    ).fetchone()
    run_notes = [n for n in (last[0] or "").splitlines() if n] if last else []
    if rows[0] is None:
        section.blocks.append(_note("No CLV scores stored."))
    for note in run_notes:
        section.blocks.append(_note(f"Latest run: {note}"))
    if rows[0] is None:
        return section
    for scheme in project.schemes():
        if rows[0] not in project.snapshot_dates(scheme):
            continue
        value = value_by_segment(project.store, scheme, rows[0], CLV_MODEL)
        section.blocks.append(_h3(f"Scheme {scheme} at {rows[0]}"))
        section.blocks.append(
            table_html(value, percent=("mean_p_alive", "clv_share"), money=("clv", "mean_clv"))
        )
    return section


def campaigns_section(project: Project) -> Section:
    from segflow.campaigns import campaign_reports

    section = Section(
        "campaigns",
        "Campaigns",
        "Lift of each campaign with a control arm: purchase rate and revenue in the 30 days after "
        "exposure, treatment vs control, by segment before the campaign (Newcombe intervals for "
        "rates, Welch for revenue, Holm-adjusted p-values), and its migration lift. See docs/campaigns.md.",
    )
    schemes = project.schemes()
    if project.store.raw.execute("SELECT count(*) FROM campaign_exposures").fetchone()[0] == 0 or not schemes:
        section.blocks.append(_note("No campaign exposures in the store."))
        return section
    scheme = "lifecycle" if "lifecycle" in schemes else schemes[0]
    for report in campaign_reports(project.store, scheme):
        section.blocks.append(_h3(f"{report.campaign_id} by {scheme} segment ({report.start:%Y-%m-%d} … {report.end:%Y-%m-%d})"))
        for note in report.notes:
            section.blocks.append(_note(note))
        for fig in report.figures().values():
            section.blocks.append(figure_html(fig))
    return section


SECTIONS: list[Callable[[Project], Section]] = [
    overview_section,
    quality_section,
    segments_section,
    migration_section,
    value_section,
    campaigns_section,
]


def build_sections(project: Project) -> list[Section]:
    return [build(project) for build in SECTIONS]


def render_report(project: Project, sections: list[Section] | None = None) -> str:
    """The report as one HTML string."""
    import plotly.offline

    from segflow import __version__

    template = _TEMPLATES.get_template("report.html.j2")
    return template.render(
        title=f"segflow report: {project.settings.project.name}",
        version=__version__,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        store=project.settings.project.store,
        sections=sections if sections is not None else build_sections(project),
        plotly_js=plotly.offline.get_plotlyjs(),
    )


def write_report(project: Project, path: str | Path, **kwargs: Any) -> Path:
    """Write the report to ``path`` (folders are created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(project, **kwargs), encoding="utf-8")
    return path
