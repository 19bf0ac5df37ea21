"""Where a Spark application's time went, from its event log (``bench_spark.py --event-log``).

    python bench/spark_eventlog.py /tmp/eventlog                  # every application in it
    python bench/spark_eventlog.py /tmp/eventlog/eventlog_v2_local-1796...  --top 15

Per application (one per bench stage: ``push``/``ingest``, ``run``, ``report``): its wall
time; the jobs, stages run (skipped stages, whose shuffle output was reused, not counted) and
tasks and SQL executions (one per action: a write, a count, a collect; its jobs are its
query stages); the **busy** time (at least one job running) against the **driver-only** time (no job
running: planning, Py4J calls, Python on the driver, writing files' metadata); the tasks'
executor run time and CPU time (the work itself); stages by duration (how many took under
0.5 s, 0.5-2 s, 2-10 s, over 10 s); and the longest SQL executions with their start (seconds
from the application's start, to place them among the run's stages, whose times the bench
records), jobs, stages and what they were (the Python line that asked, ``callSite.short``,
when Spark recorded it; else the action of their first stage, e.g. ``parquet`` for a write). A plan of many small stages
shows as many sub-second stages and a large driver-only share; a plan held back by the
work shows as task time close to busy time x cores.

Event logs are JSON lines, compressed with zstd by Spark's default (read with the ``zstd``
command) or plain (``spark.eventLog.compress=false``); rolling logs (``eventlog_v2_*``
folders) are read file by file in order. Output: a text summary on stdout; ``--json`` for
one JSON line per application.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
from pathlib import Path


def _lines(path: Path):
    if path.suffix == ".zstd":
        done = subprocess.run(["zstd", "-dc", str(path)], capture_output=True)
        text = done.stdout.decode(errors="replace")
        if done.returncode:  # a log still being written ends in an incomplete frame
            print(f"{path}: read up to its incomplete end ({done.stderr.decode().strip()})",
                  file=sys.stderr)
            text = text[: text.rfind("\n") + 1]
        yield from text.splitlines()
    else:
        with path.open() as f:
            yield from (line for line in f if line.endswith("\n"))


def _files(app: Path) -> list[Path]:
    if app.is_file():
        return [app]
    def index(p: Path) -> int:
        m = re.match(r"events_(\d+)_", p.name)
        return int(m.group(1)) if m else 0
    return sorted((p for p in app.iterdir() if p.name.startswith("events_")), key=index)


def _union_seconds(spans: list[tuple[int, int]]) -> float:
    """Seconds covered by at least one of the (start, end) spans in ms."""
    total, end = 0, None
    for s, e in sorted(spans):
        if end is None or s > end:
            total += e - s
            end = e
        elif e > end:
            total += e - end
            end = e
    return total / 1000


def summarise(app: Path) -> dict:
    """The figures of one application's event log (see the module notes)."""
    start = finish = None
    last = 0  # the latest time seen: the end of a log still being written
    jobs: dict[int, dict] = {}
    executions: dict[str, dict] = {}
    stages: dict[tuple[int, int], float] = {}  # seconds of each stage attempt run
    run_ns = cpu_ns = tasks = 0
    for line in (ln for f in _files(app) for ln in _lines(f)):
        e = json.loads(line)
        kind = e["Event"]
        if kind == "SparkListenerApplicationStart":
            start = e["Timestamp"]
        elif kind == "SparkListenerApplicationEnd":
            finish = e["Timestamp"]
        elif kind == "SparkListenerJobStart":
            props = e.get("Properties") or {}
            ex = executions.setdefault(props.get("spark.sql.execution.root.id", f"job {e['Job ID']}"),
                                       {"start": e["Submission Time"], "jobs": 0, "stages": 0})
            ex["jobs"] += 1
            ex["stages"] += len(e.get("Stage Infos") or ())
            if "callSite.short" in props:
                ex["site"] = props["callSite.short"]
            else:  # the action (count, parquet: a write) names it; AQE's shuffle jobs do not
                for info in e.get("Stage Infos") or ():
                    name = info["Stage Name"].split(" at ")[0]
                    if not name.startswith("$anonfun"):
                        ex.setdefault("first", name)
            jobs[e["Job ID"]] = {"start": e["Submission Time"], "ex": ex}
        elif kind == "SparkListenerJobEnd":
            if e["Job ID"] in jobs:
                job = jobs[e["Job ID"]]
                job["end"] = e["Completion Time"]
                job["ex"]["end"] = max(job["ex"].get("end", 0), job["end"])
        elif kind == "SparkListenerStageCompleted":
            info = e["Stage Info"]
            if "Submission Time" in info and "Completion Time" in info:
                stages[(info["Stage ID"], info["Stage Attempt ID"])] = \
                    (info["Completion Time"] - info["Submission Time"]) / 1000
        elif kind == "SparkListenerTaskEnd":
            m = e.get("Task Metrics") or {}
            run_ns += m.get("Executor Run Time", 0) * 1_000_000  # ms
            cpu_ns += m.get("Executor CPU Time", 0)  # ns
            tasks += 1
        last = max(last, e.get("Timestamp") or e.get("Completion Time") or 0)
    spans = [(j["start"], j["end"]) for j in jobs.values() if "end" in j]
    wall = ((finish or last) - (start or 0)) / 1000
    busy = _union_seconds(spans)
    longest = sorted(
        ([round((x["start"] - (start or 0)) / 1000, 1), round((x["end"] - x["start"]) / 1000, 1),
          x["jobs"], x["stages"], x.get("site") or x.get("first", "(shuffle stages only so far)")]
         for x in executions.values() if "end" in x), key=lambda r: -r[1])
    bins = collections.Counter()
    for s in stages.values():
        bins["<0.5 s" if s < 0.5 else "0.5-2 s" if s < 2 else "2-10 s" if s < 10 else ">=10 s"] += 1
    return {"app": app.name, "wall_s": round(wall, 1), "executions": len(executions),
            "jobs": len(jobs), "stages": len(stages),
            "tasks": tasks, "busy_s": round(busy, 1), "driver_only_s": round(wall - busy, 1),
            "task_run_s": round(run_ns / 1e9, 1), "task_cpu_s": round(cpu_ns / 1e9, 1),
            "stage_seconds": {k: bins[k] for k in ("<0.5 s", "0.5-2 s", "2-10 s", ">=10 s")},
            "longest": longest}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", type=Path, help="an event-log folder (all applications in it) or one application's")
    ap.add_argument("--top", type=int, default=10, help="SQL executions listed per application")
    ap.add_argument("--json", action="store_true", help="one JSON line per application")
    args = ap.parse_args()
    path = args.path
    apps = [path] if path.is_file() or path.name.startswith("eventlog_v2_") else \
        sorted(p for p in path.iterdir() if p.name.startswith(("eventlog_v2_", "local-", "app-")))
    if not apps:
        sys.exit(f"{path}: no Spark event log in it")
    for app in apps:
        r = summarise(app)
        if args.json:
            print(json.dumps(r))
            continue
        print(f"{r['app']}: wall {r['wall_s']} s; {r['executions']} executions, {r['jobs']} jobs, {r['stages']} stages, {r['tasks']} tasks; "
              f"busy {r['busy_s']} s, driver only {r['driver_only_s']} s; tasks ran {r['task_run_s']} s "
              f"({r['task_cpu_s']} CPU-s); stages {r['stage_seconds']}")
        print("  start (s)   wall (s)  jobs  stages  what")
        for at, s, n, k, what in r["longest"][: args.top]:
            print(f"  {at:9.1f} {s:10.1f} {n:5d} {k:7d}  {what}")


if __name__ == "__main__":
    main()
