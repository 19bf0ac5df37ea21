"""The demo project on the two-worker cluster, run once for the session (``cluster_demo``,
tests/spark/conftest.py) and read by two modules: test_warehouse_pipeline.py checks the
faults and the results, test_warehouse_cli.py the CLI on the same warehouse.

The demo is ingested and run by DuckDB (the reference) in a DuckDB project naming the
cluster's warehouse (database ``pipeline``); ``segflow warehouse push`` pushes its loads
there (with ``warehouse runs`` before and after, and ``vacuum``: the CLI module's checks of a
DuckDB project's warehouse, which pushed the same store a second time before session 61);
the project then becomes a Spark project; a ``segflow run`` in its own process (its own
driver on the cluster, one executor) is SIGKILLed mid-run; then ``segflow run`` on the
cluster loses worker 1 mid-run. What each step left is recorded here and asserted by the
tests. One full cluster run for both modules: the CLI module ran the same demo on a
``local[1]`` session of its own before session 59 (a minute of the suite's time).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
from tests.spark._jobs import count_spark_jobs
from typer.testing import CliRunner

DATABASE = "pipeline"
#: The demo data: small, because Spark plans the one-pass feature query (hundreds of stages)
#: whatever the size of the data; four monthly snapshots, so three transitions per scheme.
CUSTOMERS, MONTHS = 100, 4
#: A cluster scheme besides the demo's six (k-means on the default features): fitted on the
#: driver, assigned by the engine, re-applied from the saved model.
CLUSTERS = '\n[[schemes]]\nname = "clusters"\nkind = "cluster"\nk = 3\n'
#: The shadowed rule of /work/shared/cases/shadowed-rule-empty-segment: every Champion is
#: Loyal first, so rule 2 names nobody (a run note on both engines).
MY_RFM = """
[[schemes]]
name = "my_rfm"
kind = "rules"
default = "Others"
ordered = true
rules = [
  { segment = "Loyal", when = "r_score >= 3 and f_score >= 3 and m_score >= 3" },
  { segment = "Champions", when = "r_score >= 4 and f_score >= 4 and m_score >= 4" },
]
"""
TABLES = ("customers", "transactions", "events", "quarantine", "loads")


@dataclasses.dataclass
class ClusterDemo:
    """The project (DuckDB store: its ingest and run) and what the faulted Spark runs left."""

    project: object
    toml: str  #: the project file without its [engine] table
    engine: str  #: its [engine] table: the cluster and the warehouse's database
    ingested_rows: dict[str, int]  #: rows per ingested table in the DuckDB store
    cli_push: dict[str, object]  #: what `segflow warehouse` said around the push (_push_by_cli)
    pushed: list[str]  #: committed runs after the push
    killed_run: str  #: the run id of the killed driver's run
    driver_alive: bool  #: the driver was still running when it was killed
    driver_log: str
    after_kill: dict[str, object]  #: the warehouse read again after the killed driver
    duck_runs: pd.DataFrame  #: the DuckDB store's run log before the Spark run
    results_jobs: list[int]  #: Spark jobs of the Spark run's results stage
    worker_killed_at: float | None  #: monotonic time worker 1 was killed (None: it was not)
    finished_at: float  #: monotonic time the Spark run returned
    alive_workers: int  #: workers alive after the Spark run
    summary: dict  #: the Spark run's summary (``segflow run --json``)


def cli(*args: str, stdout: bool = False) -> str:
    """``segflow ARGS`` in process: its output (its stdout alone with ``stdout``)."""
    from segflow.cli import app

    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout if stdout else result.output


def warehouse_store(session):
    from segflow.store._spark import SparkStore

    return SparkStore(session, session.conf.get("spark.sql.warehouse.dir"), DATABASE)


def local_path(url: str) -> Path:
    """The folder of a local warehouse URL (``file:///...``)."""
    return Path("/" + url.removeprefix("file:").lstrip("/"))


def store_root(store) -> Path:
    return local_path(store.root)


def duck(project, query: str) -> pd.DataFrame:
    return project.store.raw.execute(query).df()


def _new_run_dir(root: Path, table: str, before: set[str], timeout: float,
                 driver: subprocess.Popen | None = None, log: Path | None = None) -> str:
    """Wait for a ``run_id=`` folder of ``table`` not in ``before``; return the run id. Fails
    at once (with the end of its log) when ``driver`` exits first, and after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver is not None and driver.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise AssertionError(f"the driver exited ({driver.returncode}) before a new run "
                                 f"appeared in {root / table}:\n{tail}")
        folder = root / table
        now = {p.name.removeprefix("run_id=") for p in folder.glob("run_id=*")} if folder.is_dir() else set()
        if now - before:
            return sorted(now - before)[0]
        time.sleep(0.5)
    raise AssertionError(f"no new run in {root / table} after {timeout:.0f} s")


def _kill_worker_mid_run(cluster, root: Path, killed: dict[str, float]) -> threading.Thread:
    """A thread that SIGKILLs worker 1 (and its executor) eight seconds after the next run
    writes its ``running`` row: inside the features job."""
    before = {p.name.removeprefix("run_id=") for p in (root / "runs").glob("run_id=*")}

    def kill() -> None:
        _new_run_dir(root, "runs", before, timeout=300)
        time.sleep(8)
        killed["at"] = time.monotonic()
        cluster.kill_worker(1)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def _engine(cluster, warehouse: str, *, kind: str = "spark", **conf: str) -> str:
    """The [engine] table of the cluster's warehouse (its database :data:`DATABASE`): of
    ``kind`` (``duckdb``: the table without ``kind``, its warehouse a folder as users write
    it), the cluster's session settings (with ``conf`` instead where given)."""
    from tests._spark_cluster import EXECUTOR_MEMORY

    settings = {**cluster.session_conf(), "spark.executor.memory": EXECUTOR_MEMORY, **conf}
    where = str(local_path(warehouse)) if kind == "duckdb" else warehouse
    return "\n".join([
        "", "[engine]", *([] if kind == "duckdb" else [f'kind = "{kind}"']),
        f'master = "{cluster.master_url}"', f'warehouse = "{where}"',
        f'database = "{DATABASE}"', "",
        "[engine.conf]", *[f'"{k}" = "{v}"' for k, v in settings.items()], ""])


def _ingested_project(folder: Path, cluster, warehouse: str):
    """The demo project ingested and run by DuckDB: a DuckDB project ([engine] without
    ``kind``) naming the cluster's warehouse, whose push :func:`_push_by_cli` makes."""
    from segflow.datasets import demo_project_toml, generate_demo
    from segflow.project import Project

    ds = generate_demo(folder / "data", customers=CUSTOMERS, months=MONTHS, seed=11,
                       formats=("parquet",))
    toml = demo_project_toml(folder / "data", file_format="parquet", max_date=ds.end) \
        + CLUSTERS + MY_RFM
    project = Project.init(folder / "proj",
                           toml_text=toml + _engine(cluster, warehouse, kind="duckdb"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the demo data carries injected defects on purpose
        project.ingest(engine="duckdb")
        project.run(engine="duckdb")
    return project, toml


def _invoke(*args: str) -> tuple[int, str, str]:
    """``segflow ARGS`` in process: (exit code, stdout, stderr)."""
    from segflow.cli import app

    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _push_by_cli(project, warehouse: Path) -> dict[str, object]:
    """``segflow warehouse runs``, ``push``, ``runs`` and ``vacuum`` on the DuckDB project
    (closed meanwhile: the push opens its store read-only): what each said, whether the
    database's folder existed before the push, and the rows of each pushed table in the
    DuckDB store (asserted by test_warehouse_cli.py)."""
    import duckdb

    directory = str(project.directory)
    project.close()
    before = _invoke("warehouse", "runs", "-p", directory)
    existed = (warehouse / f"{DATABASE}.db").exists()
    code, out, err = _invoke("warehouse", "push", "-p", directory, "--json")
    assert code == 0, err
    pushed = json.loads(out)
    con = duckdb.connect(str(project.directory / "segflow.duckdb"), read_only=True)
    try:
        expected = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                    for t in pushed["rows"]}
    finally:
        con.close()
    return {"before": before, "existed": existed, "pushed": pushed, "expected": expected,
            "runs": _invoke("warehouse", "runs", "-p", directory, "--json"),
            "vacuum": _invoke("warehouse", "vacuum", "-p", directory)}


def _killed_driver(directory: Path, root: Path, log: Path) -> tuple[str, bool, str]:
    """A ``segflow run -p directory`` in its own process, SIGKILLed five seconds after its
    run's ``running`` row appears: (its run id, whether it was still running, its log's
    end)."""
    before = {p.name.removeprefix("run_id=") for p in (root / "runs").glob("run_id=*")}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    with open(log, "wb") as out:
        driver = subprocess.Popen(
            [sys.executable, "-c", "from segflow.cli import main; main()", "run", "-p",
             str(directory)],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        run_id = _new_run_dir(root, "runs", before, timeout=240, driver=driver, log=log)
        time.sleep(5)  # inside the features job: planning, first stages
        alive = driver.poll() is None
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=60)
    return run_id, alive, log.read_text(errors="replace")[-3000:]


def run_cluster_demo(folder: Path, cluster, session) -> ClusterDemo:
    """The DuckDB project, its push by the CLI, the killed driver and the Spark run losing
    worker 1 (then started again for the later tests), with what each left."""
    from segflow.project import Project

    warehouse = session.conf.get("spark.sql.warehouse.dir")
    project, toml = _ingested_project(folder, cluster, warehouse)
    # the DuckDB store's loads pushed to the cluster's warehouse by `segflow warehouse push`
    # on the DuckDB project (the demo's ingest on Spark is compared with DuckDB's in
    # tests/spark/test_warehouse_ingest_audit.py, an ingest on the cluster in
    # tests/spark/test_warehouse_ingest.py)
    cli_push = _push_by_cli(project, local_path(warehouse))
    # from here on a Spark project ([engine] kind = "spark")
    engine = _engine(cluster, warehouse)
    (project.directory / "segflow.toml").write_text(toml + engine)
    project = Project.open(project.directory)
    store = warehouse_store(session)
    rows = {t: int(duck(project, f'SELECT count(*) AS n FROM "{t}"')["n"][0]) for t in TABLES}
    pushed = store.committed_runs()
    root = store_root(store)
    # the killed driver runs the same project on one executor (spark.cores.max = 1: a
    # second application's executors are JVMs started for five seconds of work) and without
    # code generation, as every session of the tests' own process (BASE_CONF, set by
    # tests/conftest.py), from a folder of its own holding its segflow.toml (the run on
    # Spark reads the warehouse only)
    from segflow.engine._spark import BASE_CONF

    codegen = {k: v for k, v in BASE_CONF.items() if k.startswith("spark.sql.codegen.")}
    alone = folder / "killed"
    Project.init(alone, toml_text=toml + _engine(
        cluster, warehouse, **{"spark.cores.max": "1", **codegen})).close()
    run_id, alive, log = _killed_driver(alone, root, folder / "driver.log")
    fresh = warehouse_store(session)
    after_kill = {
        "committed": fresh.committed_runs(),
        "statuses": {r.status for r in fresh.runs().collect() if r.run_id == run_id},
        "rows": {t: fresh.dataframe(t).count() for t in TABLES},
        "tables": fresh.tables(),
    }
    duck_runs = duck(project, "SELECT run_id, status FROM runs ORDER BY ALL")
    killed: dict[str, float] = {}
    killer = _kill_worker_mid_run(cluster, root, killed)
    counted: list[int] = []
    import segflow.warehouse._results as results

    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        count_spark_jobs(patch, results, "write_warehouse_results", counted)
        warnings.simplefilter("ignore")
        out = cli("run", "-p", str(project.directory), "--json", stdout=True)
    finished = time.monotonic()
    print(out)  # timings, shown by -rP
    print(f"results stage: {counted} Spark jobs")
    killer.join(timeout=5)
    alive_workers = cluster.alive_workers()
    for i, proc in enumerate(cluster.workers):  # both workers for the later tests
        if proc is None:
            cluster.start_worker(i)
    return ClusterDemo(project=project, toml=toml, engine=engine, ingested_rows=rows,
                       cli_push=cli_push, pushed=pushed, killed_run=run_id,
                       driver_alive=alive, driver_log=log, after_kill=after_kill,
                       duck_runs=duck_runs, results_jobs=counted,
                       worker_killed_at=killed.get("at"), finished_at=finished,
                       alive_workers=alive_workers, summary=json.loads(out))
