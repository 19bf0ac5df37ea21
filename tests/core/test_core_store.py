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


def test_append_and_replace_read_a_stream_whole(memory_store):
    """An Arrow stream is scanned once: DuckDB's ``.arrow()`` of a result on the store's own
    connection ends (empty) at the next statement, and a reader scanned a second time is
    empty; append and replace read it into memory first, so every row lands."""
    con = memory_store.raw
    rows = "SELECT 'r' || i AS run_id FROM range(3) t(i)"
    assert memory_store.append("runs", con.execute(rows).arrow()) == 3
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 3
    memory_store.replace("copied_runs", con.execute(rows).arrow())
    assert con.execute("SELECT count(*) FROM copied_runs").fetchone()[0] == 3
    assert memory_store.append("runs", con.execute(rows)) == 3  # a pending result
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 6
    # assignments (stored as change rows) from a stream read several times by the merge
    day = pa.array([__import__("datetime").date(2024, 1, 1)] * 4, pa.date32())
    table = pa.table({"scheme": ["rfm"] * 4, "snapshot_date": day,
                      "customer_id": ["a", "b", "c", "d"], "segment": ["X", "X", "Y", "Y"],
                      "segment_rank": pa.array([1, 1, 2, 2], pa.int32())})
    assert memory_store.append("segment_assignments",
                               pa.RecordBatchReader.from_batches(table.schema, table.to_batches())) == 4
    stored = con.execute("SELECT customer_id, segment FROM segment_assignments ORDER BY 1").fetchall()
    assert stored == [("a", "X"), ("b", "X"), ("c", "Y"), ("d", "Y")]


def test_duckdb_results_read_as_arrow_without_deprecated_calls(memory_store):
    """segflow's own reads of DuckDB results (a pending result into a table, a result as a
    stream of batches) use DuckDB's current names: no DeprecationWarning (DuckDB 1.5 warns on
    fetch_arrow_table and fetch_record_batch, 2.0 drops them), the same rows as fetchall."""
    import warnings

    from segflow._duck import arrow_reader, arrow_table

    con = memory_store.raw
    rows = "SELECT i, 'r' || i AS s FROM range(7) t(i) ORDER BY i"
    expect = con.execute(rows).fetchall()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = arrow_table(con.execute(rows))
        batches = list(arrow_reader(con.execute(rows), 3))
        assert memory_store.append("runs", con.execute("SELECT 'x' AS run_id")) == 1
    assert list(zip(*table.to_pydict().values(), strict=True)) == expect
    assert sum(b.num_rows for b in batches) == 7 and all(b.num_rows <= 3 for b in batches)


def test_duckdb_results_become_arrow_only_through_the_helpers():
    """No module of segflow but segflow._duck calls DuckDB's Arrow methods itself (the
    direct calls session 58 found: warehouse, server, exports, sources, store): the helpers
    are the one place that names them, as pyproject's duckdb pin changes."""
    import re
    from pathlib import Path

    import segflow

    call = re.compile(r"\.(to_arrow_table|to_arrow_reader|fetch_arrow_table|fetch_record_batch)\(")
    root = Path(segflow.__file__).parent
    found = [f"{path.relative_to(root)}:{n}" for path in sorted(root.rglob("*.py"))
             if path.name != "_duck.py"
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if call.search(line)]
    assert found == []


def test_a_store_another_process_holds_names_the_way_out(tmp_path):
    """A store held by another process (a notebook's Project.open) is one line saying so and
    how to leave the commands free (read_only=True), not DuckDB's lock text alone."""
    import subprocess
    import sys

    path = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from segflow.store import Store; s = Store(sys.argv[1]); "
         "print('open', flush=True); sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreError) as err:
            Store(str(path))
        message = str(err.value)
        assert "\n" not in message and "Could not set lock" in message
        assert "another process has it open" in message and "read_only=True" in message
    finally:
        holder.communicate("")
