"""Issue 16 bench: the main job (ingest, run, report) on DuckDB, on Spark ``local[2]`` and on a
local two-worker standalone Spark cluster, at about 1M and 10M transactions.

    python bench/bench_spark.py --sets tx1m,tx10m --engines duckdb,local --tag before
    python bench/bench_spark.py --sets tx10m --engines cluster

Data: the sets ``tx1m`` (51,500 customers, about 1.0M transactions) and ``tx10m`` (515,000
customers, about 10M transactions) of ``bench/bench_data.py``, 24 months each. Each stage
runs in its own process (``bench/_measure.py``); for Spark the memory figure that counts is
``tree_peak_mib``, the sampled resident set of the stage's process tree (the driver JVM is a
child of the Python process) plus, on the cluster, the master's and workers' trees (their
executors): ``ru_maxrss`` sees the Python process only.

How the engine is chosen: when the project settings have an ``[engine]`` section (issue 16),
the project file sets ``kind``, ``master`` and a warehouse folder; ingest runs on Spark
into the warehouse (:func:`segflow.warehouse.ingest_on_warehouse`), ``run`` reads the
warehouse and writes there (:func:`segflow.warehouse.run_on_warehouse`) and the report
reads the warehouse's aggregates; the optional ``push`` stage (``--stages``) measures the
migration tool instead (DuckDB's ingest, then ``segflow warehouse push``). Otherwise (before issue 16) ingest and report use the DuckDB store and only ``run`` uses Spark:
the stage starts the Spark session itself with the master and 4 GB of driver memory, and the
pipeline's ``getOrCreate`` picks it up. The cluster (a master and two workers of 1 core and
3 GB each, all on 127.0.0.1) is started with the launcher that ships with pyspark
(``spark-class ...deploy.master.Master`` / ``...deploy.worker.Worker``) and stopped by pid.
Figures are appended to ``bench/results/spark.jsonl``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import git_head, python_stage, record  # noqa: E402
from bench_run import data_info, make_project  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "spark.jsonl"
SPARK_HOME = Path(sys.executable).parents[1] / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / \
    "site-packages" / "pyspark"

STAGE = """
import json, sys, time
from pathlib import Path
stage, workdir, engine, master = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
t0 = time.perf_counter()
extra = {}
from segflow.config import Settings
configured = "engine" in Settings.model_fields
if engine != "duckdb" and not configured and stage == "run":
    from pyspark.sql import SparkSession
    (SparkSession.builder.master(master).appName("segflow-bench")
        .config("spark.driver.memory", "4g").config("spark.executor.memory", "3g")
        .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4").config("spark.sql.ansi.enabled", "false")
        .getOrCreate())
from segflow.project import Project
if configured and engine != "duckdb" and stage in ("push", "run"):
    # issue 16: the run reads the canonical tables from the Spark warehouse and writes there
    from segflow.store._spark import SparkStore
    from segflow.warehouse import push_to_warehouse, run_on_warehouse
    settings = Settings.load(workdir)
    warehouse = SparkStore.open(settings.engine, workdir)
    if stage == "push":  # the migration path: DuckDB's ingest, then `warehouse push`
        with Project.open(workdir) as project:
            project.ingest(engine="duckdb")
            extra["rows"] = push_to_warehouse(project.store, warehouse)
    else:
        summary = run_on_warehouse(warehouse, settings)
        extra["assignments"] = int(summary.assignments_written)
        extra["snapshots"] = len(summary.snapshot_dates)
        extra["engine_used"] = "spark-warehouse"
        extra["run_stages_s"] = {k: round(float(v), 2) for k, v in summary.seconds.items()}
    warehouse.session.stop()
    print(json.dumps({"inner_seconds": round(time.perf_counter() - t0, 2), **extra}))
    sys.exit(0)
project = Project.open(workdir)
if stage == "ingest":  # on Spark when the project's [engine] says so
    frame = project.ingest(engine="duckdb" if engine == "duckdb" else None).to_pandas()
    extra["rows_read"] = int(frame["rows_read"].sum())
elif stage == "run":
    kw = {} if configured or engine == "duckdb" else {"engine": "spark"}
    summary = project.run(**kw)
    extra["assignments"] = int(summary.assignments_written)
    extra["snapshots"] = len(summary.snapshot_dates)
    extra["engine_used"] = summary.engine
    extra["run_stages_s"] = {k: round(float(v), 2) for k, v in summary.seconds.items()}
elif stage == "report":
    project.report(workdir / "report.html")
