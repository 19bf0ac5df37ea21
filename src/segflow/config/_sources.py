"""Settings of one data source: where it is, its format, and how its columns map."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CanonicalTable = Literal[
    "customers", "transactions", "events", "campaign_exposures", "survey_responses"
]
#: Missing-value tokens of common exports (R and pandas ``NA``, spreadsheets' ``N/A`` and
#: Excel's ``#N/A`` error value, SQL dumps' ``NULL`` and MySQL's / PostgreSQL COPY's ``\N``,
#: Python's ``None``, a dash).
DEFAULT_NULL_VALUES = ("NA", "N/A", "#N/A", "null", "NULL", "\\N", "None", "-")

#: Labels of a totals line that spreadsheet and report exports end with (compared
#: lower-cased after trimming, a trailing ``:`` ignored): English and a few common others.
DEFAULT_TOTALS_LABELS = ("Total", "Totals", "Grand total", "Subtotal", "Sub-total", "Sum",
                         "Summe", "Gesamt", "Gesamtsumme", "Total général", "Totaal")

SourceFormat = Literal["csv", "parquet", "jsonl", "xlsx", "duckdb", "postgres"]


class SourceSettings(BaseModel):
    """One ``[[sources]]`` entry of ``segflow.toml``.

    See ``docs/data.md`` for the mapping syntax, every validation rule and the return rules.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Name of the source, used in the quarantine and the reconciliation.")
    table: CanonicalTable = Field(description="Canonical table the source is mapped into.")
    path: str | None = Field(
        default=None,
        description=(
            "File, glob or folder (relative to the project folder); several files append. "
            "For format 'duckdb' the database file. Not used for 'postgres'."
        ),
    )
    format: SourceFormat | None = Field(
        default=None, description="File format; inferred from the file extension when omitted."
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Canonical column = source column. A value starting with '=' is an expression over "
            "source columns (e.g. '= quantity * unit_price'); a quoted literal is a constant."
        ),
    )
    null_values: list[str] = Field(
        default_factory=lambda: list(DEFAULT_NULL_VALUES),
        description=(
            "Text values that mean 'missing', in every column, compared after trimming "
            "(case-sensitive); an empty value is always missing. A customer id written as one "
            "of them is an anonymous line. Set [] to keep them as text."
        ),
    )
    totals_labels: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TOTALS_LABELS),
        description=(
            "Labels of a totals line (Total, Grand total, ...), compared case-insensitively "
            "after trimming, a trailing ':' ignored: a row whose id column or first column "
            "holds one is quarantined as totals_row. Set [] when one is a real value."
        ),
    )
    date_formats: list[str] = Field(
        default_factory=list,
        description="strftime formats accepted for date columns, tried in order; empty = ISO 8601.",
    )
    date_order: Literal["dayfirst", "monthfirst"] | None = Field(
        default=None,
        description=(
            "How to read a value that parses under two formats with different results "
            "(e.g. 03/04/2024 with both %d/%m/%Y and %m/%d/%Y). Unset: quarantined as "
            "ambiguous_date."
        ),
    )
    max_date: dt.date | None = Field(
        default=None,
        description=(
            "Timestamps on or after this date are quarantined as future_date; default: any "
            "timestamp later than the time of the load."
        ),
    )
    timezone: str = Field(
        default="UTC", description="Time zone of naive timestamps in the source; stored as UTC."
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Reader options: delimiter (or 'whitespace': runs of spaces and tabs), quote, "
            "escape, encoding, decimal, thousands, header (false: no header line) and names "
            "(the columns of a file without one) (CSV); sheet (xlsx); table, query, order_by "
            "(duckdb, postgres); connection (postgres URL)."
        ),
    )
    value_maps: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Per canonical column, a map of source values to canonical values.",
    )
    unmapped_values: Literal["null", "quarantine", "keep"] = Field(
        default="null",
        description=(
            "A value of a column with a value map that is neither a key nor a target of the map: "
            "'null' keeps the row with the value emptied and records it in ingest_flags "
            "(invalid_value); 'quarantine' rejects the row; 'keep' keeps the value as is."
        ),
    )
    rollup: bool = Field(
        default=False,
        description="Rows are order lines: lines sharing a transaction_id roll up to one order.",
    )
    credit_note_prefix: str | None = Field(
        default=None,
        description="Transaction ids starting with this prefix (e.g. 'C') are credit notes (returns).",
    )
    exclude: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            "Source column = values whose rows are excluded (non-product lines such as postage); "
            "a value containing '%' is a LIKE pattern. Excluded rows go to the quarantine."
        ),
    )
    anonymous: Literal["keep", "quarantine"] = Field(
        default="keep",
        description=(
            "Transactions without a customer id: kept with customer_id NULL (counted as "
            "anonymous) or quarantined."
        ),
    )
    formulas: Literal["flag", "quarantine"] = Field(
        default="flag",
        description=(
            "Text values that look like spreadsheet formulas ('=', '+', '@'): kept and reported "
            "(flag), or quarantined."
        ),
    )
    check_customers: bool = Field(
        default=True,
        description=(
            "Quarantine rows whose customer id is not in the customers table "
            "(only when that table has rows)."
        ),
    )
    zero_amount: Literal["keep", "quarantine"] = Field(
        default="keep",
        description=(
            "Rows with an amount of exactly 0 (free items, fully discounted orders): kept as "
            "purchase occasions, or quarantined as zero_amount."
        ),
    )
    duplicate_key: list[str] = Field(
        default_factory=list,
        description=(
            "Canonical columns that identify a row for de-duplication, e.g. ['customer_id', "
            "'ts', 'product_id']: rows equal on them are duplicates. Empty: rows are duplicates "
            "when all values are equal, except transactions without a transaction id, whose "
            "identical lines are kept (lines of one order, one per customer and timestamp)."
        ),
    )
    redelivery: Literal["keep", "replace"] = Field(
        default="keep",
        description=(
            "A file loaded before, delivered again under its name with other content: 'keep' "
            "adds its new rows and corrects changed ones, and the rows of the earlier delivery "
            "it no longer holds stay in the store (counted in rows_stale, with a warning); "
            "'replace' removes every row the earlier delivery stored (and its quarantine) and "
            "loads the new content in their place."
        ),
    )
    binary_files: Literal["reject", "fail"] = Field(
        default="reject",
        description=(
            "A file of a folder or glob source that is not a file of its format: binary data "
            "where text was expected (an image or an archive named .csv or .jsonl), a Parquet "
            "file that cannot be read as Parquet (cut short), a JSON-lines file without any "
            "JSON object, a file of any format whose columns do not fit the mapping (a mapped "
            "column missing, or holding lists): 'reject' refuses that file alone (one warning "
            "naming it, status 'rejected' in the load log), on DuckDB and on Spark, and loads "
            "the other files; 'fail' stops the ingest before anything is written. A "
            "single-file source always fails, and so does a source that never loaded a file "
            "when none of its files can be: none has the mapped columns (the mapping is "
            "wrong) or all hold binary data (the path or format is)."
        ),
    )
    max_field_chars: int = Field(
        default=100_000, description="Longer values in a mapped column are quarantined."
    )
