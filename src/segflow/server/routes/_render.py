"""Rendering helpers of the dashboard pages: the template, figures carrying the CSP nonce."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse


def part(text: object) -> str:
    """``text`` as one path segment of a link: every character but letters, digits and
    ``_.-~`` percent-encoded (UTF-8), so that a scheme named ``a/b``, ``x#y?z``, ``100%`` or
    ``顧客`` reaches its page. The routes take the decoded text, ``/`` included (paths
    ``{scheme:path}``). Escape the result for HTML as any attribute value."""
    return quote(str(text), safe="")


env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parents[1] / "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
)
env.filters["part"] = part


def figure(request: Request, fig: Any) -> str:
    """A Plotly figure as HTML whose inline script carries this response's CSP nonce."""
    from segflow.report._report import figure_html

    nonce = request.state.csp_nonce
    html = figure_html(fig)
    for tag in ('<script type="text/javascript">', "<script>"):
        html = html.replace(tag, f'<script nonce="{nonce}">')
    return html


def render(request: Request, title: str, blocks: list[str], *, json_url: str | None = None,
           csv_url: str | None = None, schemes: list[str] | None = None, status_code: int = 200) -> HTMLResponse:
    """A dashboard page: header with navigation and the caller's role, then ``blocks``
    (trusted HTML made here: tables are escaped by pandas, figures by Plotly)."""
    who = getattr(request.state, "principal", None)
    html = env.get_template("page.html.j2").render(
        title=title,
        project=request.app.state.replica.settings.project.name,
        blocks=blocks,
        json_url=json_url,
        csv_url=csv_url,
        schemes=schemes or [],
        who=who,
        csrf=who.session.csrf if who is not None and who.session is not None else None,
        nonce=request.state.csp_nonce,
    )
    return HTMLResponse(html, status_code=status_code)
