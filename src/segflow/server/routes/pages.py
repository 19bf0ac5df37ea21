"""Dashboard pages: each renders the same data as its JSON twin, with Plotly figures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jinja2
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from segflow.report._report import figure_html, table_html
from segflow.server import _views
from segflow.server.deps import ProjectDep

router = APIRouter(tags=["pages"])
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parents[1] / "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
)


def _page(project, title: str, blocks: list[str], json_url: str) -> HTMLResponse:  # noqa: ANN001
    html = _env.get_template("page.html.j2").render(
        title=title, project=project.settings.project.name, blocks=blocks, json_url=json_url,
        schemes=[s["scheme"] for s in _views.schemes(project)],
    )
    return HTMLResponse(html)


@router.get("/", response_class=HTMLResponse)
def index(project: ProjectDep) -> HTMLResponse:
    import pandas as pd

    frame = pd.DataFrame(_views.schemes(project))
    return _page(project, "Schemes", [table_html(frame) if not frame.empty else "<p>No runs yet.</p>"], "/api/v1/schemes")


@router.get("/segments/{scheme}", response_class=HTMLResponse)
def segments_page(project: ProjectDep, scheme: str, snapshot: dt.date | None = None) -> HTMLResponse:
    from segflow.viz import segment_size_value_bars

    frame, snapshot = _views.segment_sizes(project, scheme, snapshot)
    blocks = [
        figure_html(segment_size_value_bars(frame, title=f"{scheme} at {snapshot}")),
        table_html(frame, percent=("share", "revenue_share"), money=("revenue_12m",)),
    ]
    return _page(project, f"Segments: {scheme}", blocks, f"/api/v1/segments/{scheme}")


@router.get("/migration/{scheme}", response_class=HTMLResponse)
def migration_page(
    project: ProjectDep, scheme: str, from_date: dt.date | None = None, to_date: dt.date | None = None
) -> HTMLResponse:
    matrix = _views.transitions(project, scheme, from_date, to_date)
    blocks = [figure_html(matrix.sankey()), figure_html(matrix.figure())]
    return _page(
        project, f"Migration: {scheme}, {matrix.from_date} → {matrix.to_date}", blocks, f"/api/v1/migration/{scheme}"
    )


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(project: ProjectDep, customer_id: str) -> HTMLResponse:
    frame = _views.customer_history(project, customer_id)
    return _page(project, f"Customer {customer_id}", [table_html(frame)], f"/api/v1/customers/{customer_id}")


@router.get("/static/plotly.js")
def plotly_js() -> Response:
    """plotly.js from the installed plotly package: the dashboard works offline."""
    import plotly.offline

    return Response(plotly.offline.get_plotlyjs(), media_type="application/javascript")
