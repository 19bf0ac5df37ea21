"""The whole segflow run, top to bottom.

    ingest ─▶ snapshot dates ─▶ per snapshot: features ─▶ per scheme: assignments
           ─▶ store (atomically) ─▶ CLV scores at the latest snapshot
           ─▶ migration between snapshots ─▶ report

Each stage lives in its own package; this module only wires them together. Table work is
Ibis on the chosen engine (DuckDB by default, Spark on request); results are written to the
DuckDB store once per run, inside one transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import warnings
from collections.abc import Callable, Sequence

import ibis
import pyarrow as pa

from segflow.config import SchemeSettings, Settings
from segflow.engine import Engine, connect, snapshot_dates
from segflow.errors import SegflowError
from segflow.store import CANONICAL_TABLES, Store

#: Table where a run stages its assignments before moving them in one transaction.
STAGING = "_staging_assignments"

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

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


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

    A group is needed when a scheme's assignment cannot be built on an unbound features
    table that lacks that group's columns (Ibis resolves column references when the
    expression is built, and the rule compiler rejects unknown features). Cluster schemes,
    whose features are chosen when they are fitted, need every group.
    """
    import ibis.common.exceptions as ibis_errors

    from segflow.features import FEATURE_GROUPS, FEATURES, customer_features
    from segflow.segments import assign

    if any(scheme.kind == "cluster" for scheme in schemes):
        return None
    schema = customer_features(
        tables, dt.date(2000, 1, 1), window_days=settings.rfm.window_days
    ).schema()
    all_groups = set(FEATURE_GROUPS)
    needed = {"rfm"}  # the customer base and recency: always computed
    for group in sorted(all_groups - needed):
        # a column outside the static registry is a survey answer (one per question)
        kept = {n: t for n, t in schema.items()
                if (FEATURES[n].group if n in FEATURES else "survey") != group}
        unbound = ibis.table(kept, name="segflow_features")
        try:
            for scheme in schemes:
                assign(scheme, unbound, schemes=schemes)
        except (AttributeError, SegflowError, ibis_errors.IbisError):
            needed.add(group)
    return needed


def compute_assignments(
    tables: dict[str, ibis.Table],
    snapshot: dt.date,
    schemes: Sequence[SchemeSettings],
    *,
    settings: Settings,
    store: Store | None = None,
    groups: set[str] | None = None,
) -> tuple[ibis.Table, dict[str, ibis.Table]]:
    """Features at ``snapshot`` (of ``groups``, default all) and the assignments of every
    scheme (lazy Ibis tables)."""
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


def _assignment_rows(
    assignments: ibis.Table, scheme: SchemeSettings, snapshot: dt.date, run_id: str
) -> pa.Table:
    table = assignments.select("customer_id", "segment", "segment_rank").to_pyarrow()
    n = table.num_rows
    return pa.table(
        {
            "scheme": pa.array([scheme.name] * n, pa.string()),
            "scheme_version": pa.array([scheme.version] * n, pa.string()),
            "snapshot_date": pa.array([snapshot] * n, pa.date32()),
            "customer_id": table["customer_id"].cast(pa.string()),
            "segment": table["segment"].cast(pa.string()),
            "segment_rank": table["segment_rank"].cast(pa.int32()),
            "run_id": pa.array([run_id] * n, pa.string()),
        }
    )


def run_pipeline(
    store: Store,
    settings: Settings,
    *,
    engine: str = "duckdb",
    progress: ProgressFn | None = None,
    all_features: bool = False,
) -> RunSummary:
    """Compute features and segment assignments for every snapshot date and scheme.

    ``all_features=True`` computes every feature at every snapshot; by default snapshots
    before the latest compute only the feature groups the schemes read (same assignments,
    less work).

    Assignments replace earlier ones for the same (scheme, snapshot date), so a re-run is
    idempotent. All writes of a run land in one transaction. The latest snapshot's features
    are kept in the table ``customer_features`` for profiles and the report.
    """
    seconds: dict[str, float] = {}
    schemes = resolve_schemes(settings)
    dates = resolve_snapshot_dates(store, settings)
    params = {"engine": engine, "schemes": [s.name for s in schemes], "snapshots": len(dates)}
    with store.run("run", params) as run_id:
        eng = connect(store, engine, settings=settings.engine)
        try:
            tables = canonical_tables(eng)
            from segflow.segments import check_scheme, freeze_cutoffs

            schemes = freeze_cutoffs(schemes, tables, window_days=settings.rfm.window_days)
            notes: list[str] = []
            # Assignments are staged in the store as they are computed (bounded memory) and
            # moved into segment_assignments in one transaction at the end (atomic run).
            store.raw.execute(
                f"CREATE OR REPLACE TABLE {STAGING} AS SELECT * FROM segment_assignments LIMIT 0"
            )
            latest_features: pa.Table | None = None
            start = time.perf_counter()
            # Earlier snapshots compute only the feature groups the schemes read; the latest
            # computes every feature (kept in customer_features for profiles and the report).
            groups = None if all_features else required_feature_groups(tables, schemes, settings=settings)
            for i, snapshot in enumerate(dates):
                if progress:
                    progress(f"snapshot {snapshot}", i, len(dates))
                features, assignments = compute_assignments(
                    tables, snapshot, schemes, settings=settings, store=store,
                    groups=None if i == len(dates) - 1 else groups,
                )
                for scheme in schemes:
                    store.append(
                        STAGING, _assignment_rows(assignments[scheme.name], scheme, snapshot, run_id)
                    )
                if i == len(dates) - 1:
                    latest_features = features.to_pyarrow()
                    for scheme in schemes:  # empty rules, small segments: warn once, at the end
                        notes += check_scheme(
                            scheme, features, assignments[scheme.name], snapshot=snapshot
                        )
            if progress:
                progress("snapshots done", len(dates), len(dates))
            seconds["features_and_segments"] = time.perf_counter() - start

            start = time.perf_counter()
            written = _write_run(store, latest_features, dates[-1] if dates else None)
            seconds["write"] = time.perf_counter() - start

            start = time.perf_counter()
            scored = score_clv(store, tables["transactions"], dates[-1], run_id, notes=notes)
            seconds["clv_scores"] = time.perf_counter() - start
        finally:
            eng.close()
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
    )


