"""The self-contained HTML report: one file, Plotly's JavaScript inlined once, no external URLs.

The first screen is the executive summary (:mod:`segflow.report._summary`); then the detail:
overview, segments with change, migration, predicted value with CLV diagnostics, campaigns,
data quality. Sections are small functions reading results from the store through the
library (never recomputing raw data here).
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import pandas as pd

from segflow.errors import SegflowError
from segflow.report._context import ReportContext
from segflow.report._format import figure_html as _figure
from segflow.report._format import money, scheme_title
from segflow.report._format import table_html as _table
from segflow.report._sections import Section, details, migration_section, segments_section
from segflow.report._summary import executive_summary, summary_html
from segflow.report._viewer import campaign_figures, rule_text, shown_value, withheld_note

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from segflow.project import Project

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
)


def figure_html(fig: go.Figure) -> str:
    """A Plotly figure as an HTML fragment that relies on the inlined plotly.js; text from
    the data and the settings drawn as written (:func:`segflow.viz._core.literal_figure`)."""
    import plotly.io as pio

    from segflow.viz._core import literal_figure

    return pio.to_html(literal_figure(fig), full_html=False, include_plotlyjs=False, validate=False,
                       config={"displaylogo": False})


def table_html(frame: pd.DataFrame, *, percent: tuple[str, ...] = (), money: tuple[str, ...] = (), digits: int = 2) -> str:
    """A DataFrame as an HTML table (values and column headers escaped: headers can be
    segment names from the settings or the data): shares as percentages, money with two
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
        .format_index(escape="html", axis=1)
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
def overview_section(ctx: ReportContext) -> Section:
    project = ctx.project
    tot = ctx.totals
    dates = ctx.all_dates
    cur = project.settings.project.currency
    # (label, value, detail): the value short enough for one line of a card
    kpis = [
        ("Customers with purchases", f"{tot['customers']:,}", ""),
        ("Transactions", f"{tot['transactions']:,}", "all, anonymous ones included"),
        ("Net revenue, all time", money(tot["net_revenue"], cur),
         f"returns netted; {money(tot['anonymous_revenue'], cur)} of it from "
         f"{tot['anonymous_transactions']:,} lines without a customer id"),
        ("First purchase", str(tot["first"]), f"last purchase {tot['last']}"),
        ("Snapshots", f"{len(dates)}", f"{dates[0]} … {dates[-1]}" if dates else "none yet"),
    ]
    body = "".join(
        f'<div class="kpi"><span class="kl">{html.escape(k)}</span><b>{html.escape(v)}</b>'
        f'<span class="kd">{html.escape(d)}</span></div>' for k, v, d in kpis
    )
    schemes = ", ".join(s if scheme_title(s) == s else f"{scheme_title(s)} ({s})"
                        for s in project.schemes()) or "none"
    return Section(
        "overview",
        "Overview",
        "A snapshot date s uses transactions with ts < s only; its segment assignments belong to s.",
        [f'<div class="kpis">{body}</div>', f'<p class="lead">Segment schemes: {html.escape(schemes)}.</p>'],
    )


