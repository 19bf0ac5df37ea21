"""The Spark store: segflow's tables as Parquet tables in a Spark warehouse (docs/scale.md).

Layout: ``<warehouse>/<database>.db/<table>/run_id=<id>/part-*.parquet`` for every table of
:data:`~segflow.store._spark_layout.TABLES`, and the run log ``runs`` in the same form. No
table format beyond Parquet is needed (Delta or Iceberg would need jars fetched at run time).

Rows of the append tables are taken back (deleted, for readers) by rows of the table
``retracted`` of a later committed run (:mod:`segflow.store._spark_layout`): a run still
writes only its own partitions, and what it takes back disappears when it commits.

Atomic runs: a run writes only partitions of its own ``run_id``. It starts by writing a
``running`` row to ``runs`` and ends by writing an ``ok`` row, the last thing it writes. A
reader lists the committed runs (those with an ``ok`` row) and reads exactly their
partition folders, so a run's output becomes visible all at once, when its ``ok`` row
lands (one Parquet file renamed into place by Spark's job commit), or never: a run killed
at any point leaves the earlier state readable, and its partial folders are ignored (and
removed by :meth:`SparkStore.vacuum`). One writer at a time, as with the DuckDB store.

The tables are also registered in the session catalog for users' own queries
(:meth:`SparkStore.register_catalog_tables`): ``<database>.<table>`` is a view of the
committed state, as :meth:`SparkStore.dataframe` reads it (retracted rows left out), and
``<database>.<table>_by_run`` the external Parquet table of every partition.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa

from segflow.errors import StoreError
from segflow.store._spark_layout import (
    RETIRED,
    RETRACTABLE,
    RETRACTED,
    RUNS,
    TABLES,
    VIEWS,
    spark_ddl,
)

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from segflow.config import EngineSettings

#: Status of the run-log row that commits a run.
COMMITTED = "ok"
#: Folder (under the database's) of the runs' checkpoints: ``<folder>/<run_id>/...``.
CHECKPOINTS = "_checkpoints"


class NoWarehouse(StoreError):
    """The Spark warehouse that was asked for (not to be created) does not exist."""


def warehouse_root(engine: EngineSettings, project_dir: str | Path | None = None) -> str:
    """URL of the folder of segflow's database in the warehouse ``[engine]`` names,
    ``<warehouse>/<database>.db`` (:attr:`SparkStore.root`); no session is started."""
    from segflow.engine import warehouse_url

    return f"{warehouse_url(engine.warehouse, project_dir).rstrip('/')}/{engine.database}.db"


def local_folder(url: str) -> Path | None:
    """The local folder of a ``file:`` URL (``file:/x``, ``file:///x``), else None (a URL
    only Spark can look into: ``hdfs://``, ``s3a://``...)."""
    if not url.startswith("file:"):
        return None
    return Path("/" + url.removeprefix("file:").lstrip("/"))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class SparkStore:
    """segflow's store as Parquet tables in a Spark warehouse.

    Parameters
    ----------
    session : SparkSession
        The session (see :func:`segflow.engine.spark_session`); its executors must reach
        ``warehouse`` under the same URL.
    warehouse : str
        Warehouse URL (``file:///...``, ``hdfs://...``, ``s3a://...``).
    database : str, default="segflow"
        Database of the session catalog; its folder is ``<warehouse>/<database>.db``.

    create : bool, default=True
        Create the database's folder when it does not exist; ``False``: a warehouse without
        it raises :class:`NoWarehouse` (nothing is created).

    Raises
    ------
    StoreError
        The warehouse cannot be created or listed (the message names the URL).
    NoWarehouse
        ``create`` is false and ``<warehouse>/<database>.db`` does not exist.
    """

    def __init__(self, session: SparkSession, warehouse: str, database: str = "segflow", *,
                 create: bool = True) -> None:
        self.session = session
        from segflow.engine._spark import ibis_backend

        self.con: ibis.BaseBackend = ibis_backend(session)
        self.warehouse = warehouse.rstrip("/")
        self.database = database
        self.root = f"{self.warehouse}/{database}.db"
        self._committed: list[str] | None = None
        self._running: set[str] = set()
        self._messages: dict[str, str] = {}
        if not create and not self._exists(self.root):
            raise NoWarehouse(f"no Spark warehouse at {self.root} yet")
        try:
            session.sql(f"CREATE DATABASE IF NOT EXISTS `{database}` LOCATION '{self.root}'")
            self._mkdirs(self.root)
        except Exception as exc:  # JVM errors: permission, unknown file system scheme
            raise StoreError(f"cannot use the Spark warehouse {self.root}: {_first_line(exc)}") from exc

    @classmethod
    def open(cls, engine: EngineSettings, project_dir: str | Path | None = None, *,
             create: bool = True) -> SparkStore:
        """The store that the ``[engine]`` settings name (session built from them too);
        ``create`` as in the class (``False``: :class:`NoWarehouse` for a missing one)."""
        from segflow.engine import session_from_settings, warehouse_url

        session = session_from_settings(engine, project_dir)
        return cls(session, warehouse_url(engine.warehouse, project_dir), engine.database,
                   create=create)

    def _exists(self, url: str) -> bool:
        try:
            fs, path = self._fs_path(url)
            return bool(fs.exists(path))
        except Exception as exc:  # JVM errors: permission, unknown file system scheme
            raise StoreError(f"cannot use the Spark warehouse {url}: {_first_line(exc)}") from exc

    # -- file system (Hadoop FS through the JVM: works for every URL scheme Spark reads) --
    def _fs_path(self, url: str) -> tuple[Any, Any]:
        jvm = self.session.sparkContext._jvm
        path = jvm.org.apache.hadoop.fs.Path(url)
        return path.getFileSystem(self.session.sparkContext._jsc.hadoopConfiguration()), path

    def _mkdirs(self, url: str) -> None:
        fs, path = self._fs_path(url)
        fs.mkdirs(path)

    def _partitions(self, name: str) -> set[str]:
        """The run ids that have a partition folder in table ``name`` (committed or not)."""
        fs, path = self._fs_path(f"{self.root}/{name}")
        if not fs.exists(path):
            return set()
        out = set()
        for status in fs.listStatus(path):
            folder = status.getPath().getName()
            if status.isDirectory() and folder.startswith("run_id="):
                out.add(folder.removeprefix("run_id="))
        return out

    def _delete(self, url: str) -> None:
        fs, path = self._fs_path(url)
        fs.delete(path, True)

    # -- run log ----------------------------------------------------------------------
    def runs(self) -> DataFrame:
        """The run log: one row per state a run reached (``running``, then ``ok`` or
        ``failed``), newest last; a run with no ``ok`` row never committed."""
        path = f"{self.root}/runs"
        if not self._partitions("runs"):
            return self.session.createDataFrame([], spark_ddl(RUNS))
        return (self.session.read.schema(spark_ddl(RUNS)).option("basePath", path)
                .parquet(path).select("run_id", *RUNS))

    def committed_runs(self, *, fresh: bool = False) -> list[str]:
        """Run ids with an ``ok`` row, in commit order (oldest first); ``fresh``: read the run
        log again (runs of other processes may have committed since it was read)."""
        if self._committed is None or fresh:
            rows = (self.runs().where(f"status = '{COMMITTED}'")
                    .select("run_id", "finished_at").collect())
            self._committed = [r.run_id for r in sorted(rows, key=lambda r: (r.finished_at, r.run_id))]
        return list(self._committed)

    def _log(self, run_id: str, row: dict[str, Any]) -> None:
        cols = {"run_id": "VARCHAR", **RUNS}
        values = (run_id, *(row.get(c) for c in RUNS))
        df = self.session.createDataFrame([values], spark_ddl(cols, run_id=False))
        # one file: its rename into place by the job commit is what makes the row appear
        df.coalesce(1).write.mode("append").partitionBy("run_id").parquet(f"{self.root}/runs")
        self._committed = None

    @contextlib.contextmanager
    def run(self, command: str, params: dict[str, Any] | None = None) -> Iterator[str]:
        """A run: yields its ``run_id``; its writes become visible together when the block
        ends without an error (the ``ok`` row), and never otherwise."""
        from segflow import __version__

        run_id = uuid.uuid4().hex[:12]
        base = {"command": command, "params": json.dumps(params or {}, default=str),
                "segflow_version": __version__, "started_at": _now()}
        self._log(run_id, {**base, "status": "running"})
        self._running.add(run_id)
        # the run's cached Ibis tables are checkpointed here (engine.ibis_backend), removed
        # when the run ends (a killed run's folder: by vacuum)
        checkpoints = f"{self.root}/{CHECKPOINTS}/{run_id}"
        self.session.sparkContext.setCheckpointDir(checkpoints)
        self.con.checkpoint_dir = checkpoints  # type: ignore[attr-defined]
        try:
            yield run_id
        except BaseException as exc:
            with contextlib.suppress(Exception):  # the session itself may be gone
                self._log(run_id, {**base, "finished_at": _now(), "status": "failed",
                                   "message": str(exc)[:2000]})
            raise
        finally:
            self.con.checkpoint_dir = None  # type: ignore[attr-defined]
            self._running.discard(run_id)
            with contextlib.suppress(Exception):
                self._delete(checkpoints)
        self._log(run_id, {**base, "finished_at": _now(), "status": COMMITTED,
                           "message": self._messages.pop(run_id, None)})

    def annotate_run(self, run_id: str, message: str) -> None:
        """Record what a run of this process could not do or found (its notes, as the DuckDB
        store's ``runs.message``): called before the run's block ends, the message goes into
        its ``ok`` row (the warehouse's run log is append-only)."""
        if run_id not in self._running:
            raise StoreError(f"run {run_id} is not running in this process; its notes must be "
                             "recorded before it ends")
        self._messages[run_id] = message

    # -- reading ----------------------------------------------------------------------
    def dataframe(self, name: str, *, pending: str | None = None) -> DataFrame:
        """The committed state of table ``name`` as a Spark DataFrame (with ``run_id``).

        ``pending``: a run of this process that has not committed yet, read as if it had
        (after every committed run): how a run reads back what it wrote so far.

        A derived table (:data:`~segflow.store._spark_layout.VIEWS`) is computed from the
        committed state of the tables it reads: ``segment_assignments`` is the DuckDB
        store's view over ``segment_spells`` and ``segment_snapshots`` (the same SQL,
        :data:`segflow.store._spells.ASSIGNMENTS_SELECT`), run by Spark."""
        if name in VIEWS:
            return self._view(name, pending)
        spec = _spec(name)
        committed = [r for r in self.committed_runs() if r != pending]
        present = self._partitions(name)
        runs = [r for r in [*committed, *([pending] if pending else [])] if r in present]
        path = f"{self.root}/{name}"
        if spec.keys == () and runs:
            runs = runs[-1:]
        if not runs:
            if spec.columns is None:
                raise StoreError(f"the Spark store has no committed rows of {name!r} yet")
            return self.session.createDataFrame([], spark_ddl(spec.columns))
        reader = self.session.read.option("basePath", path)
        if spec.columns is not None:
            reader = reader.schema(spark_ddl(spec.columns))
        df = reader.parquet(*[f"{path}/run_id={r}" for r in runs])
        if spec.keys and len(runs) > 1:  # per key, the rows of the latest run that wrote it
            df = _latest_per_key(self.session, df, runs, spec.keys)
        if name in RETRACTABLE:
            df = self._unretracted(df, name, [*committed, *([pending] if pending else [])])
        return df

    def _unretracted(self, df: DataFrame, name: str, runs: list[str]) -> DataFrame:
        """``df`` (rows of table ``name``, with ``run_id``) without the rows that the table
        ``retracted`` of ``runs`` takes back (:mod:`segflow.store._spark_layout`); ``df``
        itself when no run of them retracted anything (no Spark job either way)."""
        from pyspark.sql import functions as F

        present = self._partitions("retracted")
        runs = [r for r in runs if r in present]
        if not runs:
            return df
        path = f"{self.root}/retracted"
        gone = (self.session.read.schema(spark_ddl(RETRACTED)).option("basePath", path)
                .parquet(*[f"{path}/run_id={r}" for r in runs])
                .where(F.col("table_name") == name))
        cols = df.columns  # a join on named columns would put those first
        whole = gone.where(F.col("row_number").isNull()).select("run_of", "load_id")
        df = df.join(whole, (df["run_id"] == whole["run_of"])
                     & (df["load_id"] == whole["load_id"]), "left_anti")
        col = RETRACTABLE[name]
        if col is not None:
            rows = gone.where(F.col("row_number").isNotNull()).select(
                "run_of", "load_id", "row_number")
            df = df.join(rows, (df["run_id"] == rows["run_of"])
                         & (df["load_id"] == rows["load_id"])
                         & (df[col] == rows["row_number"]), "left_anti")
        return df.select(*cols)

    def _view(self, name: str, pending: str | None) -> DataFrame:
        """The derived table ``name`` (only ``segment_assignments`` so far) on the state
        :meth:`dataframe` reads (``pending`` included)."""
        from segflow.store._spells import ASSIGNMENTS_SELECT

        suffix = f"_{pending}" if pending else ""
        views = {}
        for source in VIEWS[name]:
            views[source] = f"segflow_view_{source}{suffix}"
            self.dataframe(source, pending=pending).createOrReplaceTempView(views[source])
        # the plan is resolved now: later replacements of the temporary views do not change it
        return self.session.sql(ASSIGNMENTS_SELECT.format(spells=views["segment_spells"],
                                                          snapshots=views["segment_snapshots"]))

    def table(self, name: str, *, pending: str | None = None) -> ibis.Table:
        """The committed state of table ``name`` as an Ibis table on the Spark backend
        (columns as in the DuckDB store; ``run_id`` kept where the DuckDB store has it);
        ``pending`` as in :meth:`dataframe`."""
        df = self.dataframe(name, pending=pending)
        if name not in ("segment_assignments", "customer_scores"):
            df = df.drop("run_id")
        view = f"segflow_{name}" + (f"_{pending}" if pending else "")
        df.createOrReplaceTempView(view)
        return self.con.table(view)

    def cache(self, expr: ibis.Table) -> ibis.Table:
        """``expr.cache()`` on this store's backend (in-memory tables are registered first:
        :func:`segflow.engine.ibis_backend`)."""
        return expr.cache()

    def tables(self) -> list[str]:
        """Names of the tables that have at least one committed partition, and of the
        derived tables whose sources all have (as the DuckDB store lists its views)."""
        committed = set(self.committed_runs())
        return with_views(n for n in TABLES if self._partitions(n) & committed)

    # -- writing ----------------------------------------------------------------------
    def write(self, name: str, data: ibis.Table | DataFrame | pa.Table, run_id: str, *,
              count: bool = True) -> int:
        """Write ``data`` as the rows of run ``run_id`` in table ``name``; returns the row
        count. The rows stay invisible until the run commits.

        ``data`` is an Ibis table on this store's backend (computed by Spark, never brought
        to the driver), a Spark DataFrame, or an Arrow table (small data from the driver).
        Columns are matched by name and cast to the table's types; missing ones are null.
        ``count=False``: the rows are written without being counted (one Spark job: no
        cached copy to count; for a caller that knows the count) and -1 is returned. An
        Arrow table is always written in one job (no count: its ``num_rows`` is returned).
        """
        from pyspark.sql import functions as F

        if name in VIEWS:
            raise StoreError(f"{name!r} of the Spark store is derived from {' and '.join(VIEWS[name])}: "
                             "write those")
        spec = _spec(name)
        df = self._as_dataframe(data)
        if "run_id" in df.columns:
            df = df.drop("run_id")
        if spec.columns is not None:
            unknown = sorted(set(df.columns) - set(spec.columns))
            if unknown:
                raise StoreError(f"table {name!r} of the Spark store has no column(s) {unknown}")
            types = dict(c.split(" ", 1) for c in spark_ddl(spec.columns, run_id=False).split(", "))
            df = df.select(*[
                (F.col(f"`{c}`") if c in df.columns else F.lit(None)).cast(types[f"`{c}`"]).alias(c)
                for c in spec.columns
            ])
        df = df.withColumn("run_id", F.lit(run_id))
        if isinstance(data, pa.Table):  # rows from the driver: their count is known
            df.write.mode("append").partitionBy("run_id").parquet(f"{self.root}/{name}")
            return data.num_rows
        if not count:
            df.write.mode("append").partitionBy("run_id").parquet(f"{self.root}/{name}")
            return -1
        df = df.cache()
        try:
            n = df.count()
            df.write.mode("append").partitionBy("run_id").parquet(f"{self.root}/{name}")
        finally:
            df.unpersist()
        return n

    def _as_dataframe(self, data: Any) -> DataFrame:
        if isinstance(data, pa.Table):
            # an all-null column has Arrow type null, which Parquet cannot store: string
            fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f
                      for f in data.schema]
            # small rows from the driver: one file, so that they read back in their order
            # (the DuckDB store keeps insertion order; e.g. a profile's feature order)
            return self.session.createDataFrame(data.cast(pa.schema(fields))).coalesce(1)
        if isinstance(data, ibis.Table):
            self.con._run_pre_execute_hooks(data)  # registers in-memory tables (memtables)
            return self.con.raw_sql(self.con.compile(data))
        return data

    def vacuum(self) -> list[str]:
        """Delete the partition folders of runs that never committed and are not running in
        this process; returns the run ids removed. Run it when no other run is writing.

        Also deletes the folders of tables an earlier segflow stored and this one derives
        (:data:`~segflow.store._spark_layout.RETIRED`: the per-snapshot
        ``segment_assignments``, now a view over the change rows every run wrote too)."""
        committed = set(self.committed_runs())
        removed: set[str] = set()
        for name in RETIRED:
            fs, path = self._fs_path(f"{self.root}/{name}")
            if fs.exists(path):
                fs.delete(path, True)
        for name in [*TABLES, "runs"]:
            for run_id in self._partitions(name) - committed:
                if name == "runs":
                    continue  # the log of a failed run is kept
                self._delete(f"{self.root}/{name}/run_id={run_id}")
                removed.add(run_id)
        fs, path = self._fs_path(f"{self.root}/{CHECKPOINTS}")
        if fs.exists(path):  # checkpoints of killed runs
            for status in fs.listStatus(path):
                if status.getPath().getName() not in self._running:
                    fs.delete(status.getPath(), True)
        return sorted(removed)

    def register_catalog_tables(self) -> list[str]:
        """Register the tables in the session catalog for users' own SQL: ``<database>.<table>``
        a view of the committed state (what :meth:`dataframe` reads: committed runs only,
        retracted rows left out, the latest run of a replaced table), ``<table>_by_run`` the
        external Parquet table of every partition, ``runs`` the run log
        (:mod:`segflow.store._spark_catalog`); with the partitions present now (register
        again after new runs). Returns the views' names."""
        from segflow.store._spark_catalog import register

        return register(self)

    def close(self) -> None:
        """Nothing to release: the session belongs to the process (stop it with Spark)."""

    def __enter__(self) -> SparkStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SparkStore({self.root!r})"


