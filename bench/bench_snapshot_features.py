"""Benchmark: the features of every snapshot, one pass vs one query per snapshot.

On an ingested demo store (``segflow generate`` + ``segflow ingest``, or ``--make`` to build
one under ``--workdir``), time and peak memory of

* ``onepass``: :func:`segflow.features.snapshot_features` over monthly snapshots,
  materialised to Arrow (one query);
* ``loop``: :func:`segflow.features.customer_features` once per snapshot, each materialised
  to Arrow (what ``segflow run`` did before issue 10),

for all feature groups and for the groups the built-in schemes read
(``rfm,seasonality,web``). Each measurement runs in its own subprocess (its own peak RSS);
CPU seconds (user + system, all threads) are reported next to wall-clock seconds because
the latter depend on what else the machine is doing.

Usage::

    nice python bench/bench_snapshot_features.py --workdir /tmp/sf200k --make --customers 200000
    nice python bench/bench_snapshot_features.py --workdir /tmp/sf200k --snapshots 24
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

MAKE = textwrap.dedent(
    """
    import sys, warnings
    from pathlib import Path
    from segflow.datasets import demo_project_toml, generate_demo
    from segflow.project import Project
    w, n = Path(sys.argv[1]), int(sys.argv[2])
    ds = generate_demo(w / "data", customers=n, months=24, seed=1, formats=("parquet",))
    toml = demo_project_toml(w / "data", file_format="parquet", max_date=ds.end)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the demo data carries injected defects on purpose
        project = Project.init(w / "proj", toml_text=toml, overwrite=True)
        project.ingest()
    project.close()
    """
)

MEASURE = textwrap.dedent(
    """
    import datetime as dt, json, resource, sys, time
    from pathlib import Path
    from segflow.features import REQUIRED_TABLES, customer_features, snapshot_features
    from segflow.store import Store
    how, store_path, n, groups = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    groups = None if groups == "all" else set(groups.split(","))
    store = Store(store_path, read_only=True)
    last = store.raw.execute("SELECT max(ts)::DATE FROM transactions").fetchone()[0]
    end = dt.date(last.year, last.month, 1)
    dates = []
    for i in range(n):
        m = end.month - 1 - i
        dates.append(dt.date(end.year + m // 12, m % 12 + 1, 1))
    dates.sort()
    tables = {name: store.table(name) for name in REQUIRED_TABLES}
    t0 = time.perf_counter()
    use0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = use0.ru_utime + use0.ru_stime
    rows = 0
    if how == "onepass":
        rows = snapshot_features(tables, dates, groups=groups).to_pyarrow().num_rows
    else:
        for s in dates:
            rows += customer_features(tables, s, groups=groups).to_pyarrow().num_rows
    seconds = time.perf_counter() - t0
    use = resource.getrusage(resource.RUSAGE_SELF)
    cpu = use.ru_utime + use.ru_stime - cpu0
    peak = use.ru_maxrss / 1024
    print(json.dumps({"how": how, "groups": sys.argv[4], "snapshots": n, "rows": rows,
                      "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1), "peak_rss_mb": round(peak)}))
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--make", action="store_true", help="generate and ingest first")
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--snapshots", type=int, default=24)
    parser.add_argument("--groups", default="rfm,seasonality,web;all",
                        help="';'-separated group sets ('all' = every group)")
    parser.add_argument("--how", default="onepass,loop")
    args = parser.parse_args()
    if args.make:
        subprocess.run([sys.executable, "-c", MAKE, str(args.workdir), str(args.customers)],
                       check=True)
    store = args.workdir / "proj" / "segflow.duckdb"
    for groups in args.groups.split(";"):
        for how in args.how.split(","):
            out = subprocess.run(
                [sys.executable, "-c", MEASURE, how, str(store), str(args.snapshots), groups],
                check=True, capture_output=True, text=True,
            )
            print(json.dumps(json.loads(out.stdout.strip().splitlines()[-1])), flush=True)


if __name__ == "__main__":
    main()
