"""Continuous refresh: ingest new files, recompute, re-apply saved schemes and models, and
record drift as alerts; one refresh at a time, all or nothing."""

from segflow.refresh._drift import Alert, DriftThresholds, psi, read_alerts
from segflow.refresh._lock import RefreshLocked, refresh_lock
from segflow.refresh._refresh import RefreshResult, refresh

__all__ = [
    "Alert",
    "DriftThresholds",
    "RefreshLocked",
    "RefreshResult",
    "psi",
    "read_alerts",
    "refresh",
    "refresh_lock",
]
