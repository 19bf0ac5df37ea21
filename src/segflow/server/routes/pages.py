"""Dashboard pages: each renders the same data as its JSON twin (linked at the bottom, with
a CSV download of its table), with Plotly figures. Roles as in the API."""

from __future__ import annotations

import datetime as dt
import json
import numbers
from typing import Any
from urllib.parse import urlencode

import pandas as pd
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import escape

from segflow._disclosure import (
    REVENUE_12M_DAYS,
    min_customers,
    scheme_known_rows,
    withhold_small_cells,
)
from segflow.exports._pseudonym import pseudonymise_values
from segflow.server import _audit, _views
from segflow.server._auth import Admin, Analyst, Viewer, audit
from segflow.server._day import Day
from segflow.server._pseudonyms import audited_id, pseudonymise_frame, resolve, server_key
from segflow.server._security import protect
from segflow.server.deps import GenerationDep, ProjectDep
from segflow.server.routes._render import currency, figure, one_snapshot, part, render, table
from segflow.server.routes.insights import profile_blocks, value_blocks

router = APIRouter(tags=["pages"])


def _names(project, gen) -> list[str]:  # noqa: ANN001
    return [s["scheme"] for s in _views.schemes(project, gen)]


def _picker(name: str, label: str, dates: list[dt.date], chosen: dt.date) -> str:
    options = "".join(
        f'<option value="{d}"{" selected" if d == chosen else ""}>{d}</option>' for d in dates
    )
    return f'<label>{escape(label)}<br><select name="{name}" id="{name}">{options}</select></label>'


def _customer_link(customer_id: object) -> str:
    """A link to a customer's page: the id percent-encoded in the path, escaped as text."""
    c = str(customer_id)
    return f'<a href="/customers/{escape(part(c))}">{escape(c)}</a>'


#: Stored scores in money (the project's currency) and as probabilities (percent); others
#: are counts (expected purchases) shown with three decimals.
_MONEY_SCORES = frozenset({"clv", "expected_spend"})


def _scores_shown(scores: pd.DataFrame, currency: str) -> pd.DataFrame:
    """The customer's stored scores with each value in its unit: CLV and spend in the
    currency, probabilities (``p_alive``, ``p_no_purchase``, ``churn_probability``, the
    next-segment ``p_...``) as percentages, others with three decimals."""
    from segflow.report._format import money, pct

    def shown(score: str, value: object) -> str:
        if value is None or pd.isna(value):
            return ""
        if score in _MONEY_SCORES:
            return money(float(value), currency)
        if score.startswith("p_") or "probability" in score:
            return pct(float(value))
        return f"{float(value):,.3f}" if isinstance(value, numbers.Real) else str(value)

    out = scores.copy()
    out["value"] = [shown(str(s), v) for s, v in zip(out["score"], out["value"], strict=True)]
    return out


