"""Campaigns (lift by segment), forecasts (Markov chain), audiences (segment or rule, hold-out
flag, CSV/Parquet download), segment profiles and CLV moved: pages and their JSON twins.

Roles: campaigns, forecasts, profiles and value moved are aggregates (viewers); audiences
are customer-level (analysts; every build and download is in the audit log).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import pandas as pd
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import escape

from segflow._disclosure import (
    PROFILE_TEXT,
    min_customers,
    scheme_known_rows,
    shown_effect,
    withhold_small_arms,
    withhold_small_cells,
)
from segflow.server import _insights, _views
from segflow.server._auth import Analyst, Viewer, audit
from segflow.server._day import Day
from segflow.server._pseudonyms import pseudonymise_frame, server_key
from segflow.server._security import attachment, csv_bytes
from segflow.server.deps import GenerationDep, ProjectDep
from segflow.server.routes._render import (
    currency,
    error_block,
    figure,
    one_snapshot,
    part,
    render,
    table,
)
from segflow.server.routes.api import CLEAR, Format, Limit, Offset, Pii, table_response
from segflow.server.schemas import RecordsPublic

api = APIRouter(prefix="/api/v1", tags=["insights"])
pages = APIRouter(tags=["pages"])

Periods = Annotated[int, Query(ge=1, le=36, description="Snapshots ahead.")]
Holdout = Annotated[float, Query(ge=0, lt=1, description="Share of the audience held out (control), 0-1.")]
Seed = Annotated[str, Query(max_length=100, description="Seed of the hold-out draw (same seed, same flags).")]
AudienceFormat = Annotated[Literal["json", "csv", "parquet"], Query(description="json, csv or parquet download.")]


def _names(project: Any, gen: Any) -> list[str]:
    return [s["scheme"] for s in _views.schemes(project, gen)]


# -- campaigns -------------------------------------------------------------------------------
@api.get("/campaigns", response_model=RecordsPublic)
def campaigns(project: ProjectDep, gen: GenerationDep, who: Viewer, q: str | None = None,
              limit: Limit = 100, offset: Offset = 0, format: Format = "json") -> Any:
    """Campaigns with exposures (filter ``q``: campaign id contains), customers per arm."""
    frame = _insights.campaigns(project, gen)
    if q:
        frame = frame[frame["campaign_id"].str.contains(q, case=False, regex=False)]
    return table_response(frame, fmt=format, filename="campaigns", meta={"q": q}, limit=limit, offset=offset)


@api.get("/campaigns/{campaign_id:path}", response_model=RecordsPublic)
def campaign(project: ProjectDep, gen: GenerationDep, who: Viewer, campaign_id: str, scheme: str | None = None,
             limit: Limit = 1000, offset: Offset = 0, format: Format = "json") -> Any:
    """Lift of the purchase rate and revenue by segment of ``scheme`` (default lifecycle),
    treatment against control, with intervals and multiple-testing correction; a viewer gets
    no rate, lift or test of a segment with an arm below ``[server] min_cell_customers``
    (``withheld`` says so; :func:`segflow._disclosure.withhold_small_arms`)."""
    report, scheme = _insights.campaign_lift(project, gen, campaign_id, scheme)
    frame = withhold_small_arms(report.to_pandas(), who.role, min_customers(project),
                                correction=report.effect.correction, level=report.effect.level)
    return table_response(frame, fmt=format, filename=f"campaign-{campaign_id}",
                          meta={"campaign_id": campaign_id, "scheme": scheme, "window_days": report.window_days,
                                "start": report.start, "end": report.end, "notes": report.notes},
                          limit=limit, offset=offset)


@pages.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request, project: ProjectDep, gen: GenerationDep, who: Viewer) -> HTMLResponse:
    """Campaigns with exposures; each links to its lift by segment."""
    frame = _insights.campaigns(project, gen)
    shown = frame.copy()
    # ids come from the data: percent-encoded in the path ("/", "?", "#" and "%" included)
    shown["campaign_id"] = [f'<a href="/campaigns/{escape(part(c))}">{escape(c)}</a>' for c in frame["campaign_id"]]
    blocks = [shown.to_html(index=False, escape=False, classes="data", border=0) if len(frame)
              else "<p>No campaign exposures stored.</p>"]
    return render(request, "Campaigns", blocks, json_url="/api/v1/campaigns", csv_url="/api/v1/campaigns?format=csv",
                  schemes=_names(project, gen))


@pages.get("/campaigns/{campaign_id:path}", response_class=HTMLResponse)
def campaign_page(request: Request, project: ProjectDep, gen: GenerationDep, who: Viewer, campaign_id: str,
                  scheme: str | None = None) -> HTMLResponse:
    """A campaign's lift by segment (forest plots) and its table."""
    report, scheme = _insights.campaign_lift(project, gen, campaign_id, scheme)
    options = "".join(f'<option value="{escape(s)}"{" selected" if s == scheme else ""}>{escape(s)}</option>'
                      for s in _names(project, gen))
    blocks = [f'<form class="picker" method="get"><label>segments of<br><select name="scheme" id="scheme">{options}'
              '</select></label><button type="submit" id="show">show</button></form>',
              f"<p>{report.start:%Y-%m-%d} to {report.end:%Y-%m-%d}; outcome window {report.window_days} days "
              "after each exposure; lift = treatment minus control.</p>"]
    from segflow.viz._campaigns import in_currency

    frame = withhold_small_arms(report.to_pandas(), who.role, min_customers(project),
                                correction=report.effect.correction, level=report.effect.level)
    blocks += [figure(request, in_currency(fig, currency(request)))
               for fig in _lift_figures(report.effect, frame)]
    blocks.append(table(request, frame, digits=3))
    blocks += [f'<p class="note">{escape(n)}</p>' for n in report.notes]
    q = urlencode({"scheme": scheme})
    path = part(campaign_id)
    return render(request, f"Campaign {campaign_id}: lift by {scheme}", blocks,
                  json_url=f"/api/v1/campaigns/{path}?{q}", csv_url=f"/api/v1/campaigns/{path}?{q}&format=csv",
                  schemes=_names(project, gen))