def quality_section(ctx: ReportContext) -> Section:
    section = Section(
        "quality",
        "Data quality",
        "Every input row is accepted, quarantined with a reason, or removed as an exact duplicate: "
        "rows read = accepted + quarantined + duplicates, per file.",
    )
    recon = ctx.reconciliation
    section.blocks.append(_h3("Reconciliation per file"))
    section.blocks.append(_table(recon) if not recon.empty else _note("No loads recorded."))
    from segflow.exports._pii_text import mask_personal_text
    from segflow.quality._audit import check_title
    from segflow.sources._rules import rule_title

    reasons = ctx.quarantine_reasons  # the file goes to every team: no address or number in clear
    reasons = reasons.assign(example=[mask_personal_text(x) for x in reasons["example"]])
    # for viewers, no example: it quotes a row's values (a customer id, an amount), which
    # the dashboard keeps from its viewers (/api/v1/quality drops it), and so do the checks'
    viewer = ctx.role == "viewer"
    if viewer:
        reasons = reasons.drop(columns=["example"])
    section.blocks.append(_h3("Quarantined rows by rule"))
    if reasons.empty:
        section.blocks.append(_note("No quarantined rows."))
    else:  # the rule in words; its id (for support) in the tooltip
        ids = [str(r) for r in reasons["rule"]]
        section.blocks.append(_table(reasons.assign(rule=[rule_title(r) for r in ids]), tips={"rule": ids}))
    checks = ctx.audit  # its examples quote ids (customer_id=...): masked as the reasons are
    if "examples" in checks.columns:
        checks = (checks.drop(columns=["examples"]) if viewer
                  else checks.assign(examples=[mask_personal_text(x) for x in checks["examples"]]))
    flagged = checks[checks["severity"] != "ok"]
    section.blocks.append(_h3("Audit checks"))
    section.blocks.append(
        _note(f"{len(checks) - len(flagged)} of {len(checks)} checks passed; the others are listed below "
              "(point at a rule or a check to see its id).")
    )
    if not flagged.empty:
        ids = [str(c) for c in flagged["check"]]
        section.blocks.append(_table(flagged.assign(check=[check_title(c) for c in ids]), percent=("share",),
                                     tips={"check": ids}, labels={"share": "Share affected", "total": "Checked"}))
    return section


def summary_section(ctx: ReportContext) -> Section:
    summary = executive_summary(ctx)
    return Section("summary", "Summary", "", [summary_html(summary, ctx.currency)])


def value_section(ctx: ReportContext) -> Section:
    from segflow.models._run_scores import CLV_ANNUAL_DISCOUNT_RATE, CLV_HORIZON_WEEKS
    from segflow.report._clv import HOLDOUT_WEEKS, clv_diagnostics

    project = ctx.project
    section = Section(
        "value",
        "Predicted value",
        f"BG/NBD + Gamma-Gamma fitted on all history before the latest snapshot (weekly unit): "
        f"P(active), expected purchases and predicted revenue over the next {CLV_HORIZON_WEEKS:.0f} weeks "
        f"({ctx.currency}), discounted at {CLV_ANNUAL_DISCOUNT_RATE:.0%} a year. See docs/models.md.",
    )
    snapshot = ctx.clv_date
    # what the latest run could not do (a skipped stage, customers left out of a fit)
    last = project.store.raw.execute(
        "SELECT message FROM runs WHERE command = 'run' AND status = 'ok' "
        "ORDER BY started_at DESC LIMIT 1"
    ).fetchone()
    run_notes = [n for n in (last[0] or "").splitlines() if n] if last else []
    if snapshot is None:
        section.blocks.append(_note("No CLV scores stored."))
    if run_notes:  # for the analyst: collapsed, the numbers below stand without them
        section.blocks.append(details(
            f"Notes from the latest run ({len(run_notes)})",
            '<ul class="caveats">' + "".join(f"<li>{html.escape(n)}</li>" for n in run_notes) + "</ul>"))
    if snapshot is None:
        return section
    for scheme in ctx.schemes:
        if snapshot not in ctx.dates(scheme):
            continue
        stored = ctx.value(scheme, snapshot)
        if stored is None:
            continue
        stored, hidden = shown_value(ctx, scheme, snapshot, stored)
        value = stored.drop(columns="segment_rank")
        section.blocks.append(_h3(f"{scheme_title(scheme)} at {snapshot}"))
        if hidden:
            section.blocks.append(withheld_note(hidden))
        section.blocks.append(_table(
            value, percent=("mean_p_alive", "clv_share"), money_cols=("clv", "mean_clv"), currency=ctx.currency,
            digits=0,  # expected purchases of a segment: whole purchases
        ))
    section.blocks.append(_h3("How far to trust the model", ))
    try:
        diag = clv_diagnostics(project.store, snapshot)
    except SegflowError as exc:
        section.blocks.append(_note(f"No diagnostics: {exc}"))
        return section
    section.blocks.append(_note(
        f"The model was refitted on history before {diag.calibration_end} and asked to predict the "
        f"{HOLDOUT_WEEKS} weeks up to {snapshot}; the charts compare its predictions with what happened."
    ))
    section.blocks.append('<ul class="caveats">' + "".join(
        f"<li>{html.escape(c)}</li>" for c in diag.caveats()) + "</ul>")
    for name, fig in diag.figures(ctx.currency).items():
        section.blocks.append(_figure(fig, name=f"clv-{name}"))
    return section


