"""Which lines of segflow ask Spark for jobs: a Spark ingest and run of a small demo on
``local[1]`` (the test suite's Spark settings: tests/conftest.py ``SPARK_TEST_CONF``, the
driver's JVM options of tests/_engines.py), every Spark job counted against the segflow call
site of the action that started it (a collect, a count, a write...), with the seconds spent
in those actions.

    python bench/spark_job_sites.py [--customers 80] [--months 6] [--top 25]

Jobs are counted from the DAG scheduler's next job id around each action (exact, unlike the
status tracker, which learns of jobs late); nested actions count for the outermost. The
number of jobs is deterministic; the seconds are not (and session 62 found the job count is
not what a small run's CPU goes to: docs/benchmarks.md, "The test suite's time"). Needs
pyspark and Java; run it from the checkout.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: The DataFrame and writer methods that run Spark jobs (those a class lacks are skipped).
ACTIONS = {
    "dataframe": ("collect", "count", "toPandas", "toArrow", "take", "first", "head", "isEmpty",
                  "toLocalIterator", "foreachPartition", "checkpoint", "localCheckpoint"),
    "writer": ("save", "saveAsTable", "insertInto", "parquet", "csv", "json"),
}


class JobSites:
    """Counts Spark jobs per segflow call site (see the module's docstring)."""

    def __init__(self) -> None:
        self.jobs: collections.Counter[str] = collections.Counter()
        self.seconds: collections.Counter[str] = collections.Counter()
        self._depth = 0

    @staticmethod
    def _next_job() -> int:
        from pyspark import SparkContext

        sc = SparkContext._active_spark_context
        return int(sc._jsc.sc().dagScheduler().nextJobId()) if sc is not None else 0

    @staticmethod
    def _site() -> str:
        frames = [f for f in traceback.extract_stack()[:-3] if "/segflow/" in f.filename]
        return " < ".join(f"{Path(f.filename).parent.name}/{Path(f.filename).name}:"
                          f"{f.lineno}:{f.name}" for f in reversed(frames[-3:]))

    def wrap(self, owner: type, name: str) -> None:
        function = getattr(owner, name)

        def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            if self._depth:
                return function(*args, **kwargs)
            self._depth += 1
            first, start = self._next_job(), time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self._depth -= 1
                jobs = self._next_job() - first
                if jobs:
                    site = f"{owner.__name__}.{name} @ {self._site()}"
                    self.jobs[site] += jobs
                    self.seconds[site] += time.perf_counter() - start

        setattr(owner, name, counted)

    def install(self) -> None:
        from pyspark.sql import DataFrameWriter, SparkSession
        from pyspark.sql.classic.dataframe import DataFrame

        for name in ACTIONS["dataframe"]:
            if name in DataFrame.__dict__:
                self.wrap(DataFrame, name)
        for name in ACTIONS["writer"]:
            self.wrap(DataFrameWriter, name)
        self.wrap(SparkSession, "createDataFrame")

    def report(self, stage: str, took: float, top: int) -> None:
        print(f"== {stage}: {sum(self.jobs.values())} Spark jobs, {took:.1f} s")
        for site, jobs in self.jobs.most_common(top):
            print(f"{jobs:5d} {self.seconds[site]:7.2f} s  {site}")
        self.jobs.clear()
        self.seconds.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=80)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--top", type=int, default=25, help="call sites shown per stage")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    warnings.simplefilter("ignore")
    from tests._engines import driver_java_options
    from tests.conftest import SPARK_TEST_CONF

    from segflow import datasets
    from segflow.engine._spark import BASE_CONF
    from segflow.project import Project

    BASE_CONF.update(SPARK_TEST_CONF)
    BASE_CONF["spark.driver.extraJavaOptions"] = driver_java_options()
    sites = JobSites()
    sites.install()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        demo = datasets.generate_demo(root / "data", customers=args.customers,
                                      months=args.months, seed=1)
        toml = (datasets.demo_project_toml("data", max_date=demo.end)
                + f'\n[engine]\nkind = "spark"\nmaster = "local[1]"\n'
                  f'warehouse = "{root}/warehouse"\ndatabase = "demo"\n')
        project = Project.init(root, toml_text=toml, overwrite=True)
        try:
            for stage in ("ingest", "run"):
                start = time.perf_counter()
                getattr(project, stage)()
                sites.report(stage, time.perf_counter() - start, args.top)
        finally:
            project.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
