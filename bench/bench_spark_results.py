"""The last three stages of `segflow run` on Spark (CLV, aggregates, results), every Spark
action traced: wall seconds, CPU seconds and Spark jobs per stage, and per action its jobs
and segflow call site.

On the demo warehouse of ``bench/bench_spark_stages.py`` after one full run there::

    python bench/bench_spark_stages.py setup && python bench/bench_spark_stages.py run base
    python bench/bench_spark_results.py prepare     # the base: that run minus its last stages
    python bench/bench_spark_results.py run <tag>   # one run of the three stages

``prepare`` copies the warehouse to ``<work>/tailbase`` without the committed run's CLV
scores, model parameters and ``summary_*`` rows (its features, change rows and cluster
models stay); ``run`` restores that copy and runs the three stages as a new run on it, as
:func:`segflow.warehouse.run_on_warehouse` does. Lines go to ``<work>/results-tail.jsonl``,
the traced actions to ``<work>/trace-<tag>.jsonl`` and the stored results (pandas, for
comparing two versions of the code) to ``<work>/stored-<tag>.pkl``; work:
``SEGFLOW_SPARK_STAGES_WORK`` (default ``/tmp/segflow-spark-stages``). Figures:
docs/benchmarks.md, "Session 31: the run's results stage in fewer Spark jobs".
"""

import json
import os
import shutil
import sys
import time
import traceback
import warnings
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import tree_cpu  # noqa: E402

W = Path(os.environ.get("SEGFLOW_SPARK_STAGES_WORK", "/tmp/segflow-spark-stages"))
#: Tables the three stages write (removed from the base's last run by ``prepare``).
TAIL = ("customer_scores", "model_params", "summary_audit", "summary_profile_segments",
        "summary_profiles", "summary_results", "summary_segments", "summary_transitions")


def prepare():
    db = W / "warehouse" / "pipeline.db"
    last = max((p for p in (db / "customer_features").glob("run_id=*")), key=lambda p: p.stat().st_mtime)
    shutil.rmtree(W / "tailbase", ignore_errors=True)
    shutil.copytree(W / "warehouse", W / "tailbase")
    for table in TAIL:
        shutil.rmtree(W / "tailbase" / "pipeline.db" / table / last.name, ignore_errors=True)


def _tracer():
    """Wrap pyspark's actions: a list of (op, jobs, wall, site) filled as they run."""
    import pyspark.sql.classic.dataframe as classic
    from pyspark import SparkContext
    from pyspark.sql import DataFrameWriter

    log, depth = [], [0]

    def jobs():
        sc = SparkContext._active_spark_context
        ids = sc.statusTracker().getJobIdsForGroup() if sc else []
        return max(ids) + 1 if ids else 0

    def site():
        frames = [f for f in traceback.extract_stack()[:-3]
                  if "segflow" in f.filename and "/bench/" not in f.filename]
        return " < ".join(f"{f.filename.split('segflow/')[-1]}:{f.lineno}:{f.name}"
                          for f in reversed(frames[-5:]))

    def wrap(cls, attr):
        f = cls.__dict__[attr]

        def g(*a, **k):
            if depth[0]:
                return f(*a, **k)
            depth[0] += 1
            j0, t0 = jobs(), time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                depth[0] -= 1
                log.append({"op": f"{cls.__name__}.{attr}", "jobs": jobs() - j0,
                            "wall": round(time.perf_counter() - t0, 2), "site": site()})
        setattr(cls, attr, g)

    for attr in ("toPandas", "toArrow", "collect", "count", "checkpoint", "localCheckpoint"):
        wrap(classic.DataFrame, attr)
    wrap(DataFrameWriter, "parquet")
    return log, jobs


def run(tag):
    shutil.rmtree(W / "warehouse")
    shutil.copytree(W / "tailbase", W / "warehouse")
    log, jobs = _tracer()
    import segflow.warehouse._run as R
    from segflow.cli._warehouse import open_warehouse
    from segflow.pipeline import resolve_schemes, snapshot_dates_between
    from segflow.segments import freeze_cutoffs
    from segflow.store import CANONICAL_TABLES
    from segflow.warehouse._results import write_warehouse_results

    settings, store = open_warehouse(W / "proj")
    tables = {n: store.table(n) for n in CANONICAL_TABLES}
    dates = snapshot_dates_between(settings, *R.transaction_span(tables["transactions"]))
    schemes = freeze_cutoffs(resolve_schemes(settings), tables, window_days=settings.rfm.window_days)
    marks = {}

    def mark(name):
        marks[name] = (time.perf_counter(), tree_cpu(), jobs(), len(log))
    load0 = os.getloadavg()
    warnings.simplefilter("ignore")
    with store.run("run", {"engine": "spark", "bench": "tail"}) as run_id:
        mark("clv")
        notes, kept, frames = [], {}, {}
        scored = R._score(store, tables["transactions"], dates[-1], run_id, notes, kept)
        mark("aggregates")
        try:
            R.write_warehouse_aggregates(store, run_id, schemes, dates, frames=frames, scored=scored > 0)
        except TypeError:  # code before session 31: no ``scored``
            R.write_warehouse_aggregates(store, run_id, schemes, dates, frames=frames)
        mark("results")
        view = R._RunView(store, run_id, cached=R.RESULTS_CACHED)
        try:
            write_warehouse_results(store, view, run_id, schemes, frames, kept.get("btyd_triples"),
                                    clv_days=kept.get("purchase_days"))
        finally:
            view.release()
        mark("end")
        if "purchase_days" in kept:
            kept["purchase_days"].release()
    names = ["clv", "aggregates", "results", "end"]
    out = {"tag": tag, "load_before": load0, "load_after": os.getloadavg()}
    for a, b in pairwise(names):
        out[a] = {"wall": round(marks[b][0] - marks[a][0], 1),
                  "cpu": round(marks[b][1] - marks[a][1], 1), "jobs": marks[b][2] - marks[a][2]}
    print("MEASURE", json.dumps(out), flush=True)
    with open(W / "results-tail.jsonl", "a") as f:
        f.write(json.dumps(out) + "\n")
    with open(W / f"trace-{tag}.jsonl", "w") as f:
        for i, row in enumerate(log):
            stage = next((a for a, b in pairwise(names) if marks[a][3] <= i < marks[b][3]), "")
            f.write(json.dumps({**row, "stage": stage}) + "\n")
    import pandas as pd
    pd.to_pickle({t: store.dataframe(t).drop("run_id").toPandas() for t in TAIL},
                 W / f"stored-{tag}.pkl")


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare()
    else:
        run(sys.argv[2])
