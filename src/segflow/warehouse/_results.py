"""The rest of the report's stored results, computed by a Spark run and written to the
warehouse: segment profiles, the data audit, the model results (CLV diagnostics, campaign
read-outs, overview totals, forecasts) and the fitted BTYD models.

Every one comes from the DuckDB run's own code (:mod:`segflow.summaries`), on the run's
view of the warehouse (:class:`segflow.warehouse._run._RunView`: Ibis tables on Spark):

``summary_profile_segments`` / ``summary_profiles``
    :func:`segflow.summaries._write.profile_frames` on the latest features and assignments
    (grouped means and exact medians computed by Spark; the base and the standardised
    differences on the driver, a few numbers per segment and feature).
``summary_audit``
    :func:`segflow.quality.audit` (Ibis checks run by Spark), when the committed audit is
    older than the last load (:func:`segflow.summaries.audit_is_current`); else the
    committed one stays, as on DuckDB.
``summary_results``
    :func:`segflow.summaries._results.result_documents`: the CLV diagnostics (BTYD summaries
    by Spark, holdout refit on the driver from the compressed triples), the campaign
    read-outs (:func:`segflow.campaigns.campaign_reports`: responses by Spark), the overview
    totals; the forecasts (:func:`~segflow.summaries._results.forecast_document`) read the
    run's segment and transition aggregates, small frames already on the driver, through an
    in-memory DuckDB store.
``model_params``
    written by the CLV stage (:func:`segflow.warehouse._run._score`) with the scores.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

if TYPE_CHECKING:  # pragma: no cover
    from segflow.config import SchemeSettings
    from segflow.store._spark import SparkStore


def write_warehouse_results(store: SparkStore, view: Any, run_id: str,
                            schemes: Sequence[SchemeSettings], frames: dict[str, pd.DataFrame],
                            clv_triples: tuple[dt.date, pd.DataFrame] | None, *,
                            clv_days: Any = None) -> dict[str, int]:
    """Compute the results of the module notes on Spark and write them as run ``run_id``'s
    rows; ``view``: the run's view of ``store``, ``frames``: the run's ``summary_segments``
    and ``summary_transitions`` (pandas, as written), ``clv_triples``: the CLV stage's
    compressed BTYD summary, ``clv_days``: its cached purchase days (an Ibis table on the
    run's Spark session, or None; :func:`segflow.models._run_scores.score_clv`). Returns the
    rows written per table."""
    from segflow.summaries import audit_is_current, campaign_scheme
    from segflow.summaries._results import RESULTS, result_documents
    from segflow.summaries._write import _audit_frame, profile_frames

    names = [s.name for s in schemes]
    written: dict[str, int] = {}
    segs, longs = profile_frames(view, names, {s.name: s.kind != "cluster" for s in schemes})
    for table, parts in (("summary_profile_segments", segs), ("summary_profiles", longs)):
        parts = [f for f in parts if not f.empty]
        if parts:
            written[table] = store.write(table, _arrow(pd.concat(parts, ignore_index=True)), run_id)
    if not audit_is_current(view):
        written["summary_audit"] = store.write("summary_audit", _arrow(_audit_frame(view)), run_id)
    with warnings.catch_warnings():  # skipped campaigns: the run's own warnings say why
        warnings.simplefilter("ignore")
        rows = result_documents(view, campaign_scheme=campaign_scheme(names),
                                names=tuple(n for n in RESULTS if n != "forecasts"),
                                clv_triples=clv_triples, clv_days=clv_days)
    rows += _forecasts(frames, names, run_id)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    written["summary_results"] = store.write("summary_results", pa.table({
        "name": [r[0] for r in rows],
        "snapshot_date": pa.array([r[1] for r in rows], pa.date32()),
        "document": [r[2] for r in rows],
        "created_at": pa.array([now] * len(rows), pa.timestamp("us")),
    }), run_id)
    return written


def _forecasts(frames: dict[str, pd.DataFrame], schemes: list[str], run_id: str,
               ) -> list[tuple[str, dt.date | None, str]]:
    """The ``forecasts`` document from the run's aggregates (the DuckDB run's code, on an
    in-memory DuckDB store holding them)."""
    from segflow.store import Store
    from segflow.summaries._results import dumps, forecast_document

    segments = frames["summary_segments"]
    if segments.empty:
        return []
    latest = pd.Timestamp(segments["snapshot_date"].max()).date()
    with Store(":memory:") as book:
        for table, frame in frames.items():
            if not frame.empty:
                book.append(table, frame.assign(run_id=run_id))
        return [("forecasts", latest, dumps(forecast_document(book, schemes)))]


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)
