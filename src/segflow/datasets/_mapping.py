"""How to ingest the demo files: ``[[sources]]`` settings and a complete ``segflow.toml``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Literal

from segflow.config import SourceSettings
from segflow.datasets._generate import TRANSACTION_DATE_FORMATS
from segflow.datasets._spec import GENDER_WORDS

ISO_FORMATS = ["%Y-%m-%d %H:%M:%S"]

#: (source name, canonical table, file stem, column mapping canonical = file column)
_SOURCES: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    (
        "crm",
        "customers",
        "customers",
        {
            "customer_id": "customer_id",
            "created_at": "created_at",
            "email": "email",
            "phone": "phone",
            "age_band": "age_band",
            "gender": "gender",
            "income_band": "income_band",
            "region": "region",
            "city": "city",
            "signup_channel": "signup_channel",
        },
    ),
    (
        "orders",
        "transactions",
        "transactions",
        {
            "transaction_id": "order_id",
            "customer_id": "customer_id",
            "ts": "order_date",
            "amount": "amount",
            "quantity": "quantity",
            "unit_price": "unit_price",
            "category": "category",
            "channel": "channel",
            "promo_code": "promo_code",
            "product_id": "product_id",
        },
    ),
    (
        "web",
        "events",
        "events",
        {
            "customer_id": "customer_id",
            "ts": "ts",
            "event_type": "event_type",
            "item": "item",
            "category": "category",
            "session_id": "session_id",
        },
    ),
    (
        "campaigns",
        "campaign_exposures",
        "campaign_exposures",
        {
            "campaign_id": "campaign_id",
            "customer_id": "customer_id",
            "ts": "ts",
            "arm": "arm",
            "exposure_type": "exposure_type",
        },
    ),
    (
        "survey",
        "survey_responses",
        "survey_responses",
        {"customer_id": "customer_id", "ts": "ts", "question": "question", "answer": "answer"},
    ),
)


def _join(data_dir: str | Path, name: str) -> str:
    base = str(data_dir).replace("\\", "/").rstrip("/")
    return f"{base}/{name}" if base else name


def demo_sources(
    data_dir: str | Path = "data",
    *,
    file_format: Literal["csv", "parquet"] = "csv",
    max_date: dt.date | None = None,
) -> list[SourceSettings]:
    """The ``[[sources]]`` that ingest the demo files written by :func:`generate_demo`.

    Parameters
    ----------
    data_dir : str or Path, default "data"
        Folder of the demo files, as written in ``segflow.toml`` (relative to the project
        folder, or absolute).
    file_format : {"csv", "parquet"}, default "csv"
        Which files to read. The CSV files exercise text dates in mixed formats; the Parquet
        files are typed and faster to ingest (same rows, without the CSV-only date defects).
    max_date : date, optional
        The export date: timestamps on or after it are quarantined as ``future_date``. Pass
        the generated data's ``end`` (``DemoDataset.end``) so the injected future dates are
        caught even when they lie before today.

    Returns
    -------
    list of SourceSettings
        One source per CSV file: ``crm`` (customers, gender codes mapped to words),
        ``orders`` (transactions; mixed date formats; ``R...`` order ids are returns),
        ``web`` (events), ``campaigns`` (campaign exposures) and ``survey``.
    """
    out = []
    for name, table, stem, columns in _SOURCES:
        extra: dict = {}
        if table == "transactions":
            extra = {"date_formats": list(TRANSACTION_DATE_FORMATS), "credit_note_prefix": "R"}
        else:
            extra = {"date_formats": list(ISO_FORMATS)}
        if table == "customers":
            extra["value_maps"] = {"gender": dict(GENDER_WORDS)}
        out.append(
            SourceSettings(
                name=name, table=table, path=_join(data_dir, f"{stem}.{file_format}"),
                format=file_format, max_date=max_date,
                columns=dict(columns), **extra,
            )
        )
    return out


_HEADER = """\
# segflow project file for the demo data (written by segflow.datasets.demo_project_toml).
# Paths are relative to this folder. See docs/demo-data.md for what the files hold.

[project]
name = "segflow demo shop"
store = "segflow.duckdb"        # the DuckDB store: canonical tables, assignments, history
currency = "GBP"

