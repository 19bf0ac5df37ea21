"""The Spark ingest load by load: wall seconds, CPU seconds of the process tree and Spark jobs.

    python bench/bench_spark_ingest.py <data folder> <work folder> <tag>

The data folder is one of ``bench/bench_data.py`` (its ``done.json`` gives the last date); a
fresh demo project in ``<work>/proj`` with ``[engine] kind = "spark"``, ``local[2]``, reads
it; :func:`segflow.warehouse.ingest_on_warehouse` runs with a progress callback that
records, after every load, the seconds, the CPU seconds of the whole process tree (the
Python driver, the JVM, its Python workers: psutil, their own and waited-for children's)
and the Spark job ids used, from the session's start. One JSON line per run is appended to
``<work>/results.jsonl`` (with each load's read, accepted, quarantined and duplicate rows, to
compare old and new code). Figures: docs/benchmarks.md, "Session 28".
"""

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import tree_cpu  # noqa: E402
from bench_run import make_project  # noqa: E402


def main() -> None:
    data, work, tag = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    info = json.loads((data / "done.json").read_text())
    proj = work / "proj"
    make_project(proj, data, dt.date.fromisoformat(info["end"]), None)
    toml = proj / "segflow.toml"
    toml.write_text(toml.read_text() + '\n[engine]\nkind = "spark"\nmaster = "local[2]"\n'
                    f'warehouse = "{proj / "warehouse"}"\ndatabase = "segflow"\n'
                    '[engine.conf]\n"spark.driver.memory" = "4g"\n"spark.executor.memory" = "3g"\n')
    from segflow.config import Settings
    from segflow.store._spark import SparkStore
    from segflow.warehouse._ingest import ingest_on_warehouse

    load0 = os.getloadavg()
    t0, c0 = time.perf_counter(), tree_cpu()
    settings = Settings.load(proj)
    store = SparkStore.open(settings.engine, proj)
    sc = store.session.sparkContext

    def jobs() -> int:
        ids = sc.statusTracker().getJobIdsForGroup()
        return max(ids) + 1 if ids else 0

    marks = []

    def mark(label: str, *_: object) -> None:
        marks.append((label, round(time.perf_counter() - t0, 2), round(tree_cpu() - c0, 2), jobs()))
        print(json.dumps(marks[-1]), flush=True)

    mark("open")
    report = ingest_on_warehouse(store, settings, proj, progress=mark)
    mark("end")
    out = {"tag": tag, "load_before": load0, "load_after": os.getloadavg(), "marks": marks,
           "loads": [(ld.source, ld.rows_read, ld.rows_accepted, ld.rows_quarantined, ld.rows_duplicate)
                     for ld in report.loads]}
    with open(work / "results.jsonl", "a") as f:
        f.write(json.dumps(out) + "\n")
    print("RESULT", json.dumps(out), flush=True)
    store.session.stop()


if __name__ == "__main__":
    main()
