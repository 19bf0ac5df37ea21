"""The run's use of the stored feature state (table ``feature_state`` of the store).

A run that computes its latest snapshot stores the feature state there
(:func:`write_state`); a later run that computes only one new snapshot, right after the
stored one, carries it forward instead of reading all history
(:func:`latest_features`). A store without the table's rows, or with a state of another
snapshot or of other settings (:func:`segflow.features._state.state_key`), takes the
per-snapshot definition instead (same result, more work).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import ibis
from ibis.expr import operations as ops
from ibis.expr.types import CachedTable

from segflow.features._core import customer_features
from segflow.features._state import MEASURES, next_state, state_features, state_key


def stored_state(store: Any, tables: Mapping[str, ibis.Table], snapshot: dt.date,
                 window_days: int | None) -> ibis.Table | None:
    """The stored state at ``snapshot`` for ``window_days`` as a table on the backend of
    ``tables`` (``customer_id`` and :data:`MEASURES`), or None when there is none."""
    if tables["customers"]._find_backend() is not store.con:
        return None  # the state is read on the store's own DuckDB only
    rows = store.raw.execute(
        "SELECT DISTINCT snapshot_date, state_key FROM feature_state"
    ).fetchall()
    if rows != [(snapshot, state_key(window_days))]:
        return None
    return store.table("feature_state").select("customer_id", *MEASURES)


def latest_features(
    store: Any, tables: Mapping[str, ibis.Table], latest: dt.date, previous: dt.date | None,
    *, window_days: int | None,
) -> tuple[ibis.Table, ibis.Table | None]:
    """Every feature at ``latest`` (cached) and, when the stored state is at ``previous``,
    the state carried to ``latest`` (cached; else None: the caller computes it).

    The caller guarantees that no input row before ``previous`` changed since the stored
    state was written (true when the run computes only ``latest``, see
    :func:`segflow._plan.snapshots_to_compute`)."""
    prior = None if previous is None else stored_state(store, tables, previous, window_days)
    if prior is None:
        return customer_features(tables, latest, window_days=window_days).cache(), None
    state = next_state(tables, prior, previous, latest, window_days=window_days).cache()
    return state_features(tables, state, latest, window_days=window_days).cache(), state


def stored_features(store: Any, tables: Mapping[str, ibis.Table], snapshot: dt.date, *,
                    window_days: int | None) -> ibis.Table | None:
    """The run's stored ``customer_features`` when they are what
    ``customer_features(tables, snapshot, window_days=window_days)`` gives today (the same
    columns and rows, without ``snapshot_date``; lazy), else None: the caller computes them.

    They are when the table holds ``snapshot`` alone, the feature state stored with it in the
    same transaction is of ``snapshot`` and ``window_days``
    (:func:`segflow.features._state.state_key`: the same definitions), no input row dated
    before ``snapshot`` changed since the last successful run
    (:func:`segflow._plan.changed_since`), and ``tables`` are on the store's own DuckDB.
    Reading them takes a fraction of a second where computing them reads all history
    (minutes at 1M customers)."""
    from segflow._plan import changed_since

    if tables["customers"]._find_backend() is not store.con:
        return None
    if not {"customer_features", "feature_state"} <= set(store.tables()):
        return None
    if stored_state(store, tables, snapshot, window_days) is None:
        return None
    days = store.raw.execute("SELECT DISTINCT snapshot_date FROM customer_features").fetchall()
    if days != [(snapshot,)]:
        return None
    since = changed_since(store)
    if since is not None and since < dt.datetime.combine(snapshot, dt.time()):
        return None
    return store.table("customer_features").drop("snapshot_date")


def write_state(store: Any, state: ibis.Table, snapshot: dt.date, window_days: int | None,
                *, con: Any = None) -> None:
    """Replace the stored state by ``state`` (at ``snapshot``; materialised, as
    :func:`segflow.features._state.feature_state`, :func:`latest_features` and
    :func:`segflow.features._snapshots.snapshot_features_and_state` give it), then release
    ``state``. Inside the caller's transaction ``con`` (the run's), else in one of its own.
    A state computed on another backend than the store's is not stored (the stored one is
    removed)."""
    if state._find_backend() is not store.con:
        _execute(store, con, "DELETE FROM feature_state")
        return
    # an expression over in-memory tables (calendars) is materialised first: ibis registers
    # them on execution, the SQL alone would not find them
    held = state.cache() if state.op().find(ops.InMemoryTable) else state
    sql = store.con.compile(held.select("customer_id", *MEASURES))
    cols = ", ".join(f'"{m}"' for m in MEASURES)
    # replaced whole: a newer state version may carry other measures
    _execute(store, con,
             f"CREATE OR REPLACE TABLE feature_state AS SELECT DATE '{snapshot.isoformat()}' "
             f"AS snapshot_date, '{state_key(window_days)}' AS state_key, customer_id, {cols} "
             f"FROM ({sql})")
    if held is not state:
        held.release()
    if isinstance(state, CachedTable):  # a lazy expression has nothing to drop
        state.release()


def _execute(store: Any, con: Any, statement: str) -> None:
    """``statement`` on the transaction ``con``, or in a transaction of its own."""
    if con is not None:
        con.execute(statement)
        return
    with store.transaction() as own:
        own.execute(statement)


def current_features(store: Any, tables: Mapping[str, ibis.Table], snapshot: dt.date, *,
                     window_days: int | None) -> ibis.Table:
    """``customer_features(tables, snapshot, window_days=window_days)``: the run's stored
    table when it is that (:func:`stored_features`), else computed (lazy either way)."""
    stored = stored_features(store, tables, snapshot, window_days=window_days)
    if stored is not None:
        return stored
    return customer_features(tables, snapshot, window_days=window_days)
