"""Connecting Ibis to an engine: DuckDB (embedded default) or Apache Spark.

Pipeline code takes Ibis tables and never knows which engine runs it. An :class:`Engine`
hands out the canonical tables of a store on its backend: on DuckDB they are the store's
own tables; on Spark they are loaded from Parquet files exported from the store (the
engine rules say: load Spark from Parquet/Arrow, never from pandas with nulls).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import ibis
import pyarrow as pa

from segflow.errors import SegflowError
from segflow.store import Store

if TYPE_CHECKING:  # pragma: no cover
    from segflow.config import EngineSettings

EngineName = Literal["duckdb", "spark"]


class Engine:
    """An Ibis backend plus the store whose tables it computes on.

    Parameters
    ----------
    name : {"duckdb", "spark"}
    store : Store
        The project store. DuckDB computes on it directly; Spark reads exported copies.
    spark_master : str, default="local[1]"
        Spark master URL when ``name="spark"``.
    """

    def __init__(self, name: EngineName, store: Store, *, spark_master: str = "local[1]") -> None:
        self.name = name
        self.store = store
        self._tmp: str | None = None
        self._loaded: dict[str, ibis.Table] = {}
        if name == "duckdb":
            self.con = store.con
        elif name == "spark":
            self.con = _spark_backend(spark_master)
            self._tmp = tempfile.mkdtemp(prefix="segflow-spark-")
        else:
            raise SegflowError(f"unknown engine {name!r}; expected 'duckdb' or 'spark'")

    def table(self, name: str) -> ibis.Table:
        """The table ``name`` of the store, as an Ibis table on this engine."""
        if self.name == "duckdb":
            return self.store.table(name)
        if name not in self._loaded:
            path = Path(self._tmp) / f"{name}.parquet"
            self.store.raw.execute(f"COPY \"{name}\" TO '{path}' (FORMAT parquet)")
            self._loaded[name] = self.con.read_parquet(str(path), table_name=f"segflow_{name}")
        return self._loaded[name]

    def from_arrow(self, data: pa.Table, name: str) -> ibis.Table:
        """Make an Arrow table available as an Ibis table on this engine."""
        if self.name == "duckdb":
            return self.con.create_table(name, data, temp=True, overwrite=True)
        path = Path(self._tmp) / f"{name}.parquet"
        import pyarrow.parquet as pq

        pq.write_table(data, path)
        return self.con.read_parquet(str(path), table_name=name)

    def close(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __repr__(self) -> str:
        return f"Engine({self.name!r})"


def _spark_backend(master: str) -> ibis.BaseBackend:
    from segflow.engine._spark import ibis_backend, spark_session

    return ibis_backend(spark_session(master))


def resolve_engine(engine: str | None, settings: EngineSettings | None = None) -> EngineName:
    """The engine of a command: ``--engine`` when given, else ``[engine] kind``, else DuckDB.

    Raises
    ------
    SegflowError
        The name is neither ``duckdb`` nor ``spark``.
    """
    name = engine or (settings.kind if settings is not None else "duckdb")
    if name not in ("duckdb", "spark"):
        raise SegflowError(f"unknown engine {name!r}; expected 'duckdb' or 'spark'")
    return name  # type: ignore[return-value]


def connect(
    store: Store,
    engine: str | None = "duckdb",
    *,
    settings: EngineSettings | None = None,
    **kwargs: str,
) -> Engine:
    """Connect an engine to a store. See :class:`Engine`.

    ``engine=None`` takes ``settings.kind`` (the ``[engine]`` table of segflow.toml); the
    Spark master then comes from ``settings.master`` unless ``spark_master`` is given.
    """
    name = resolve_engine(engine, settings)
    if name == "spark" and settings is not None and "spark_master" not in kwargs:
        kwargs["spark_master"] = settings.master
    return Engine(name, store, **kwargs)
