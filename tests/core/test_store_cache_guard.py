"""Cached tables are dropped only in the store's own thread and outside a garbage
collection: a drop from Rich's progress-bar thread (or any other) on the connection while a
run fetches a result closed that result ("Attempting to execute an unsuccessful or closed
pending query result", a 10M run lost after 29 minutes)."""

from __future__ import annotations

import threading

from segflow.store import Store, _cache_guard


def _exists(store: Store, name: str) -> bool:
    return store.raw.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
                             [name]).fetchone()[0] == 1


def test_a_drop_from_another_thread_or_a_collection_waits_for_the_owner():
    store = Store(":memory:")
    first = store.con.sql("SELECT 1 AS x").cache()
    name = first.op().name
    worker = threading.Thread(target=store.con._finalize_cached_table, args=(name,))
    worker.start()
    worker.join()
    assert _exists(store, name)  # deferred: the other thread did not touch the connection
    second = store.con.sql("SELECT 2 AS x").cache()  # the owner's next cache drops it
    assert not _exists(store, name) and _exists(store, second.op().name)
    # during a collection (a finalizer run by the garbage collector), even in the owner
    _cache_guard._phase("start", {})
    try:
        second.release()
    finally:
        _cache_guard._phase("stop", {})
    assert _exists(store, second.op().name)
    third = store.con.sql("SELECT 3 AS x").cache()
    third.release()  # an explicit release in the owner drops the deferred one first
    assert not _exists(store, second.op().name) and not _exists(store, third.op().name)
    store.close()


def test_a_store_worked_with_from_another_thread_releases_at_once():
    """The thread that caches is the store's: a run in a worker thread (a notebook's or a
    Streamlit script's thread) drops its tables when it releases them, nothing piles up."""
    store = Store(":memory:")
    names: list[str] = []

    def work() -> None:
        for i in range(3):
            t = store.con.sql(f"SELECT {i} AS x").cache()
            names.append(t.op().name)
            t.release()

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert names and not any(_exists(store, n) for n in names)
    store.close()
