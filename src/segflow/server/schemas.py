"""Response models of the JSON API: every list is ``{"data": [...], "count": n, "total": N}``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class HealthPublic(BaseModel):
    status: str
    segflow_version: str
    schema_version: int
    project: str
    store_copy: int = Field(description="Number of the store copy served (grows after each refresh).")
    warm: bool = Field(default=True, description="False while the first pages' aggregates and the scorer are "
                       "still being computed in the background after start-up.")


class LivePublic(BaseModel):
    status: str
    warm: bool = Field(description="False while the first pages' aggregates are still being computed.")


class WhoAmIPublic(BaseModel):
    token_id: str
    role: str
    name: str | None
    csrf_token: str | None = Field(description="Send as X-CSRF-Token on POSTs made with the session cookie.")


class RecordsPublic(BaseModel):
    """A table as records (one page), the total number of rows, and the query."""

    data: list[dict[str, Any]]
    count: int
    total: int | None = None
    meta: dict[str, Any] = {}
