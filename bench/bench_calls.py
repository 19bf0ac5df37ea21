"""Where a stage's time goes, engine call by engine call: every call of the Ibis DuckDB
backend (a cached table, an execute, an Arrow read, raw SQL) timed with the process's CPU
(``getrusage``: DuckDB's threads included) and wall clock, summed per call site (the last
four segflow frames of its stack), largest CPU first.

    python bench/bench_calls.py run PROJECT [--out calls.txt]         # segflow run, on a copy
    python bench/bench_calls.py aggregates PROJECT [--out calls.txt]  # the stored aggregates alone
    python bench/bench_calls.py ingest PROJECT [--out calls.txt]      # a first ingest, on a copy

``PROJECT``: a project folder (e.g. ``bench_run.py job --keep``'s ``<root>/job-<set>``, or
``newmonth --keep-ingested``'s store for the run of one new month). ``run`` and ``ingest``
work on a copy in ``--scratch`` (the project is left as it was; ``ingest`` without its store,
so that every source is loaded into an empty one); ``aggregates`` recomputes
the latest successful run's aggregates in place (``write_aggregates`` without the CLV stage's
kept states, so its CLV diagnostics cost more than in a run). The figures of
docs/benchmarks.md's "Where the time goes now" were taken this way. Calls through the
store's own DuckDB connection (the write of the change rows, the ingest's loads) are not
Ibis calls: they show only in the total.
"""

from __future__ import annotations

import argparse
import collections
import resource
import shutil
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def call_site(depth: int = 4) -> str:
    frames = [f for f in traceback.extract_stack()[:-2] if "/segflow/" in f.filename]
    return " < ".join(f"{f.filename.split('/segflow/')[-1]}:{f.lineno}:{f.name}"
                      for f in frames[-depth:][::-1])


def instrument(rows: list[tuple[str, str, float, float]]) -> None:
    """Wrap the Ibis DuckDB backend's calls so that each appends (call, site, CPU s, wall s)."""
    import ibis.backends.duckdb as backend

    for name in ("_create_cached_table", "execute", "to_pyarrow", "raw_sql"):
        original = getattr(backend.Backend, name)

        def timed(self, *args, _original=original, _name=name, **kwargs):
            c0, w0 = cpu(), time.perf_counter()
            try:
                return _original(self, *args, **kwargs)
            finally:
                rows.append((_name, call_site(), cpu() - c0, time.perf_counter() - w0))

        setattr(backend.Backend, name, timed)


def summary(rows: list[tuple[str, str, float, float]], total: tuple[float, float]) -> str:
    sums: dict[tuple[str, str], list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])
    for name, site, c, w in rows:
        s = sums[(name, site)]
        s[0] += 1
        s[1] += c
        s[2] += w
    lines = [f"total: {total[0]:.1f} s wall, {total[1]:.1f} CPU-s; engine calls: "
             f"{sum(r[2] for r in rows):.1f} CPU-s", "   CPU-s   wall-s calls call                   site"]
    for (name, site), (n, c, w) in sorted(sums.items(), key=lambda x: -x[1][1]):
        lines.append(f"{c:8.2f} {w:8.2f} {int(n):5d} {name:22s} {site}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["run", "aggregates", "ingest"])
    ap.add_argument("project", type=Path)
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/segflow-bench/calls"),
                    help="run/ingest: the folder of the copy (replaced)")
    ap.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE.parent / "src"))
    workdir = args.project
    if args.mode in ("run", "ingest"):
        if args.scratch.exists():
            shutil.rmtree(args.scratch)
        shutil.copytree(args.project, args.scratch)
        workdir = args.scratch
        if args.mode == "ingest":  # a first ingest: into an empty store
            import tomllib

            settings = tomllib.loads((workdir / "segflow.toml").read_text())
            store = workdir / settings.get("project", {}).get("store", "segflow.duckdb")
            for path in (store, store.with_name(store.name + ".wal")):
                path.unlink(missing_ok=True)
    rows: list[tuple[str, str, float, float]] = []
    instrument(rows)
    from segflow.project import Project

    project = Project.open(workdir)
    c0, w0 = cpu(), time.perf_counter()
    try:
        if args.mode == "run":
            project.run()
        elif args.mode == "ingest":
            project.ingest()
        else:
            from segflow.pipeline import resolve_schemes
            from segflow.summaries import campaign_scheme, write_aggregates

            schemes = resolve_schemes(project.settings)
            run_id = project.store.raw.execute(
                "SELECT run_id FROM runs WHERE status = 'ok' ORDER BY started_at DESC LIMIT 1").fetchone()[0]
            write_aggregates(project.store, run_id, kinds={s.name: s.kind for s in schemes},
                             campaign_scheme=campaign_scheme([s.name for s in schemes]))
    finally:
        project.close()
    text = summary(rows, (time.perf_counter() - w0, cpu() - c0))
    sys.stdout.write(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
