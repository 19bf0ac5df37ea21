"""Benchmark of migration: all monthly transitions over 24 months for 1M customers.

    nice python bench/bench_migration.py                      # 1M customers x 24 snapshots
    nice python bench/bench_migration.py --customers 100000   # a quicker run

Synthesises assignments with NumPy (a known 8-segment monthly chain; 90 % of the customers
are present from the first snapshot, the rest enter later, 0.5 % leave for good each month;
about 22M rows) and writes them to one Parquet file. Every approach starts from that file
and computes the transition counts of all 23 consecutive pairs with ``(new)`` and
``(gone)``, and their results are checked to be identical:

* ``segflow`` - :func:`segflow.migration.pooled_transition_matrix` on the Parquet file
  through Ibis/DuckDB (its input checks included: one row per customer and snapshot);
* ``segflow (store)`` - the same on a DuckDB store file the pipeline would have written
  (loading the store is timed separately), with and without the duplicate check
  (``validate=False``; the check is one more pass over the history);
* ``duckdb SQL`` - one hand-written SQL query (full outer join on customer and pair index),
  what a SQL user would write, without segflow's checks;
* ``pandas`` - the usual notebook code at its documented best: Parquet read with only the
  needed columns (segments as categoricals), one ``merge(how="outer")`` per pair and
  ``groupby(..., observed=True).size()`` (faster than ``crosstab``).

Each approach runs in a fresh subprocess so that its peak resident memory (``VmHWM`` of
the child: ``ru_maxrss`` would carry the parent's peak across fork and exec) is its own. Writes ``bench/results/migration.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "migration.md"
MONTHS = 24

COMMON = """
import json, resource, sys, time
path, out = sys.argv[1], sys.argv[2]
def done(seconds, counts, extra=None):
    import pandas as pd
    counts = counts.groupby(["pair", "from_segment", "to_segment"])["customers"].sum()
    counts.rename("customers").reset_index().to_parquet(out)
    # VmHWM: this process's own peak (ru_maxrss carries the parent's across fork and exec:
    # every approach reported the parent's 3.4 GiB)
    peak = next(int(line.split()[1]) for line in open("/proc/self/status")
                if line.startswith("VmHWM:")) / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak, **(extra or {})}))
"""

SEGFLOW = (
    COMMON
    + """
import ibis
from segflow.migration import pooled_transition_matrix
t = time.perf_counter()
con = ibis.duckdb.connect()
table = con.read_parquet(path)
pm = pooled_transition_matrix(table, scheme="bench")
seconds = time.perf_counter() - t
done(seconds, pm.pair_cells)
"""
)

SEGFLOW_STORE = (
    COMMON
    + """
from segflow.store import Store
from segflow.migration import pooled_transition_matrix
import pathlib
validate = sys.argv[3] == "validate"
t = time.perf_counter()
with Store(pathlib.Path(path).with_suffix(".duckdb"), read_only=True) as store:
    pm = pooled_transition_matrix(store.table("segment_assignments"), scheme="bench", validate=validate)
seconds = time.perf_counter() - t
done(seconds, pm.pair_cells)
"""
)

DUCKDB_SQL = (
    COMMON
    + """
import duckdb
t = time.perf_counter()
con = duckdb.connect()
n = con.execute(f"SELECT count(DISTINCT snapshot_date) FROM read_parquet('{path}')").fetchone()[0]
counts = con.execute(f'''
WITH a AS (SELECT * FROM read_parquet('{path}')),
d AS (SELECT snapshot_date, row_number() OVER (ORDER BY snapshot_date) - 1 AS k
      FROM (SELECT DISTINCT snapshot_date FROM a)),
t AS (SELECT customer_id, segment, k FROM a JOIN d USING (snapshot_date)),
l AS (SELECT customer_id, segment AS f, k FROM t WHERE k <= {n} - 2),
r AS (SELECT customer_id, segment AS s, k - 1 AS k FROM t WHERE k >= 1)
SELECT coalesce(l.k, r.k) AS pair, coalesce(f, '(new)') AS from_segment,
       coalesce(s, '(gone)') AS to_segment, count(*) AS customers
FROM l FULL OUTER JOIN r ON l.customer_id = r.customer_id AND l.k = r.k
GROUP BY ALL
''').df()
seconds = time.perf_counter() - t
done(seconds, counts)
"""
)

PANDAS = (
    COMMON
    + """
