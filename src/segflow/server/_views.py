"""Data shared by each dashboard page and its JSON twin: one function per resource."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from fastapi import HTTPException

from segflow._result import json_records
from segflow.errors import SegflowError
from segflow.project import Project


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json_records(frame)


def schemes(project: Project) -> list[dict[str, Any]]:
    rows = project.store.raw.execute(
        "SELECT scheme, count(DISTINCT snapshot_date), min(snapshot_date), max(snapshot_date) "
        "FROM segment_assignments GROUP BY scheme ORDER BY scheme"
    ).fetchall()
    return [
        {"scheme": s, "snapshots": n, "first_snapshot": lo, "last_snapshot": hi} for s, n, lo, hi in rows
    ]


def _known(project: Project, scheme: str) -> list[dt.date]:
    dates = project.snapshot_dates(scheme)
    if not dates:
        raise HTTPException(status_code=404, detail=f"no assignments stored for scheme {scheme!r}")
    return dates


def segment_sizes(project: Project, scheme: str, snapshot: dt.date | None) -> tuple[pd.DataFrame, dt.date]:
    dates = _known(project, scheme)
    snapshot = snapshot or dates[-1]
    if snapshot not in dates:
        raise HTTPException(status_code=404, detail=f"scheme {scheme!r} has no snapshot {snapshot}")
    return project.segment_sizes(scheme, snapshot), snapshot


def transitions(project: Project, scheme: str, from_date: dt.date | None, to_date: dt.date | None) -> Any:
    dates = _known(project, scheme)
    if len(dates) < 2 and (from_date is None or to_date is None):
        raise HTTPException(status_code=404, detail=f"scheme {scheme!r} has fewer than two snapshots")
    try:
        return project.transitions(scheme, from_date or dates[-2], to_date or dates[-1])
    except SegflowError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc


def customer_history(project: Project, customer_id: str) -> pd.DataFrame:
    frame = project.store.raw.execute(
        "SELECT scheme, snapshot_date, segment FROM segment_assignments WHERE customer_id = ? "
        "ORDER BY scheme, snapshot_date",
        [customer_id],
    ).df()
    if frame.empty:
        raise HTTPException(status_code=404, detail=f"customer {customer_id!r} has no assignments")
    return frame
