"""Runs left ``running`` by a killed process are marked failed on the next open of the store."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from segflow.store import Store


def test_killed_run_is_marked_failed_on_next_open(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    # A child process starts a run and dies without finishing it (os._exit: no cleanup).
    code = textwrap.dedent(f"""
        import os
        from segflow.store import Store
        store = Store({str(db)!r})
        ctx = store.run("run", {{"k": 1}})
        ctx.__enter__()
        store.raw.execute("CHECKPOINT")
        os._exit(9)
    """)
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == 9
    with Store(db) as store:
        rows = store.sql("SELECT status, finished_at IS NOT NULL AS done, message FROM runs").to_pylist()
    assert len(rows) == 1
    assert rows[0]["status"] == "failed" and rows[0]["done"]
    assert "interrupted" in rows[0]["message"]


def test_own_running_run_is_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    store = Store(db)
    with store.run("run") as run_id:
        other = Store.__new__(Store)  # a second handle in this process recovers nothing of ours
        other.raw, other._lock = store.raw, store._lock
        other._recover_runs()
        status = store.sql("SELECT status FROM runs WHERE run_id = ?", [run_id]).column(0)[0].as_py()
        assert status == "running"
    assert store.sql("SELECT status FROM runs").column(0)[0].as_py() == "ok"
    store.close()


def test_second_writer_is_refused_with_a_lock_error(tmp_path: Path) -> None:
    import pytest

    from segflow.errors import StoreError

    db = tmp_path / "s.duckdb"
    Store(db).close()
    code = textwrap.dedent(f"""
        import sys, time
        from segflow.store import Store
        store = Store({str(db)!r})
        print("open", flush=True)
        time.sleep(30)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreError, match="lock") as info:
            Store(db)
        assert "\n" not in str(info.value).strip()
    finally:
        holder.kill()
        holder.wait()