import pandas as pd
t = time.perf_counter()
df = pd.read_parquet(path, columns=["snapshot_date", "customer_id", "segment"])
df["segment"] = df["segment"].astype("category")
read = time.perf_counter() - t
dates = sorted(df["snapshot_date"].unique())
by_date = {d: g[["customer_id", "segment"]] for d, g in df.groupby("snapshot_date", sort=True)}
parts = []
for k, (d1, d2) in enumerate(zip(dates[:-1], dates[1:])):
    m = by_date[d1].merge(by_date[d2], on="customer_id", how="outer", suffixes=("_from", "_to"))
    frm = m["segment_from"].cat.add_categories("(new)").fillna("(new)")
    to = m["segment_to"].cat.add_categories("(gone)").fillna("(gone)")
    size = pd.DataFrame({"from_segment": frm, "to_segment": to}).groupby(
        ["from_segment", "to_segment"], observed=True).size()
    parts.append(size.rename("customers").reset_index().assign(pair=k))
counts = pd.concat(parts, ignore_index=True)
counts["from_segment"] = counts["from_segment"].astype(str)
counts["to_segment"] = counts["to_segment"].astype(str)
seconds = time.perf_counter() - t
done(seconds, counts, {"read_seconds": read})
"""
)

APPROACHES = {
    "segflow": SEGFLOW,
    "segflow (store)": SEGFLOW_STORE,
    "segflow (store, validate=False)": SEGFLOW_STORE,
    "duckdb SQL": DUCKDB_SQL,
    "pandas": PANDAS,
}


def synthesise(path: Path, customers: int, seed: int = 0) -> int:
    """Write the assignments of ``customers`` over 24 monthly snapshots; returns rows."""
    import datetime as dt

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    k = 8
    names = np.array([f"S{i + 1}" for i in range(k)])
    # a sticky chain: stay with 0.80, otherwise move to a neighbour segment
    p = np.full((k, k), 0.0)
    for i in range(k):
        p[i, i] = 0.80
        for j, w in ((i - 1, 0.12), (i + 1, 0.08)):
            p[i, min(max(j, 0), k - 1)] += w
    cum = p.cumsum(axis=1)
    ids = pa.array([f"C{i:07d}" for i in range(customers)])
    entry = np.where(rng.random(customers) < 0.9, 0, rng.integers(1, MONTHS, customers))
    state = rng.integers(0, k, customers)
    alive = np.ones(customers, dtype=bool)
    rows = 0
    schema = pa.schema(
        [
            ("scheme", pa.string()),
            ("snapshot_date", pa.date32()),
            ("customer_id", pa.string()),
            ("segment", pa.string()),
            ("segment_rank", pa.int32()),
        ]
    )
    with pq.ParquetWriter(path, schema) as writer:
        for m in range(MONTHS):
            if m:
                u = rng.random(customers)
                state = (u[:, None] > cum[state]).sum(axis=1).clip(max=k - 1)
                alive &= rng.random(customers) >= 0.005
            present = np.flatnonzero(alive & (entry <= m))
            day = dt.date(2022 + m // 12, m % 12 + 1, 1)
            n = len(present)
            writer.write_table(
                pa.table(
                    {
                        "scheme": pa.array(["bench"]).take(pa.array(np.zeros(n, dtype=np.int64))),
                        "snapshot_date": pa.array([day] * n, pa.date32()),
                        "customer_id": ids.take(pa.array(present)),
                        "segment": pa.array(names[state[present]]),
                        "segment_rank": pa.array(state[present] + 1, pa.int32()),
                    },
                    schema=schema,
                )
            )
            rows += n
    return rows


def load_store(data: Path) -> float:
    """Load the assignments into a segflow store beside the Parquet file (as the pipeline would)."""
    from segflow.store import Store

    t = time.perf_counter()
    with Store(data.with_suffix(".duckdb")) as store:
        # segment_assignments is a view over change rows: appending stores them as spells
        rows = store.raw.execute(
            "SELECT scheme, snapshot_date, customer_id, segment, segment_rank "
            f"FROM read_parquet('{data}')"
        ).arrow()
        store.append("segment_assignments", rows)
    return time.perf_counter() - t


def run(approach: str, data: Path, work: Path) -> dict[str, float]:
    out = work / f"{''.join(c if c.isalnum() else '_' for c in approach)}.parquet"
    mode = "no-validate" if "validate=False" in approach else "validate"
    proc = subprocess.run(
        [sys.executable, "-c", APPROACHES[approach], str(data), str(out), mode],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{approach} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["out"] = str(out)
    return result


def same_counts(paths: list[str]) -> bool:
    import pandas as pd

    frames = [
        pd.read_parquet(p)
        .sort_values(["pair", "from_segment", "to_segment"])
        .reset_index(drop=True)
        for p in paths
    ]
    for f in frames:
        f["pair"] = f["pair"].astype(int)
        f["customers"] = f["customers"].astype(int)
    return all(frames[0].equals(f) for f in frames[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="segflow-bench-migration-") as tmp:
        work = Path(tmp)
        data = work / "assignments.parquet"
        t = time.perf_counter()
        rows = synthesise(data, args.customers)
        synth = time.perf_counter() - t
        print(
            f"synthesised {rows:,} rows in {synth:.1f} s ({data.stat().st_size / 2**20:.0f} MiB)",
            flush=True,
        )
        load = load_store(data)
        print(f"loaded the store in {load:.1f} s", flush=True)
        results = {}
        for name in APPROACHES:
            results[name] = run(name, data, work)
            print(name, {k: v for k, v in results[name].items() if k != "out"}, flush=True)
        identical = same_counts([r["out"] for r in results.values()])
        size_mib = data.stat().st_size / 2**20
    write_markdown(args.customers, rows, size_mib, results, identical, load)
    print(f"wrote {RESULT}")


def write_markdown(
    customers: int, rows: int, size_mib: float, results: dict, identical: bool, load: float
) -> None:
    base = results["segflow"]["seconds"]
    lines = [
        "## Migration: all monthly transitions (`pooled_transition_matrix`)",
        "",
        f"`bench/bench_migration.py`: {customers:,} customers, {MONTHS} monthly snapshots, "
        f"{rows:,} assignment rows (8 segments; 10 % of the customers enter after the first snapshot, 0.5 % leave each month), one Parquet "
        f"file of {size_mib:.0f} MiB; the transition counts of all {MONTHS - 1} consecutive pairs with "
        f"`(new)` and `(gone)`. {os.cpu_count()} cores ({platform.machine()}), run with `nice` while "
        "other work shared the machine; each approach in its own process (peak memory = its peak "
        f"resident set). All approaches gave identical counts: **{'yes' if identical else 'NO'}**.",
        "",
        "| approach | time | vs segflow | peak memory | notes |",
        "|---|---|---|---|---|",
    ]
    notes = {
        "segflow": "from the Parquet file; includes the one-row-per-customer check and the snapshot list",
        "segflow (store)": "on the DuckDB store (loading it took {load:.1f} s, not included)",
        "segflow (store, validate=False)": "the same without the duplicate check",
        "duckdb SQL": "one hand-written query, no input checks",
        "pandas": "of which {read:.1f} s reading Parquet; one outer merge per pair",
    }
    for name, r in results.items():
        note = notes[name].format(load=load, read=r.get("read_seconds", 0.0))
        lines.append(
            f"| {name} | {r['seconds']:.1f} s | {r['seconds'] / base:.2f}x | {r['peak_mib']:,.0f} MiB | {note} |"
        )
    fast = results["segflow (store, validate=False)"]["seconds"]
    sql, pandas = results["duckdb SQL"]["seconds"], results["pandas"]["seconds"]
    check = results["segflow (store)"]["seconds"] - fast
    lines += [
        "",
        f"Reading: on its store, without the duplicate check, segflow takes {fast / sql:.2f}x the time "
        f"of the hand-written SQL (the same join, plus Ibis and a small rank lookup) and "
        f"{fast / pandas:.2f}x the time of pandas. The duplicate check (one row per customer and "
        f"snapshot) costs another {check:.1f} s, about a full pass over the history; with it, "
        "segflow is "
        + ("slower" if results["segflow (store)"]["seconds"] > pandas else "faster")
        + " than pandas here. Starting from Parquet adds the reading of the file to every query. "
        "Peak memory: DuckDB's hash join against pandas' pair-by-pair merges (see the table); "
        "pandas must hold the whole history in memory, which DuckDB does not (it spills to disk "
        "beyond its memory limit).",
    ]
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
