"""``segflow run`` on Spark: canonical tables read from the warehouse, results written there.

    canonical tables (committed) ─▶ snapshot dates ─▶ features of every snapshot (one pass)
      ─▶ per scheme: assignments of all snapshots (computed once, cached, not stored)
      ─▶ change rows (spells: the DuckDB store's expression), computed snapshots
      ─▶ latest full features (from the one pass's feature state at that snapshot)
      ─▶ CLV: summary in Spark, fit on the driver (distinct triples), scores in Spark
      ─▶ report aggregates ─▶ profiles, audit, model results
      ─▶ the run's ``ok`` row (commit)

The same Ibis expressions as the DuckDB pipeline (:mod:`segflow.pipeline`) compute every
table; only the reading and writing differ. Every write goes to partitions of the run's own
``run_id`` (:class:`~segflow.store.SparkStore`), so the run's output appears all at once
when its ``ok`` row lands, or not at all. Nothing passes through a local DuckDB file.

Cluster schemes: as on DuckDB, a scheme version's model is fitted once, on the driver (on
a sample of the earliest snapshot's features, :func:`segflow.segments.assign`), saved (the
warehouse's ``cluster_models``, with the run) and re-applied by every later run; the
assignment (scaling, distances, nearest centre) is an Ibis expression run by Spark.

Then the rest of what the report and ``serve`` read, from the DuckDB run's code too
(:mod:`segflow.warehouse._results`): segment profiles, the data audit, CLV diagnostics,
campaign read-outs, forecasts, overview totals and the fitted BTYD models.

The warehouse stores the assignments as change rows only (``segment_spells``, with the
computed snapshots in ``segment_snapshots``), as the DuckDB store does; the per-snapshot
``segment_assignments`` that readers (the results stage, the library) take from the store
is the DuckDB store's view over them, run by Spark (:meth:`SparkStore.dataframe
<segflow.store.SparkStore.dataframe>`).

What differs from the DuckDB pipeline: every snapshot is computed on every run (no
incremental planning yet; see docs/scale.md).
"""

from __future__ import annotations

import datetime as dt
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import ibis
import pandas as pd
import pyarrow as pa

from segflow._duck import arrow_table
from segflow.errors import SegflowError
from segflow.store import CANONICAL_TABLES
from segflow.store._spark_layout import TABLES

if TYPE_CHECKING:  # pragma: no cover
    from segflow.config import SchemeSettings, Settings
    from segflow.pipeline import ProgressFn, RunSummary
    from segflow.store._spark import SparkStore


def transaction_span(transactions: ibis.Table) -> tuple[dt.date | None, dt.date | None]:
    """First and last date of the transactions with a customer (computed in the engine)."""
    t = transactions.filter(transactions.customer_id.notnull())
    row = t.aggregate(first=t.ts.min().date(), last=t.ts.max().date()).to_pyarrow()
    return row["first"][0].as_py(), row["last"][0].as_py()


class _RunView:
    """What :mod:`segflow.summaries` reads from a store, on the warehouse: the committed
    tables plus the rows this run wrote so far.

    ``cached``: tables (customer-level: a row or a few per customer and snapshot) read
    once, cached (Spark memory, spilling to disk) and handed out again by :meth:`table`,
    until :meth:`release`: the results stage's queries then do not list, read and resolve
    their latest runs again (tables this run still writes must not be cached). They are
    cached without a checkpoint (a lost block is read again from the warehouse)."""

    def __init__(self, store: SparkStore, run_id: str, cached: Sequence[str] = ()) -> None:
        self.store, self.run_id = store, run_id
        self._cacheable = set(cached)
        self._cached: dict[str, ibis.Table] = {}

    def table(self, name: str) -> ibis.Table:
        if name not in self._cacheable:
            return self.store.table(name, pending=self.run_id)
        if name not in self._cached:
            # not checkpointed: their plans are short (a Parquet read; the assignments' view
            # over the change rows), so a checkpoint would only add a Spark job and its files
            con = self.store.con
            kept, con.checkpoint_dir = con.checkpoint_dir, None  # type: ignore[attr-defined]
            try:
                self._cached[name] = self.store.cache(self.store.table(name, pending=self.run_id))
            finally:
                con.checkpoint_dir = kept  # type: ignore[attr-defined]
        return self._cached[name]

    def release(self) -> None:
        """Release the cached tables."""
        for t in self._cached.values():
            t.release()
        self._cached.clear()

    def tables(self) -> list[str]:
        """The warehouse's committed tables and those this run wrote so far (with the
        derived tables whose sources are among them: :func:`~segflow.store._spark.with_views`)."""
        from segflow.store._spark import with_views

        return with_views({*self.store.tables(), *(n for n in TABLES
                                                   if self.run_id in self.store._partitions(n))})


