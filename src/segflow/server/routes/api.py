"""The JSON API under ``/api/v1``: one function per resource, shared with the pages."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter

from segflow.report._queries import quarantine_reasons, reconciliation
from segflow.server import _views
from segflow.server.deps import ProjectDep
from segflow.server.schemas import HealthPublic, RecordsPublic, SchemesPublic

router = APIRouter(prefix="/api/v1", tags=["api"])


@router.get("/health", response_model=HealthPublic)
def health(project: ProjectDep) -> HealthPublic:
    """Liveness and the versions of segflow and of the store schema."""
    from segflow import __version__

    return HealthPublic(
        status="ok",
        segflow_version=__version__,
        schema_version=project.store.schema_version,
        project=project.settings.project.name,
    )


@router.get("/schemes", response_model=SchemesPublic)
def list_schemes(project: ProjectDep) -> SchemesPublic:
    """Schemes with stored assignments and their snapshot range."""
    data = _views.schemes(project)
    return SchemesPublic(data=data, count=len(data))


@router.get("/segments/{scheme}", response_model=RecordsPublic)
def segments(project: ProjectDep, scheme: str, snapshot: dt.date | None = None) -> RecordsPublic:
    """Customers, share and 12-month revenue per segment at a snapshot (default: latest)."""
    frame, snapshot = _views.segment_sizes(project, scheme, snapshot)
    data = _views.records(frame)
    return RecordsPublic(data=data, count=len(data), meta={"scheme": scheme, "snapshot": snapshot})


@router.get("/migration/{scheme}", response_model=RecordsPublic)
def migration(
    project: ProjectDep, scheme: str, from_date: dt.date | None = None, to_date: dt.date | None = None
) -> RecordsPublic:
    """The transition matrix between two snapshots (default: the last two), long form."""
    matrix = _views.transitions(project, scheme, from_date, to_date)
    data = _views.records(matrix.to_pandas())
    return RecordsPublic(
        data=data,
        count=len(data),
        meta={"scheme": scheme, "from_date": matrix.from_date, "to_date": matrix.to_date},
    )


@router.get("/customers/{customer_id}", response_model=RecordsPublic)
def customer(project: ProjectDep, customer_id: str) -> RecordsPublic:
    """A customer's segment at every snapshot of every scheme."""
    data = _views.records(_views.customer_history(project, customer_id))
    return RecordsPublic(data=data, count=len(data), meta={"customer_id": customer_id})


@router.get("/quality", response_model=RecordsPublic)
def quality(project: ProjectDep) -> RecordsPublic:
    """Reconciliation per loaded file; quarantine reasons in ``meta``."""
    data = _views.records(reconciliation(project.store))
    reasons = _views.records(quarantine_reasons(project.store))
    return RecordsPublic(data=data, count=len(data), meta={"quarantine": reasons})
