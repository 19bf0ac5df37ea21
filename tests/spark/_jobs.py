"""Counting the Spark jobs a function runs (for the tests that bound them)."""

from __future__ import annotations


def count_spark_jobs(monkeypatch, owner, name: str, counted: list[int]) -> None:
    """Replace ``owner.name`` by a wrapper that appends to ``counted`` the number of Spark
    jobs each call ran: the job ids the active session's DAG scheduler handed out meanwhile
    (its counter is exact at once; the status tracker learns of jobs from the listener bus,
    which may lag behind)."""
    from pyspark import SparkContext

    function = getattr(owner, name)

    def next_job() -> int:
        return int(SparkContext._active_spark_context._jsc.sc().dagScheduler().nextJobId())

    def counting(*args, **kwargs):
        first = next_job()
        try:
            return function(*args, **kwargs)
        finally:
            counted.append(next_job() - first)

    monkeypatch.setattr(owner, name, counting)