#: Tables the results stage reads through a cache (see :class:`_RunView`): customer-level,
#: written by the run before it (``segment_assignments``: derived from the change rows it
#: wrote, expanded once), read by many of its queries.
RESULTS_CACHED = ("segment_assignments", "customer_features")


#: The stages of a Spark run, in order, as its progress reports them.
_STAGES = ("features and segments", "change rows", "CLV scores", "aggregates", "results")


def _stages(progress: ProgressFn | None, snapshots: int) -> Callable[[str | None], None]:
    """``step(stage)``: tells ``progress`` that ``stage`` of :data:`_STAGES` starts (None:
    the run is done), as ``(label, stages done, stages)``."""
    def step(stage: str | None) -> None:
        if progress is not None:
            done = len(_STAGES) if stage is None else _STAGES.index(stage)
            progress(f"{snapshots} snapshots: {stage}" if stage else f"{snapshots} snapshots done",
                     done, len(_STAGES))
    return step


def run_on_warehouse(
    store: SparkStore,
    settings: Settings,
    *,
    progress: ProgressFn | None = None,
) -> RunSummary:
    """Compute features, every scheme's assignments (stored as change rows), CLV
    scores and the report's aggregates on Spark, from the canonical tables committed in the
    warehouse, and write them there as one run (see the module notes).

    Raises
    ------
    SegflowError
        No transactions in the warehouse (run ``segflow ingest`` first).
    """
    from segflow._plan import settings_key
    from segflow.features import snapshot_features
    from segflow.features._core import KnownSchema
    from segflow.features._snapshots import SPARK_CHUNK_CUSTOMERS, snapshot_features_and_state
    from segflow.features._state import state_features
    from segflow.pipeline import (
        RunSummary,
        required_features,
        resolve_schemes,
        scheme_notes,
        snapshot_dates_between,
    )
    from segflow.segments import assign, freeze_cutoffs, reference_notes

    seconds: dict[str, float] = {}
    notes: list[str] = []
    schemes = resolve_schemes(settings)
    if "transactions" not in store.tables():
        raise SegflowError(f"the warehouse {store.root} has no transactions; load them with "
                           "`segflow ingest` and `segflow warehouse push` first")
    start = time.perf_counter()
    tables = {name: store.table(name) for name in CANONICAL_TABLES}
    dates = snapshot_dates_between(settings, *transaction_span(tables["transactions"]))
    window = settings.rfm.window_days
    schemes = freeze_cutoffs(schemes, tables, window_days=window)
    notes += reference_notes(schemes, dates)
    seconds["plan"] = time.perf_counter() - start
    params = {"engine": "spark", "master": store.session.sparkContext.master,
              "schemes": [s.name for s in schemes], "snapshots": len(dates), "full": True}
    written = scored = 0
    with store.run("run", params) as run_id:
        step = _stages(progress, len(dates))
        step("features and segments")
        start = time.perf_counter()
        # as the DuckDB run: only the feature columns the schemes read at every snapshot
        # (the per-snapshot families no scheme reads are most of Spark's stages); the full
        # features of the latest snapshot (kept for profiles) then from the pass's feature
        # state at that snapshot (the rest of history is not read again for them)
        # the survey's questions and the features' schema, read once for the run (each
        # survey read is a Spark job, each features expression seconds of planning)
        known = KnownSchema.read(tables, window_days=settings.rfm.window_days)
        groups, columns = required_features(tables, schemes, settings=settings, known=known)
        # materialised (and checkpointed: segflow.engine.ibis_backend) by snapshot_features
        state = None
        chunk = settings.engine.chunk_customers or SPARK_CHUNK_CUSTOMERS
        if columns is None:  # every column: the latest features are the pass's last snapshot
            features = snapshot_features(tables, dates, window_days=window, chunk_customers=chunk,
                                         known=known)
        else:
            features, state = snapshot_features_and_state(tables, dates, window_days=window,
                                                          groups=groups, columns=columns,
                                                          chunk_customers=chunk, known=known)
        models = _ClusterModels(store) if any(s.kind == "cluster" for s in schemes) else None
        released = False
        try:
            parts = []
            for scheme in schemes:
                a = assign(scheme, features, store=models.book if models else None,
                           schemes=schemes, by="snapshot_date")
                parts.append(a.select(
                    "snapshot_date", "customer_id", "segment",
                    segment_rank=a.segment_rank.cast("int64"),
                    scheme=ibis.literal(scheme.name), scheme_version=ibis.literal(scheme.version)))
            # every scheme's assignments at every snapshot, computed once (cached and
            # checkpointed, as the features: segflow.engine.ibis_backend) for the change
            # rows; not stored (the warehouse's segment_assignments is a view over those)
            rows = store.cache(ibis.union(*parts))
            try:
                written = int(rows.count().to_pyarrow().as_py())
                # the DuckDB run's checks (rules naming nobody, small segments) at the
                # latest snapshot: aggregations in Spark, counts to the driver
                at = ibis.literal(dates[-1], "date")
                notes += scheme_notes(schemes, features.filter(features.snapshot_date == at),
                                      {s.name: rows.filter(rows.scheme == s.name) for s in schemes},
                                      dates[-1])
                if models:
                    models.save_new(run_id)
                if state is not None:  # the latest features come from the state: free memory
                    features.release()
                    released = True
                step("change rows")
                spelled = time.perf_counter()
                _write_spells(store, rows, schemes, dates, run_id,
                              {s.name: settings_key(s, settings) for s in schemes})
                seconds["spells"] = time.perf_counter() - spelled
            finally:
                rows.release()  # before the latest features: one cached table fewer
            if state is None:
                latest = features.filter(features.snapshot_date == ibis.literal(dates[-1], "date"))
            else:  # as the DuckDB run's (segflow.pipeline): the same expression
                latest = state_features(tables, state, dates[-1], window_days=window,
                                        known=known).mutate(
                    snapshot_date=ibis.literal(dates[-1], "date"))
            store.write("customer_features", latest, run_id)
        finally:
            if not released:
                features.release()
            if state is not None:
                state.release()
        # the stage's time without the change rows' (timed apart, as before)
        seconds["features_and_segments"] = time.perf_counter() - start - seconds["spells"]

        step("CLV scores")
        start = time.perf_counter()
        kept: dict[str, object] = {}
        try:
            scored = _score(store, tables["transactions"], dates[-1], run_id, notes, kept)
            seconds["clv_scores"] = time.perf_counter() - start

            step("aggregates")
            start = time.perf_counter()
            frames: dict[str, pd.DataFrame] = {}
            write_warehouse_aggregates(store, run_id, schemes, dates, frames=frames,
                                       scored=scored > 0)
            seconds["aggregates"] = time.perf_counter() - start

            step("results")
            start = time.perf_counter()
            from segflow.warehouse._results import write_warehouse_results

            # the per-customer tables the profiles and campaign read-outs read again and
            # again, read once; the CLV diagnostics read the CLV stage's compressed summary
            # and cached purchase days (as on DuckDB: segflow.pipeline)
            view = _RunView(store, run_id, cached=RESULTS_CACHED)
            try:
                write_warehouse_results(store, view, run_id, schemes, frames,
                                        kept.get("btyd_triples"),  # type: ignore[arg-type]
                                        clv_days=kept.get("purchase_days"))
            finally:
                view.release()
            seconds["results"] = time.perf_counter() - start
        finally:
            if "purchase_days" in kept:
                kept["purchase_days"].release()  # type: ignore[attr-defined]
        step(None)
        if notes:  # the run log says what a stage could not do (runs.message), as on DuckDB
            store.annotate_run(run_id, "\n".join(notes))
    return RunSummary(run_id=run_id, engine="spark", snapshot_dates=dates,
                      schemes=[s.name for s in schemes], assignments_written=written,
                      seconds=seconds, scores_written=scored, notes=notes,
                      snapshots_computed=list(dates))