def _feature_value(value: object) -> str:
    """A feature's value as text: thousands separators, at most two decimals, dates as
    dates, missing as empty."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        return f"{float(value):,.0f}" if float(value).is_integer() else f"{float(value):,.2f}"
    return str(value.date()) if isinstance(value, pd.Timestamp) and value == value.normalize() else str(value)


def timeline_figure(spells: pd.DataFrame, dates: dict[str, list[dt.date]],
                    order: dict[str, list[str]]) -> Any:
    """A customer's segment history: per scheme (a row), one bar per spell from its first
    snapshot to the next snapshot of the scheme after its last (the period the segment
    held; a spell at the latest snapshot lasts one median step), coloured by the segment's
    place in the scheme (``order``, best first), the name inside the bar when it fits at
    the charts' smallest font (else on hover only).

    Before, a spell of one snapshot was one day wide with its name squeezed to an
    unreadable size, and one segment got a different colour in each bar."""
    import plotly.graph_objects as go

    from segflow.viz._core import MIN_FONT_PX, PALETTE, house_style

    fig = go.Figure()
    for r in spells.itertuples():
        days = dates.get(r.scheme) or [r.to_snapshot]
        later = [d for d in days if d > r.to_snapshot]
        steps = sorted((b - a).days for a, b in zip(days, days[1:], strict=False)) or [1]
        end = later[0] if later else r.to_snapshot + dt.timedelta(days=steps[len(steps) // 2])
        ranks = order.get(r.scheme, [])
        colour = PALETTE[ranks.index(r.segment) % len(PALETTE)] if r.segment in ranks else "#999999"
        start = pd.Timestamp(r.from_snapshot)
        fig.add_bar(y=[r.scheme], x=[(pd.Timestamp(end) - start).days * 86_400_000], base=[start.isoformat()],
                    orientation="h", name=str(r.segment), text=[str(r.segment)], textposition="inside",
                    insidetextanchor="middle", marker_color=colour, showlegend=False,
                    hovertemplate=f"{r.scheme}: {r.segment}<br>{r.from_snapshot} – {r.to_snapshot}<extra></extra>")
    fig.update_layout(barmode="overlay", xaxis={"type": "date", "title": "snapshot"},
                      yaxis={"type": "category", "autorange": "reversed"},
                      uniformtext={"minsize": MIN_FONT_PX, "mode": "hide"},
                      height=140 + 50 * spells["scheme"].nunique(), margin={"t": 20})
    return house_style(fig)


def _linked_table(frame: pd.DataFrame) -> str:
    """``frame`` as an HTML table with every header and cell escaped (segment names, regions
    and ids come from the settings and the data) and ``customer_id`` as links."""
    shown = frame.map(lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v))
                      else str(escape(v)))
    if "customer_id" in frame.columns:
        shown["customer_id"] = [_customer_link(c) for c in frame["customer_id"]]
    from segflow.report._format import label

    shown.columns = [str(escape(label(str(c)))) for c in frame.columns]  # headers in words
    return shown.to_html(index=False, escape=False, classes="data", border=0)


def _form(fields: list[str], action: str) -> str:
    return (f'<form class="picker" method="get" action="{escape(action)}">{"".join(fields)}'
            '<button type="submit" id="show">show</button></form>')


@router.get("/", response_class=HTMLResponse)
def index(request: Request, project: ProjectDep, gen: GenerationDep, who: Viewer) -> HTMLResponse:
    """Overview: schemes and, per scheme, the headline changes since the previous snapshot."""
    schemes = _views.schemes(project, gen)
    if not schemes:
        return render(request, "Overview", ["<p>No runs yet: `segflow ingest` then `segflow run`.</p>"])
    blocks = [table(request, pd.DataFrame(schemes))]
    for s in schemes:
        frame, snapshot = _views.segment_sizes(project, gen, s["scheme"], None)
        if "change_customers" in frame:
            top = frame.reindex(frame["change_customers"].abs().sort_values(ascending=False).index).head(3)
            moves = ", ".join(f"{r.segment} {r.change_customers:+,}" for r in top.itertuples())
            blocks.append(f'<p><a href="/segments/{escape(part(s["scheme"]))}">{escape(s["scheme"])}</a> at '
                          f"{snapshot} (vs {frame['previous_snapshot'].iloc[0]}): {escape(moves)}</p>")
    return render(request, "Overview", blocks, json_url="/api/v1/schemes", schemes=[s["scheme"] for s in schemes])


@router.get("/segments/{scheme:path}", response_class=HTMLResponse)
def segments_page(request: Request, project: ProjectDep, gen: GenerationDep, who: Viewer, scheme: str,
                  snapshot: Day | None = None) -> HTMLResponse:
    """Segments of a scheme at any snapshot (picker), with change since the previous one."""
    from segflow.viz import segment_size_value_bars

    dates = _views.snapshots(project, gen, scheme)
    frame, snapshot = _views.segment_sizes(project, gen, scheme, snapshot)
    frame = withhold_small_cells(frame, who.role, min_customers(project), complement="revenue_12m",
                                 known=scheme_known_rows(project, scheme, frame, REVENUE_12M_DAYS))
    query = urlencode({"snapshot": snapshot})
    path = part(scheme)
    blocks = [
        _form([_picker("snapshot", "snapshot", dates, snapshot)], f"/segments/{path}"),
        figure(request, segment_size_value_bars(frame.drop(columns=["previous_snapshot"], errors="ignore"),
                                                title=f"{scheme} at {snapshot}")),
        table(request, frame, percent=("share", "revenue_share"), money=("revenue_12m",),
              signed=("change_customers",)),
        *profile_blocks(request, project, gen, scheme, snapshot, who.role),
        f'<p><a href="/forecasts/{escape(path)}">forecast of {escape(scheme)}</a></p>',
    ]
    from segflow.report._queries import missing_events_note

    kind = next((s.kind for s in project.settings.schemes if s.name == scheme), "")
    note = None if gen.warehouse else missing_events_note(project.store, kind)
    if note:
        blocks.insert(1, f'<p class="error" id="note">{escape(note)}</p>')
    return render(request, f"Segments: {scheme}", blocks, json_url=f"/api/v1/segments/{path}?{query}",
                  csv_url=f"/api/v1/segments/{path}?{query}&format=csv", schemes=_names(project, gen))


# before /migration/{scheme:path}: that path would take 'rfm/customers' as a scheme name
@router.get("/migration/{scheme:path}/customers", response_class=HTMLResponse)
def migration_customers_page(request: Request, project: ProjectDep, gen: GenerationDep, who: Analyst, scheme: str,
                             from_segment: str, to_segment: str, from_date: Day | None = None,
                             to_date: Day | None = None) -> HTMLResponse:
    """The customers of one cell (analysts; audited); the dates default as the matrix's."""
    frame, from_date, to_date = _views.cell_customers(project, gen, scheme, from_date, to_date, from_segment, to_segment)
    audit(request, who, "read_customers", {"rows": len(frame)})
    q = urlencode({"from_date": from_date, "to_date": to_date, "from_segment": from_segment, "to_segment": to_segment})
    table = _linked_table(pseudonymise_frame(frame.head(1000), server_key(request.app.state)))
    return render(request, f"{scheme}: {from_segment} → {to_segment} ({len(frame):,} customers)",
                  [table], json_url=f"/api/v1/migration/{part(scheme)}/customers?{q}",
                  csv_url=f"/api/v1/migration/{part(scheme)}/customers?{q}&format=csv", schemes=_names(project, gen))


