"""Human labels and units for the report: column names in words, money with the project's
currency, shares as percentages, changes with a sign, and HTML tables built from them."""

from __future__ import annotations

import html
import json
import math
import re
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    import plotly.graph_objects as go

#: Words for the column names used across the report; anything else is de-snake-cased.
LABELS = {
    "segment": "Segment",
    "segment_rank": "Rank",
    "customers": "Customers",
    "share": "Share of customers",
    "revenue_12m": "Revenue, last 12 months",
    "revenue_share": "Share of revenue",
    "clv": "Predicted value, next 52 weeks",
    "mean_clv": "Predicted value per customer",
    "clv_share": "Share of predicted value",
    "mean_p_alive": "Average P(active)",
    "expected_purchases": "Expected purchases, next 52 weeks",
    "source": "Source",
    "source_file": "File",
    "target_table": "Table",
    "rows_read": "Rows read",
    "rows_accepted": "Accepted",
    "rows_quarantined": "Quarantined",
    "rows_duplicate": "Duplicates",
    "reconciles": "Adds up",
    "status": "Status",
    "rule": "Rule",
    "rows": "Rows",
    "example": "Example reason",
    "action": "Suggested action",
    "goal": "Goal",
    "suggestion": "What to send",
}


def label(column: str) -> str:
    """The human label of a column name (``revenue_12m`` -> ``Revenue, last 12 months``)."""
    if column in LABELS:
        return LABELS[column]
    text = column.replace("__", " ").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


#: Titles of the built-in schemes; a project's own scheme is titled from its name.
SCHEME_TITLES = {
    "rfm": "RFM", "lifecycle": "Lifecycle", "value_tiers": "Value tiers",
    "browse_no_buy": "Browsing without buying", "product_breadth": "Product breadth",
}


def scheme_title(name: str) -> str:
    """A scheme's name in words for headings and chart titles (``value_tiers`` -> ``Value
    tiers``, ``rfm`` -> ``RFM``); the name itself stays what ``--scheme`` takes. A name that
    is not a lower-case identifier (``Clients fidèles``, ``a/b``, ``顧客``) is its own title."""
    if name in SCHEME_TITLES:
        return SCHEME_TITLES[name]
    return label(name) if re.fullmatch(r"[a-z][a-z0-9_]*", name) else name


def retitle(fig: go.Figure, scheme: str) -> go.Figure:
    """Replace a leading ``"<scheme>: "`` of a figure's title by the scheme's title (the
    migration results title their charts with the scheme's name)."""
    text = str(fig.layout.title.text or "")
    if text.startswith(f"{scheme}: "):
        fig.update_layout(title_text=f"{scheme_title(scheme)}: {text[len(scheme) + 2:]}")
    return fig


def money(value: float | None, currency: str, *, signed: bool = False) -> str:
    """``12,345 USD`` (no decimals); ``1.2 M USD`` from a million, ``3.4 bn USD`` from a
    billion (10^9), ``1.0 tn USD`` from a trillion (10^12) up (a customer worth 10^12 read
    "1,000,000.0 M GBP"); empty for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    sign = "+" if signed and value > 0 else ""
    for scale, unit in ((1e12, "tn"), (1e9, "bn"), (1e6, "M")):
        if abs(value) >= scale:
            return f"{sign}{value / scale:,.1f} {unit} {currency}"
    return f"{sign}{value:,.0f} {currency}"


def pct(value: float | None, *, signed: bool = False, digits: int = 1) -> str:
    """``12.3 %`` (``+1.2 %`` with ``signed``: a relative change; see :func:`points` for a
    change of a share)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    shown = round(value * 100, digits) + 0.0  # no "-0.0 %"
    return f"{shown:+.{digits}f} %" if signed else f"{shown:.{digits}f} %"


