"""``segflow run`` on Spark on a copy of a kept bench project whose warehouse is ingested:
the run stage alone, measured as ``bench/bench_spark.py`` measures it, with the code of any
checkout (``--src``: old against new without a second worktree).

    python bench/bench_spark_rerun.py /tmp/s28spark/work/spark-local-tx1m /tmp/s30/new \
        --src src --tag new

The project folder is copied to ``copy`` (the original is only read); the copy's warehouse
keeps the committed ingest runs only (the partitions and run-log rows of earlier ``run``
runs are left out, so every measured run is the first after ingest, as in
``bench_spark.py``), its ``segflow.toml`` points at the copied warehouse and drops any
Spark event log setting. The figures (``bench/_measure.py``: wall, CPU-s of the process
tree, peak memory, load; the run's own stage seconds) are printed and appended to
``bench/results/spark.jsonl`` with ``stage = "run"`` and the given tag; the warehouse's table
folders holding a run's partition after the run are listed in ``tables``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import git_head, python_stage, record  # noqa: E402
from bench_spark import RESULTS, STAGE  # noqa: E402


def _ingest_only(warehouse: Path) -> list[str]:
    """Remove, in the copied warehouse, every run whose command is not ``ingest``; returns
    the run ids removed."""
    import pyarrow.parquet as pq

    log = pq.read_table(warehouse / "runs", partitioning="hive").to_pandas()
    gone = sorted(set(log.loc[log["command"] != "ingest", "run_id"].astype(str)))
    for folder in warehouse.glob("*/run_id=*"):
        if folder.name.removeprefix("run_id=") in gone:
            shutil.rmtree(folder)
    shutil.rmtree(warehouse / "_checkpoints", ignore_errors=True)
    return gone


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("project", type=Path, help="a kept Spark bench project (read only)")
    ap.add_argument("copy", type=Path, help="where to copy it (replaced)")
    ap.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1] / "src",
                    help="the src/ folder whose segflow runs")
    ap.add_argument("--tag", default="")
    ap.add_argument("--set", default="tx1m")
    args = ap.parse_args()
    if args.copy.exists():
        shutil.rmtree(args.copy)
    shutil.copytree(args.project, args.copy)
    toml = args.copy / "segflow.toml"
    text = re.sub(r'(?m)^"spark\.eventLog\.[a-z]+" = .*\n', "", toml.read_text())
    text = re.sub(r'(?m)^warehouse = ".*"$', f'warehouse = "{args.copy / "warehouse"}"', text)
    toml.write_text(text)
    database = re.search(r'(?m)^database = "(.*)"$', text).group(1)
    db = args.copy / "warehouse" / f"{database}.db"
    removed = _ingest_only(db)
    src = args.src.resolve()
    result = python_stage(STAGE, "run", str(args.copy), "local", "local[2]", label="run",
                          env={"PYTHONPATH": str(src)})
    result.update(stage="run", commit=git_head() if src == Path(__file__).resolve().parents[1] / "src"
                  else f"src:{src}", set=args.set, engine="local", master="local[2]",
                  tag=args.tag, removed_runs=removed,
                  tables=sorted(p.name for p in db.iterdir() if any(p.glob("run_id=*"))))
    record(RESULTS, result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
