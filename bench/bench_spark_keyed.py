"""Reading a keyed Spark warehouse table: the latest run per key by a window over every row
(the Spark store's former way) against the grouping of (key, run) broadcast back
(:func:`segflow.store._spark._latest_per_key`).

    python bench/bench_spark_keyed.py <warehouse>/<database>.db/segment_assignments old,new,old,new

The table's partition of one run is read twice, as two runs (the same rows under a second
run id), so every key is written by both; each variant caches and counts the latest run's
rows. Prints one JSON line per variant (wall seconds, rows, 1-minute load). Spark
``local[2]``, 4 GB driver, no web UI. Results: docs/benchmarks.md ("Session 29: reading a
keyed warehouse table").
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    from pyspark.sql import SparkSession, Window
    from pyspark.sql import functions as F

    from segflow.store._spark import _latest_per_key

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("table", help="folder of a keyed table (run_id=... partitions)")
    ap.add_argument("order", nargs="?", default="old,new,old,new")
    ap.add_argument("--keys", default="scheme,snapshot_date")
    args = ap.parse_args()
    spark = (SparkSession.builder.master("local[2]").config("spark.driver.memory", "4g")
             .config("spark.ui.enabled", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    one = spark.read.parquet(args.table)
    rid = one.select("run_id").first().run_id
    df = one.unionByName(one.withColumn("run_id", F.lit("older")))
    runs, keys = ["older", rid], tuple(args.keys.split(","))

    def window(df):  # the former SparkStore.dataframe
        order = spark.createDataFrame([(r, i) for i, r in enumerate(runs)],
                                      "run_id string, _seq int")
        df = df.join(F.broadcast(order), "run_id")
        latest = F.max("_seq").over(Window.partitionBy(*keys))
        return df.withColumn("_latest", latest).where("_seq = _latest").drop("_seq", "_latest")

    variants = {"old": window, "new": lambda d: _latest_per_key(spark, d, runs, keys)}
    for label in args.order.split(","):
        start = time.perf_counter()
        out = variants[label](df).cache()
        n = out.count()
        out.unpersist()
        print(json.dumps({"label": label, "rows": n,
                          "wall_s": round(time.perf_counter() - start, 1),
                          "load": round(os.getloadavg()[0], 1)}), flush=True)


if __name__ == "__main__":
    main()