#: Settings of the CLV scores written by a run (see docs/models.md).
CLV_MODEL = "bgnbd_gg"
CLV_HORIZON_WEEKS = 52.0
CLV_ANNUAL_DISCOUNT_RATE = 0.1


def score_clv(
    store: Store,
    transactions: ibis.Table,
    snapshot: dt.date,
    run_id: str,
    *,
    notes: list[str] | None = None,
) -> int:
    """Fit BG/NBD and Gamma-Gamma on all history before ``snapshot`` (weekly time unit) and
    write each customer's P(alive), expected purchases and 52-week revenue CLV (10 % a year
    discount, margin 1) into ``customer_scores`` under model ``bgnbd_gg``.

    A base that cannot identify the count model (e.g. no repeat buyers) writes no scores; a
    spend model that cannot be fitted leaves out only ``expected_spend`` and ``clv``. The
    reason is added to ``notes`` and warned, the run itself goes on. Customers the models
    leave out of their fits (T = 0, non-positive mean spend) are counted in notes and scored.
    """
    from segflow.models import (
        BetaGeoModel,
        btyd_summary,
        compress,
        fit_spend_model,
        score_customers,
        write_scores,
    )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            summary = btyd_summary(transactions, calibration_end=snapshot, time_unit="W").cache()
            model = BetaGeoModel().fit(compress(summary))
            if getattr(model, "n_zero_T_", 0):
                warnings.warn(f"CLV: {model.n_zero_T_} customers with their first purchase on "
                              "the last day before the snapshot are left out of the fit and "
                              "scored as new customers", UserWarning, stacklevel=2)
            try:
                spend, spend_notes = fit_spend_model(compress(summary, ("x", "monetary_value")))
                for note in spend_notes:
                    warnings.warn(f"CLV: {note}", UserWarning, stacklevel=2)
            except SegflowError as exc:
                spend = None
                warnings.warn(f"no expected spend or CLV at {snapshot} (P(alive) and expected "
                              f"purchases are written): {exc}", UserWarning, stacklevel=2)
            scores = score_customers(
                summary, model, horizon=CLV_HORIZON_WEEKS, time_unit="W", spend_model=spend,
                annual_discount_rate=CLV_ANNUAL_DISCOUNT_RATE,
            )
            n = write_scores(store, scores, snapshot_date=snapshot, model=CLV_MODEL, run_id=run_id)
        except SegflowError as exc:
            message = f"CLV stage did not run: no CLV scores at {snapshot}: {exc}"
            warnings.warn(message, UserWarning, stacklevel=2)
            if notes is not None:
                notes.append(message)
            return 0
    if notes is not None:
        notes.extend(str(w.message) for w in caught if issubclass(w.category, UserWarning))
    return n


def _write_run(store: Store, latest_features: pa.Table | None, latest: dt.date | None) -> int:
    """Move the staged assignments into ``segment_assignments`` (replacing the same scheme
    and snapshot date) and the latest features into ``customer_features``, in one transaction."""
    with store.transaction() as con:
        con.execute(
            f"DELETE FROM segment_assignments WHERE (scheme, snapshot_date) IN "
            f"(SELECT DISTINCT scheme, snapshot_date FROM {STAGING})"
        )
        con.execute(f"INSERT INTO segment_assignments SELECT * FROM {STAGING}")
        written = int(con.execute(f"SELECT count(*) FROM {STAGING}").fetchone()[0])
        if latest_features is not None:
            n = latest_features.num_rows
            features = latest_features.append_column(
                "snapshot_date", pa.array([latest] * n, pa.date32())
            )
            store.replace("customer_features", features, con=con)
        con.execute(f"DROP TABLE {STAGING}")
    return written
