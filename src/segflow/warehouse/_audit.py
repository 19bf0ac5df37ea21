"""The data audit stored by ``segflow ingest`` on Spark, as the DuckDB ingest stores it
(:func:`segflow.summaries.store_audit`): :func:`segflow.quality.audit`'s Ibis checks run by
Spark on the warehouse as the ingest's run leaves it, written to ``summary_audit`` as rows of
that run (so the audit becomes visible with the loads it describes, or not at all).

A Spark run (:mod:`segflow.warehouse._results`) then finds the audit current
(:func:`segflow.summaries.audit_is_current`: stored after the last load) and keeps it; it
audits again only a warehouse whose audit is older than its last load (one ingested by a
segflow before session 31, or a load whose audit failed to be stored).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from segflow.store._spark import SparkStore


def store_warehouse_audit(store: SparkStore, run_id: str, *, force: bool = False) -> bool:
    """Audit the warehouse ``store`` as run ``run_id`` (not committed yet) leaves it, and
    write the audit to ``summary_audit`` as that run's rows (one row per check: the columns
    of :func:`segflow.summaries._write._audit_frame`, the same values as the DuckDB ingest's
    stored audit of the same data), unless the stored audit is current already
    (:func:`segflow.summaries.audit_is_current`: e.g. every file of the ingest was
    unchanged); ``force``: always. Returns whether an audit was computed and written."""
    import pyarrow as pa

    from segflow.summaries import audit_is_current
    from segflow.summaries._write import _audit_frame
    from segflow.warehouse._run import _RunView

    view = _RunView(store, run_id)  # the committed tables and this run's rows so far
    if not force and audit_is_current(view):
        return False
    frame = _audit_frame(view)
    store.write("summary_audit", pa.Table.from_pandas(frame, preserve_index=False), run_id)
    return True
