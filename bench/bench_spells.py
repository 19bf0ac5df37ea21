"""Time the three ways the DuckDB store turns per-snapshot assignments into spells, on one
scheme's rows of a kept store (read-only), each alone and alternated, and check that they
give the same spells.

    python bench/bench_spells.py --store /tmp/segflow-bench/newmonth-1m-ingested --scheme rfm

The rows are the scheme's ``segment_assignments`` (the spells expanded to every computed
snapshot) with one run id, as a run that computes every snapshot writes them; they are
copied once into a scratch DuckDB file. Then, ``--repeat`` times in turn: the bit masks
(``mask_spells_sql``, what such a run takes), the sorted lists (``spells_sql``, a merge with
stored snapshots) and, with ``--window``, the window of the Ibis definition
(``spells_select``, a merge too large for the lists). Prints CPU seconds of this process
(DuckDB's threads included), wall seconds and spells per method. Not a timed test.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from segflow.store._spells import mask_spells_sql, spells_select, spells_sql  # noqa: E402


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", type=Path, required=True, help="a project folder or its segflow.duckdb")
    ap.add_argument("--scheme", default="rfm")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--window", action="store_true", help="also time the window query")
    args = ap.parse_args()
    path = args.store / "segflow.duckdb" if args.store.is_dir() else args.store
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "rows.duckdb"))
        con.execute(f"SET threads = {args.threads}")
        quoted = str(path).replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS s (READ_ONLY)")
        con.execute("""CREATE TABLE rows AS SELECT scheme, scheme_version, snapshot_date, customer_id,
                       segment, segment_rank, 'bench-run' AS run_id
                       FROM s.segment_assignments WHERE scheme = ?""", [args.scheme])
        con.execute("CREATE TABLE snaps AS SELECT DISTINCT scheme, snapshot_date FROM rows")
        con.execute("DETACH s")
        n_rows, n_snaps = con.execute(
            "SELECT count(*), count(DISTINCT snapshot_date) FROM rows").fetchone()
        print(f"{args.scheme}: {n_rows:,} rows, {n_snaps} snapshots, {args.threads} threads",
              flush=True)
        methods = {"masks": mask_spells_sql("rows", "snaps", "'bench-run'"),
                   "lists": spells_sql("rows", "snaps")}
        if args.window:
            methods["window"] = spells_select("rows", "snaps")
        for _ in range(args.repeat):
            for name, sql in methods.items():
                c, w = _cpu(), time.perf_counter()
                con.execute(f"CREATE OR REPLACE TABLE out_{name} AS {sql}")
                cpu, wall = _cpu() - c, time.perf_counter() - w
                (n,) = con.execute(f"SELECT count(*) FROM out_{name}").fetchone()
                print(f"{name}: {cpu:.2f} CPU-s, {wall:.2f} s, {n:,} spells", flush=True)
        for name in methods:
            if name == "masks":
                continue
            (diff,) = con.execute(
                f"SELECT count(*) FROM (SELECT * FROM out_masks EXCEPT ALL SELECT * FROM out_{name} "
                f"UNION ALL (SELECT * FROM out_{name} EXCEPT ALL SELECT * FROM out_masks))").fetchone()
            print(f"masks against {name}: {diff} rows differ", flush=True)
        con.close()


if __name__ == "__main__":
    main()
