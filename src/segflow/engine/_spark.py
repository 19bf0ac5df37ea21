"""The Spark session of segflow: built from the ``[engine]`` settings (docs/scale.md).

One session per process (Spark's own rule). :func:`spark_session` returns the active
session when its master and warehouse are the ones asked for, and otherwise stops it and
builds a new one, so a test that moves from ``local[1]`` to a standalone cluster gets the
cluster.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segflow.errors import SegflowError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

    from segflow.config import EngineSettings

#: Settings every segflow session gets (the ``[engine] conf`` table may override them).
BASE_CONF: dict[str, str] = {
    # timestamps are tz-naive UTC everywhere in segflow
    "spark.sql.session.timeZone": "UTC",
    # no web UI: nothing listens on a port the user did not ask for; no progress bars on
    # the terminal (stdout is for results)
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # the portable subset the Ibis code relies on (integer division, casts returning null)
    "spark.sql.ansi.enabled": "false",
    # small default; the data of one run rarely needs Spark's 200 shuffle partitions
    "spark.sql.shuffle.partitions": "8",
    # dynamic partition overwrite: a rewrite replaces only the partitions it writes
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    # Parquet timestamps without a time zone (TIMESTAMP_NTZ round-trips as written)
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


def warehouse_url(warehouse: str, project_dir: str | Path | None = None) -> str:
    """The warehouse as a URL Spark understands.

    A value with a scheme (``hdfs://``, ``s3a://``, ``file:/``...) is returned unchanged; a
    plain path is made absolute (relative to ``project_dir``) and written ``file:/...``, so
    every executor reads the same folder whatever its working directory.
    """
    if "://" in warehouse or warehouse.startswith("file:"):
        return warehouse.rstrip("/")
    path = Path(warehouse)
    if not path.is_absolute():
        path = Path(project_dir or ".") / path
    return local_url(path)


def local_url(path: str | Path) -> str:
    """``file://`` and the absolute path as it is: Spark (Hadoop's ``Path``) takes a URL
    string's path literally, so the percent-encoding of :meth:`Path.as_uri` would make it
    look for a file named ``a%20b.csv`` instead of ``a b.csv``."""
    return "file://" + Path(path).resolve().as_posix()


def check_spark_available() -> None:
    """Raise a one-line :class:`SegflowError` when pyspark or a Java runtime is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise SegflowError(
            "engine 'spark' needs the optional spark extra, which is not installed. "
            "Install it with `pip install 'segflow[spark]'` (and a Java 17 runtime)."
        ) from exc
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise SegflowError(
            "engine 'spark' needs a Java runtime (e.g. apt-get install openjdk-17-jre-headless)"
        )


def spark_session(
    master: str,
    *,
    warehouse: str | None = None,
    conf: dict[str, str] | None = None,
    app_name: str = "segflow",
) -> SparkSession:
    """A Spark session on ``master`` whose SQL warehouse is ``warehouse`` (a URL).

    Parameters
    ----------
    master : str
        ``local[n]``, ``spark://host:port`` or anything ``SparkSession.builder.master`` takes.
    warehouse : str, optional
        ``spark.sql.warehouse.dir`` (see :func:`warehouse_url`); Spark's default when unset.
    conf : dict, optional
        Further Spark settings; they win over :data:`BASE_CONF`.

    Raises
    ------
    SegflowError
        pyspark or Java is missing, or the session could not start (e.g. the master is
        unreachable); the message names the master.
    """
    check_spark_available()
    from pyspark.sql import SparkSession

    settings = {**BASE_CONF, **_loopback_conf(master), **(conf or {})}
    # the driver's log: errors only (log4j2.properties beside this module); read when the
    # driver JVM starts, so a session already running keeps its own
    settings.setdefault("spark.driver.extraJavaOptions",
                        f"-Dlog4j.configurationFile={Path(__file__).with_name('log4j2.properties')}")
    if warehouse:
        settings["spark.sql.warehouse.dir"] = warehouse
    active = SparkSession.getActiveSession()
    if active is not None and not _same_session(active, master, settings):
        active.stop()
    # executors on a cluster run Python workers with this very interpreter (same packages)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # py4j / JVM start-up errors carry long Java traces
        raise SegflowError(f"could not start a Spark session on master {master!r}: "
                           f"{spark_error_line(exc)}") from exc
    for key, value in settings.items():  # runtime settings of a reused session
        if not key.startswith(("spark.sql.warehouse", "spark.ui", "spark.master")):
            _set_runtime(session, key, value)
    session.sparkContext.setLogLevel("ERROR")
    return session


def spark_error_line(exc: BaseException) -> str:
    """The one line of a Spark/JVM error a user can act on.

    A Py4J error's first line only names the JVM call ("An error occurred while calling
    o210.load."); the cause is on the next line, after ": " and the Java exception's class
    (``java.net.ConnectException: Call From ... refused``, ``No FileSystem for scheme
    "hdfs"``). Spark's own errors (``[PATH_NOT_FOUND] Path does not exist: ...``) are their
    first line. Hadoop's "For more details see: <wiki>" tail is dropped."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    line = lines[0]
    if line.startswith("An error occurred while calling") and len(lines) > 1 \
            and lines[1].startswith(":"):
        line = re.sub(r"^(?:[\w$]+\.)+[\w$]*(?:Exception|Error):\s*", "", lines[1][1:].strip())
    return line.split("; For more details see:")[0].strip() or type(exc).__name__


def ibis_backend(session: SparkSession) -> Any:
    """An Ibis PySpark backend on ``session`` whose ``Table.cache()`` works on expressions
    that contain in-memory tables (``ibis.memtable``).

    Ibis's PySpark backend caches a table by compiling it and running the SQL directly,
    without first registering the expression's in-memory tables as temporary views (its
    ``execute`` and ``to_pyarrow`` do register them). Any ``.cache()`` of an expression
    with a memtable then fails with ``TABLE_OR_VIEW_NOT_FOUND`` unless an earlier query of
    the same backend happened to register that memtable — which made results depend on
    what ran before (:func:`segflow.features.snapshot_features` caches the period-tagged
    lines, which join a calendar memtable). This backend registers them first.

    Its ``cache()`` is also eager, as DuckDB's (which creates a table): Spark's
    ``DataFrame.cache()`` only marks the plan, so a cached intermediate released before the
    first action on the tables built from it was never stored at all: every reference to it
    was computed again, and each release made Spark plan the dependent cached queries again
    (the one-pass features of :func:`segflow.features.snapshot_features` release a chunk's
    intermediates right after caching the chunk: on the demo about twice the features
    stage's time, docs/benchmarks.md). Here the cached table is computed (a ``count``)
    before ``cache()`` returns, so releasing its inputs afterwards costs nothing; Spark
    still recomputes lost blocks (a dead executor) from the plan.

    With ``checkpoint_dir`` set (a folder every executor reaches: :meth:`SparkStore.run
    <segflow.store.SparkStore.run>` sets one per run, under the warehouse) the cached table
    is then also checkpointed there (Spark's reliable checkpoint: files, not executor
    memory, so a dead executor loses nothing) and read from the checkpoint, whose plan is
    one node: every later query built on it is planned without the plan that computed it.
    Without this, each query on the one-pass features planned (and matched against the
    cache) the whole features plan again: the demo's assignments, a query on the cached
    features, spent about 50 CPU seconds in planning.
    """
    return _backend_class()().connect(session)


@functools.cache
def _backend_class() -> type:
    import ibis
    from ibis.backends.pyspark import Backend

    ibis.pyspark  # noqa: B018 (loading the backend through ibis registers its options)

    class SegflowSparkBackend(Backend):  # type: ignore[misc, valid-type]
        """Ibis's PySpark backend, registering in-memory tables before caching, caching eagerly."""

        #: Folder of the session's checkpoints (``SparkContext.setCheckpointDir``), or None:
        #: cached tables are then not checkpointed (see :func:`ibis_backend`).
        checkpoint_dir: str | None = None

        def _create_cached_table(self, name: str, expr: Any) -> Any:
            self._run_pre_execute_hooks(expr)
            table = super()._create_cached_table(name, expr)
            df = self._cached_dataframes[name]
            df.count()  # computed now: see ibis_backend
            if self.checkpoint_dir is not None:
                # files written from the cached blocks; then read from them (one-node plan)
                kept = df.checkpoint(eager=True).cache()
                self._session.catalog.dropTempView(name)
                df.unpersist()
                kept.createTempView(name)
                self._cached_dataframes[name] = kept
            return table

    return SegflowSparkBackend


def session_from_settings(engine: EngineSettings, project_dir: str | Path | None = None) -> SparkSession:
    """The Spark session that the ``[engine]`` settings describe."""
    return spark_session(
        engine.master,
        warehouse=warehouse_url(engine.warehouse, project_dir),
        conf=dict(engine.conf),
    )


def _loopback_conf(master: str) -> dict[str, str]:
    """A driver for a master on this machine listens on 127.0.0.1 only (its block manager
    and RPC ports); a driver for a remote cluster must be reachable from it, so Spark picks."""
    if master.startswith("local") or master.startswith(("spark://127.0.0.1", "spark://localhost")):
        return {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
    return {}


def _same_session(session: Any, master: str, settings: dict[str, str]) -> bool:
    sc = session.sparkContext
    if sc.master != master:
        return False
    want = settings.get("spark.sql.warehouse.dir")
    if want is None:
        return True
    have = session.conf.get("spark.sql.warehouse.dir", None)
    return have is not None and _norm_url(have) == _norm_url(want)


def _norm_url(url: str) -> str:
    """``file:/x``, ``file:///x`` and ``file:/x/`` name the same folder."""
    return re.sub(r"^file:/+", "file:///", url.rstrip("/"))


def _set_runtime(session: Any, key: str, value: str) -> None:
    try:
        session.conf.set(key, value)
    except Exception:  # a static setting of a reused session: it was set at start-up  # noqa: S110
        pass
