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


#: Column headers of the dashboard's tables in words (beyond the report's,
#: :data:`segflow.report._format.LABELS`); the JSON and CSV twins keep the column names.
LABELS = {
    "change_customers": "Change in customers",
    "previous_snapshot": "Previous snapshot",
    "share": "Share",
    "share_lower": "Share, 95% interval from",
    "share_upper": "Share, 95% interval to",
    "from_segment": "From",
    "to_segment": "To",
    "revenue": "Revenue between the snapshots",
    "clv_moved": "Predicted value moved, next 52 weeks",
    "mean_clv": "Predicted value per customer",
    "first_snapshot": "First snapshot",
    "last_snapshot": "Last snapshot",
    "clv_total": "Predicted value, next 52 weeks",
    "clv_mean": "Predicted value per customer",
    "target_customers": "Target customers",
    "holdout_customers": "Hold-out customers",
    "revenue_12m": "Revenue, last 12 months",
}


def table(request: Request, frame: Any, *, percent: tuple[str, ...] = (), money: tuple[str, ...] = (),
          signed: tuple[str, ...] = (), digits: int = 2, labels: dict[str, str] | None = None,
          right: tuple[str, ...] = ()) -> str:
    """A table of a dashboard page as the report draws its tables
    (:func:`segflow.report._format.table_html`): headers in words, every value escaped,
    ``percent`` columns as ``12.3 %``, ``money`` columns with the project's currency
    (``845,099 GBP``, ``1.2 M GBP``, ``3.4 bn GBP``, ``1.0 tn GBP``), ``signed`` with +/-,
    ``right`` text columns holding numbers already formatted."""
    from segflow.report._format import table_html

    currency = request.app.state.replica.settings.project.currency
    return table_html(frame, percent=percent, money_cols=money, currency=currency, signed=signed,
                      digits=digits, labels={**LABELS, **(labels or {})}, right=right)


def one_snapshot(request: Request, title: str, what: str, date: object, schemes: list[str]) -> HTMLResponse:
    """The page of a migration or a forecast while a scheme has one snapshot: what it
    needs and when it comes, instead of an error page (the header links to both pages)."""
    from markupsafe import escape

    text = (f"<p id=\"empty\">Only one snapshot so far ({escape(str(date))}): {escape(what)} needs two. "
            "The next <code>segflow run</code> after the next period adds one.</p>")
    return render(request, title, [text], schemes=schemes)


def error_block(detail: str) -> str:
    """An error message on a page, escaped: one line as a paragraph; several lines (a rule
    error quoting the rule with a caret under the bad name) preformatted, so that the caret
    still points at it (in a paragraph the lines ran together)."""
    from markupsafe import escape

    if "\n" in detail:
        return f'<pre class="error" id="error">{escape(detail)}</pre>'
    return f'<p class="error" id="error">{escape(detail)}</p>'


def currency(request: Request) -> str:
    """The project's currency (``[project] currency``)."""
    return request.app.state.replica.settings.project.currency


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
