"""Engine availability for tests: one place that decides whether Spark tests can run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def require_spark() -> None:
    """Skip the calling test (or fixture) when pyspark or a Java runtime is missing."""
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'segflow[spark]')")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime on PATH (apt-get install openjdk-17-jre-headless)")


#: Options of every JVM the Spark tests start (drivers, executors, the cluster's daemons):
#: HotSpot's C1 compiler only, and the serial collector. With the default tiered JIT, the
#: C2 compiler threads used about half of a driver's CPU on the tests' tiny runs (45 of 92
#: CPU-s in the demo's ``local[1]`` push and run: Spark's code runs briefly and broadly,
#: compiling it fully never pays back), on a machine whose two cores the two xdist workers
#: already fill. With C1 only that run took 55 s instead of 74 (the session's start 6 s
#: instead of 10, the push 9 instead of 15); the serial collector (no parallel GC threads
#: on tiny heaps) 52 s. Session 38's C1-only trial was slower: code generation was on then,
#: and the generated code ran on C1's code (now Spark interprets, above).
SPARK_TEST_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def driver_java_options() -> str:
    """``spark.driver.extraJavaOptions`` of the tests' drivers: :data:`SPARK_TEST_JVM` and
    segflow's own log settings (which :func:`segflow.engine.spark_session` sets by default,
    and a value of this setting would otherwise replace)."""
    from segflow.engine import _spark

    log4j = Path(_spark.__file__).with_name("log4j2.properties")
    return f"-Dlog4j.configurationFile={log4j} {SPARK_TEST_JVM}"
