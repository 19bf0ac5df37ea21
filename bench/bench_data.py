"""Build the benchmark data sets (demo generator, Parquet only) under one folder, once.

    nice -n 15 python bench/bench_data.py                       # every set below
    nice -n 15 python bench/bench_data.py --sets 100k,400k,1m   # some of them

Sets (the demo generator's default mix, seed 1):

- ``100k``, ``200k``, ``400k``, ``1m``: 24 monthly snapshots from 2024-01 (about 19
  transactions per customer: 1M customers give about 19.4M transactions);
- ``10m``: 10M customers over 12 months (about 11.5 transactions per customer: about 115M
  transactions; 24 months would give about 196M, twice the issue's 100M target).

The generator simulates and writes customers in chunks of 25,000, so its memory does not grow
with the size; each set is written in its own process. Each set's wall time, peak RSS and row
counts are appended to ``<root>/generate.jsonl`` and ``bench/results/data.jsonl`` (generation is excluded from the job timings).
A set whose ``done.json`` exists is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETS = {  # name: (customers, months)
    "2k": (2_000, 24),  # a smoke test of the scripts
    "100k": (100_000, 24),
    "200k": (200_000, 24),
    "400k": (400_000, 24),
    "1m": (1_000_000, 24),
    "10m": (10_000_000, 12),
    # issue 16: about 1M and 10M transactions over 24 months
    "tx1m": (51_500, 24),
    "tx10m": (515_000, 24),
}

CHILD = """
import json, sys, time
from segflow.datasets import generate_demo
t = time.perf_counter()
ds = generate_demo(sys.argv[1], customers=int(sys.argv[2]), months=int(sys.argv[3]), seed=1,
                   formats=("parquet",))
print(json.dumps({"seconds": time.perf_counter() - t, "rows": ds.rows,
                  "start": ds.start.isoformat(), "end": ds.end.isoformat()}))
"""


def generate(root: Path, name: str) -> dict:
    """Generate one set into ``root/data-<name>`` in a child process; its record."""
    customers, months = SETS[name]
    out = root / f"data-{name}"
    if (out / "done.json").exists():
        return json.loads((out / "done.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    with tempfile.TemporaryFile("w+") as stdout:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(customers), str(months)],
                                stdout=stdout)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"generating {name} failed (exit {status})")
        stdout.seek(0)
        record = json.loads(stdout.read().strip().splitlines()[-1])
    record.update(set=name, customers=customers, months=months, peak_rss_mib=usage.ru_maxrss / 1024,
                  load_before=load, load_after=os.getloadavg(),
                  mib_on_disk=sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20,
                  finished_utc=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()))
    (out / "done.json").write_text(json.dumps(record, indent=2))
    for log in (root / "generate.jsonl", Path(__file__).resolve().parent / "results" / "data.jsonl"):
        with log.open("a") as f:
            f.write(json.dumps(record) + "\n")
    return record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("/tmp/segflow-bench"))
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated, from: " + ", ".join(SETS))
    args = ap.parse_args()
    for name in args.sets.split(","):
        record = generate(args.root, name)
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
