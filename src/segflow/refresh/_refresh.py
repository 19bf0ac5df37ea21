"""``segflow refresh``: ingest new files, recompute, re-apply schemes and models, record drift.

    lock ─▶ anything new? ─no─▶ log "nothing new", done
                │yes
                ▼
    copy the store ─▶ on the copy: ingest ─▶ run (snapshots, saved schemes, CLV scores)
                   ─▶ churn models re-scored ─▶ drift alerts ─▶ run log
                   ─▶ the copy replaces the store (one rename)

All work happens on a copy of the store file (``<store>.refresh-work``); the store itself is
replaced by one ``os.replace`` at the very end, so a refresh that fails or is killed at any
point leaves the store exactly as it was, and the next refresh starts over (removing the
abandoned copy). Readers that opened the store before the rename keep reading the old file
until they reopen it. The copy needs free disk space equal to the store's size.

A refresh is skipped (and logged as such) when no source file is new and neither the project
file nor a saved model changed since the last successful refresh, so running it from cron
every few minutes is cheap and changes nothing. ``force=True`` recomputes anyway.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from segflow._private import link_target
from segflow.config import Settings
from segflow.errors import SegflowError
from segflow.refresh._drift import (
    NOTHING_NEW,
    Alert,
    DriftThresholds,
    calibration_alerts,
    feature_alerts,
    new_alerts,
    seen_again,
    share_alerts,
    write_alerts,
)
from segflow.refresh._lock import refresh_lock
from segflow.store import Store, open_reading

#: Suffix of the working copy of the store during a refresh.
WORK_SUFFIX = ".refresh-work"

#: A stage callback: called with a short description as each stage starts.
StageFn = Callable[[str], None]


@dataclasses.dataclass
class RefreshResult:
    """What a refresh did."""

    run_id: str | None
    status: str  # "refreshed" | "nothing new"
    new_inputs: list[str]
    rows_loaded: int = 0
    snapshot_dates: list[dt.date] = dataclasses.field(default_factory=list)
    assignments_written: int = 0
    scores_written: int = 0
    #: the alerts recorded by this refresh: new, or changed since last recorded
    alerts: list[Alert] = dataclasses.field(default_factory=list)
    #: measured again unchanged, recorded by an earlier refresh (not recorded again)
    alerts_unchanged: list[Alert] = dataclasses.field(default_factory=list)
    calibration: dict[str, Any] = dataclasses.field(default_factory=dict)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def store_path(directory: Path, settings: Settings) -> Path:
    """The store file of a project."""
    path = Path(settings.project.store)
    return path if path.is_absolute() else Path(directory) / path


def fingerprint(directory: Path, settings: Settings) -> str:
    """SHA-256 of what a refresh depends on besides the data: the parsed project file and the
    bytes of the saved churn models (``models/*.joblib``)."""
    h = hashlib.sha256(settings.model_dump_json().encode())
    for model in sorted((Path(directory) / "models").glob("*.joblib")):
        h.update(model.name.encode())
        with model.open("rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()


def pending_inputs(store: Store, settings: Settings, directory: Path) -> list[str]:
    """Source files not yet loaded (by content hash, as the ingest judges them:
    :func:`segflow.sources._ingest.loaded_before`; a file rejected whole with the same bytes
    is not new either), plus every database source (which cannot be checked without reading
    it)."""
    from segflow.sources._discover import discover_files, file_hash, relative
    from segflow.sources._ingest import load_label, loaded_before, rejected_before

    out = []
    for src in settings.sources:
        # a database is stated (format = "postgres"); a folder's format is its files' own
        # (source_format(src) without a file refused a folder source without `format`,
        # which `segflow ingest` reads by each file's extension)
        if src.format == "postgres":
            out.append(f"postgres:{src.name}")
            continue
        for path in discover_files(src, Path(directory)):
            label, digest = load_label(src, path, directory), file_hash(path)
            # a file refused whole (binary data) is new again only when its bytes change
            if not (loaded_before(store, src, label, digest)
                    or rejected_before(store, src, label, digest)):
                out.append(relative(path, Path(directory)))
    return out


def _last_fingerprint(store: Store) -> str | None:
    row = store.raw.execute(
        "SELECT params FROM runs WHERE command = 'refresh' AND status = 'ok' "
        "ORDER BY started_at DESC LIMIT 1"
    ).fetchone()
    return json.loads(row[0]).get("fingerprint") if row and row[0] else None


def _remove_work(work: Path) -> None:
    for p in (work, work.with_name(work.name + ".wal")):
        p.unlink(missing_ok=True)


def _log_outcome(path: Path, memory_limit: str, params: dict[str, Any], status: str,
                 message: str, *, quiet: bool = False) -> None:
    """One finished row in the run log of the store at ``path`` (when the store can be
    opened for writing: not while another process holds it; ``quiet`` skips the warning)."""
    from segflow import __version__

    now = _now()
    try:
        store = Store(path, memory_limit=memory_limit)
    except SegflowError as exc:  # e.g. another process holds the store open
        if quiet:
            return
        warnings.warn(f"could not record the refresh in the run log: {exc}", UserWarning,
                      stacklevel=3)
        return
    with store, store.transaction() as con:
        con.execute(
            "INSERT INTO runs VALUES (?, 'refresh', ?, ?, ?, ?, ?, ?)",
            [uuid.uuid4().hex[:12], json.dumps(params, default=str), __version__, now, now,
             status, message[:2000]],
        )


def refresh(
    directory: str | Path = ".",
    *,
    wait: float = 0.0,
    force: bool = False,
    thresholds: DriftThresholds | None = None,
    stage: StageFn | None = None,
) -> RefreshResult:
    """Bring a project's store up to date and record drift; see the module docstring.

    Parameters
    ----------
    directory : str or Path
        The project folder.
    wait : float, default=0
        Seconds to wait for a concurrent refresh of the same store; 0 refuses at once.
    force : bool, default=False
        Recompute even when nothing is new.
    thresholds : DriftThresholds, optional
        Alert thresholds (default: :class:`DriftThresholds` ()).
    stage : callable, optional
        Called with a description as each stage starts (the CLI prints it on stderr).

    Returns
    -------
    RefreshResult

    Raises
    ------
    RefreshLocked
        Another refresh holds the lock (after ``wait`` seconds).
    SegflowError
        A stage failed; the store is unchanged and the failure is in its run log.
    """
    directory = Path(directory)
    settings = Settings.load(directory)
    thresholds = thresholds or DriftThresholds()
    path = store_path(directory, settings)
    limit = settings.project.memory_limit
    say = stage or (lambda _msg: None)
    with refresh_lock(path, wait=wait):
        # a store that is a symbolic link (to a larger disk) stays one: the file it points to
        # is copied and replaced, beside it (the link was replaced by a file in the project)
        real = link_target(path)
        work = real.with_name(real.name + WORK_SUFFIX)
        _remove_work(work)  # left by a refresh that was killed
        fp = fingerprint(directory, settings)
        params: dict[str, Any] = {"fingerprint": fp, "force": force}
        if not path.exists():  # a new project: create the store
            Store(path, memory_limit=limit).close()
        # Read-only until the swap: a dashboard (`segflow serve`) may hold the store open
        # read-only, and DuckDB lets readers share a file but not with a writer.
        with open_reading(path, memory_limit=limit) as store:  # (an older schema: upgraded)
            try:
                pending = pending_inputs(store, settings, directory)
            except SegflowError as exc:
                pending, failure = [], exc
            else:
                failure = None
            unchanged = _last_fingerprint(store) == fp
            has_runs = store.raw.execute(  # any change row: any assignment (not the view's count)
                "SELECT count(*) FROM (SELECT 1 FROM segment_spells LIMIT 1)").fetchone()[0] > 0
            skip = not force and not pending and unchanged and has_runs
        if failure is not None:
            _log_outcome(path, limit, params, "failed", str(failure))
            raise SegflowError(f"refresh failed, the store is unchanged: {failure}") from failure
        if skip:
            _log_outcome(path, limit, params, "ok", NOTHING_NEW, quiet=True)
            return RefreshResult(run_id=None, status="nothing new", new_inputs=[])
        say("copying the store")
        shutil.copy2(path, work)
        wal = real.with_name(real.name + ".wal")  # (DuckDB keeps it beside the linked file)
        if wal.exists():  # not yet checkpointed: the copy replays it when opened
            shutil.copy2(wal, work.with_name(work.name + ".wal"))
        try:
            result = _refresh_copy(work, directory, settings, params, pending, thresholds, say)
            with open(work, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(work, real)
            # a WAL of the old file would be replayed onto the new one: it is in the copy already
            wal.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                dir_fd = os.open(real.parent, os.O_RDONLY)
                os.fsync(dir_fd)
                os.close(dir_fd)
        except BaseException as exc:
            _remove_work(work)
            if isinstance(exc, Exception):
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                with contextlib.suppress(Exception):
                    _log_outcome(path, limit, params, "failed", message)
                if isinstance(exc, SegflowError):
                    raise SegflowError(f"refresh failed, the store is unchanged: {message}") from exc
                raise SegflowError(
                    f"refresh failed ({type(exc).__name__}), the store is unchanged: {message}"
                ) from exc
            raise
    return result


def _refresh_copy(work: Path, directory: Path, settings: Settings, params: dict[str, Any],
                  pending: list[str], thresholds: DriftThresholds, say: StageFn) -> RefreshResult:
    from segflow.engine import connect
    from segflow.pipeline import canonical_tables, run_pipeline
    from segflow.project import Project
    from segflow.sources import ingest

    seconds: dict[str, float] = {}
    store = Store(work, memory_limit=settings.project.memory_limit)
    try:
        project = Project(directory, settings, store)
        with store.run("refresh", params) as run_id:
            say("ingesting new files")
            t = time.perf_counter()
            report = ingest(store, settings, directory)
            seconds["ingest"] = time.perf_counter() - t
            say("computing snapshots, schemes and CLV scores")
            t = time.perf_counter()
            summary = run_pipeline(store, settings)
            seconds["run"] = time.perf_counter() - t
            dates = summary.snapshot_dates
            notes = list(summary.notes)
            say("re-scoring saved models")
            t = time.perf_counter()
            eng = connect(store, "duckdb")
            try:
                tables = canonical_tables(eng)
                scored = summary.scores_written + _rescore_churn(project, tables, dates[-1], run_id, notes)
                seconds["models"] = time.perf_counter() - t
                say("measuring drift")
                t = time.perf_counter()
                measured, calibration = _drift(store, tables, settings, dates, thresholds)
                seconds["drift"] = time.perf_counter() - t
            finally:
                eng.close()
            if "note" in calibration:
                notes.append(calibration["note"])
            with store.transaction() as con:
                # an alert of the same pair of snapshots recorded before, unchanged, is not
                # recorded (nor announced) again: a refresh with web events only, --force
                alerts, unchanged = new_alerts(con, measured)
                write_alerts(con, alerts, run_id, _now())
                seen_again(con, unchanged, run_id)  # among this refresh's: alerts --latest
        store.raw.execute(
            "UPDATE runs SET message = ? WHERE run_id = ?",
            [_run_message(pending, alerts, len(unchanged)), run_id],
        )
        store.raw.execute("CHECKPOINT")
    finally:
        store.close()
    loaded = report.to_pandas()
    rows = int(loaded["rows_accepted"].sum()) if "rows_accepted" in loaded else 0
    return RefreshResult(
        run_id=run_id, status="refreshed", new_inputs=pending, rows_loaded=rows,
        snapshot_dates=dates, assignments_written=summary.assignments_written,
        scores_written=scored, alerts=alerts, alerts_unchanged=unchanged, calibration=calibration,
        seconds=seconds, notes=notes,
    )


def _run_message(pending: list[str], alerts: list[Alert], unchanged: int = 0) -> str:
    counts = {s: sum(a.severity == s for a in alerts) for s in ("critical", "warning", "info")}
    head = f"{len(pending)} new input(s); {len(alerts)} drift alert(s) " \
           f"({counts['critical']} critical, {counts['warning']} warning, " \
           f"{counts['info']} info: sample too small to judge)"
    if unchanged:
        head += f"; {unchanged} unchanged, recorded before"
    return "; ".join([head, *(a.message for a in alerts)])


def _rescore_churn(project: Any, tables: dict[str, Any], snapshot: dt.date, run_id: str,
                   notes: list[str]) -> int:
    """Score every saved churn model (``models/*.joblib``) at the latest snapshot."""
    from segflow.features._stored_state import current_features
    from segflow.models._churn_train import (
        load_churn_model,
        look_ahead_note,
        score_churn,
        write_churn_scores,
    )

    written = 0
    features = None
    for path in sorted((project.directory / "models").glob("churn_*.joblib")):
        model, meta = load_churn_model(path)
        note = look_ahead_note(meta, snapshot)  # labels past the snapshot (a short [periods])
        if note:
            notes.append(note)
        if features is None:  # the run's stored features of the snapshot when current
            features = current_features(project.store, tables, snapshot,
                                        window_days=project.settings.rfm.window_days)
        scores = score_churn(model, features, tables["transactions"], snapshot, model_name=path.stem)
        written += write_churn_scores(project.store, scores, run_id)
        notes.append(f"re-scored {path.stem} at {snapshot}")
    return written


def _drift(store: Store, tables: dict[str, Any], settings: Settings, dates: list[dt.date],
           thresholds: DriftThresholds) -> tuple[list[Alert], dict[str, Any]]:
    if len(dates) < 2:
        return [], {"note": "one snapshot only: no drift to measure yet"}
    from segflow.features import customer_features

    previous, latest = dates[-2], dates[-1]
    alerts = share_alerts(store, previous, latest, thresholds)
    after = store.table("customer_features").to_pyarrow()
    before = customer_features(tables, previous, window_days=settings.rfm.window_days).to_pyarrow()
    alerts += feature_alerts(before, after, previous, latest, thresholds)
    calib, measured = calibration_alerts(tables["transactions"], previous, latest, thresholds)
    return alerts + calib, measured
