"""A command that writes the store refuses while a refresh of it runs in another process.

A refresh works on a copy of the store and renames it over the store at its end: rows that
`segflow ingest` or `segflow run` wrote to the store meanwhile would silently vanish. Here
the refresh is real (blocked half-way in a thread of this process, so the test decides when
it ends) or its lock is held by another process exactly as a refresh holds it
(:func:`segflow.refresh.refresh_lock`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading

import pytest
from tests.refresh._project import SRC, add_month, make_project, segflow_process, store_state
from typer.testing import CliRunner

from segflow.cli import app
from segflow.refresh import refresh
from segflow.store import Store
from segflow.store._refresh_guard import RefreshInProgress


def _holder(store_file) -> subprocess.Popen:
    """Another process holding the refresh lock of ``store_file`` until its stdin closes."""
    code = ("import sys\nfrom pathlib import Path\nfrom segflow.refresh import refresh_lock\n"
            f"with refresh_lock(Path({str(store_file)!r})):\n"
            "    print('held', flush=True)\n    sys.stdin.readline()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(SRC)},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _error_lines(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if ln.startswith("error:")]


def test_writers_refuse_while_another_process_holds_the_refresh_lock(tmp_path):
    project = make_project(tmp_path / "shop", months=2)
    store_file = project / "segflow.duckdb"
    first = CliRunner().invoke(app, ["ingest", "-p", str(project)])
    assert first.exit_code == 0, first.output
    before = store_state(store_file)
    add_month(project, 2)
    holder = _holder(store_file)
    try:
        for command in (["ingest"], ["run"], ["customers", "resolve"]):
            result = CliRunner().invoke(app, [*command, "-p", str(project)])
            assert result.exit_code == 1, result.output
            errors = _error_lines(result.output)
            assert len(errors) == 1 and errors[0].startswith(
                f"error: a refresh of {store_file} is running (pid {holder.pid}, started "), \
                result.output
            assert "Traceback" not in result.output
        with pytest.raises(RefreshInProgress, match=rf"\(pid {holder.pid}, started "):
            Store(store_file)
        with Store(store_file, read_only=True) as reader:  # readers are welcome
            assert reader.sql("SELECT count(*) AS n FROM loads")["n"][0].as_py() == 3
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert store_state(store_file) == before  # nothing was written
    # released: the same command works
    again = CliRunner().invoke(app, ["ingest", "-p", str(project)])
    assert again.exit_code == 0, again.output
    with Store(store_file, read_only=True) as store:
        assert store.sql("SELECT count(*) AS n FROM loads")["n"][0].as_py() == 4


def test_the_text_a_killed_refresh_leaves_does_not_block_writers(tmp_path):
    store_file = tmp_path / "segflow.duckdb"
    Store(store_file).close()
    holder = _holder(store_file)
    holder.send_signal(signal.SIGKILL)  # the kernel drops the lock; the pid text stays
    holder.wait(timeout=60)
    assert (tmp_path / "segflow.duckdb.refresh.lock").read_text().startswith(f"pid {holder.pid},")
    with Store(store_file) as store:  # not refused
        assert store.schema_version > 0


@pytest.mark.slow
def test_ingest_during_a_real_refresh_is_refused_and_the_refresh_completes(refreshed_shop, tmp_path):
    """Before the fix, this ingest loaded July into the store and the refresh's swap then
    replaced the store with its copy, which has no July: the ingest said 'loaded' and its
    rows were gone."""
    project = tmp_path / "shop"
    shutil.copytree(refreshed_shop[0], project)  # January to May, refreshed
    store_file = project / "segflow.duckdb"
    add_month(project, 5)
    halfway, resume = threading.Event(), threading.Event()

    def stage(message: str) -> None:
        if message.startswith("computing snapshots"):
            halfway.set()
            assert resume.wait(timeout=600)

    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = refresh(project, stage=stage)
        except BaseException as exc:  # reported by the main thread
            outcome["error"] = exc
            halfway.set()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert halfway.wait(timeout=600) and "error" not in outcome, outcome
        add_month(project, 6)  # a file the manual ingest would load and the swap would drop
        for command in ("ingest", "run"):
            proc = segflow_process(command, "-p", str(project))
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 1, err
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(
                f"error: a refresh of {store_file} is running (pid {os.getpid()}, started "), err
        # the report only reads: it shows the store as it is until the refresh replaces it
        report = segflow_process("report", "-p", str(project), "-o", str(tmp_path / "r.html"))
        out, err = report.communicate(timeout=600)
        assert report.returncode == 0, err
        assert (tmp_path / "r.html").stat().st_size > 0
    finally:
        resume.set()
        thread.join(timeout=600)
    assert "error" not in outcome, outcome
    assert outcome["result"].status == "refreshed"
    with Store(store_file, read_only=True) as store:
        months = store.sql("SELECT source_file FROM loads WHERE source = 'shop' ORDER BY 1")
    # the refresh loaded June (it saw it when it started); July waits for the next one
    assert months["source_file"].to_pylist() == [
        f"data/orders/orders-2024-{m:02d}.csv" for m in range(1, 7)]
    assert refresh(project).new_inputs == ["data/orders/orders-2024-07.csv"]