def _lift_figures(effect: Any, shown: pd.DataFrame) -> list[Any]:
    """The forest plots of each outcome drawn from ``shown``, the read-out as the caller may
    read it (:func:`segflow._disclosure.shown_effect`)."""
    drawn = shown_effect(effect, shown)
    return [drawn.figure(o) for o in effect.outcomes]


# -- forecasts -------------------------------------------------------------------------------
Start = Annotated[str | None, Query(max_length=20, description="First snapshot of the pairs pooled (YYYY-MM-DD), "
                                    "or 'first' for every pair (default: a year before the end).")]
End = Annotated[Day | None, Query(description="Last snapshot pooled; the forecast starts from its sizes "
                                                  "(default: the latest).")]
HalfLife = Annotated[float | None, Query(gt=0, description="Weight recent pairs more: half-life in periods "
                                                            "(default: unweighted).")]
ArrivalsQ = Annotated[str, Query(max_length=40, description="New customers per period: 'mean' of the pooled "
                                                            "pairs, 'none', or a number from 0 to 10^12.")]


@api.get("/forecasts/{scheme:path}", response_model=RecordsPublic)
def forecasts(project: ProjectDep, gen: GenerationDep, who: Viewer, scheme: str, periods: Periods = 6,
              segment: str | None = None, start: Start = None, end: End = None, half_life: HalfLife = None,
              arrivals: ArrivalsQ = "mean", limit: Limit = 1000, offset: Offset = 0,
              format: Format = "json") -> Any:
    """Expected customers per segment ``periods`` snapshots ahead: the segment-size forecast
    of docs/migration.md (the CLI's, the report's); ``meta`` states its definition."""
    frame, meta = _insights.forecast(project, gen, scheme, periods, start=start, end=end, half_life=half_life,
                                     arrivals=arrivals)
    if segment:
        frame = frame[frame["segment"] == segment]
    return table_response(frame, fmt=format, filename=f"forecast-{scheme}", meta={**meta, "segment": segment},
                          limit=limit, offset=offset)