class _ClusterModels:
    """The warehouse's fitted cluster models in an in-memory DuckDB store (``book``), where
    :func:`segflow.segments.assign` finds a scheme version's model, or saves the one it
    fits; :meth:`save_new` writes the models fitted by this run to the warehouse."""

    def __init__(self, store: SparkStore) -> None:
        from segflow.segments._cluster_scheme import CLUSTER_MODELS_DDL
        from segflow.store import Store

        self.store = store
        self.book = Store(":memory:")
        self.book.raw.execute(CLUSTER_MODELS_DDL)
        self.known: set[tuple[str, str]] = set()
        if "cluster_models" in store.tables():
            rows = store.dataframe("cluster_models").drop("run_id").toArrow()
            self.book.append("cluster_models", rows)
            self.known = set(zip(rows["scheme"].to_pylist(), rows["scheme_version"].to_pylist(),
                                 strict=True))

    def save_new(self, run_id: str) -> None:
        rows = arrow_table(self.book.raw.execute("SELECT * FROM cluster_models"))
        fresh = [i for i, key in enumerate(zip(rows["scheme"].to_pylist(),
                                               rows["scheme_version"].to_pylist(), strict=True))
                 if key not in self.known]
        if fresh:
            self.store.write("cluster_models", rows.take(fresh), run_id)


