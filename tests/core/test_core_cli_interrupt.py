"""Ctrl-C in a command: one `error: interrupted` line, exit status 130, the run logged as
failed; never a traceback, never ignored (segflow.cli._interrupt)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pytest

from segflow.cli._interrupt import MESSAGE
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
from segflow.__main__ import main
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

#: The interrupt arrives while DuckDB runs a query (hours long): DuckDB stops it and raises
#: "Query interrupted", and segflow's handler stops the query's worker threads (else the run
#: log's write waited for them). No timer from the start of the run: the signal goes 0.2 s
#: after the main thread is about to call DuckDB (on a machine so busy that the call has not
#: started by then, the interrupt lands in Python: the run log says so and the test tries
#: again).
IN_QUERY = """
        calling = threading.Event()

        def stop():
            calling.wait()
            time.sleep(0.2)
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=stop, daemon=True).start()
        query = "SELECT count(*) FROM range(100000000000) a WHERE hash(a.range) = 0"
        calling.set()
        self.store.raw.execute(query).fetchall()
"""

#: What the run log records as the failed run's message: the KeyboardInterrupt (its type's
#: name, it has no text), or DuckDB's error for the query it stopped (raised by its own check
#: of the signal, or by its worker threads stopped by the handler).
IN_PYTHON = "KeyboardInterrupt"
IN_DUCKDB = ("Query interrupted", "INTERRUPT Error: Interrupted!")


def _interrupted_run(folder, body: str):
    """Run `segflow run` with ``body``: the process and the run log's (status, message)."""
    Project.init(folder).close()
    script = SCRIPT.format(body=textwrap.indent(textwrap.dedent(body), " " * 8))
    proc = subprocess.run([sys.executable, "-c", script, str(folder)],
                          capture_output=True, text=True, timeout=60)
    con = duckdb.connect(str(folder / "segflow.duckdb"))  # the store opens for writing again
    try:
        runs = con.execute("SELECT status, message FROM runs").fetchall()
    finally:
        con.close()
    return proc, runs


@pytest.mark.parametrize(("body", "landed"), [(IN_GC, (IN_PYTHON,)), (IN_QUERY, IN_DUCKDB)],
                         ids=["in_gc_callback", "in_duckdb_query"])
def test_ctrl_c_is_one_line_and_exit_status_130(tmp_path, body, landed):
    for attempt in range(3):  # the query's: only when the signal came before DuckDB ran it
        proc, runs = _interrupted_run(tmp_path / f"p{attempt}", body)
        if body is not IN_QUERY or runs != [("failed", IN_PYTHON)]:
            break
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    assert "not interrupted" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: {MESSAGE}"], proc.stderr
    assert proc.stdout == ""
    assert len(runs) == 1 and runs[0][0] == "failed" and runs[0][1] in landed, runs


def test_ctrl_c_before_a_command_reaches_its_error_handling_is_the_same_line(monkeypatch):
    """An interrupt outside a command's user_errors() (`segflow run` imports segflow.project
    before it, its first second on the demo; or while the options are read) was Typer's
    silent exit status 130: the root group says the same line."""
    from typer.testing import CliRunner

    from segflow.cli import _common, app

    def interrupted(self, value):
        raise KeyboardInterrupt

    monkeypatch.setattr(_common.DateType, "__call__", interrupted)  # reading --snapshot
    result = CliRunner().invoke(app, ["segment", "--scheme", "rfm", "--snapshot", "2024-01-01"])
    assert result.exit_code == 130, result.output
    assert result.stdout == ""
    assert result.stderr == f"error: {MESSAGE}\n"


#: The console script's process with SIGINT arriving while `segflow.cli` is imported (its
#: import of Typer), before any handler of segflow's is installed (Python's default handler
#: set first: CI once ran this with SIGINT ignored, inherited, and the signal did nothing).
WHILE_STARTING = """
import importlib.abc, os, signal, sys, time

# Python's own Ctrl-C handler, as a terminal's command has it: an ignored SIGINT survives
# exec, and a test process started by one that ignores it (a background job of a
# non-interactive shell, a test worker) would ignore the signal sent below
signal.signal(signal.SIGINT, signal.default_int_handler)

class InterruptAtTyper(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "typer":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # Python's own handler raises in one of these sleeps
                time.sleep(0.01)
            print("the start was not interrupted", file=sys.stderr)
        return None

sys.meta_path.insert(0, InterruptAtTyper())
sys.argv = ["segflow", "--help"]
from segflow.__main__ import main
main()
"""


def test_ctrl_c_while_the_command_starts_is_the_same_line():
    """An interrupt in the command's first ~0.1 s (importing the CLI) printed Python's
    KeyboardInterrupt traceback: the console script enters at segflow.__main__."""
    from importlib.metadata import entry_points

    from segflow.__main__ import EARLY_MESSAGE

    assert EARLY_MESSAGE == f"error: {MESSAGE}"
    (script,) = entry_points(group="console_scripts", name="segflow")
    assert script.value == "segflow.__main__:main"
    proc = subprocess.run([sys.executable, "-c", WHILE_STARTING], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.splitlines() == [EARLY_MESSAGE], proc.stderr
    assert proc.stdout == ""


def test_ctrl_c_while_the_root_options_are_read_is_the_same_line(monkeypatch):
    """An interrupt while Click reads the root command's options (Typer imports pydantic
    there, ~0.15-0.3 s into a command) was Typer's silent exit status 130."""
    from typer.core import TyperGroup
    from typer.testing import CliRunner

    from segflow.cli import app

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(TyperGroup, "make_context", interrupted)
    result = CliRunner().invoke(app, ["segment", "--scheme", "rfm"])
    assert result.exit_code == 130, result.output
    assert result.stdout == ""
    assert result.stderr == f"error: {MESSAGE}\n"
