"""Response models of the JSON API: every list is ``{"data": [...], "count": n}``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel


class HealthPublic(BaseModel):
    status: str
    segflow_version: str
    schema_version: int
    project: str


class SchemePublic(BaseModel):
    scheme: str
    snapshots: int
    first_snapshot: dt.date | None
    last_snapshot: dt.date | None


class SchemesPublic(BaseModel):
    data: list[SchemePublic]
    count: int


class RecordsPublic(BaseModel):
    """A table as records, with the query that produced it."""

    data: list[dict[str, Any]]
    count: int
    meta: dict[str, Any] = {}