@pages.get("/forecasts/{scheme:path}", response_class=HTMLResponse)
def forecast_page(request: Request, project: ProjectDep, gen: GenerationDep, who: Viewer, scheme: str,
                  periods: Periods = 6, start: Start = None, end: End = None, half_life: HalfLife = None,
                  arrivals: ArrivalsQ = "mean") -> HTMLResponse:
    """Segment-size forecast of a scheme (lines per segment), with its definition."""
    dates = _views.snapshots(project, gen, scheme)
    if len(dates) < 2:
        return one_snapshot(request, f"Forecast: {scheme}", "a forecast", dates[0], _names(project, gen))
    frame, meta = _insights.forecast(project, gen, scheme, periods, start=start, end=end, half_life=half_life,
                                     arrivals=arrivals)
    order = list(_views.segment_sizes(project, gen, scheme, None)[0]["segment"])
    fig = forecast_figure(frame, order, f"{scheme}: expected customers per segment")
    links = " ".join(f'<a href="/forecasts/{escape(part(s))}">{escape(s)}</a>' for s in _names(project, gen))
    blocks = [f"<p>scheme: {links}</p>",
              f'<form class="picker" method="get"><label>periods ahead<br><input type="number" min="1" max="36" '
              f'name="periods" id="periods" value="{periods}"></label><button type="submit" id="show">show</button></form>',
              f'<p class="note">{escape(meta["definition"])}</p>',
              figure(request, fig), _forecast_table(request, frame, order)]
    options = {"start": start, "end": end, "half_life": half_life,
               "arrivals": None if arrivals == "mean" else arrivals}
    q = urlencode({"periods": periods, **{k: v for k, v in options.items() if v is not None}})
    return render(request, f"Forecast: {scheme}", blocks, json_url=f"/api/v1/forecasts/{part(scheme)}?{q}",
                  csv_url=f"/api/v1/forecasts/{part(scheme)}?{q}&format=csv", schemes=_names(project, gen))


def forecast_figure(frame: pd.DataFrame, order: list[str], title: str) -> Any:
    """Expected customers per segment and snapshot: one line per segment in the scheme's
    order (best first) and its own colour of :data:`segflow.viz._core.PALETTE` (Plotly's
    default ten colours repeated from the eleventh segment on), axes titled in words."""
    import plotly.graph_objects as go

    from segflow.viz._core import PALETTE, house_style

    segments = [s for s in order if s in set(frame["segment"])]
    segments += [s for s in dict.fromkeys(frame["segment"]) if s not in segments]
    fig = go.Figure()
    for i, segment in enumerate(segments):
        rows = frame[frame["segment"] == segment]
        fig.add_scatter(x=rows["snapshot_estimate"], y=rows["expected_customers"], mode="lines+markers",
                        name=str(segment), line={"color": PALETTE[i % len(PALETTE)]},
                        hovertemplate="%{x|%Y-%m-%d}: %{y:,.0f} customers<extra>%{fullData.name}</extra>")
    fig.update_layout(title=title, xaxis_title="snapshot (estimated)", yaxis_title="customers (expected)",
                      yaxis={"rangemode": "tozero", "tickformat": ",d"}, height=480)
    return house_style(fig)


def _forecast_table(request: Request, frame: pd.DataFrame, order: list[str]) -> str:
    wide = frame.pivot(index="snapshot_estimate", columns="segment", values="expected_customers")
    columns = [s for s in order if s in wide.columns] + [s for s in wide.columns if s not in order]
    wide = wide[columns].round(1).reset_index()
    # the segments' own names as headers (not turned into words as column names are)
    return table(request, wide, digits=1, labels={"snapshot_estimate": "Snapshot (estimated)",
                                                  **{str(s): str(s) for s in columns}})


