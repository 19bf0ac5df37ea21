"""Benchmark of `segflow export segments` on a large store.

    nice python bench/bench_export.py                        # 1M customers x 12 snapshots
    nice python bench/bench_export.py --customers 100000     # a quicker run

Builds a store with DuckDB SQL only (no pipeline): ``customers`` with an e-mail and a phone,
``segment_assignments`` of one 8-segment scheme at monthly snapshots (each month about a
third of the customers change segment; 2 % of the base enters over the months and 1 %
leaves before the last two snapshots), and two scores per customer at the latest snapshot. Then times, on that store:

* a full export to Parquet and to CSV (contacts hashed, scores joined);
* an incremental export (``--changes``) to Parquet against a watermark one snapshot back.

Reports seconds and the process's peak resident memory (``ru_maxrss``) after each step, and
writes ``bench/results/export.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "export.md"


def build(store, customers: int, snapshots: int) -> None:
    con = store.raw
    con.execute(f"""
        INSERT INTO customers (customer_id, email, phone)
        SELECT printf('C%08d', i), printf('user%d@example.com', i), printf('+44 20 %08d', i)
        FROM range({customers}) t(i)""")
    for k in range(snapshots):
        day = dt.date(2024 + (k // 12), k % 12 + 1, 1)
        # a customer's segment drifts: base segment from a hash, shifted every few months
        # segment_assignments is a view over change rows: appending stores them as spells
        store.append("segment_assignments", con.execute(f"""
            SELECT 'rfm' AS scheme, '1' AS scheme_version, DATE '{day}' AS snapshot_date,
                   printf('C%08d', i) AS customer_id,
                   'S' || ((hash(i) + (hash(i * 7 + {k}) % 5 = 0)::INT * {k}) % 8)::VARCHAR
                       AS segment,
                   ((hash(i) + (hash(i * 7 + {k}) % 5 = 0)::INT * {k}) % 8)::INT + 1
                       AS segment_rank, 'bench' AS run_id
            FROM range({customers}) t(i)
            WHERE (i % 100 >= 2 OR i < {customers} * {k + 1} / {snapshots})
              AND NOT (i % 100 = 99 AND {k} >= {snapshots} - 2)""").arrow())
    latest = dt.date(2024 + ((snapshots - 1) // 12), (snapshots - 1) % 12 + 1, 1)
    con.execute(f"""
        INSERT INTO customer_scores
        SELECT DATE '{latest}', printf('C%08d', i), 'bgnbd_gg', s,
               CASE s WHEN 'p_alive' THEN (hash(i) % 1000) / 1000.0 ELSE (hash(i) % 50000) / 100.0 END,
               'bench'
        FROM range({customers}) t(i), (VALUES ('p_alive'), ('clv')) v(s)""")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--snapshots", type=int, default=12)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "src"))
    from segflow.exports import export_segments
    from segflow.store import Store

    rows: list[tuple[str, float, float, int]] = []

    def peak_gib() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    with tempfile.TemporaryDirectory(prefix="segflow-bench-export-") as tmp:
        store = Store(Path(tmp) / "store.duckdb")
        t = time.perf_counter()
        build(store, args.customers, args.snapshots)
        rows.append(("build the store (not segflow)", time.perf_counter() - t, peak_gib(), 0))
        dates = [r[0] for r in store.raw.execute(
            "SELECT DISTINCT snapshot_date FROM segment_assignments ORDER BY 1").fetchall()]
        for fmt in ("parquet", "csv"):
            t = time.perf_counter()
            r = export_segments(store, "rfm", Path(tmp) / f"full.{fmt}", name=f"full-{fmt}")
            rows.append((f"full export to {fmt.upper()}", time.perf_counter() - t, peak_gib(), r.rows))
        # the hand-written baseline: the latest spells with the same contact hashes and
        # scores, copied to Parquet by one DuckDB statement (no previous segment, run length,
        # export log or formula check)
        t = time.perf_counter()
        store.raw.execute(f"""COPY (
            SELECT sp.customer_id, sp.scheme, DATE '{dates[-1]}' AS snapshot_date, sp.segment,
                   sp.segment_rank, sha256(lower(trim(c.email))) AS email_sha256,
                   sha256('+' || regexp_replace(c.phone, '[^0-9]', '', 'g')) AS phone_sha256,
                   s.p_alive, s.clv
            FROM segment_spells sp LEFT JOIN customers c USING (customer_id)
            LEFT JOIN (PIVOT (SELECT customer_id, score, value FROM customer_scores
                              WHERE snapshot_date = DATE '{dates[-1]}')
                       ON score IN ('p_alive', 'clv') USING max(value)) s USING (customer_id)
            WHERE sp.scheme = 'rfm' AND sp.valid_from <= DATE '{dates[-1]}'
              AND (sp.valid_to IS NULL OR sp.valid_to > DATE '{dates[-1]}')
            ORDER BY sp.customer_id) TO '{Path(tmp) / "baseline.parquet"}' (FORMAT parquet)""")
        n = store.raw.execute(f"SELECT count(*) FROM '{Path(tmp) / 'baseline.parquet'}'").fetchone()[0]
        rows.append(("baseline: one hand-written DuckDB COPY of the same list to Parquet",
                     time.perf_counter() - t, peak_gib(), n))
        cols = "customer_id, segment, segment_rank, email_sha256, phone_sha256, p_alive, clv"
        differ = store.raw.execute(f"""SELECT count(*) FROM (
            (SELECT {cols.replace('p_alive, clv', 'bgnbd_gg__p_alive, bgnbd_gg__clv')}
             FROM '{Path(tmp) / "full.parquet"}'
             EXCEPT SELECT {cols} FROM '{Path(tmp) / "baseline.parquet"}')
            UNION ALL (SELECT {cols} FROM '{Path(tmp) / "baseline.parquet"}'
             EXCEPT SELECT {cols.replace('p_alive, clv', 'bgnbd_gg__p_alive, bgnbd_gg__clv')}
             FROM '{Path(tmp) / "full.parquet"}'))""").fetchone()[0]
        if differ:
            raise SystemExit(f"the baseline's list differs from segflow's in {differ} rows")
        export_segments(store, "rfm", Path(tmp) / "w.parquet", name="delta", as_of=dates[-2])
        t = time.perf_counter()
        r = export_segments(store, "rfm", Path(tmp) / "delta.parquet", name="delta", mode="changes")
        rows.append(("changes export to Parquet (one snapshot)", time.perf_counter() - t, peak_gib(), r.rows))
        store.close()
    load = os.getloadavg()
    lines = [
        "## Export of segment lists (`bench/bench_export.py`)",
        "",
        f"{args.customers:,} customers x {args.snapshots} monthly snapshots of one 8-segment scheme, "
        f"2 scores at the latest; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load average {load[0]:.1f} at the end (a shared machine).",
        "",
        "| step | seconds | peak RSS (GiB, process so far) | rows written |",
        "|---|---|---|---|",
        *(f"| {name} | {sec:.1f} | {mem:.2f} | {n:,} |" for name, sec, mem, n in rows),
        "",
        f"`python bench/bench_export.py --customers {args.customers} --snapshots {args.snapshots}`",
        "",
    ]
    RESULT.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
