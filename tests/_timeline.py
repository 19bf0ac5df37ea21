"""Where the test suite's time goes: a pytest plugin that records, per xdist worker, each
test's start, wall seconds and CPU seconds (the worker's, with its reaped children), and a
summary of the records.

Record (the suite as ``make test`` runs it, plus the plugin)::

    SEGFLOW_TIMELINE=/tmp/tl .venv/bin/python -m pytest -n 2 --dist loadgroup -p tests._timeline

Summarise: ``.venv/bin/python -m tests._timeline /tmp/tl`` prints, per worker, its span and
its xdist groups in the order it ran them (wall and CPU seconds), then the slowest tests.
Wall well above CPU means waiting: for a subprocess not reaped by the worker (a fork
server's children, a Spark JVM) or for a core the other worker and the JVMs hold (the
suite is CPU-bound on two cores). docs/benchmarks.md, "The test suite's time".
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

_OUT: dict[str, object] = {}


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _write(event: str, nodeid: str) -> None:
    folder = os.environ.get("SEGFLOW_TIMELINE")
    if not folder:
        return
    if "file" not in _OUT:
        Path(folder).mkdir(parents=True, exist_ok=True)
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        _OUT["file"] = open(Path(folder) / f"{worker}.jsonl", "a")  # noqa: SIM115
    out = _OUT["file"]
    out.write(json.dumps({"ev": event, "id": nodeid, "t": time.time(), "cpu": _cpu()}) + "\n")
    out.flush()


def pytest_configure(config) -> None:  # noqa: ANN001
    # the xdist controller sees every worker's tests again, as they are reported: not recorded
    _OUT["controller"] = bool(getattr(config.option, "numprocesses", None)) and \
        "PYTEST_XDIST_WORKER" not in os.environ


def pytest_runtest_logstart(nodeid: str, location: tuple) -> None:
    if not _OUT.get("controller"):
        _write("start", nodeid)


def pytest_runtest_logfinish(nodeid: str, location: tuple) -> None:
    if not _OUT.get("controller"):
        _write("end", nodeid)


def _tests(path: Path) -> list[tuple[float, float, float, str]]:
    """(start, wall, cpu, test id) of each finished test in one worker's records."""
    started, out = {}, []
    for line in path.read_text().splitlines():
        e = json.loads(line)
        if e["ev"] == "start":
            started[e["id"]] = e
        elif e["id"] in started:
            s = started.pop(e["id"])
            out.append((s["t"], e["t"] - s["t"], e["cpu"] - s["cpu"], e["id"]))
    return sorted(out)


def summarise(folder: Path, slowest: int = 25) -> None:
    """Print each worker's groups in order and the ``slowest`` tests (stdout)."""
    every = []
    for path in sorted(folder.glob("*.jsonl")):
        tests = _tests(path)
        if not tests:
            continue
        t0 = tests[0][0]
        span = max(s + w for s, w, _, _ in tests) - t0
        print(f"== {path.stem}: {span:.0f} s, {sum(c for _, _, c, _ in tests):.0f} CPU-s")
        groups: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0])
        for start, wall, cpu, test in tests:
            group = test.rsplit("@", 1)[1] if "@" in test else test.split("::")[0]
            g = groups[group]
            if not g[3]:
                g[2] = start - t0
            g[0] += wall
            g[1] += cpu
            g[3] += 1
        for name, (wall, cpu, at, n) in groups.items():
            if wall >= 5:
                print(f"  at {at:6.0f} s  {wall:6.1f} s wall {cpu:6.1f} CPU-s  {n:3d} tests  {name}")
        every += tests
    print(f"== the {slowest} slowest tests (wall, CPU-s)")
    for _, wall, cpu, test in sorted(every, key=lambda x: -x[1])[:slowest]:
        print(f"  {wall:6.1f} {cpu:6.1f}  {test[:150]}")


if __name__ == "__main__":
    summarise(Path(sys.argv[1]))