def _profile_labels(columns: Any, money_unit: str) -> dict[str, str]:
    """Headers of the profile table: ``mean__monetary`` -> ``Mean: Revenue, all time (GBP)``."""
    from segflow.features._registry import feature_label

    out = {"suggested_name": "Suggested name", "distinguishing": "Distinguishing features",
           "size": "Customers", "value": "Value (mean spend x customers)"}
    for col in map(str, columns):
        stat, sep, feature = col.partition("__")
        if sep and stat in ("mean", "median"):
            out[col] = f"{stat.capitalize()}: {feature_label(feature, money_unit)}"
    return out


# -- profiles and value moved ----------------------------------------------------------------
@api.get("/profiles/{scheme:path}", response_model=RecordsPublic)
def profiles(project: ProjectDep, gen: GenerationDep, who: Viewer, scheme: str, snapshot: Day | None = None,
             limit: Limit = 100, offset: Offset = 0, format: Format = "json") -> Any:
    """Segment profiles at a snapshot with stored features (the latest); a viewer gets no
    value, means, medians, suggested name or distinguishing features of a segment below
    ``[server] min_cell_customers`` (nor of the next smallest when it is the only one)."""
    frame, snapshot = _profiles_or_404(project, gen, scheme, snapshot)
    frame = withhold_small_cells(frame, who.role, min_customers(project), count="size", text=PROFILE_TEXT,
                                 complement="value", known=scheme_known_rows(project, scheme, frame))
    return table_response(frame, fmt=format, filename=f"profiles-{scheme}-{snapshot}",
                          meta={"scheme": scheme, "snapshot": snapshot}, limit=limit, offset=offset)


def _profiles_or_404(project: Any, gen: Any, scheme: str, snapshot: dt.date | None) -> tuple[pd.DataFrame, dt.date]:
    from fastapi import HTTPException

    dates = _views.snapshots(project, gen, scheme)
    snapshot = snapshot or dates[-1]
    if snapshot not in dates:  # before the cache: one entry per date asked for otherwise
        raise HTTPException(status_code=404, detail=f"scheme {scheme!r} has no snapshot {snapshot}")
    frame = _insights.profiles(project, gen, scheme, snapshot)
    if frame is None:
        raise HTTPException(status_code=404, detail=f"no stored features at {snapshot}: the store keeps the "
                            "features of the latest snapshot only")
    return frame, snapshot


@api.get("/migration/{scheme:path}/value", response_model=RecordsPublic)
def value_moved(project: ProjectDep, gen: GenerationDep, who: Viewer, scheme: str, from_date: Day | None = None,
                to_date: Day | None = None, limit: Limit = 1000, offset: Offset = 0, format: Format = "json") -> Any:
    """Customers and the sum of their latest 52-week CLV per transition cell; a viewer gets
    no CLV of a cell below ``[server] min_cell_customers``."""
    matrix = _views.transitions(project, gen, scheme, from_date, to_date)
    frame = _insights.value_moved(project, gen, scheme, matrix.from_date, matrix.to_date)
    frame = withhold_small_cells(frame, who.role, min_customers(project))
    return table_response(frame, fmt=format, filename=f"clv-moved-{scheme}-{matrix.from_date}-{matrix.to_date}",
                          meta={"scheme": scheme, "from_date": matrix.from_date, "to_date": matrix.to_date},
                          limit=limit, offset=offset)


