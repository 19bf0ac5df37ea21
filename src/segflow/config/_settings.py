"""The project file ``segflow.toml`` as typed settings."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from segflow.config._schemes import SchemeSettings
from segflow.config._sources import SourceSettings
from segflow.errors import ConfigError

PROJECT_FILENAME = "segflow.toml"


class ProjectSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="segflow project", description="Name shown in reports.")
    store: str = Field(
        default="segflow.duckdb", description="DuckDB store file, relative to the project folder."
    )
    currency: str = Field(default="USD", description="Currency of amounts, shown in reports.")
    memory_limit: str = Field(
        default="auto",
        description=(
            "DuckDB memory limit of every store connection: 'auto' (half the physical RAM), "
            "a share of the RAM ('40%') or a size ('8GB', '1.5GiB'). Beyond it DuckDB spills "
            "to disk (DuckDB's own default is 80% of the RAM). The CSV reader's buffer is an "
            "eighth of it (at most 1 GiB)."
        ),
    )

    @field_validator("memory_limit")
    @classmethod
    def _check_memory_limit(cls, value: str) -> str:
        from segflow.errors import SegflowError
        from segflow.store._memory import resolve_memory_limit

        try:
            resolve_memory_limit(value)
        except SegflowError as exc:
            raise ValueError(str(exc)) from None
        return value


class PeriodSettings(BaseModel):
    """When snapshots are taken. A snapshot date ``s`` uses data with ``ts < s`` only."""

    model_config = ConfigDict(extra="forbid")

    granularity: Literal["week", "month", "quarter", "dates"] = Field(
        default="month", description="Snapshot at the start of each calendar week/month/quarter."
    )
    start: dt.date | None = Field(
        default=None, description="First snapshot date; default: first period boundary after the first transaction."
    )
    end: dt.date | None = Field(
        default=None, description="Last snapshot date; default: the period boundary after the last transaction."
    )
    dates: list[dt.date] = Field(
        default_factory=list, description="Explicit snapshot dates (granularity = 'dates')."
    )


class RfmSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window_days: int | None = Field(
        default=None,
        description="Look-back window for frequency and monetary in days; None = all history.",
    )
    bins: int = Field(default=5, description="Number of score bins (quantiles) per R, F and M.")


class EngineSettings(BaseModel):
    """Which engine computes a run, and for Spark where the cluster and the warehouse are
    (see docs/scale.md). ``--engine`` on the command line overrides ``kind``."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["duckdb", "spark"] = Field(
        default="duckdb",
        description="Engine of every run: 'duckdb' (embedded, one machine) or 'spark'.",
    )
    master: str = Field(
        default="local[*]",
        description=(
            "Spark master URL: 'local[*]' (all cores of this machine), 'local[2]', "
            "'spark://host:7077' (a standalone cluster), 'yarn', or anything the Spark "
            "session builder accepts."
        ),
    )
    warehouse: str = Field(
        default="spark-warehouse",
        description=(
            "Spark warehouse: a local folder (relative to the project folder) or any Hadoop "
            "file-system URL the cluster can write (hdfs://..., s3a://..., abfss://...). "
            "Every worker must reach it under the same name."
        ),
    )
    database: str = Field(
        default="segflow",
        description="Database (schema) of the Spark catalog that holds segflow's tables.",
    )
    chunk_customers: int | None = Field(
        default=None,
        gt=0,
        description=(
            "Customers per chunk of the one-pass feature computation: the chunks are computed "
            "and materialised one after the other, which bounds the working set. Default: "
            "200,000 on DuckDB (about 1 GB of memory per 100,000 customers of 24 monthly "
            "snapshots); on Spark, whose cached tables and shuffles spill to disk, 1,000,000 "
            "(every chunk is a plan of hundreds of Spark stages, so fewer chunks mean less "
            "fixed cost; see docs/scale.md)."
        ),
    )
    conf: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Extra Spark settings passed to the session builder, e.g. "
            "{\"spark.executor.memory\" = \"4g\"}."
        ),
    )

    @field_validator("database")
    @classmethod
    def _check_database(cls, value: str) -> str:
        if not value.replace("_", "").isalnum() or value[0].isdigit():
            raise ValueError(
                f"database {value!r}: use letters, digits and underscores, not starting with a digit"
            )
        return value


class ServingSettings(BaseModel):
    """What ``segflow serve`` shows to whom (the ``[server]`` table)."""

    model_config = ConfigDict(extra="forbid")

    min_cell_customers: int = Field(
        default=5, ge=1,
        description=(
            "Segments, migration cells and campaign arms with fewer customers than this show "
            "viewers (the role without customer-level access) no value figures (revenue, CLV, "
            "profile means, medians and suggested names, campaign rates, lifts and tests: null, "
            "with a 'withheld' reason; counts stay; while the withheld rows hold fewer customers "
            "together, the next smallest is withheld with them), as they would be a few customers' "
            "own; analysts and admins see all. 1: withhold nothing. The HTML report applies it "
            "when written with 'segflow report --for viewer'."
        ),
    )


class Settings(BaseModel):
    """All settings of a segflow project (the parsed ``segflow.toml``)."""

    model_config = ConfigDict(extra="forbid")

    project: ProjectSettings = Field(default_factory=ProjectSettings)
    periods: PeriodSettings = Field(default_factory=PeriodSettings)
    rfm: RfmSettings = Field(default_factory=RfmSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    server: ServingSettings = Field(default_factory=ServingSettings)
    sources: list[SourceSettings] = Field(default_factory=list)
    schemes: list[SchemeSettings] = Field(default_factory=list)

    @field_validator("schemes")
    @classmethod
    def _scheme_names_unique(cls, value: list[SchemeSettings]) -> list[SchemeSettings]:
        from segflow.config._schemes import column_name

        seen: dict[str, str] = {}
        for scheme in value:
            if scheme.name in seen.values():  # both would store their assignments under one name
                raise ValueError(f"two schemes are named {scheme.name!r}; scheme names must differ")
            column = column_name(scheme.name)  # an audience has one column per scheme
            if not column:
                raise ValueError(f"scheme name {scheme.name!r} has no letter or digit to name its "
                                 "audience column")
            if column in seen:
                raise ValueError(f"schemes {seen[column]!r} and {scheme.name!r} would share the audience "
                                 f"column {column!r}; rename one")
            seen[column] = scheme.name
        return value

    @classmethod
    def load(cls, path: str | Path) -> Settings:
        """Read and validate a ``segflow.toml`` (a file, or a folder holding one)."""
        path = Path(path)
        if path.is_dir():
            path = path / PROJECT_FILENAME
        if not path.exists():
            raise ConfigError(f"no project file at {path}; create one with `segflow init`")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            from segflow.config._errors import describe_errors

            raise ConfigError(f"{path}: {describe_errors(exc.errors(), raw)}") from exc
