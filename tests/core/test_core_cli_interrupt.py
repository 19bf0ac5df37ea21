"""Ctrl-C in a command: one `error: interrupted` line, exit status 130, the run logged as
failed; never a traceback, never ignored (segflow.cli._interrupt)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pytest

from segflow.project import Project

#: `segflow run -p PROJECT` with Project.run replaced by BODY (inside the run log), in a
#: process of its own started through the console entry point.
SCRIPT = """
import gc, os, signal, sys, threading, time
from segflow.project import Project

def run(self, **kwargs):
    with self.store.run("run", {{}}):
{body}
    print("the run was not interrupted", file=sys.stderr)

Project.run = run
sys.argv = ["segflow", "run", "-p", sys.argv[1]]
from segflow.cli import main
main()
"""

#: The interrupt arrives inside a garbage-collector callback, where Python drops exceptions.
IN_GC = """
        fired = []

        def callback(phase, info):
            if phase == "start" and not fired:
                fired.append(1)
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(100):  # the handler runs at one of these bytecodes
                    pass

        gc.callbacks.append(callback)
        gc.collect()
        end = time.monotonic() + 5
        while time.monotonic() < end:
            pass
"""

#: The interrupt arrives while DuckDB runs a query: DuckDB stops it and raises "Query
#: interrupted" (its own check of the signal does not always come, so the query is also
#: stopped as DuckDB does it).
IN_QUERY = """
        def stop():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
            try:
                self.store.raw.interrupt()
            except Exception:  # DuckDB stopped the query itself and the store is closed
                pass

        threading.Timer(0.5, stop).start()
        self.store.raw.execute(
            "SELECT count(*) FROM range(100000000000) a WHERE hash(a.range) = 0").fetchall()
"""


@pytest.mark.parametrize("body", [IN_GC, IN_QUERY], ids=["in_gc_callback", "in_duckdb_query"])
def test_ctrl_c_is_one_line_and_exit_status_130(tmp_path, body):
    Project.init(tmp_path / "p").close()
    script = SCRIPT.format(body=textwrap.indent(textwrap.dedent(body), " " * 8))
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "p")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    assert "not interrupted" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: interrupted"), proc.stderr
    assert proc.stdout == ""
    con = duckdb.connect(str(tmp_path / "p" / "segflow.duckdb"), read_only=True)
    try:
        runs = con.execute("SELECT status, message FROM runs").fetchall()
    finally:
        con.close()
    assert len(runs) == 1 and runs[0][0] == "failed" and runs[0][1], runs
