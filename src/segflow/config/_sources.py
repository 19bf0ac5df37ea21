"""Settings of one data source: where it is, its format, and how its columns map."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CanonicalTable = Literal[
    "customers", "transactions", "events", "campaign_exposures", "survey_responses"
]
SourceFormat = Literal["csv", "parquet", "jsonl", "xlsx", "duckdb", "postgres"]


class SourceSettings(BaseModel):
    """One ``[[sources]]`` entry of ``segflow.toml``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Name of the source, used in the quarantine and the reconciliation.")
    table: CanonicalTable = Field(description="Canonical table the source is mapped into.")
    path: str | None = Field(
        default=None,
        description="File, glob or folder (relative to the project folder); several files append.",
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
    date_formats: list[str] = Field(
        default_factory=list,
        description="strftime formats accepted for date columns, tried in order; empty = ISO 8601.",
    )
    timezone: str = Field(
        default="UTC", description="Time zone of naive timestamps in the source; stored as UTC."
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Reader options: delimiter, encoding, decimal, quote, sheet, connection, query.",
    )
    value_maps: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Per canonical column, a map of source values to canonical values.",
    )