def with_views(stored: Iterable[str]) -> list[str]:
    """The table names ``stored`` plus the derived tables whose sources are all among them,
    sorted."""
    names = set(stored)
    return sorted(names | {v for v, sources in VIEWS.items() if set(sources) <= names})


def _latest_per_key(session: SparkSession, df: DataFrame, runs: list[str],
                    keys: tuple[str, ...]) -> DataFrame:
    """The rows of ``df`` (partitions of ``runs``, oldest first) written by the latest run
    that wrote their key (null keys equal, as in a grouping).

    The latest run of each key comes from a grouping of (key, run) -- a handful of rows per
    run, broadcast back to the rows -- not from a window over the rows, which would shuffle
    and sort every row by key (4.8M assignment rows at 1M transactions: 88 s on ``local[2]``).
    """
    from pyspark.sql import functions as F

    order = session.createDataFrame([(r, i) for i, r in enumerate(runs)],
                                    "run_id string, _seq int")
    df = df.join(F.broadcast(order), "run_id")
    latest = df.groupBy(*keys).agg(F.max("_seq").alias("_seq"))
    latest = latest.select(*[F.col(f"`{k}`").alias(f"_key{i}") for i, k in enumerate(keys)],
                           F.col("_seq").alias("_latest"))
    on = [df[f"`{k}`"].eqNullSafe(latest[f"_key{i}"]) for i, k in enumerate(keys)]
    on.append(df["_seq"] == latest["_latest"])
    out = df.join(F.broadcast(latest), on)
    return out.drop("_seq", "_latest", *[f"_key{i}" for i in range(len(keys))])


def _spec(name: str) -> Any:
    try:
        return TABLES[name]
    except KeyError:
        raise StoreError(
            f"the Spark store has no table {name!r}; it has {', '.join(sorted(TABLES))}"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