def campaigns_section(ctx: ReportContext) -> Section:
    from segflow.campaigns import campaign_reports
    from segflow.summaries import campaign_from_document, campaign_scheme
    from segflow.viz._campaigns import in_currency
    from segflow.viz._core import house_style

    project = ctx.project
    section = Section(
        "campaigns",
        "Campaigns",
        "Lift of each campaign with a control arm: purchase rate and revenue in the 30 days after "
        "exposure, treatment vs control, by segment before the campaign (Newcombe intervals for "
        "rates, Welch for revenue, Holm-adjusted p-values), and its migration lift. See docs/campaigns.md.",
    )
    schemes = project.schemes()
    stored = ctx.stored_result("campaigns")  # a report from a Spark warehouse: no exposures
    if not (stored and stored[1]["reports"]) and (not schemes or project.store.raw.execute(
            "SELECT count(*) FROM campaign_exposures").fetchone()[0] == 0):
        section.blocks.append(_note("No campaign exposures in the store."))
        return section
    scheme = campaign_scheme(schemes)
    if stored is not None and stored[1].get("scheme") == scheme:
        reports = [campaign_from_document(doc) for doc in stored[1]["reports"]]
    else:
        reports = campaign_reports(project.store, scheme)
    for report in reports:
        section.blocks.append(_h3(f"{report.campaign_id} by {scheme_title(scheme)} segment ({report.start:%Y-%m-%d} … {report.end:%Y-%m-%d})"))
        for note in report.notes:
            section.blocks.append(_note(note))
        for key, fig in campaign_figures(ctx, report).items():
            in_currency(fig, ctx.currency)  # money outcomes in the project's currency
            section.blocks.append(_figure(house_style(fig), name=f"campaign-{report.campaign_id}-{key}"))
    return section


SECTIONS: list[Callable[[ReportContext], Section]] = [
    summary_section,
    overview_section,
    segments_section,
    migration_section,
    value_section,
    campaigns_section,
    quality_section,
]


def build_sections(project: Project, *, role: str = "analyst") -> list[Section]:
    """Every section, in order (the executive summary first); ``role="viewer"`` withholds
    small cells' value figures (:mod:`segflow.report._viewer`)."""
    ctx = ReportContext(project, role=role)
    return [build(ctx) for build in SECTIONS]


def render_report(project: Project, sections: list[Section] | None = None, *,
                  source: str | None = None, role: str = "analyst") -> str:
    """The report as one HTML string; ``source`` names where its figures come from in the
    header (default: ``store <the DuckDB store's file>``); ``role``: who it is for
    (``viewer``: small cells' value figures withheld, the rule stated under the title;
    ``analyst``, the default: every figure)."""
    import plotly.offline

    from segflow import __version__

    min_customers = int(project.settings.server.min_cell_customers)
    viewers = role == "viewer" and min_customers > 1
    template = _TEMPLATES.get_template("report.html.j2")
    return template.render(
        title=f"segflow report: {project.settings.project.name}" + (" (for viewers)" if viewers else ""),
        version=__version__,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        source=source or f"store {project.settings.project.store}",
        rule=rule_text(min_customers) if viewers else "",
        sections=sections if sections is not None else build_sections(project, role=role),
        plotly_js=plotly.offline.get_plotlyjs(),
    )


def write_report(project: Project, path: str | Path, **kwargs: Any) -> Path:
    """Write the report to ``path`` (folders are created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(project, **kwargs), encoding="utf-8")
    return path
