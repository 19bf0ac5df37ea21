"""The churn model of a project: train it on the store's history, score a snapshot.

One code path for ``segflow churn train|score`` and :meth:`segflow.Project.train_churn` /
:meth:`segflow.Project.score_churn`: the project's snapshot dates and feature settings, the
model saved under ``<project>/models/`` (where ``churn score`` reads it), the scores written
to the store's ``customer_scores`` (what :meth:`segflow.Project.churn_scores` reads).
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segflow.errors import InputError, SegflowError

if TYPE_CHECKING:
    from segflow.models._churn_train import ChurnScores, ChurnTraining
    from segflow.project import Project


def model_path(project_dir: Path, horizon_days: int) -> Path:
    """Where the churn model of a horizon is saved (``models/churn_<N>d.joblib``)."""
    from segflow.models._churn_train import churn_model_name

    return Path(project_dir) / "models" / f"{churn_model_name(horizon_days)}.joblib"


def features_at(tables: dict[str, Any], settings: Any) -> Callable[[dt.date], Any]:
    """The project's feature function ``snapshot -> ibis.Table`` (the feature library)."""
    try:
        from segflow.features import customer_features
    except ImportError as exc:  # pragma: no cover - the feature library ships with segflow
        raise SegflowError(f"the feature library is not available: {exc}") from exc
    window = settings.rfm.window_days
    return lambda snapshot: customer_features(tables, snapshot, window_days=window)


def train_project_churn(
    project: Project,
    *,
    horizon_days: int = 90,
    engine: str | None = None,
    threads: int | None = None,
    data_end: dt.date | None = None,
) -> tuple[ChurnTraining, Path]:
    """Train the churn model on every snapshot of ``project`` whose label window is complete
    (:func:`~segflow.models.train_churn`), logged as a ``churn train`` run, and save it;
    returns the training (evaluation included) and the model file."""
    from segflow.engine import connect
    from segflow.models._churn import ChurnModel
    from segflow.models._churn_train import save_churn_model, train_churn
    from segflow.pipeline import canonical_tables, resolve_snapshot_dates

    store = project.store
    snapshots = resolve_snapshot_dates(store, project.settings)
    params = {"horizon_days": horizon_days, "engine": engine}
    with store.run("churn train", params):
        eng = connect(store, engine, settings=project.settings.engine)
        try:
            tables = canonical_tables(eng)
            training = train_churn(
                features_at(tables, project.settings),
                tables["transactions"],
                snapshots,
                horizon_days=horizon_days,
                model=ChurnModel(n_threads=threads, random_state=0),
                end=data_end,
            )
        finally:
            eng.close()
    return training, save_churn_model(training, model_path(project.directory, horizon_days))


def score_project_churn(
    project: Project,
    *,
    horizon_days: int = 90,
    snapshot: dt.date | None = None,
    engine: str | None = None,
    threads: int | None = None,
) -> tuple[ChurnScores, int]:
    """Score every customer with a purchase before ``snapshot`` (default: the latest period
    boundary) with the saved model of ``horizon_days`` and write the scores to
    ``customer_scores`` (a ``churn score`` run); returns the scores and the rows written.

    A snapshot after the data is an :class:`InputError`; a past snapshot scored by a model
    whose labels run past it is warned about and noted on the run."""
    from segflow.engine import connect
    from segflow.features._stored_state import current_features
    from segflow.models._churn_data import last_day
    from segflow.models._churn_train import (
        churn_model_name,
        load_churn_model,
        look_ahead_note,
        score_churn,
        write_churn_scores,
    )
    from segflow.pipeline import canonical_tables, resolve_snapshot_dates

    model, meta = load_churn_model(model_path(project.directory, horizon_days))
    model.set_params(n_threads=threads)
    store = project.store
    latest = resolve_snapshot_dates(store, project.settings)[-1]
    if snapshot is not None:
        # the store's own connection (no engine is connected before the run record)
        last = last_day(store.table("transactions"))
        # the day after it is the data's end, as the training's (models._churn_data.data_end)
        end = latest if last is None else max(latest, last + dt.timedelta(days=1))
        if snapshot > end:
            raise InputError(
                f"the snapshot {snapshot} is after the data (its last transaction is on "
                f"{last:%Y-%m-%d}, its last snapshot {latest}): the features would count "
                f"the days after the data as days without a purchase; score at {end} or "
                "earlier, or ingest newer data first")
    snapshot = snapshot or latest
    # a past snapshot scored by a model whose labels run past it: said, and logged
    note = look_ahead_note(meta, snapshot)
    if note:
        warnings.warn(note, UserWarning, stacklevel=3)
    params = {"horizon_days": horizon_days, "snapshot": snapshot.isoformat()}
    with store.run("churn score", params) as run_id:
        eng = connect(store, engine, settings=project.settings.engine)
        try:
            tables = canonical_tables(eng)
            scores = score_churn(
                model,
                current_features(store, tables, snapshot,
                                 window_days=project.settings.rfm.window_days),
                tables["transactions"],
                snapshot,
                model_name=churn_model_name(horizon_days),
            )
        finally:
            eng.close()
        written = write_churn_scores(store, scores, run_id)
    if note:
        store.annotate_run(run_id, note)
    return scores, written