[periods]
# A snapshot at the start of each calendar month; a snapshot date s uses data with ts < s only.
granularity = "month"

[rfm]
# Frequency and monetary over the whole history before each snapshot (no window_days);
# R, F and M scored 1..5 by quantile.
bins = 5
"""

_COMMENTS = {
    "customers": "# Customers (CRM export). Gender codes M/F/X become male/female/other.",
    "transactions": (
        "# Orders. order_date mixes two formats (see date_formats); order ids starting with R\n"
        "# are returns (negative quantity and amount), kept as negative lines."
    ),
    "events": "# Web events: visits, product views, cart adds, purchases (consenting customers).",
    "campaign_exposures": "# Campaign sends, opens and clicks, with a random control arm.",
    "survey_responses": "# Survey answers: lifestyle and price sensitivity.",
}

_SCHEMES = """
# Segment schemes: assignments are stored per snapshot under each scheme's name.
[[schemes]]
name = "rfm"
kind = "rfm"

[[schemes]]
name = "lifecycle"
kind = "lifecycle"

[[schemes]]
name = "value_tiers"
kind = "value_tiers"

[[schemes]]
name = "browse_no_buy"
kind = "browse_no_buy"

# Product breadth: distinct products bought so far (built in as "product_breadth").
[[schemes]]
name = "product_breadth"
kind = "rules"
ordered = true
default = "No product data"
rules = [
  { segment = "Many products (5+)", when = "products_total >= 5" },
  { segment = "Few products (2-4)", when = "products_total >= 2" },
  { segment = "Single product", when = "products_total = 1" },
]

# Psychographic example: the survey question price_sensitivity and promo use.
[[schemes]]
name = "price_vs_quality"
kind = "rules"
default = "Not surveyed"
rules = [
  { segment = "Price-sensitive", when = "price_sensitivity = 'high'" },
  { segment = "Price-sensitive", when = "price_sensitivity = 'medium' and promo_share >= 0.5" },
  { segment = "Quality-seeking", when = "price_sensitivity = 'low'" },
  { segment = "Balanced", when = "price_sensitivity is not null" },
]
"""


def _toml_value(value: object) -> str:
    # JSON strings and lists of strings are valid TOML basic strings and arrays.
    return json.dumps(value, ensure_ascii=False)


def demo_project_toml(
    data_dir: str | Path = "data",
    *,
    file_format: Literal["csv", "parquet"] = "csv",
    max_date: dt.date | None = None,
) -> str:
    """A complete, commented ``segflow.toml`` for the demo data in ``data_dir``.

    ``file_format`` chooses the CSV (default) or the Parquet files and ``max_date`` sets the
    export date of every source, as in :func:`demo_sources`.

    It holds the project, monthly periods, RFM settings, the sources of
    :func:`demo_sources` and the ``rfm``, ``lifecycle`` and ``value_tiers`` schemes; it parses
    with :meth:`segflow.config.Settings.load`.
    """
    parts = [_HEADER]
    for src in demo_sources(data_dir, file_format=file_format, max_date=max_date):
        parts.append("\n" + _COMMENTS[src.table])
        parts.append("[[sources]]")
        parts.append(f"name = {_toml_value(src.name)}")
        parts.append(f"table = {_toml_value(src.table)}")
        parts.append(f"path = {_toml_value(src.path)}")
        parts.append(f"format = {_toml_value(src.format)}")
        parts.append(f"date_formats = {_toml_value(src.date_formats)}")
        if src.max_date:
            parts.append(f"max_date = {src.max_date.isoformat()}  # the export date: later rows are future_date")
        if src.credit_note_prefix:
            parts.append(f"credit_note_prefix = {_toml_value(src.credit_note_prefix)}")
        parts.append(f"[sources.columns]  # canonical column = column in {Path(src.path).name}")
        parts += [f"{k} = {_toml_value(v)}" for k, v in src.columns.items()]
        for column, vmap in src.value_maps.items():
            parts.append(f"[sources.value_maps.{column}]")
            parts += [f"{k} = {_toml_value(v)}" for k, v in vmap.items()]
    parts.append(_SCHEMES)
    return "\n".join(parts)
