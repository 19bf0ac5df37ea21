"""The data audit on Spark (``local[1]``): Spark jobs, wall and CPU seconds, old code against new.

    python bench/bench_spark_audit.py setup [--customers 80 --months 4 --seed 11]
    python bench/bench_spark_audit.py run --old /tmp/old/src --pairs 3 --tag s32

``setup`` generates a demo (default: the one of tests/spark/test_warehouse_ingest_audit.py,
80 customers over 4 months, seed 11) and ingests it on Spark ``local[1]`` into a warehouse
in ``<work>/proj`` (work: ``SEGFLOW_SPARK_AUDIT_WORK``, default ``/tmp/segflow-spark-audit``).

``run`` opens one Spark session on that warehouse and runs :func:`segflow.quality.audit`
of the old code (``--old``: a ``src`` folder; its ``segflow/quality/_audit.py`` is loaded
as a module of its own, on this tree's other modules) and of the new code (this tree)
alternately, old first (after one old audit not measured: the JVM's warm-up): per audit the Spark jobs (ids handed out by the session's DAG
scheduler), the wall seconds and the CPU seconds of the process tree (the Python driver, the
JVM and its Python workers: ``_measure.tree_cpu``), and the 1-minute load before and after.
Every report must equal the first old one (its ``to_pandas()`` rows, score and dates).
``--test-conf``: the test suite's session settings (no adaptive execution, which runs every
shuffle as a job of its own; one shuffle partition). With ``--trace`` every Spark action is listed with its jobs and segflow call site
(``bench_spark_results._tracer``). One JSON line per audit goes to
``bench/results/spark_audit.jsonl``. Figures: docs/benchmarks.md, "Session 32 (helper
sparkaudit)".
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import tree_cpu  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "spark_audit.jsonl"
W = Path(os.environ.get("SEGFLOW_SPARK_AUDIT_WORK", "/tmp/segflow-spark-audit"))
ENGINE = '\n[engine]\nkind = "spark"\nmaster = "local[1]"\nwarehouse = "wh"\ndatabase = "audit"\n'


def setup(customers: int, months: int, seed: int) -> None:
    import shutil

    from segflow.datasets import demo_project_toml, generate_demo
    from segflow.project import Project

    shutil.rmtree(W, ignore_errors=True)
    ds = generate_demo(W / "data", customers=customers, months=months, seed=seed, formats=("parquet",))
    toml = demo_project_toml(W / "data", file_format="parquet", max_date=ds.end)
    project = Project.init(W / "proj", toml_text=toml + ENGINE)
    try:
        warnings.simplefilter("ignore")  # the demo's injected defects
        project.ingest(engine="spark")
    finally:
        project.close()
    print(json.dumps({"setup": str(W), "customers": customers, "months": months, "seed": seed}))


def _old_audit(src: Path):
    """``audit`` of the old code's ``segflow/quality/_audit.py`` (a module of its own)."""
    path = src / "segflow" / "quality" / "_audit.py"
    spec = importlib.util.spec_from_file_location("segflow_old_quality_audit", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.audit


def _frame(report):
    frame = report.to_pandas()
    return frame, (round(report.score, 9), report.as_of, report.data_end)


#: The test suite's session settings (tests/conftest.py's SPARK_TEST_CONF), for ``--test-conf``.
TEST_CONF = {"spark.sql.shuffle.partitions": "1", "spark.sql.adaptive.enabled": "false"}


def run(old: Path, pairs: int, tag: str, trace: bool, test_conf: bool = False) -> None:
    import pandas as pd

    from segflow.config import Settings
    from segflow.quality import audit as new_audit
    from segflow.store._spark import SparkStore

    log = None
    if trace:
        from bench_spark_results import _tracer

        log, _ = _tracer()
    warnings.simplefilter("ignore")
    settings = Settings.load(W / "proj")
    store = SparkStore.open(settings.engine, W / "proj")
    sc = store.session.sparkContext
    for key, value in (TEST_CONF if test_conf else {}).items():
        store.session.conf.set(key, value)
    audits = {"old": _old_audit(old), "new": new_audit}

    def jobs() -> int:  # the DAG scheduler's next job id (the status tracker may lag)
        return int(sc._jsc.sc().dagScheduler().nextJobId())

    audits["old"](store)  # warm-up, not measured: the JVM's first queries compile its code
    first = None
    for i in range(pairs):
        for which in ("old", "new"):
            load0, start = os.getloadavg(), len(log or [])
            j0, t0, c0 = jobs(), time.perf_counter(), tree_cpu()
            report = audits[which](store)
            out = {"tag": tag, "code": which, "test_conf": test_conf, "pair": i + 1, "jobs": jobs() - j0,
                   "wall_s": round(time.perf_counter() - t0, 2), "cpu_s": round(tree_cpu() - c0, 2),
                   "load_before": round(load0[0], 2), "load_after": round(os.getloadavg()[0], 2),
                   "checks": len(report.checks), "score": round(report.score, 3)}
            frame, meta = _frame(report)
            if first is None:
                first = (frame, meta)
            else:
                pd.testing.assert_frame_equal(frame, first[0])
                assert meta == first[1], (meta, first[1])
            if log is not None:
                sites = Counter()
                for row in log[start:]:
                    sites[row["site"].split(" < ")[0]] += row["jobs"]
                out["sites"] = dict(sites.most_common())
            print(json.dumps(out), flush=True)
            RESULTS.parent.mkdir(exist_ok=True)
            with RESULTS.open("a") as f:
                f.write(json.dumps(out) + "\n")
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--customers", type=int, default=80)
    s.add_argument("--months", type=int, default=4)
    s.add_argument("--seed", type=int, default=11)
    r = sub.add_parser("run")
    r.add_argument("--old", type=Path, required=True, help="src/ of the old code")
    r.add_argument("--pairs", type=int, default=2)
    r.add_argument("--tag", default="s32")
    r.add_argument("--trace", action="store_true")
    r.add_argument("--test-conf", action="store_true",
                   help="the test suite's settings: no adaptive execution, 1 shuffle partition")
    args = ap.parse_args()
    if args.cmd == "setup":
        setup(args.customers, args.months, args.seed)
    else:
        run(args.old, args.pairs, args.tag, args.trace, args.test_conf)


if __name__ == "__main__":
    main()