@router.get("/migration/{scheme:path}", response_class=HTMLResponse)
def migration_page(request: Request, project: ProjectDep, gen: GenerationDep, who: Viewer, scheme: str,
                   from_date: Day | None = None, to_date: Day | None = None) -> HTMLResponse:
    """Migration between any two snapshots: Sankey, heat-map, revenue moved; analysts click a
    heat-map cell (or a table row) for its customers."""
    dates = _views.snapshots(project, gen, scheme)
    if len(dates) < 2 and from_date is None and to_date is None:
        return one_snapshot(request, f"Migration: {scheme}", "a migration", dates[0], _names(project, gen))
    matrix = _views.transitions(project, gen, scheme, from_date, to_date)
    stored = matrix.to_pandas()
    cells = withhold_small_cells(stored, who.role, min_customers(project), complement="revenue",
                                 known=scheme_known_rows(project, scheme, stored,
                                                           (matrix.to_date - matrix.from_date).days))
    analyst = who.role in ("analyst", "admin")
    base = {"from_date": matrix.from_date, "to_date": matrix.to_date}
    path = part(scheme)
    if analyst:
        cells["customers_link"] = [
            f"/migration/{path}/customers?"
            + urlencode({**base, "from_segment": r.from_segment, "to_segment": r.to_segment})
            for r in cells.itertuples()
        ]
    scheme_links = " ".join(f'<a href="/migration/{escape(part(s))}">{escape(s)}</a>' for s in _names(project, gen))
    blocks = [
        f"<p>scheme: {scheme_links}</p>",
        _form([_picker("from_date", "from", dates, matrix.from_date), _picker("to_date", "to", dates, matrix.to_date)],
              f"/migration/{path}"),
        figure(request, matrix.sankey()),
        figure(request, matrix.figure()),
    ]
    if analyst:
        # in a script element: "</" would end it (a scheme name from the settings)
        url = json.dumps(f"/migration/{path}/customers?"
                         + urlencode(base)).replace("</", "<\\/")
        blocks.append(
            f'<script nonce="{request.state.csp_nonce}">'
            # the categories are drawn escaped (segflow.viz._core.literal_figure): decode them
            "function segflowText(s) { return String(s).replace(/&(lt|gt|amp);/g,"
            " function (m, e) { return {lt: '<', gt: '>', amp: '&'}[e]; }); }"
            "document.querySelectorAll('.plotly-graph-div').forEach(function (div) {"
            " div.on('plotly_click', function (ev) { var p = ev.points && ev.points[0];"
            " if (!p || p.data.type !== 'heatmap') return;"
            f" window.location = {url} + '&from_segment=' + encodeURIComponent(segflowText(p.y)) +"
            " '&to_segment=' + encodeURIComponent(segflowText(p.x)); }); });</script>"
            "<p>Click a heat-map cell to list its customers.</p>"
        )
    shown = cells.drop(columns=["customers_link"], errors="ignore")
    cells_table = table(request, shown, percent=("share", "share_lower", "share_upper"), money=("revenue",))
    if analyst:
        items = "".join(
            f'<li><a href="{escape(u)}">{escape(r.from_segment)} → {escape(r.to_segment)}</a> ({int(r.customers):,})</li>'
            for u, r in zip(cells["customers_link"], cells.itertuples(), strict=True) if r.customers
        )
        blocks.append(f"<details><summary>customers of each cell</summary><ul>{items}</ul></details>")
    blocks.append(cells_table)
    blocks += value_blocks(request, project, gen, scheme, matrix.from_date, matrix.to_date, who.role)
    q = urlencode(base)
    return render(request, f"Migration: {scheme}, {matrix.from_date} → {matrix.to_date}", blocks,
                  json_url=f"/api/v1/migration/{path}?{q}", csv_url=f"/api/v1/migration/{path}?{q}&format=csv",
                  schemes=_names(project, gen))


