"""Stage by stage: wall seconds, CPU seconds and Spark jobs of `segflow run` on Spark.

The demo of the cluster conformance test (100 customers, 4 monthly snapshots, the demo's six
schemes and a k-means scheme) on Spark ``local[2]`` (two shuffle partitions, adaptive
execution off, as the tests' sessions), its warehouse ingested once by ``segflow ingest``
on Spark and restored before every run::

    python bench/bench_spark_stages.py setup          # demo data, project, ingest (once)
    python bench/bench_spark_stages.py run <tag>       # one run; a JSON line per run

CPU seconds are those of the whole process tree (Python driver, JVM, Python workers), read
with psutil at the stage boundaries (the stage functions of ``segflow.warehouse._run`` are
wrapped); jobs are the Spark job ids used. Lines go to ``<work>/results.jsonl`` (work:
``SEGFLOW_SPARK_STAGES_WORK``, default ``/tmp/segflow-spark-stages``). Figures:
docs/benchmarks.md, "The Spark run stage by stage".
"""

import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import tree_cpu  # noqa: E402

W = Path(os.environ.get("SEGFLOW_SPARK_STAGES_WORK", "/tmp/segflow-spark-stages"))
CLUSTERS = '\n[[schemes]]\nname = "clusters"\nkind = "cluster"\nk = 3\n'


def setup():
    from segflow.datasets import demo_project_toml, generate_demo
    from segflow.project import Project
    shutil.rmtree(W, ignore_errors=True)
    W.mkdir(parents=True)
    ds = generate_demo(W / "data", customers=100, months=4, seed=11, formats=("parquet",))
    engine = "\n".join(["[engine]", 'kind = "spark"', 'master = "local[2]"',
                        f'warehouse = "{W}/warehouse"', 'database = "pipeline"', "",
                        "[engine.conf]", '"spark.sql.shuffle.partitions" = "2"',
                        '"spark.sql.adaptive.enabled" = "false"', '"spark.driver.memory" = "1g"', ""])
    toml = demo_project_toml(W / "data", file_format="parquet", max_date=ds.end)
    Project.init(W / "proj", toml_text=toml + CLUSTERS + "\n" + engine)
    from segflow.cli import main
    sys.argv = ["segflow", "ingest", "-p", str(W / "proj"), "--json"]
    try:
        main()
    except SystemExit:
        pass
    shutil.copytree(W / "warehouse", W / "pristine")


def run(tag):
    shutil.rmtree(W / "warehouse")
    shutil.copytree(W / "pristine", W / "warehouse")
    import segflow.summaries._results as SR
    import segflow.summaries._write as SW
    import segflow.warehouse._results as WR
    import segflow.warehouse._run as R
    marks = []
    sc = [None]

    def jobs():
        if sc[0] is None:
            from pyspark import SparkContext
            sc[0] = SparkContext._active_spark_context
        ids = sc[0].statusTracker().getJobIdsForGroup() if sc[0] else []
        return max(ids) + 1 if ids else 0

    def mark(name):
        marks.append((name, time.perf_counter(), tree_cpu(), jobs()))

    def wrap(mod, attr, name):
        f = getattr(mod, attr)
        def g(*a, **k):
            mark(name + ">")
            try:
                return f(*a, **k)
            finally:
                mark(name + "<")
        setattr(mod, attr, g)
    wrap(R, "transaction_span", "plan")
    wrap(R, "_write_spells", "spells")
    wrap(R, "_score", "clv")
    wrap(R, "write_warehouse_aggregates", "aggregates")
    wrap(WR, "write_warehouse_results", "results")
    wrap(SW, "profile_frames", "profiles")
    wrap(SW, "_audit_frame", "audit")
    wrap(SR, "result_documents", "documents")
    load0 = os.getloadavg()
    t0, c0 = time.perf_counter(), tree_cpu()
    from segflow.cli import main
    sys.argv = ["segflow", "run", "-p", str(W / "proj"), "--json"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            main()
        except SystemExit:
            pass
    mark("end")
    m = {n: (t, c, j) for n, t, c, j in marks}
    def span(a, b):
        return {"wall": round(m[b][0] - m[a][0], 1), "cpu": round(m[b][1] - m[a][1], 1),
                "jobs": m[b][2] - m[a][2]}
    out = {"tag": tag, "load_before": load0, "load_after": os.getloadavg(),
           "total_wall": round(m["end"][0] - t0, 1), "total_cpu": round(m["end"][1] - c0, 1),
           "features": span("plan<", "spells>"), "spells": span("spells>", "spells<"),
           "clv": span("clv>", "clv<"), "aggregates": span("aggregates>", "aggregates<"),
           "results": span("results>", "results<"), "profiles": span("profiles>", "profiles<"),
           "documents": span("documents>", "documents<")}
    if "audit>" in m:
        out["audit"] = span("audit>", "audit<")
    with open(W / "results.jsonl", "a") as f:
        f.write(json.dumps(out) + "\n")
    print("MEASURE", json.dumps(out), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup()
    else:
        run(sys.argv[2])