def _write_spells(store: SparkStore, rows: ibis.Table, schemes: Sequence[SchemeSettings],
                  dates: list[dt.date], run_id: str, keys: dict[str, str]) -> None:
    """Change rows and computed snapshots of every scheme, from ``rows``: the run's
    assignments of every scheme at every snapshot of ``dates`` (``scheme, scheme_version,
    snapshot_date, customer_id, segment, segment_rank``; cached, so that Spark does not
    compute the features again). ``keys``: each scheme's settings key."""
    from segflow.store._spells import spells

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    snaps = pa.table({
        "scheme": [s.name for s in schemes for _ in dates],
        "scheme_version": [s.version for s in schemes for _ in dates],
        "snapshot_date": pa.array([d for _ in schemes for d in dates], pa.date32()),
        "settings_key": [keys[s.name] for s in schemes for _ in dates],
        "computed_at": pa.array([now] * (len(schemes) * len(dates)), pa.timestamp("us")),
    })
    # the same expression as the DuckDB store's (segflow.store._spells.spells)
    store.write("segment_spells", spells(rows, ibis.memtable(snaps.select(["scheme", "snapshot_date"]))),
                run_id)
    store.write("segment_snapshots", snaps, run_id)


def _score(store: SparkStore, transactions: ibis.Table, snapshot: dt.date, run_id: str,
           notes: list[str], keep: dict[str, object]) -> int:
    """CLV scores at ``snapshot`` (:func:`segflow.models._run_scores.score_clv`), written to the
    warehouse with the fitted models (``model_params``, as the DuckDB run saves them): the
    BTYD summary and the scoring run in Spark, the fit on the driver. ``keep`` receives the
    compressed summary (``btyd_triples``), which the CLV diagnostics read."""
    from segflow.models._run_scores import CLV_MODEL, score_clv
    from segflow.models._scoring import scores_long

    def sink(scores: ibis.Table, document: str) -> int:
        long = scores_long(scores, snapshot_date=snapshot, model=CLV_MODEL, run_id=run_id)
        n = store.write("customer_scores", long, run_id)
        store.write("model_params", pa.table({
            "snapshot_date": pa.array([snapshot], pa.date32()), "model": [CLV_MODEL],
            "params": [document],
            "fitted_at": pa.array([dt.datetime.now(dt.UTC).replace(tzinfo=None)], pa.timestamp("us")),
        }), run_id)
        return n

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # score_clv records its warnings in notes
        return score_clv(None, transactions, snapshot, run_id, notes=notes, sink=sink,  # type: ignore[arg-type]
                         keep=keep)


def write_warehouse_aggregates(store: SparkStore, run_id: str,
                               schemes: Sequence[SchemeSettings], dates: list[dt.date], *,
                               frames: dict[str, pd.DataFrame] | None = None,
                               scored: bool | None = None) -> dict[str, int]:
    """The report's segment and transition aggregates, computed in Spark from this run's rows
    (the change rows, transactions and scores) and written to the warehouse: the DuckDB
    run's own code (:func:`segflow.summaries._write._scheme_rows`: every scheme at once, on
    integer customer keys; same definitions, :mod:`segflow.summaries`), every snapshot and
    pair of snapshots. ``frames``, when given, receives the two tables as written (pandas).
    ``scored``: whether the run wrote CLV scores (at ``dates[-1]``), when the caller knows
    (else a query of the run's ``customer_scores``)."""
    from segflow.summaries._write import _Plan, _scheme_rows, snapshot_pairs

    view = _RunView(store, run_id)
    names = [s.name for s in schemes]
    if scored is None:
        scored = bool(store.dataframe("customer_scores", pending=run_id).where(
            f"run_id = '{run_id}'").limit(1).count())
    scored_dates = {dates[-1]} if scored else set()
    plan = {name: _Plan(list(dates), snapshot_pairs(dates)) for name in names}
    segments, transitions = _scheme_rows(view, names, plan, dates, scored_dates,  # type: ignore[arg-type]
                                         ordered_keys=True)
    written = {}
    for table, frame in (("summary_segments", segments), ("summary_transitions", transitions)):
        if frames is not None:
            frames[table] = frame
        if not frame.empty:
            written[table] = store.write(table, pa.Table.from_pandas(frame, preserve_index=False),
                                         run_id)
    return written
