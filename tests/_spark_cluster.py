"""A real Spark standalone cluster on 127.0.0.1 for tests: one master and two workers.

pyspark's wheel ships ``bin/spark-class`` but not the ``sbin/start-master.sh`` launchers of
the full distribution, so the daemons are started with ``spark-class`` directly (the same
classes the launchers start). Each daemon is a child process in its own process group,
bound to 127.0.0.1 (``--host`` and ``SPARK_LOCAL_IP`` for the web UIs), with small memory.
:func:`spark_cluster` waits until the master's JSON status page lists every worker ALIVE
and stops everything at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests._engines import SPARK_TEST_JVM, driver_java_options

#: Cores and memory of each worker (room for two applications' executors at once: the test
#: process and a driver process it starts), of each executor and of each daemon's own JVM.
WORKER_CORES = 2
WORKER_MEMORY = "1280m"
EXECUTOR_MEMORY = "512m"
DAEMON_MEMORY = "256m"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


@dataclass
class SparkCluster:
    """A running standalone cluster: ``master_url`` (spark://127.0.0.1:PORT) and its daemons."""

    root: Path
    master_url: str
    ui_url: str
    master: subprocess.Popen
    workers: list[subprocess.Popen | None] = field(default_factory=list)
    worker_ports: list[int] = field(default_factory=list)

    # -- status -----------------------------------------------------------------------
    def status(self) -> dict:
        """The master's JSON status page (workers, applications)."""
        with urllib.request.urlopen(self.ui_url + "/json/", timeout=5) as resp:  # noqa: S310
            return json.load(resp)

    def alive_workers(self) -> int:
        try:
            return sum(1 for w in self.status().get("workers", []) if w.get("state") == "ALIVE")
        except OSError:
            return 0

    def wait_for_workers(self, n: int, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.alive_workers() >= n:
                return
            time.sleep(0.5)
        raise RuntimeError(
            f"Spark cluster: {self.alive_workers()} of {n} workers registered after "
            f"{timeout:.0f} s; logs in {self.root}"
        )

    # -- daemons ----------------------------------------------------------------------
    def start_worker(self, i: int) -> None:
        """Start (or restart) worker ``i`` (0-based) with :data:`WORKER_CORES` cores and
        :data:`WORKER_MEMORY`."""
        if i < len(self.worker_ports):
            port = self.worker_ports[i]
        else:
            port = _free_port()
            self.worker_ports.append(port)
            self.workers.append(None)
        work = self.root / f"worker{i}"
        work.mkdir(exist_ok=True)
        self.workers[i] = _daemon(
            self.root / f"worker{i}.log",
            "org.apache.spark.deploy.worker.Worker",
            "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(_free_port()),
            "--cores", str(WORKER_CORES), "--memory", WORKER_MEMORY, "--work-dir", str(work),
            self.master_url,
        )

    def kill_worker(self, i: int) -> None:
        """Kill worker ``i`` and the executor it launched (SIGKILL to its process group)."""
        proc = self.workers[i]
        if proc is not None:
            _kill_group(proc)
            self.workers[i] = None

    def stop(self) -> None:
        for proc in [*self.workers, self.master]:
            if proc is not None:
                _kill_group(proc)

    def session_conf(self) -> dict[str, str]:
        """Spark settings a driver of the tests uses on this cluster: two 1-core executors,
        one on each worker (the master spreads an application over the workers)."""
        return {
            "spark.executor.memory": EXECUTOR_MEMORY,
            "spark.executor.cores": "1",
            "spark.cores.max": "2",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            # the tests' data are tiny and segflow's queries have hundreds of shuffles:
            # adaptive execution would run each as a job of its own (about 9 times the jobs)
            "spark.sql.adaptive.enabled": "false",
            # a killed worker's tasks are retried on the other one
            "spark.task.maxFailures": "4",
            # C1 JIT only, serial GC (tests/_engines.py SPARK_TEST_JVM): also for drivers in
            # processes of their own, which read these from a project's [engine.conf]
            "spark.executor.extraJavaOptions": SPARK_TEST_JVM,
            "spark.driver.extraJavaOptions": driver_java_options(),
        }


def _daemon(log: Path, main_class: str, *args: str) -> subprocess.Popen:
    spark_home = _spark_home()
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
        "SPARK_DAEMON_JAVA_OPTS": SPARK_TEST_JVM,
        # executors started by a worker run Python with this interpreter and this source tree
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p and Path(p).is_dir()),
        "SPARK_NO_DAEMONIZE": "1",
    }
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(spark_home / "bin" / "spark-class"), main_class, *args],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@contextlib.contextmanager
def spark_cluster(workers: int = 2) -> Iterator[SparkCluster]:
    """Start a master and ``workers`` workers on 127.0.0.1; yield the cluster; stop it."""
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'segflow[spark]')")
    if not (_spark_home() / "bin" / "spark-class").exists():
        pytest.skip("pyspark has no bin/spark-class launcher")
    import shutil

    if shutil.which("java") is None:
        pytest.skip("no Java runtime on PATH (apt-get install openjdk-17-jre-headless)")
    root = Path(tempfile.mkdtemp(prefix="segflow-spark-cluster-"))
    port, ui_port = _free_port(), _free_port()
    master = _daemon(
        root / "master.log", "org.apache.spark.deploy.master.Master",
        "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui_port),
    )
    cluster = SparkCluster(root, f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}", master)
    try:
        for i in range(workers):
            cluster.start_worker(i)
        cluster.wait_for_workers(workers)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