def profile_blocks(request: Request, project: Any, gen: Any, scheme: str, snapshot: dt.date,
                   role: str) -> list[str]:
    """The profiles section of the segments page (empty note when features are not stored),
    as the caller's ``role`` may read it (small segments' figures withheld from viewers)."""
    frame = _insights.profiles(project, gen, scheme, snapshot)
    if frame is not None:
        frame = withhold_small_cells(frame, role, min_customers(project), count="size", text=PROFILE_TEXT,
                                     complement="value", known=scheme_known_rows(project, scheme, frame))
    if frame is None:
        return ["<h2>Profiles</h2><p>Profiles need the features of the snapshot; the store keeps those of the "
                "latest snapshot only.</p>"]
    q = urlencode({"snapshot": snapshot})
    return ["<h2 id=\"profiles\">Profiles</h2>",
            table(request, frame, percent=("share", "revenue_share"), money=("value",),
                  labels=_profile_labels(frame.columns, currency(request))),
            f'<p class="links"><a href="/api/v1/profiles/{escape(part(scheme))}?{q}">profiles as JSON</a>'
            f'<a href="/api/v1/profiles/{escape(part(scheme))}?{q}&format=csv">download profiles CSV</a></p>']


def value_blocks(request: Request, project: Any, gen: Any, scheme: str, from_date: dt.date,
                 to_date: dt.date, role: str) -> list[str]:
    """The CLV-moved section of the migration page, as the caller's ``role`` may read it."""
    stored = _insights.value_moved(project, gen, scheme, from_date, to_date)
    frame = withhold_small_cells(stored, role, min_customers(project))
    if stored["clv_moved"].isna().all():
        return ["<h2>CLV moved</h2><p>No CLV scores stored (`segflow run` writes them).</p>"]
    q = urlencode({"from_date": from_date, "to_date": to_date})
    return ['<h2 id="clv-moved">CLV moved</h2><p>Sum of the customers\' latest 52-week CLV per move.</p>',
            table(request, frame.head(30), money=("clv_moved", "mean_clv")),
            f'<p class="links"><a href="/api/v1/migration/{escape(part(scheme))}/value?{q}">CLV moved as JSON</a>'
            f'<a href="/api/v1/migration/{escape(part(scheme))}/value?{q}&format=csv">download CLV moved CSV</a></p>']


