"""Fixtures of the Spark tests: one standalone cluster (a master, two workers on 127.0.0.1)
for the whole test session, started on first use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests._spark_cluster import SparkCluster, spark_cluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[SparkCluster]:
    """A running two-worker standalone cluster (see tests/_spark_cluster.py)."""
    with spark_cluster(workers=2) as running:
        yield running


@pytest.fixture(scope="session")
def _cluster_spark(cluster: SparkCluster, tmp_path_factory):
    from segflow.engine import spark_session, warehouse_url

    warehouse = warehouse_url(str(tmp_path_factory.mktemp("spark-warehouse")))
    return spark_session(cluster.master_url, warehouse=warehouse, conf=cluster.session_conf())


def _with_both_workers(cluster: SparkCluster, spark):  # noqa: ANN001, ANN202
    """The cluster's session of ``spark``'s warehouse, both workers alive (started again
    when a fault test killed one)."""
    from segflow.engine import spark_session

    for i, proc in enumerate(cluster.workers):
        if proc is None:
            cluster.start_worker(i)
    cluster.wait_for_workers(len(cluster.workers))
    warehouse = spark.conf.get("spark.sql.warehouse.dir")
    return spark_session(cluster.master_url, warehouse=warehouse, conf=cluster.session_conf())


@pytest.fixture()
def cluster_session(cluster: SparkCluster, _cluster_spark):
    """The Spark session on the cluster (one for all tests: a session costs seconds to start),
    with both workers alive (a fault test may have killed one). Stores of the tests take
    their own warehouse folder (SparkStore's ``warehouse``), not the session's."""
    return _with_both_workers(cluster, _cluster_spark)


@pytest.fixture(scope="session")
def cluster_demo(cluster: SparkCluster, _cluster_spark, tmp_path_factory):
    """The demo on the cluster, its driver killed, then its run losing a worker
    (tests/spark/_cluster_demo.py): read by test_warehouse_pipeline.py and
    test_warehouse_cli.py."""
    from tests.spark._cluster_demo import run_cluster_demo

    session = _with_both_workers(cluster, _cluster_spark)
    demo = run_cluster_demo(tmp_path_factory.mktemp("cluster_demo"), cluster, session)
    yield demo
    demo.project.close()