@router.get("/customers", response_class=HTMLResponse)
def customers_page(request: Request, project: ProjectDep, gen: GenerationDep, who: Analyst,
                   q: str | None = None) -> HTMLResponse:
    """Customer search by id, e-mail or name (analysts; audited; personal data masked)."""
    form = ('<form class="picker" method="get" action="/customers"><label>id, e-mail or name<br>'
            f'<input name="q" id="q" value="{escape(q or "")}"></label><button type="submit" id="search">search</button></form>')
    blocks = [form]
    if q:
        found = resolve(project, gen, server_key(request.app.state), q.strip())  # a key finds its customer
        frame, total = _views.search_customers(project, found, None, None, None, 100, 0, gen)
        audit(request, who, "read_customers", {"rows": len(frame), "q": q, "pii": "mask"})
        blocks.append(f"<p>{total:,} match(es)</p>"
                      + _linked_table(protect(frame, "mask", server_key(request.app.state))))
    query = urlencode({"q": q or ""})
    return render(request, "Customers", blocks, json_url=f"/api/v1/customers?{query}",
                  csv_url=f"/api/v1/customers?{query}&format=csv", schemes=_names(project, gen))


@router.get("/customers/{customer_id:path}", response_class=HTMLResponse)
def customer_page(request: Request, project: ProjectDep, gen: GenerationDep, who: Analyst,
                  customer_id: str) -> HTMLResponse:
    """A customer: attributes (personal data masked), segment timeline, scores, features. An
    id that is an e-mail or phone number is shown, and linked, as its pseudonymous key."""
    key, asked = server_key(request.app.state), customer_id
    customer_id = resolve(project, gen, key, customer_id)
    detail = _views.customer_detail(project, customer_id, gen)
    shown = audited_id(asked, key)  # as asked (a key stays one), an address as its key
    audit(request, who, "read_customer", {"customer_id": shown, "pii": "mask"}, path=f"/customers/{shown}")
    for name in ("scores", "features"):
        detail[name] = pseudonymise_frame(detail[name], key)
    shown_id = str(pseudonymise_values([customer_id], key)[0])
    blocks = []
    if not detail["attributes"].empty:
        blocks += ["<h2>Attributes</h2>", table(request, protect(detail["attributes"], "mask", key))]
    if not detail["history"].empty:
        spells = _views.timeline(detail["history"])
        schemes = list(dict.fromkeys(spells["scheme"]))
        dates = {s: _views.snapshots(project, gen, s) for s in schemes}
        order = {s: list(_views.segment_sizes(project, gen, s, None)[0]["segment"]) for s in schemes}
        blocks += ["<h2>Segment history</h2>", figure(request, timeline_figure(spells, dates, order)),
                   table(request, spells)]
    if not detail["scores"].empty:
        blocks += ["<h2>Scores</h2>", table(request, _scores_shown(detail["scores"], currency(request)),
                                            right=("value",))]
    if not detail["features"].empty:
        from segflow.features._registry import feature_label

        features = detail["features"].T.reset_index()
        features.columns = ["feature", "value"]
        features["feature"] = [feature_label(str(f), currency(request)) for f in features["feature"]]
        features["value"] = [_feature_value(v) for v in features["value"]]
        blocks += ["<h2>Features at the latest snapshot</h2>", table(request, features, right=("value",))]
    return render(request, f"Customer {shown_id}", blocks, json_url=f"/api/v1/customers/{part(shown_id)}",
                  schemes=_names(project, gen))


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, project: ProjectDep, gen: GenerationDep, who: Admin) -> HTMLResponse:
    """The latest 500 audit events (admins)."""
    events = _audit.read_events(request.app.state.replica.work_dir, project.store.raw, limit=500)
    frame = pd.DataFrame(events, columns=["at", "token_id", "role", "action", "resource", "detail", "client"])
    return render(request, "Audit log", [table(request, frame)], json_url="/api/v1/audit", schemes=_names(project, gen))
