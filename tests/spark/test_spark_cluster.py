"""The standalone cluster of the tests really is two workers on 127.0.0.1 doing the work."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_cluster_runs_a_job_on_two_executors_bound_to_loopback(cluster, cluster_session):
    status = cluster.status()
    workers = [w for w in status["workers"] if w["state"] == "ALIVE"]
    assert len(workers) == 2
    assert all(w["host"] == "127.0.0.1" for w in workers)
    assert cluster.master_url.startswith("spark://127.0.0.1:")
    # a job whose answer is known: sum of 0..99999 = n(n-1)/2, computed in 8 tasks
    spark = cluster_session
    total = spark.range(0, 100_000, numPartitions=8).groupBy().sum("id").collect()[0][0]
    assert total == 100_000 * 99_999 // 2
    # one executor per worker registered with the driver (plus the driver's own block manager)
    executors = spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size()
    assert executors == 3
    apps = [a for a in cluster.status()["activeapps"] if a["state"] == "RUNNING"]
    assert len(apps) == 1 and apps[0]["cores"] == 2  # one core on each worker
