"""A segflow driver process for the fault test: on the cluster, it starts a run of the Spark
store, writes its rows, says so on stdout and waits to be killed before committing.

    python tests/spark/_driver.py MASTER WAREHOUSE DATABASE EXECUTOR_MEMORY
"""

from __future__ import annotations

import datetime as dt
import sys
import time

import pyarrow as pa

from segflow.engine import spark_session
from segflow.store._spark import SparkStore


def main() -> None:
    master, warehouse, database, memory = sys.argv[1:5]
    session = spark_session(master, warehouse=warehouse, conf={
        "spark.executor.memory": memory, "spark.executor.cores": "1", "spark.cores.max": "2"})
    store = SparkStore(session, warehouse, database)
    rows = pa.table({"scheme": ["rfm"] * 3, "snapshot_date": [dt.date(2024, 2, 1)] * 3,
                     "customer_id": ["a", "b", "c"], "segment": ["killed"] * 3,
                     "segment_rank": pa.array([1, 2, 3], pa.int32())})
    with store.run("fault test") as run_id:
        store.write("segment_assignments", rows, run_id)
        print(f"written {run_id}", flush=True)
        time.sleep(600)


if __name__ == "__main__":
    main()