def points(value: float | None, *, digits: int = 1) -> str:
    """A change of a share in percentage points, signed: 0.0123 -> ``+1.2 pp``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    shown = round(value * 100, digits) + 0.0  # no "-0.0 pp"
    return f"{shown:+.{digits}f} pp"


def count(value: float | None, *, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:+,.0f}" if signed else f"{value:,.0f}"


def table_html(
    frame: pd.DataFrame,
    *,
    percent: tuple[str, ...] = (),
    money_cols: tuple[str, ...] = (),
    currency: str = "",
    signed: tuple[str, ...] = (),
    digits: int = 2,
    labels: dict[str, str] | None = None,
    css: str = "data",
    point_cols: tuple[str, ...] = (),
    tips: dict[str, list[str]] | None = None,
    right: tuple[str, ...] = (),
) -> str:
    """A DataFrame as an HTML table: human headers, values escaped, shares as %, money with
    the currency, numbers right-aligned, text left-aligned. ``signed`` columns show +/-;
    ``point_cols`` (changes of a share) show signed percentage points (``+1.2 pp``); ``tips``
    gives a column one tooltip per row (e.g. the id behind a description); ``right`` columns
    hold numbers already formatted as text (right-aligned like numbers)."""
    head = []
    numeric = []
    for col in frame.columns:
        is_num = col in right or (pd.api.types.is_numeric_dtype(frame[col])
                                  and not pd.api.types.is_bool_dtype(frame[col]))
        numeric.append(is_num)
        text = (labels or {}).get(col) or label(str(col))
        head.append(f'<th class="{"num" if is_num else "txt"}">{html.escape(text)}</th>')
    rows = []
    tips = tips or {}
    for i, values in enumerate(frame.itertuples(index=False)):
        cells = []
        for col, value, is_num in zip(frame.columns, values, numeric, strict=True):
            tip = f' title="{html.escape(str(tips[col][i]), quote=True)}"' if col in tips else ""
            cells.append(
                f'<td class="{"num" if is_num else "txt"}"{tip}>'
                f"{html.escape(_cell(col, value, percent, money_cols, currency, signed, digits, point_cols))}</td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="tablewrap"><table class="{css}"><thead><tr>{"".join(head)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _cell(col: Any, value: Any, percent: tuple, money_cols: tuple, currency: str, signed: tuple, digits: int,
          point_cols: tuple = ()) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    sign = col in signed
    if isinstance(value, bool):
        return "yes" if value else "no"
    if col in point_cols:
        return points(float(value))
    if col in percent:
        return pct(float(value), signed=sign)
    if col in money_cols:
        return money(float(value), currency, signed=sign)
    if isinstance(value, int) or (isinstance(value, float) and float(value).is_integer() and abs(value) >= 100):
        return count(float(value), signed=sign)
    if isinstance(value, float):
        return f"{value:+,.{digits}f}" if sign else f"{value:,.{digits}f}"
    if hasattr(value, "dtype") and pd.api.types.is_integer_dtype(getattr(value, "dtype", None)):
        return count(float(value), signed=sign)
    return str(value)


def figure_html(fig: go.Figure, *, name: str = "chart") -> str:
    """A Plotly figure as an HTML fragment for the report: its JSON in a data script and a
    placeholder of the figure's height; the page draws it with the plotly.js inlined once
    when it scrolls near the window (or before printing), so the first screen opens at once
    however many charts follow. Mode bar always shown, PNG download named after the chart."""
    import uuid

    import plotly.io as pio

    from segflow.viz._core import literal_figure

    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name).strip("-") or "chart"
    config = {
        "displaylogo": False,
        "responsive": True,
        "displayModeBar": True,
        "modeBarButtonsToRemove": ["lasso2d", "select2d"],
        "toImageButtonOptions": {"format": "png", "filename": safe, "scale": 2},
    }
    ident = f"chart-{safe}-{uuid.uuid4().hex[:8]}"
    height = int(fig.layout.height or 450)
    payload = pio.to_json(literal_figure(fig), validate=False).replace("</", "<\\/")
    conf = json.dumps(config).replace("</", "<\\/")
    return (
        f'<div class="chart"><div id="{ident}" class="plotly-lazy" style="height:{height}px" '
        f'data-config="{html.escape(conf, quote=True)}"></div>'
        f'<script type="application/json" id="{ident}-data">{payload}</script></div>'
    )
