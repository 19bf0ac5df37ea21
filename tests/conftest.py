"""Shared fixtures: the real datasets in ../shared/data and throw-away stores; the grouping
of tests for parallel runs (pytest-xdist, ``make test``: ``-n auto --dist loadgroup``)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

#: Session-scoped fixtures that take seconds to build and serve several test modules: under
#: xdist every worker builds its own copy, so the tests using one run on the same worker.
SHARED_FIXTURES = ("demo_project", "demo", "campaign_store", "campaign_project", "cdnow_summary")
#: Modules whose tests are independent and cheap to set up: spread them over the workers.
SPREAD_MODULES = ("test_sources_bad_corpus.py",)


#: Fixtures of the standalone Spark cluster (tests/spark/conftest.py).
CLUSTER_FIXTURES = ("cluster", "_cluster_spark", "cluster_session")
#: Spark settings of the tests' local sessions, made for their tiny data (docs/scale.md):
#: segflow's queries have hundreds of shuffles whatever the data size; one partition each
#: and no adaptive execution (which runs every shuffle as a job of its own) halve the time.
#: The cluster's sessions set the same (tests/_spark_cluster.py, two partitions there).
SPARK_TEST_CONF = {"spark.sql.shuffle.partitions": "1", "spark.sql.adaptive.enabled": "false"}


def xdist_group_of(item: pytest.Item) -> str | None:
    """The xdist group of a test: one for every Spark test (one JVM, started once), one per
    shared session fixture, else its module (module fixtures are built once); None spreads."""
    path = Path(str(item.fspath))
    if item.get_closest_marker("spark") or path.parent.name == "spark":
        return "spark"
    names = getattr(item, "fixturenames", ())
    for name in SHARED_FIXTURES:
        if name in names:  # defined in the conftest of the test's folder
            return f"{path.parent.name}:{name}"
    if path.name in SPREAD_MODULES:
        return None
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.name


def pytest_configure(config: pytest.Config) -> None:
    """Every Spark session the tests start gets :data:`SPARK_TEST_CONF` (settings passed by
    a test or a project's ``[engine] conf`` still win)."""
    from segflow.engine._spark import BASE_CONF

    BASE_CONF.update(SPARK_TEST_CONF)


def _spark_order(item: pytest.Item) -> int:
    """Order of the Spark tests, all in one process where Spark allows one session at a
    time (a change of master or warehouse stops it and starts another, seconds each):
    tests/spark's session tests first, then the local ones (they reuse the last local
    session), then those on the cluster (one session, one set of executors)."""
    if any(name in getattr(item, "fixturenames", ()) for name in CLUSTER_FIXTURES):
        return 2
    return 0 if Path(str(item.fspath)).parent.name == "spark" else 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its xdist group (used by ``--dist loadgroup``; without xdist the
    mark does nothing). A test marked ``xdist_group`` itself keeps its own. The Spark group
    goes first (the longest group: xdist hands out groups in collection order), in the
    order of :func:`_spark_order`."""
    spark = []
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        group = xdist_group_of(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
        if group == "spark":
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


@pytest.fixture()
def memory_store():
    from segflow.store import Store

    store = Store(":memory:")
    yield store
    store.close()
