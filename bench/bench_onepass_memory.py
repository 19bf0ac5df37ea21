"""Peak memory and time of the one-pass features alone (``snapshot_features`` of every
snapshot, materialised into a temporary table), on a copy of an ingested store.

    python bench/bench_onepass_memory.py --project /tmp/segflow-bench/proj-100k \
        [--memory-limit 4GB] [--groups rfm,seasonality,web] [--explain out.txt]

Prints one JSON line: seconds to build the expression, to compile it, to run it, the rows,
the process's peak RSS (``ru_maxrss``) and DuckDB's peak buffer memory and temp-dir size
(from its query profile). ``--explain`` writes DuckDB's EXPLAIN ANALYZE of the query.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

import ibis


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, required=True)
    ap.add_argument("--memory-limit", default="4GB")
    ap.add_argument("--groups", default="run",
                    help='feature groups, or "run": the groups and columns segflow run computes')
    ap.add_argument("--explain", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=None, help="chunk_customers")
    args = ap.parse_args()

    from segflow.engine import connect
    from segflow.features import snapshot_features
    from segflow.pipeline import canonical_tables, resolve_snapshot_dates
    from segflow.project import Project

    work = Path(tempfile.mkdtemp(prefix="onepass-mem-", dir="/tmp"))
    try:
        shutil.copy(args.project / "segflow.duckdb", work / "segflow.duckdb")
        shutil.copy(args.project / "segflow.toml", work / "segflow.toml")
        project = Project.open(work)
        store, settings = project.store, project.settings
        store.raw.execute(f"SET memory_limit = '{args.memory_limit}'")
        store.raw.execute(f"SET threads = {args.threads}")
        dates = resolve_snapshot_dates(store, settings)
        eng = connect(store, "duckdb", settings=settings.engine)
        tables = canonical_tables(eng)
        t0 = time.perf_counter()
        if args.groups == "run":  # what segflow run computes for the project's schemes
            from segflow.pipeline import (
                required_feature_columns,
                required_feature_groups,
                resolve_schemes,
            )

            schemes = resolve_schemes(settings)
            groups = required_feature_groups(tables, schemes, settings=settings)
            columns = required_feature_columns(tables, schemes, groups, settings=settings)
        else:
            groups, columns = set(args.groups.split(",")), None
        expr = snapshot_features(tables, dates, window_days=settings.rfm.window_days,
                                 groups=groups, columns=columns, chunk_customers=args.chunk)
        t1 = time.perf_counter()
        sql = str(ibis.to_sql(expr, dialect="duckdb"))
        t2 = time.perf_counter()
        con = store.raw
        prof = work / "profile.json"
        con.execute("PRAGMA enable_profiling = 'json'")
        con.execute(f"PRAGMA profiling_output = '{prof}'")
        con.execute("SET custom_profiling_settings = '{\"SYSTEM_PEAK_BUFFER_MEMORY\": \"true\", "
                    "\"SYSTEM_PEAK_TEMP_DIR_SIZE\": \"true\", \"OPERATOR_TIMING\": \"true\", "
                    "\"OPERATOR_CARDINALITY\": \"true\", \"OPERATOR_NAME\": \"true\", "
                    "\"LATENCY\": \"true\"}'")
        peaks: dict[str, int] = {}
        stop = threading.Event()

        def poll() -> None:  # DuckDB's memory by tag, sampled while the query runs
            cur = con.cursor()
            while not stop.is_set():
                for tag, used in cur.execute(
                        "SELECT tag, memory_usage_bytes FROM duckdb_memory()").fetchall():
                    peaks[tag] = max(peaks.get(tag, 0), int(used))
                stop.wait(0.5)
            cur.close()

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        store.con.create_table("_onepass", expr, temp=True)
        t3 = time.perf_counter()
        stop.set()
        poller.join()
        con.execute("PRAGMA disable_profiling")
        rows = con.execute("SELECT count(*) FROM _onepass").fetchone()[0]
        info = json.loads(prof.read_text()) if prof.exists() else {}
        ops: list[tuple[float, str, int]] = []

        def walk(node: dict) -> None:
            if "operator_name" in node:
                ops.append((float(node.get("operator_timing", 0)), node["operator_name"],
                            int(node.get("operator_cardinality", 0))))
            for child in node.get("children", []):
                walk(child)

        walk(info)
        ops.sort(reverse=True)
        if args.explain:
            args.explain.write_text(sql)
        print(json.dumps({
            "build_s": round(t1 - t0, 2), "compile_s": round(t2 - t1, 2), "run_s": round(t3 - t2, 2),
            "rows": rows, "columns": len(expr.columns),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            "duckdb_peak_buffer_mib": round(info.get("system_peak_buffer_memory", 0) / 2**20),
            "duckdb_peak_temp_mib": round(info.get("system_peak_temp_dir_size", 0) / 2**20),
            "duckdb_peak_by_tag_mib": {k: round(v / 2**20) for k, v in sorted(peaks.items()) if v},
            "top_operators": [(round(t, 2), n, c) for t, n, c in ops[:12]],
            "load": os.getloadavg(),
        }))
        project.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
