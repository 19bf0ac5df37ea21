"""Shared fixtures: the real datasets in ../shared/data and throw-away stores; the grouping
of tests for parallel runs (pytest-xdist, ``make test``: ``-n auto --dist loadgroup``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests._engines import driver_java_options

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

#: Session-scoped fixtures that take seconds to build and serve several test modules: under
#: xdist every worker builds its own copy, so the tests using one run on the same worker.
SHARED_FIXTURES = ("demo_project", "demo", "campaign_store", "campaign_project", "cdnow_summary",
                   "refreshed_shop")
#: Modules whose tests are independent and cheap to set up: spread them over the workers.
SPREAD_MODULES = ("test_sources_bad_corpus.py",)


#: Modules of the ``spark-local`` group whose sessions have another master (``local[2]``),
#: stopped after them: last in the group, so that the ``local[1]`` tests before them share one
#: session (a change of master stops the SparkContext and starts another).
OWN_MASTER_MODULES = ("test_warehouse_ingest_url.py",)
#: Fixtures of the standalone Spark cluster (tests/spark/conftest.py).
CLUSTER_FIXTURES = ("cluster", "_cluster_spark", "cluster_session")
#: Spark settings of the tests' local sessions, made for their tiny data (docs/scale.md):
#: segflow's queries have hundreds of shuffles whatever the data size; one partition each
#: and no adaptive execution (which runs every shuffle as a job of its own) halve the time.
#: The cluster's sessions set the same (tests/_spark_cluster.py, two partitions there).
#: Code generation off (whole-stage and per expression, Spark's interpreted evaluation): on a
#: hundred customers Spark spends more time compiling the generated Java of each of the
#: hundreds of stages than running it; 15-20 % less time for the Spark tests (session 38,
#: docs/benchmarks.md "The test suite's time"). Sessions outside the tests keep Spark's code
#: generation; the results compared with DuckDB's are the same on either path.
SPARK_TEST_CONF = {"spark.sql.shuffle.partitions": "1", "spark.sql.adaptive.enabled": "false",
                   "spark.sql.codegen.wholeStage": "false",
                   "spark.sql.codegen.factoryMode": "NO_CODEGEN"}


def xdist_group_of(item: pytest.Item) -> str | None:
    """The xdist group of a test: two for the Spark tests (``spark-cluster``: those on the
    standalone cluster, started once; ``spark-local``: those on a ``local[1]`` session; one
    JVM each, and the two groups run side by side), one per shared session fixture, else
    its module (module fixtures are built once); None spreads."""
    path = Path(str(item.fspath))
    if item.get_closest_marker("spark") or path.parent.name == "spark":
        names = getattr(item, "fixturenames", ())
        return "spark-cluster" if any(n in names for n in CLUSTER_FIXTURES) else "spark-local"
    names = getattr(item, "fixturenames", ())
    for name in SHARED_FIXTURES:
        if name in names:  # defined in the conftest of the test's folder
            return f"{path.parent.name}:{name}"
    if path.name in SPREAD_MODULES:
        return None
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.name


def pytest_configure(config: pytest.Config) -> None:
    """Every Spark session the tests start gets :data:`SPARK_TEST_CONF` and the JVM options
    ``tests._engines.SPARK_TEST_JVM`` (settings passed by a test or a project's ``[engine] conf`` still
    win)."""
    from segflow.engine._spark import BASE_CONF

    BASE_CONF.update(SPARK_TEST_CONF)
    BASE_CONF["spark.driver.extraJavaOptions"] = driver_java_options()


def _spark_order(item: pytest.Item) -> int:
    """Order of the Spark tests: the cluster's group first; in the local group, tests/spark's
    session tests first (they build sessions with warehouses of their own; the local tests
    after them reuse the last session, where Spark allows one session per process and a
    change of master or warehouse costs seconds). Under ``--dist loadgroup`` the order within
    a group holds, but pytest-xdist (``--loadscope-reorder``, its default) hands out the
    groups by their number of tests, most first, not in collection order: ``spark-local``
    (51 tests) goes 5th, ``spark-cluster`` (10) 56th of 352 (session 59, docs/benchmarks.md).
    The modules of :data:`OWN_MASTER_MODULES` go last: the others then reuse one session."""
    if any(name in getattr(item, "fixturenames", ()) for name in CLUSTER_FIXTURES):
        return 0
    path = Path(str(item.fspath))
    if path.name in OWN_MASTER_MODULES:
        return 3
    return 1 if path.parent.name == "spark" else 2


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's hook of this name, which reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its xdist group (used by ``--dist loadgroup``; without xdist the
    mark does nothing). A test marked ``xdist_group`` itself keeps its own. The Spark
    groups go first, in the order of :func:`_spark_order`."""
    spark = []
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        group = xdist_group_of(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
        if group in ("spark-cluster", "spark-local"):
            spark.append(item)
    chosen = set(map(id, spark))
    rest = [item for item in items if id(item) not in chosen]
    items[:] = sorted(spark, key=_spark_order) + rest  # sorted() keeps the order within


@pytest.fixture(scope="session")
def cdnow_dir() -> Path:
    """Folder with CDNOW_sample.txt and donations_bgbb.csv (skips when absent)."""
    path = SHARED_DATA / "cdnow"
    if not (path / "CDNOW_sample.txt").exists():
        pytest.skip(f"CDNOW data not found at {path} (the shared/ folder sits beside the repo)")
    return path


@pytest.fixture(scope="session")
def spark_warehouse(tmp_path_factory) -> str:
    """One warehouse folder for the ``local[1]`` sessions of the Spark tests (a database of
    each test's own in it): :func:`segflow.engine.spark_session` stops the running
    SparkContext and starts another whenever the warehouse differs (seconds of the driver's
    CPU each), so the tests sharing this one reuse the session. The first to use it is
    tests/spark/test_spark_settings.py's test of a new session for another warehouse."""
    return str(tmp_path_factory.mktemp("spark-local-warehouse"))


@pytest.fixture(scope="session")
def ran_fixture(tmp_path_factory):
    """The pipeline fixture project (tests/pipeline/_fixture.py) after its first run, closed:
    (its folder, the run's summary). Tests copy the folder rather than run the same project
    again (tests/pipeline's ``ran_project``); built once per xdist worker that needs it."""
    from tests.pipeline._fixture import new_fixture_project

    root = tmp_path_factory.mktemp("ran") / "proj"
    project = new_fixture_project(root)
    summary = project.run()
    project.close()
    return root, summary


@pytest.fixture()
def memory_store():
    from segflow.store import Store

    store = Store(":memory:")
    yield store
    store.close()


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook, on the controlling process
def pytest_xdist_node_collection_finished(node, ids: list[str]) -> None:  # noqa: ANN001
    """Under ``--dist loadgroup`` the tests' ids must carry their groups (pytest-xdist adds
    ``@group`` on the workers; only the tests of SPREAD_MODULES have none). With pytest 9 none
    did: every test was a group of its own, and the module and session fixtures were built
    once per worker (the suite took 30 % longer). Stop then, saying why."""
    grouped = [i for i in ids if Path(i.split("::")[0]).name not in SPREAD_MODULES]
    if getattr(node.config.option, "dist", None) == "loadgroup" and grouped \
            and not any("@" in i for i in grouped):
        pytest.exit(f"pytest-xdist ignores the test groups with pytest {pytest.__version__} "
                    "(no test id has its @group): install the pytest of pyproject.toml",
                    returncode=pytest.ExitCode.USAGE_ERROR)
