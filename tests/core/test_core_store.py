"""The store: schema creation, versioned upgrades, refusal of newer stores, atomic writes."""

from __future__ import annotations

import pyarrow as pa
import pytest

from segflow.errors import StoreError
from segflow.store import CANONICAL_TABLES, SCHEMA_VERSION, Store, _schema


def test_new_store_has_canonical_tables_and_version(tmp_path):
    with Store(tmp_path / "s.duckdb") as store:
        assert store.schema_version == SCHEMA_VERSION
        tables = set(store.tables())
        assert set(CANONICAL_TABLES) | {"quarantine", "loads", "runs", "segment_assignments"} <= tables
        cols = [c for c in store.table("transactions").columns]
        assert cols[:4] == ["transaction_id", "customer_id", "ts", "amount"]


def test_older_store_is_upgraded(tmp_path, monkeypatch):
    path = tmp_path / "s.duckdb"
    Store(path).close()  # written at the current version
    extra = ["CREATE TABLE added_in_next_version (x INTEGER)"]
    monkeypatch.setattr(_schema, "MIGRATIONS", [*_schema.MIGRATIONS, extra])
    monkeypatch.setattr("segflow.store._store.MIGRATIONS", [*_schema.MIGRATIONS])
    monkeypatch.setattr("segflow.store._store.SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION + 1
        assert "added_in_next_version" in store.tables()


def test_failed_upgrade_leaves_store_unchanged(tmp_path, monkeypatch):
    path = tmp_path / "s.duckdb"
    with Store(path) as store:
        store.raw.execute("INSERT INTO runs (run_id) VALUES ('keep-me')")
    broken = ["CREATE TABLE half_done (x INTEGER)", "THIS IS NOT SQL"]
    monkeypatch.setattr("segflow.store._store.MIGRATIONS", [*_schema.MIGRATIONS, broken])
    monkeypatch.setattr("segflow.store._store.SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="left unchanged"):
        Store(path)
    monkeypatch.undo()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert "half_done" not in store.tables()
        assert store.raw.execute("SELECT run_id FROM runs").fetchall() == [("keep-me",)]


def test_newer_store_is_refused(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store(path) as store:
        store.raw.execute("INSERT INTO schema_info VALUES (?, now())", [SCHEMA_VERSION + 5])
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 5}"):
        Store(path)


def test_not_a_duckdb_file_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.duckdb"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open store"):
        Store(path)


def test_transaction_is_atomic(memory_store):
    data = pa.table({"run_id": ["a", "b"]})
    with pytest.raises(RuntimeError):
        with memory_store.transaction() as con:
            memory_store.append("runs", data, con=con)
            raise RuntimeError("crash mid-write")
    assert memory_store.raw.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    with memory_store.transaction() as con:
        assert memory_store.append("runs", data, con=con) == 2
    assert memory_store.raw.execute("SELECT count(*) FROM runs").fetchone()[0] == 2


def test_run_log_records_status(memory_store):
    with memory_store.run("unit", {"k": 1}) as run_id:
        pass
    with pytest.raises(ValueError):
        with memory_store.run("unit-fail"):
            raise ValueError("boom")
    rows = memory_store.raw.execute("SELECT run_id, command, status, message FROM runs ORDER BY started_at").fetchall()
    assert rows[0][:3] == (run_id, "unit", "ok")
    assert rows[1][1:] == ("unit-fail", "failed", "boom")


def test_store_connection_draws_no_progress_bar_on_stdout(tmp_path):
    # DuckDB's own progress bar goes to stdout, which is reserved for results (--json)
    with Store(tmp_path / "s.duckdb") as store:
        assert store.raw.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)
