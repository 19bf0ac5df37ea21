"""Replay the run of one new month on fresh copies of one store, old and new code alternated.

    python bench/bench_newmonth_replay.py --store /tmp/segflow-bench/nm/newmonth-400k-ingested \\
        --code old=/tmp/old-src --code new=src --order old,new,old,new [--profile DIR]

``--store``: a project folder after "ingest month 24" (``bench_run.py newmonth
--keep-ingested`` keeps one). ``--code label=path``: a ``src`` folder to import segflow from
(e.g. ``git archive <commit> src | tar -x -C /tmp/old``). Every replay copies the store to a
scratch folder and runs ``Project.run()`` there in its own process, with the run's stage clock
on CPU time (``time.process_time``: every thread of the process, DuckDB's included), and
prints / appends to ``bench/results/newmonth_replay.jsonl`` one JSON line: label, commit,
stage CPU seconds, the process's CPU seconds and wall seconds, 1-minute load before and after.
Each line also has ``yardstick_s``: the wall seconds of a fixed DuckDB query on two threads
(hashing 100M integers) just before the replay. This machine's speed drifts by up to 1.6x
within an hour at the same load (docs/benchmarks.md, session 40), CPU seconds with it, so
replays of different hours compare only through it, and alternated replays are the measure.
``--label-store label=path`` gives one label's replays another starting store (e.g. a copy
of the same store with a state that only the new code stores, added by the new code).
``--profile DIR`` also writes a cProfile of each run (``DIR/<label>-<k>.prof``) timed on the
process's CPU clock, so a function's cumulative time includes the engine's threads working
for it (its queries).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "newmonth_replay.jsonl"

CHILD = """
import json, os, resource, sys, time
workdir, prof = sys.argv[1], sys.argv[2]
import segflow.pipeline as pipeline
class _CpuClock:  # the stage clock of run_pipeline on CPU seconds of the whole process
    def __getattr__(self, name):
        return getattr(time, name)
    perf_counter = staticmethod(time.process_time)
pipeline.time = _CpuClock()
from segflow.project import Project
t0, c0 = time.perf_counter(), time.process_time()
project = Project.open(workdir)
if prof:
    import cProfile
    profiler = cProfile.Profile(time.process_time)  # CPU seconds, DuckDB's threads included
    summary = profiler.runcall(project.run)
    profiler.dump_stats(prof)
else:
    summary = project.run()
project.close()
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s": round(time.perf_counter() - t0, 2),
                  "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
                  "peak_rss_mib": round(usage.ru_maxrss / 1024),
                  "snapshots_computed": len(summary.snapshots_computed),
                  "stages_cpu_s": {k: round(float(v), 2) for k, v in summary.seconds.items()},
                  "segflow": __import__("segflow").__file__}))
"""


def yardstick() -> float:
    """Wall seconds of a fixed CPU-bound DuckDB query on two threads (the machine's speed
    now: 1.27-1.34 s on the quiet 2-core machine of session 40, 1.9 s beside a test suite)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("SET enable_progress_bar = false")
    start = time.perf_counter()
    con.execute("SELECT sum(hash(range) % 1000) FROM range(100000000)").fetchall()
    con.close()
    return round(time.perf_counter() - start, 3)


def replay(store: Path, label: str, src: Path, scratch: Path, prof: str, nice: int) -> dict:
    if scratch.exists():
        shutil.rmtree(scratch)
    shutil.copytree(store, scratch)
    stick = yardstick()
    load = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    env = {**os.environ, "PYTHONPATH": str(src.resolve())}
    proc = subprocess.run(["nice", "-n", str(nice), sys.executable, "-c", CHILD, str(scratch), prof],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                            capture_output=True, text=True).stdout.strip()
    out = {"label": label, "src": str(src), "head": commit, "load_before": round(load, 1),
           "load_after": round(os.getloadavg()[0], 1), "yardstick_s": stick,
           "started": started, **out}
    shutil.rmtree(scratch)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--code", action="append", required=True, help="label=path of a src folder")
    ap.add_argument("--order", required=True, help="labels in the order to run, e.g. old,new,old,new")
    ap.add_argument("--label-store", action="append", default=[],
                    help="label=path: the store this label's replays start from instead of "
                         "--store (e.g. one holding a state only the new code writes)")
    ap.add_argument("--scratch", type=Path, default=None)
    ap.add_argument("--profile", type=Path, default=None)
    ap.add_argument("--nice", type=int, default=10)
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    code = dict(c.split("=", 1) for c in args.code)
    stores = {label: Path(p) for label, p in (c.split("=", 1) for c in args.label_store)}
    scratch = args.scratch or args.store.with_name(args.store.name + "-replay")
    for k, label in enumerate(args.order.split(",")):
        prof = ""
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            prof = str(args.profile / f"{label}-{k}.prof")
        store = stores.get(label, args.store)
        result = {"tag": args.tag, "store": str(store),
                  **replay(store, label, Path(code[label]), scratch, prof, args.nice)}
        print(json.dumps(result), flush=True)
        with RESULTS.open("a") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