# -- audiences -------------------------------------------------------------------------------
def _audience_download(frame: pd.DataFrame, fmt: str, name: str) -> Response:
    if fmt == "csv":
        return Response(csv_bytes(frame), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": attachment(f"{name}.csv")})
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    return Response(buffer.getvalue(), media_type="application/vnd.apache.parquet",
                    headers={"content-disposition": attachment(f"{name}.parquet")})


@api.get("/audiences", response_model=RecordsPublic)
def audiences(request: Request, project: ProjectDep, gen: GenerationDep, who: Analyst, scheme: str | None = None,
              segment: str | None = None, snapshot: Day | None = None, rule: str | None = None,
              holdout: Holdout = 0.1, seed: Seed = "segflow", limit: Limit = 100, offset: Offset = 0,
              format: AudienceFormat = "json", pii: Pii = "default") -> Any:
    """An audience from a segment (``scheme`` + ``segment`` [+ ``snapshot``]) or a ``rule``
    over the latest features: its customers with 12-month revenue, CLV and a deterministic
    hold-out flag; size and value in ``meta``; CSV or Parquet download (analysts; audited).
    No personal data is included: an id that is an e-mail or phone number is its pseudonymous
    key unless ``pii=include`` (the hold-out is drawn on the id)."""
    frame, summary = _insights.audience(project, gen, scheme=scheme, segment=segment, snapshot=snapshot,
                                        rule=rule, holdout=holdout, seed=seed)
    how = "full" if pii in CLEAR else "mask"
    if how != "full":
        frame = pseudonymise_frame(frame, server_key(request.app.state))
    audit(request, who, "export" if format != "json" else "read_customers",
          {"audience": {k: str(v) for k, v in summary.items()}, "rows": len(frame), "format": format,
           "pii": how})
    if format != "json":
        return _audience_download(frame, format, "audience")
    shown = _views.page(frame, limit, offset)
    data = _views.records(shown)
    return RecordsPublic(data=data, count=len(data), total=len(frame),
                         meta={**json.loads(json.dumps(summary, default=str)), "limit": limit, "offset": offset})


@pages.get("/audiences", response_class=HTMLResponse)
def audiences_page(request: Request, project: ProjectDep, gen: GenerationDep, who: Analyst, scheme: str | None = None,
                   segment: str | None = None, rule: str | None = None, holdout: Holdout = 0.1,
                   seed: Seed = "segflow") -> HTMLResponse:
    """Build an audience from a segment or a rule; see its size and value; download it. A
    request the audience refuses (a rule error) shows the form again, with what was typed,
    above the message (preformatted: a rule error's caret points at the bad name)."""
    names = _names(project, gen)
    chosen = scheme or (names[0] if names else "")
    segs = []
    if chosen:
        sizes, _ = _views.segment_sizes(project, gen, chosen, None)
        segs = list(sizes["segment"])
    scheme_opts = "".join(f'<option value="{escape(s)}"{" selected" if s == chosen else ""}>{escape(s)}</option>'
                          for s in names)
    seg_opts = '<option value="">(a rule instead)</option>' + "".join(
        f'<option value="{escape(s)}"{" selected" if s == segment else ""}>{escape(s)}</option>' for s in segs)
    form = ('<form class="picker" method="get" action="/audiences">'
            f'<label>scheme<br><select name="scheme" id="scheme">{scheme_opts}</select></label>'
            f'<label>segment (latest snapshot)<br><select name="segment" id="segment">{seg_opts}</select></label>'
            f'<label>or a rule<br><input name="rule" id="rule" size="36" placeholder="monetary_12m >= 500 and recency_days <= 90" '
            f'value="{escape(rule or "")}"></label>'
            f'<label>hold-out share<br><input name="holdout" id="holdout" type="number" step="0.01" min="0" max="0.99" '
            f'value="{holdout}"></label><label>seed<br><input name="seed" id="seed" value="{escape(seed)}" size="10"></label>'
            '<button type="submit" id="build">build</button></form>')
    blocks = [form]
    query = None
    if segment or rule:
        params = {"rule": rule} if rule else {"scheme": chosen, "segment": segment}
        try:
            frame, summary = _insights.audience(project, gen, scheme=params.get("scheme"),
                                                segment=params.get("segment"), snapshot=None,
                                                rule=params.get("rule"), holdout=holdout, seed=seed)
        except HTTPException as exc:
            return render(request, "Audiences", [form, error_block(str(exc.detail))], schemes=names,
                          status_code=exc.status_code)
        audit(request, who, "read_customers", {"audience": {k: str(v) for k, v in summary.items()}, "rows": len(frame)})
        query = urlencode({**params, "holdout": holdout, "seed": seed})
        stats = pd.DataFrame([{k: summary[k] for k in ("customers", "target_customers", "holdout_customers",
                                                       "revenue_12m", "clv_total", "clv_mean")}])
        blocks += [f'<h2 id="audience-size">{summary["customers"]:,} customers</h2>',
                   table(request, stats, money=("revenue_12m", "clv_total", "clv_mean")),
                   f'<p class="links"><a id="audience-csv" href="/api/v1/audiences?{escape(query)}&format=csv">download CSV</a>'
                   f'<a id="audience-parquet" href="/api/v1/audiences?{escape(query)}&format=parquet">download Parquet</a></p>',
                   "<h2>First customers</h2>",
                   table(request, pseudonymise_frame(frame.head(50), server_key(request.app.state)),
                         money=("revenue_12m", "clv"))]
    return render(request, "Audiences", blocks, json_url=f"/api/v1/audiences?{query}" if query else None,
                  csv_url=f"/api/v1/audiences?{query}&format=csv" if query else None, schemes=names)
