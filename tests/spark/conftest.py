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


@pytest.fixture()
def cluster_session(cluster: SparkCluster, tmp_path):
    """A Spark session on the cluster whose warehouse is a fresh folder; both workers alive."""
    from segflow.engine import spark_session, warehouse_url

    for i, proc in enumerate(cluster.workers):  # a fault test may have killed one
        if proc is None:
            cluster.start_worker(i)
    cluster.wait_for_workers(len(cluster.workers))
    return spark_session(cluster.master_url, warehouse=warehouse_url(str(tmp_path / "warehouse")),
                         conf=cluster.session_conf())
