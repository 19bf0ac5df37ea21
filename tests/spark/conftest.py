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


@pytest.fixture()
def cluster_session(cluster: SparkCluster, _cluster_spark):
    """The Spark session on the cluster (one for all tests: a session costs seconds to start),
    with both workers alive (a fault test may have killed one). Stores of the tests take
    their own warehouse folder (SparkStore's ``warehouse``), not the session's."""
    from segflow.engine import spark_session

    for i, proc in enumerate(cluster.workers):
        if proc is None:
            cluster.start_worker(i)
    cluster.wait_for_workers(len(cluster.workers))
    master = cluster.master_url
    warehouse = _cluster_spark.conf.get("spark.sql.warehouse.dir")
    return spark_session(master, warehouse=warehouse, conf=cluster.session_conf())