project.close()
print(json.dumps({"inner_seconds": round(time.perf_counter() - t0, 2), **extra}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A Spark standalone master and two workers on 127.0.0.1, started and stopped by pid."""

    def __init__(self, workdir: Path, workers: int = 2, cores: int = 1, memory: str = "3g") -> None:
        self.workdir, self.procs = workdir, []
        workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1",
               "PYSPARK_PYTHON": sys.executable, "SPARK_WORKER_DIR": str(workdir / "work")}
        cls = str(SPARK_HOME / "bin" / "spark-class")
        port, ui = _free_port(), _free_port()
        self.url = f"spark://127.0.0.1:{port}"
        try:
            self._start([cls, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                         "--port", str(port), "--webui-port", str(ui)], env, "master")
            self._wait(port)
            for i in range(workers):
                self._start([cls, "org.apache.spark.deploy.worker.Worker", self.url, "--host", "127.0.0.1",
                             "--cores", str(cores), "--memory", memory, "--webui-port", str(_free_port())],
                            env, f"worker-{i}")
            self._wait_workers(ui, workers)
        except BaseException:
            self.stop()
            raise

    def _start(self, argv: list[str], env: dict, name: str) -> None:
        log = (self.workdir / f"{name}.log").open("w")
        self.procs.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT))

    @staticmethod
    def _wait_workers(ui: int, n: int, timeout: float = 300.0) -> None:
        """Until the master's JSON page lists ``n`` alive workers."""
        import json
        import urllib.request

        end = time.time() + timeout
        while time.time() < end:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=5) as page:
                    alive = [w for w in json.load(page).get("workers", []) if w.get("state") == "ALIVE"]
                if len(alive) >= n:
                    return
            except OSError:
                pass
            time.sleep(1)
        raise SystemExit(f"{n} Spark workers did not register with the master in {timeout:.0f} s")

    @staticmethod
    def _wait(port: int, timeout: float = 300.0) -> None:
        end = time.time() + timeout
        while time.time() < end:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.5)
        raise SystemExit(f"the Spark master did not listen on 127.0.0.1:{port}")

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def project_for(root: Path, work: Path, name: str, engine: str, master: str,
                memory_limit: str | None, event_log: Path | None = None,
                conf: tuple[str, ...] = (), chunk_customers: int | None = None) -> Path:
    """A project in ``work`` reading the data set ``name`` of ``root`` (read only); ``conf``:
    extra ``[engine.conf]`` settings ``KEY=VALUE`` for the Spark engines; ``chunk_customers``:
    the Spark engines' ``[engine] chunk_customers`` (default: segflow's)."""
    info = data_info(root, name)
    proj = work / f"spark-{engine}-{name}"
    make_project(proj, root / f"data-{name}", dt.date.fromisoformat(info["end"]), memory_limit)
    from segflow.config import Settings

    if engine != "duckdb" and "engine" in Settings.model_fields:
        settings = {"spark.driver.memory": "4g", "spark.executor.memory": "3g"}
        if event_log is not None:  # Spark's event log: every job's and stage's times and call site
            event_log.mkdir(parents=True, exist_ok=True)
            settings.update({"spark.eventLog.enabled": "true", "spark.eventLog.dir": event_log.resolve().as_uri()})
        settings.update((k.strip(), v.strip()) for k, _, v in (item.partition("=") for item in conf))
        toml = proj / "segflow.toml"
        toml.write_text(toml.read_text() + f'\n[engine]\nkind = "spark"\nmaster = "{master}"\n'
                        f'warehouse = "{proj / "warehouse"}"\ndatabase = "segflow"\n'
                        + (f"chunk_customers = {chunk_customers}\n" if chunk_customers else "")
                        + "[engine.conf]\n"
                        + "".join(f'"{k}" = "{v}"\n' for k, v in settings.items()))
    return proj


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="tx1m,tx10m")
    ap.add_argument("--engines", default=None,
                    help="from duckdb, local (Spark local[2]), cluster (two local workers); "
                    "default: all three, the cluster on the 10M set only")
    ap.add_argument("--root", type=Path, default=Path("/tmp/segflow-bench"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/segflow-spark-bench"),
                    help="projects, warehouses and the cluster's folders (--root is only read)")
    ap.add_argument("--tag", default="")
    ap.add_argument("--memory-limit", default=None)
    ap.add_argument("--stages", default="ingest,run,report",
                    help="ingest, run, report; push (Spark only): DuckDB's ingest then "
                    "`warehouse push` (the migration tool) instead of the Spark ingest")
    ap.add_argument("--event-log", type=Path, default=None,
                    help="Spark engines: write Spark's event log (jobs, stages, tasks) to this folder")
    ap.add_argument("--conf", action="append", default=[],
                    help="Spark engines: an extra [engine.conf] setting KEY=VALUE (repeatable), "
                    "e.g. spark.sql.shuffle.partitions=64")
    ap.add_argument("--chunk-customers", type=int, default=None,
                    help="Spark engines: [engine] chunk_customers, customers per chunk of the "
                    "one-pass features (default: segflow's)")
    ap.add_argument("--keep", action="store_true",
                    help="keep each project (and its warehouse) in --work after its stages")
    args = ap.parse_args()
    asked = args.engines is not None
    args.engines = args.engines or "duckdb,local,cluster"
    for name in args.sets.split(","):
        info = data_info(args.root, name)
        for engine in args.engines.split(","):
            if engine == "cluster" and name != "tx10m" and not asked:
                continue
            cluster = Cluster(args.work / "spark-cluster") if engine == "cluster" else None
            master = cluster.url if cluster else "local[2]"
            try:
                proj = project_for(args.root, args.work, name, engine, master, args.memory_limit,
                                   args.event_log, tuple(args.conf), args.chunk_customers)
                meta = {"set": name, "engine": engine, "master": master, "tag": args.tag,
                        **({"conf": args.conf} if args.conf and engine != "duckdb" else {}),
                        **({"chunk_customers": args.chunk_customers}
                           if args.chunk_customers and engine != "duckdb" else {}),
                        "customers": info["customers"], "transactions": info["rows"]["transactions"]}
                for stage in args.stages.split(","):
                    if stage == "push" and engine == "duckdb":
                        continue  # push: Spark only
                    result = python_stage(STAGE, stage, str(proj), engine, master, label=stage,
                                          also=cluster.pids if cluster else ())
                    result.update(stage=stage, commit=git_head(), **meta)
                    record(RESULTS, result)
                    if result["exit_code"] != 0:
                        break
                if not args.keep:
                    shutil.rmtree(proj, ignore_errors=True)
            finally:
                if cluster:
                    cluster.stop()


if __name__ == "__main__":
    main()
