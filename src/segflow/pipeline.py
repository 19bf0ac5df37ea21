"""The whole segflow run, top to bottom.

    ingest ─▶ snapshot dates ─▶ snapshots to compute (new or changed only)
           ─▶ features of all of them (one long table) ─▶ per scheme: assignments of all
           ─▶ change rows merged into the store (atomically) ─▶ CLV scores at the latest
           ─▶ migration between snapshots ─▶ report

Each stage lives in its own package; this module only wires them together. Table work is
Ibis on the chosen engine (DuckDB by default, Spark on request); results are written to the
DuckDB store once per run, inside one transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Sequence

import ibis
import pyarrow as pa
from ibis.expr.types import CachedTable

from segflow._plan import input_row_counts, settings_key, snapshots_to_compute, stale_snapshots
from segflow.config import SchemeSettings, Settings
from segflow.engine import Engine, connect, snapshot_dates
from segflow.errors import SegflowError
from segflow.features._core import KnownSchema
from segflow.features._stored_state import write_state
from segflow.store import CANONICAL_TABLES, Store

#: A progress callback: (stage description, steps done, steps total).
ProgressFn = Callable[[str, int, int], None]


@dataclasses.dataclass
class RunSummary:
    """What a run computed: snapshot dates, schemes, rows written, seconds per stage."""

    run_id: str
    engine: str
    snapshot_dates: list[dt.date]
    schemes: list[str]
    assignments_written: int
    seconds: dict[str, float]
    scores_written: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)
    #: The snapshot dates this run computed (the others were up to date).
    snapshots_computed: list[dt.date] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    def __repr__(self) -> str:
        span = (f"{self.snapshot_dates[0]}→{self.snapshot_dates[-1]}" if self.snapshot_dates
                else "no snapshots")
        return (f"RunSummary(run_id={self.run_id!r}, {self.engine}, {len(self.snapshots_computed)} of "
                f"{len(self.snapshot_dates)} snapshots computed ({span}), {len(self.schemes)} schemes, "
                f"{self.assignments_written:,} assignments, {sum(self.seconds.values()):.1f} s)")


def canonical_tables(engine: Engine) -> dict[str, ibis.Table]:
    """The canonical input tables of the store as Ibis tables on ``engine``."""
    return {name: engine.table(name) for name in CANONICAL_TABLES}


def resolve_schemes(settings: Settings) -> list[SchemeSettings]:
    """The schemes of the project file, or the built-in ones when it names none (an unset
    ``bins`` takes ``[rfm] bins``)."""
    from segflow.segments import builtin_schemes, with_project_defaults

    schemes = list(settings.schemes) if settings.schemes else builtin_schemes()
    return with_project_defaults(schemes, rfm_bins=settings.rfm.bins)


def resolve_snapshot_dates(store: Store, settings: Settings) -> list[dt.date]:
    """Snapshot dates of the project: from ``[periods]`` and the span of the transactions."""
    first, last = store.raw.execute(
        "SELECT min(ts)::DATE, max(ts)::DATE FROM transactions WHERE customer_id IS NOT NULL"
    ).fetchone()
    return snapshot_dates_between(settings, first, last)


def snapshot_dates_between(
    settings: Settings, first: dt.date | None, last: dt.date | None
) -> list[dt.date]:
    """Snapshot dates of ``[periods]`` for transactions from ``first`` to ``last`` (their
    dates; ``None`` when there are none)."""
    periods = settings.periods
    if periods.granularity == "dates":
        if not periods.dates:
            raise SegflowError("periods.granularity = 'dates' needs periods.dates = [...]")
        return sorted(set(periods.dates))
    if first is None:
        raise SegflowError("the store has no transactions yet; run `segflow ingest` first")
    return snapshot_dates(
        periods.granularity, first, last, start=periods.start, end=periods.end
    )


def required_feature_groups(
    tables: dict[str, ibis.Table], schemes: Sequence[SchemeSettings], *, settings: Settings
) -> set[str] | None:
    """The feature groups the schemes read, or ``None`` for all of them.

    A group is needed when a scheme's assignment reads one of its columns: each scheme is
    assigned once on an unbound table of every feature, and the columns its expression reads
    (:func:`segflow._lineage.columns_read`) name the groups (no scheme's assignment depends
    on whether a column it does not read exists). A scheme that cannot be assigned there
    (an unknown feature) needs every group: the run then fails with its own error. A cluster
    scheme reads the features it is fitted on
    (:func:`segflow.segments._cluster_scheme.cluster_feature_columns`): their groups.
    """
    return required_features(tables, schemes, settings=settings)[0]


def required_feature_columns(
    tables: dict[str, ibis.Table], schemes: Sequence[SchemeSettings], groups: set[str] | None,
    *, settings: Settings,
) -> list[str] | None:
    """The columns of ``groups`` the schemes read, leaving out the families of columns that
    :func:`segflow.features.snapshot_features` can skip (``OPTIONAL_FAMILIES``: parts of the
    ``pattern``, ``breadth`` and ``web`` groups) and the survey questions no scheme reads
    (None: every column).

    As for :func:`required_feature_groups`, a family is needed when a scheme's assignment
    reads one of its columns (or a cluster scheme is fitted on one).
    """
    if groups is None:
        return None
    from segflow.features import customer_features

    schema = customer_features(
        tables, dt.date(2000, 1, 1), window_days=settings.rfm.window_days, groups=groups
    ).schema()
    return _needed_columns(schemes, dict(schema.items()), _schemes_read(schemes, schema))


def required_features(
    tables: dict[str, ibis.Table], schemes: Sequence[SchemeSettings], *, settings: Settings,
    known: KnownSchema | None = None,
) -> tuple[set[str] | None, list[str] | None]:
    """:func:`required_feature_groups` and then :func:`required_feature_columns` of those
    groups, from one features schema (``known``'s, else read and built: one survey query)
    and one assignment per scheme."""
    from segflow.features import FEATURE_GROUPS
    from segflow.features._core import feature_group
    from segflow.segments._cluster_scheme import cluster_feature_columns

    clustered = cluster_feature_columns(schemes)
    if clustered is None:
        return None, None
    if known is None or known.schema is None:
        known = KnownSchema.read(tables, window_days=settings.rfm.window_days)
    assert known.schema is not None
    read = _schemes_read(schemes, known.schema)
    groups = set(FEATURE_GROUPS)
    if read is not None:  # rfm: the customer base, recency
        groups &= {"rfm"} | {feature_group(c) for c in (*clustered, *read)}
    kept = known.of_groups(groups)
    assert kept is not None
    return groups, _needed_columns(schemes, dict(kept.items()), read)


def _schemes_read(
    schemes: Sequence[SchemeSettings], schema: ibis.Schema
) -> set[str] | None:
    """The columns of a features table of ``schema`` that the assignments of the schemes
    other than cluster schemes read; None when one of them cannot be built on it."""
    import ibis.common.exceptions as ibis_errors

    from segflow._lineage import columns_read
    from segflow.segments import assign

    unbound = ibis.table(schema, name="segflow_features")
    try:
        assigned = [assign(s, unbound, schemes=schemes) for s in schemes if s.kind != "cluster"]
    except (AttributeError, SegflowError, ibis_errors.IbisError):
        return None
    return columns_read(assigned, unbound)


def _needed_columns(
    schemes: Sequence[SchemeSettings], schema: dict[str, object], read: set[str] | None
) -> list[str]:
    """The columns of ``schema`` without the optional families and survey questions that no
    scheme reads (``read``; None: the schemes cannot be built on it, every column)."""
    from segflow.features import FEATURES
    from segflow.features._snapshots import OPTIONAL_FAMILIES
    from segflow.segments._cluster_scheme import cluster_feature_columns

    if read is None:
        return list(schema)
    used = read | set(cluster_feature_columns(schemes) or ())
    families = [f for f in OPTIONAL_FAMILIES if set(f) <= set(schema)]
    families += [(n,) for n in schema if n not in FEATURES and n != "customer_id"]  # survey
    dropped = {n for f in families if not used & set(f) for n in f}
    return [n for n in schema if n not in dropped]


def compute_assignments(
    tables: dict[str, ibis.Table],
    snapshot: dt.date,
    schemes: Sequence[SchemeSettings],
    *,
    settings: Settings,
    store: Store | None = None,
    groups: set[str] | None = None,
) -> tuple[ibis.Table, dict[str, ibis.Table]]:
    """Features at one ``snapshot`` (of ``groups``, default all) and the assignments of every
    scheme (lazy Ibis tables): the readable per-snapshot form of what a run computes."""
    from segflow.features import customer_features
    from segflow.segments import assign

    features = customer_features(
        tables, snapshot, window_days=settings.rfm.window_days, groups=groups
    )
    # Materialise once: every downstream execute would otherwise recompute the features.
    features = features.cache()
    assignments = {
        scheme.name: assign(scheme, features, store=store, schemes=schemes) for scheme in schemes
    }
    return features, assignments


def run_pipeline(
    store: Store,
    settings: Settings,
    *,
    engine: str = "duckdb",
    progress: ProgressFn | None = None,
    all_features: bool = False,
    full: bool = False,
) -> RunSummary:
    """Compute features and segment assignments for the snapshots that need it.

    The snapshots computed are those of :func:`segflow._plan.snapshots_to_compute`: snapshots not yet
    computed under the schemes' current definitions, and every snapshot after the earliest
    data loaded since the last run; ``full=True`` recomputes them all. Features of all of
    them are one long table (:func:`segflow.features.snapshot_features`), every scheme
    assigns all of them at once, and the assignments are merged into the stored change rows
    (``segment_spells``; the view ``segment_assignments`` gives them per snapshot).

    ``all_features=True`` computes every feature at every snapshot; by default only the
    feature groups the schemes read (same assignments, less work), and every feature at the
    latest snapshot, kept in the table ``customer_features`` for profiles and the report (a
    run that computes only the latest snapshot assigns from those).

    The segments, the latest features and the feature state land in one transaction; the
    CLV scores (with the BTYD state) and the aggregates follow, each in one of its own. A
    run that fails or is killed after committing its segments leaves them to be computed
    again by the next run (:func:`segflow._plan.snapshots_to_compute`), and until then the stored
    aggregates are not taken as current (:func:`segflow.summaries.summaries_run`). A run with
    nothing to compute changes no stored result (only the run log, which records that it
    computed nothing).

    This is the run on the DuckDB store; on Spark the run reads and writes the project's
    warehouse instead (:func:`segflow.warehouse.run_on_warehouse`, which
    ``Project.run(engine="spark")`` and ``segflow run`` call): ``engine="spark"`` here
    raises :class:`SegflowError`.
    """
    if engine == "spark":
        raise SegflowError("run_pipeline runs on the DuckDB store; on Spark use "
                           "Project.run(engine='spark') (the project's warehouse, docs/scale.md)")
    seconds: dict[str, float] = {}
    schemes = resolve_schemes(settings)
    dates = resolve_snapshot_dates(store, settings)
    inputs = input_row_counts(store)
    params = {"engine": engine, "schemes": [s.name for s in schemes], "snapshots": len(dates),
              "full": full, "input_rows": inputs}
    notes: list[str] = []
    written = scored = 0
    with store.run("run", params) as run_id:
        eng = connect(store, engine, settings=settings.engine)
        try:
            tables = canonical_tables(eng)
            from segflow.segments import freeze_cutoffs

            start = time.perf_counter()
            schemes = freeze_cutoffs(schemes, tables, window_days=settings.rfm.window_days)
            # snapshots of an earlier [periods] setting: deleted as the run writes its own
            stale = stale_snapshots(store, schemes, dates)
            todo = snapshots_to_compute(store, schemes, dates, settings=settings, full=full,
                                        current_run=run_id, stale=stale)
            computed = sorted({d for days in todo.values() for d in days})
            from segflow.segments import reference_notes

            notes += reference_notes(schemes, computed)
            seconds["plan"] = time.perf_counter() - start
            if progress:
                progress(f"{len(computed)} of {len(dates)} snapshots to compute", 0,
                         max(len(computed), 1))
            if computed:
                start = time.perf_counter()
                # one new latest snapshot: its full features are computed anyway (for
                # `customer_features`), so the schemes read those (same assignments) and the
                # groups they need are not worked out
                one_latest = computed == [dates[-1]]
                # the survey's questions and the features' schema, read once for the run
                known = None if one_latest else KnownSchema.read(
                    tables, window_days=settings.rfm.window_days)
                groups, columns = (None, None) if all_features or one_latest else (
                    required_features(tables, schemes, settings=settings, known=known))
                features, assignments, latest, state = _features_and_assignments(
                    tables, store, schemes, computed, groups=groups, columns=columns,
                    known=known, settings=settings,
                    latest=dates[-1] if dates[-1] in computed else None,
                    previous=dates[-2] if len(dates) > 1 else None,
                )
                if latest is not None:
                    notes += scheme_notes(schemes, latest, assignments, dates[-1])
                seconds["features_and_segments"] = time.perf_counter() - start

                start = time.perf_counter()
                try:
                    written = _write_run(store, eng, schemes, assignments, todo, features,
                                         latest, dates[-1], run_id=run_id, settings=settings,
                                         state=state, stale=stale)
                finally:  # also when the write fails (a notebook's session goes on)
                    if isinstance(features, CachedTable):  # not one new snapshot's view
                        features.release()
                    for table in assignments.values():
                        if isinstance(table, CachedTable):  # one new snapshot's (see above)
                            table.release()
                seconds["write"] = time.perf_counter() - start
                start = time.perf_counter()
                from segflow.models._run_scores import CLV_MODEL, score_clv

                # the CLV scores of an earlier snapshot computed again (its input or
                # [periods] changed) are those of the run that had it as latest, on the old
                # data: a run from scratch has none there
                old = {d for d in computed if d != dates[-1]} | {
                    d for days in stale.values() for d in days}
                if old:  # none for one new month; the models fitted with them too
                    with store.transaction() as con:
                        for table in ("customer_scores", "model_params"):
                            con.execute(f"DELETE FROM {table} WHERE model = ? AND snapshot_date "
                                        "IN (SELECT unnest(?::DATE[]))", [CLV_MODEL, sorted(old)])
                kept: dict[str, object] = {}
                # one new snapshot: nothing before the one it follows changed (as for features)
                carried = dates[-2] if len(dates) > 1 and computed == [dates[-1]] else None
                scored = score_clv(store, tables["transactions"], dates[-1], run_id, notes=notes,
                                   keep=kept, carried_from=carried)
                seconds["clv_scores"] = time.perf_counter() - start

                start = time.perf_counter()
                from segflow.summaries import campaign_scheme, write_aggregates

                # only the snapshots (and pairs) this run computed or scored are summarised again
                changed = {s.name: {*todo.get(s.name, ()), dates[-1]} for s in schemes}
                # a snapshot not computed again means no input before it changed
                kept_dates = [d for s in schemes for d in set(dates) - set(todo.get(s.name, ()))]
                try:
                    write_aggregates(store, run_id, kinds={s.name: s.kind for s in schemes},
                                     changed=None if full else changed,
                                     campaign_scheme=campaign_scheme([s.name for s in schemes]),
                                     clv_triples=kept.get("btyd_triples"),
                                     clv_days=kept.get("purchase_days"),
                                     clv_states=kept.get("btyd_states"),
                                     unchanged_before=None if full or not kept_dates else
                                     dt.datetime.combine(max(kept_dates), dt.time()))
                finally:
                    for shared in ("purchase_days", "btyd_states"):
                        if shared in kept:
                            kept[shared].release()
                seconds["aggregates"] = time.perf_counter() - start
            else:
                from segflow.summaries import add_missing_results, campaign_scheme

                # a store whose aggregates an older segflow wrote: add the results it lacks
                start = time.perf_counter()
                if add_missing_results(store, run_id, campaign_scheme([s.name for s in schemes])):
                    seconds["aggregates"] = time.perf_counter() - start
            if progress:
                progress("snapshots done", max(len(computed), 1), max(len(computed), 1))
        finally:
            eng.close()
    if not computed and hasattr(store, "annotate_run_params"):
        # the run log says this run changed nothing: the report's aggregates of an earlier
        # run still describe the stored results (segflow.summaries.summaries_run)
        store.annotate_run_params(run_id, snapshots_computed=0)
    if notes:  # the run log says what a stage could not do (runs.message)
        store.annotate_run(run_id, "\n".join(notes))
    return RunSummary(
        run_id=run_id,
        engine=engine,
        snapshot_dates=dates,
        schemes=[s.name for s in schemes],
        assignments_written=written,
        seconds=seconds,
        scores_written=scored,
        notes=notes,
        snapshots_computed=computed,
    )


def _features_and_assignments(
    tables: dict[str, ibis.Table],
    store: Store,
    schemes: Sequence[SchemeSettings],
    computed: list[dt.date],
    *,
    groups: set[str] | None,
    columns: list[str] | None = None,
    known: KnownSchema | None = None,
    settings: Settings,
    latest: dt.date | None,
    previous: dt.date | None = None,
) -> tuple[ibis.Table, dict[str, ibis.Table], ibis.Table | None, ibis.Table | None]:
    """The long features table of ``computed`` (cached; when ``computed`` is the latest alone,
    a view of the cached latest features), every scheme's assignments of all those snapshots
    (lazy; cached when ``computed`` is the latest alone: at every snapshot they are as many
    rows as customers x snapshots x schemes, too many to hold for the checks), the latest
    snapshot's full features and feature state (both cached), if computed; ``previous`` is the snapshot before
    ``latest``; ``columns`` those of ``groups`` to compute (default
    :func:`required_feature_columns`); ``known`` the survey registry and features schema
    of the tables, when read already."""
    from segflow.features import snapshot_features
    from segflow.features._snapshots import snapshot_features_and_state
    from segflow.features._state import state_features
    from segflow.features._stored_state import latest_features
    from segflow.segments import assign

    window = settings.rfm.window_days
    full_latest = state = None
    if latest is not None and computed == [latest]:
        # One snapshot (one new month): its features in full (for `customer_features`), from
        # the stored feature state carried forward or else the per-snapshot definition, also
        # feed the assignments (equal to the one pass, tests/features): every column, which
        # the schemes read as they read those of their groups
        full_latest, state = latest_features(store, tables, latest, previous, window_days=window)
        # a view of the cached features with their snapshot date (not a copy of them)
        features = full_latest.select(snapshot_date=ibis.literal(latest, "date"),
                                      **{c: full_latest[c] for c in full_latest.columns})
        # materialised (one snapshot: a few columns per customer): read by the checks and
        # by the write, which would each compute them again
        assignments = {
            s.name: assign(s, features, store=store, schemes=schemes, by="snapshot_date").cache()
            for s in schemes
        }
        return features, assignments, full_latest, state
    if columns is None:
        columns = required_feature_columns(tables, schemes, groups, settings=settings)
    if latest is not None:  # the state at the latest snapshot from the same pass
        features, state = snapshot_features_and_state(
            tables, computed, window_days=window, groups=groups, columns=columns,
            chunk_customers=settings.engine.chunk_customers, known=known)
    else:  # materialised already (caching it again would copy it)
        features = snapshot_features(tables, computed, window_days=window, groups=groups,
                                     columns=columns, known=known,
                                     chunk_customers=settings.engine.chunk_customers)
    assignments = {
        s.name: assign(s, features, store=store, schemes=schemes, by="snapshot_date")
        for s in schemes
    }
    if latest is not None:
        if groups is None:
            full_latest = features.filter(features.snapshot_date == ibis.literal(latest, "date"))
            full_latest = full_latest.drop("snapshot_date").cache()
        else:  # the groups the schemes do not read: from the pass's state, not all history
            full_latest = state_features(tables, state, latest, window_days=window,
                                         known=known).cache()
    return features, assignments, full_latest, state


def scheme_notes(
    schemes: Sequence[SchemeSettings],
    latest: ibis.Table,
    assignments: dict[str, ibis.Table],
    snapshot: dt.date,
) -> list[str]:
    """check_scheme's notes at the latest snapshot (empty rules, small segments): ``latest``
    the features at ``snapshot``, ``assignments`` each scheme's (with ``snapshot_date``; other
    snapshots are filtered out). Ibis aggregations in the engine: counts come to Python."""
    from segflow.segments import check_scheme

    notes: list[str] = []
    for scheme in schemes:
        a = assignments[scheme.name]
        at = a.filter(a.snapshot_date == ibis.literal(snapshot, "date")).drop("snapshot_date")
        notes += check_scheme(scheme, latest, at, snapshot=snapshot)
    return notes


def _write_run(
    store: Store,
    eng: Engine,
    schemes: Sequence[SchemeSettings],
    assignments: dict[str, ibis.Table],
    todo: dict[str, list[dt.date]],
    features: ibis.Table,
    latest_features: ibis.Table | None,
    latest: dt.date,
    *,
    run_id: str,
    settings: Settings,
    state: ibis.Table | None = None,
    stale: dict[str, list[dt.date]] | None = None,
) -> int:
    """Merge every scheme's assignments at its snapshots to compute into the stored spells
    (deleting first its ``stale`` snapshots, no longer dates of the project) and replace ``customer_features`` by the latest snapshot's features and the stored
    feature state by ``state`` (the next run's starting point, released once written;
    :mod:`segflow.features._stored_state`), in one transaction.

    On DuckDB the assignments go from the engine into the spells in one INSERT ... SELECT,
    and the latest features into ``customer_features`` in one CREATE TABLE ... AS SELECT (no
    rows through Python); on another engine they arrive as Arrow first.

    Returns the number of per-snapshot assignment rows computed (customers x snapshots x
    schemes).
    """
    from segflow.store._spells import write_spells

    sizes = _sizes(features)
    in_engine = eng.name == "duckdb"  # the engine computes on the store's own connection
    latest_arrow = (latest_features.to_pyarrow()
                    if latest_features is not None and not in_engine else None)
    written = 0
    with store.transaction() as con:
        for scheme in schemes:
            days = todo[scheme.name]
            if not days:
                continue
            for day in (stale or {}).get(scheme.name, ()):
                con.execute("DELETE FROM segment_snapshots WHERE scheme = ? AND snapshot_date = ?",
                            [scheme.name, day])
            a = assignments[scheme.name]
            a = a.filter(a.snapshot_date.isin([ibis.literal(d, "date") for d in days]))
            source, cleanup = _relation(store, eng, a, con)
            rows = sum(sizes.get(d, 0) for d in days)
            try:
                write_spells(con, scheme=scheme.name, scheme_version=scheme.version, source=source,
                             snapshots=days, run_id=run_id,
                             settings_key=settings_key(scheme, settings), expected_rows=rows)
            finally:
                cleanup()
            written += rows
        if latest_features is not None and in_engine:
            con.execute(f'CREATE OR REPLACE TABLE customer_features AS SELECT *, '
                        f"DATE '{latest.isoformat()}' AS snapshot_date "
                        f"FROM ({store.con.compile(latest_features)})")
        elif latest_arrow is not None:
            n = latest_arrow.num_rows
            rows = latest_arrow.append_column("snapshot_date", pa.array([latest] * n, pa.date32()))
            store.replace("customer_features", rows, con=con)
        if state is not None:
            write_state(store, state, latest, settings.rfm.window_days, con=con)
    return written


def _sizes(features: ibis.Table) -> dict[dt.date, int]:
    counts = features.group_by("snapshot_date").aggregate(n=features.count()).to_pyarrow()
    return dict(zip(counts["snapshot_date"].to_pylist(), counts["n"].to_pylist(), strict=True))


def _relation(
    store: Store, eng: Engine, table: ibis.Table, con: object
) -> tuple[str, Callable[[], None]]:
    """SQL for ``table`` on the store's connection, and how to clean up after it."""
    if eng.name == "duckdb":
        return f"({store.con.compile(table)})", lambda: None
    name = f"_segflow_assign_{run_hex()}"
    con.register(name, table.to_pyarrow())  # type: ignore[attr-defined]
    return name, lambda: con.unregister(name)  # type: ignore[attr-defined]


def run_hex() -> str:
    import uuid

    return uuid.uuid4().hex[:8]
