"""The DuckDB store: one file per project holding the canonical tables and all history.

Writes are serialised through one lock and run inside a transaction, so a run or a load
either lands whole or not at all. Reads go through Ibis (:meth:`Store.table`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import ibis
import pyarrow as pa

from segflow._duck import arrow_table
from segflow.errors import StoreError
from segflow.store._cache_guard import CacheGuard
from segflow.store._memory import resolve_memory_limit
from segflow.store._refresh_guard import refuse_during_refresh
from segflow.store._schema import MIGRATIONS, SCHEMA_VERSION

STORE_FILENAME = "segflow.duckdb"


def _readable(data: Any) -> Any:
    """``data`` as something DuckDB can scan several times: an Arrow stream or a DuckDB
    connection with a pending result is read into an Arrow table (:meth:`Store.append`)."""
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if isinstance(data, duckdb.DuckDBPyConnection):
        return arrow_table(data)
    return data


#: The connections of the stores open in this process, and of the in-memory DuckDBs that
#: commands read files into (:func:`interruptible`, :func:`interrupt_queries`).
_OPEN: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()


_C = TypeVar("_C", duckdb.DuckDBPyConnection, ibis.BaseBackend)


def interruptible(con: _C) -> _C:
    """``con`` (a DuckDB connection or an Ibis DuckDB backend), registered so that Ctrl-C
    stops its queries as it stops a store's (:func:`interrupt_queries`): every in-memory
    DuckDB a command opens (``segflow clv FILE``, ``segflow campaign effect --responses
    FILE``, ``segflow sources check``, ...) is made by ``interruptible(duckdb.connect())``
    or ``interruptible(ibis.duckdb.connect())``. Held weakly: it leaves the registry with
    its last reference."""
    _OPEN.add(con if isinstance(con, duckdb.DuckDBPyConnection) else con.con)
    return con


def interrupt_queries() -> None:
    """Stop the queries running on every open store's connection and every connection made
    :func:`interruptible` (called on Ctrl-C by :mod:`segflow.cli._interrupt`).

    DuckDB's own check of the signal ends the query's Python call ("Query interrupted") but
    not its worker threads: the next statement on the connection (the run log's "failed",
    a ROLLBACK, the close) then waited until the query would have finished, for hours on a
    large one. ``interrupt()`` stops them; on an idle connection it does nothing (the next
    statement runs as usual)."""
    for raw in list(_OPEN):
        with contextlib.suppress(Exception):
            raw.interrupt()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class StoreNeedsUpgrade(StoreError):
    """A store of an older schema version opened read-only: only a connection that may
    write can apply the missing migrations (:func:`open_reading` does so first)."""


class Store:
    """A segflow store: a DuckDB database with the canonical tables, a schema version
    and a run log.

    Parameters
    ----------
    path : str or Path
        The ``.duckdb`` file; ``":memory:"`` for a throw-away store (tests, notebooks).
    read_only : bool, default=False
        Open without writing: no schema upgrade is possible then, so a store of an older
        schema version raises :class:`StoreNeedsUpgrade` (one line: open it once for
        writing, e.g. with any segflow command that writes, or :func:`open_reading`), and a
        missing file raises :class:`StoreError`. Read-only connections of several processes
        share the file, also while a ``segflow refresh`` of it runs.
    memory_limit : str, default="auto"
        DuckDB's memory limit for this connection: ``"auto"`` (half the physical RAM), a
        share such as ``"40%"`` or a size such as ``"8GB"`` (see
        :func:`~segflow.store._memory.resolve_memory_limit`). Beyond it DuckDB spills to disk.

    Notes
    -----
    Opening a store written by an older segflow applies the missing schema migrations in one
    transaction (the file is left unchanged if any step fails). A store written by a newer
    segflow is refused with a message naming both versions. Opening a store file for
    writing while a ``segflow refresh`` of it runs in another process raises
    :class:`~segflow.store._refresh_guard.RefreshInProgress` (a :class:`StoreError`): the
    refresh's final swap would discard what this connection writes.

    Examples
    --------
    >>> store = Store(":memory:")
    >>> store.schema_version == SCHEMA_VERSION
    True
    """

    def __init__(
        self, path: str | Path = ":memory:", *, read_only: bool = False, memory_limit: str = "auto"
    ) -> None:
        self.path = str(path)
        #: True when opened read-only: nothing may be written (e.g. a cluster scheme's newly
        #: fitted model is then not saved, :func:`~segflow.segments.assign`).
        self.read_only = read_only
        self._lock = threading.RLock()
        #: True once :meth:`close` ran (the connection is gone).
        self.closed = False
        limit = resolve_memory_limit(memory_limit)
        file = self.path != ":memory:"
        if file and read_only and not Path(self.path).exists():  # DuckDB: "does not exist"
            raise StoreError(f"no store at {self.path}: `segflow ingest` creates it and loads "
                             "the project's sources")
        try:
            self.con: ibis.BaseBackend = ibis.duckdb.connect(self.path, read_only=read_only)
        except duckdb.Error as exc:  # unreadable, not a DuckDB file, or held by a process
            if file and not read_only:
                refuse_during_refresh(self.path)  # (it holds the file while it reads it)
            hint = ""
            if "lock" in str(exc).lower():  # DuckDB: one writing process per file
                hint = ("; another process has it open (a notebook's Project.open(...) holds it "
                        "until .close(); opened there with read_only=True, it leaves segflow's "
                        "reading commands free)")
            raise StoreError(f"cannot open store {self.path}: {str(exc).splitlines()[0]}{hint}") from exc
        self.raw: duckdb.DuckDBPyConnection = self.con.con
        _OPEN.add(self.raw)
        if file and not read_only:
            # after DuckDB's file lock is held: a refresh starting later cannot open the file
            try:
                refuse_during_refresh(self.path)
            except StoreError:
                self.con.disconnect()
                raise
        self._cache_guard = CacheGuard(self.con)  # cached tables dropped only when safe
        self.raw.execute(f"SET memory_limit = '{limit}'")
        # DuckDB draws its own progress bar on stdout for long queries: stdout is for results.
        # (In Jupyter DuckDB refuses to change the setting without ipywidgets; its bar is a
        # widget there, not stdout, so it can stay.)
        with contextlib.suppress(duckdb.Error):
            self.raw.execute("SET enable_progress_bar = false")
        if not read_only:
            self._upgrade()
            self._recover_runs()
        elif (version := self._check_version()) < SCHEMA_VERSION:
            self.con.disconnect()
            raise StoreNeedsUpgrade(
                f"store {self.path} has schema version {version}, older than this segflow's "
                f"{SCHEMA_VERSION}, and was opened read-only, which cannot upgrade it: run a "
                "command that writes the store once (e.g. `segflow run`), or open it without "
                "read_only")

    # -- schema -------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        """The schema version recorded in the store (0 for an empty file)."""
        exists = self.raw.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_info'"
        ).fetchone()[0]
        if not exists:
            return 0
        row = self.raw.execute("SELECT max(version) FROM schema_info").fetchone()
        return int(row[0] or 0)

    def _check_version(self) -> int:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} has schema version {version}, but this segflow knows "
                f"versions up to {SCHEMA_VERSION}; upgrade segflow to open it"
            )
        return version

    def _upgrade(self) -> None:
        version = self._check_version()
        if version == SCHEMA_VERSION:
            return
        with self._lock:
            self.raw.execute("BEGIN TRANSACTION")
            try:
                for target, statements in enumerate(MIGRATIONS[version:], start=version + 1):
                    for statement in statements:
                        self.raw.execute(statement)
                    self.raw.execute("INSERT INTO schema_info VALUES (?, ?)", [target, _now()])
                self.raw.execute("COMMIT")
            except duckdb.Error as exc:
                self.raw.execute("ROLLBACK")
                raise StoreError(
                    f"could not upgrade store {self.path} from schema version {version} to "
                    f"{SCHEMA_VERSION}: {exc}; the store was left unchanged"
                ) from exc

    def _recover_runs(self) -> None:
        """Mark runs left ``running`` by a process that ended without finishing them as failed.

        DuckDB lets one process at a time open the file for writing, so a ``running`` run is
        still alive only if this very process started it (its id is in the run's
        ``message`` while it runs); every other one was killed mid-run.
        """
        if "runs" not in self._table_names():
            return
        mine = _owner()
        with self._lock:
            self.raw.execute(
                "UPDATE runs SET status = 'failed', finished_at = ?, message = "
                "'interrupted: the process ended while the run was in progress "
                "(marked failed when the store was next opened)' "
                "WHERE status = 'running' AND message IS DISTINCT FROM ?",
                [_now(), mine],
            )

    def _table_names(self) -> set[str]:
        rows = self.raw.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
        return {r[0] for r in rows}

    # -- reading ------------------------------------------------------------------------
    def table(self, name: str) -> ibis.Table:
        """The Ibis table ``name`` of the store (lazy; nothing is read yet)."""
        return self.con.table(name)

    def tables(self) -> list[str]:
        """Names of the tables in the store."""
        return sorted(self.con.list_tables())

    @property
    def memory_limit(self) -> str:
        """DuckDB's memory limit of this connection, as DuckDB reports it (e.g. ``'11.7 GiB'``)."""
        return str(self.raw.execute("SELECT current_setting('memory_limit')").fetchone()[0])

    def sql(self, query: str, params: list[Any] | None = None) -> pa.Table:
        """Run a read-only SQL query on the store and return an Arrow table."""
        with self._lock:
            return arrow_table(self.raw.execute(query, params or []))

    # -- writing ------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write transaction: everything inside lands together, or nothing does."""
        with self._lock:
            self.raw.execute("BEGIN TRANSACTION")
            try:
                yield self.raw
            except BaseException:
                self.raw.execute("ROLLBACK")
                raise
            else:
                self.raw.execute("COMMIT")

    def append(self, name: str, data: pa.Table | Any, *, con: duckdb.DuckDBPyConnection | None = None) -> int:
        """Append an Arrow table (or anything DuckDB can scan) to table ``name``,
        matching columns by name. Returns the number of rows appended.

        ``segment_assignments`` is a view over change rows: rows appended to it replace the
        stored assignments of their (scheme, snapshot date) and are stored as spells.

        A stream (an Arrow ``RecordBatchReader``, e.g. DuckDB's ``.arrow()`` of a result, or
        a connection holding a pending result) is read into memory first: it can be scanned
        only once, and a stream of this store's own connection would end (empty) at the
        next statement on it."""
        data = _readable(data)
        target = con or self.raw
        view = f"_segflow_append_{uuid.uuid4().hex[:8]}"
        target.register(view, data)
        if name == "segment_assignments":  # a view over the change rows since schema 5
            try:
                return self._append_assignments(target, view, in_transaction=con is not None)
            finally:
                target.unregister(view)
        try:
            cols = [c for c in self._columns(name, target) if c in _column_names(data)]
            col_list = ", ".join(f'"{c}"' for c in cols)
            target.execute(f'INSERT INTO "{name}" ({col_list}) SELECT {col_list} FROM {view}')
            return int(target.execute(f"SELECT count(*) FROM {view}").fetchone()[0])
        finally:
            target.unregister(view)

    def _append_assignments(
        self, target: duckdb.DuckDBPyConnection, view: str, *, in_transaction: bool
    ) -> int:
        """Per-snapshot assignment rows merged into ``segment_spells`` (one transaction)."""
        from segflow.store._spells import append_assignments

        if in_transaction:
            return append_assignments(target, view)
        with self.transaction() as con:
            return append_assignments(con, view)

    def replace(self, name: str, data: pa.Table | Any, *, con: duckdb.DuckDBPyConnection | None = None) -> None:
        """Create or replace table ``name`` with ``data`` (derived tables only; a stream is
        read into memory first, as by :meth:`append`)."""
        data = _readable(data)
        target = con or self.raw
        view = f"_segflow_replace_{uuid.uuid4().hex[:8]}"
        target.register(view, data)
        try:
            target.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM {view}')
        finally:
            target.unregister(view)

    @staticmethod
    def _columns(name: str, con: duckdb.DuckDBPyConnection) -> list[str]:
        rows = con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position",
            [name],
        ).fetchall()
        return [r[0] for r in rows]

    # -- run log ------------------------------------------------------------------------
    @contextlib.contextmanager
    def run(self, command: str, params: dict[str, Any] | None = None) -> Iterator[str]:
        """Log a run: yields its ``run_id``; records start, end and status."""
        from segflow import __version__

        run_id = uuid.uuid4().hex[:12]
        with self._lock:
            self.raw.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, NULL, 'running', ?)",
                [run_id, command, json.dumps(params or {}, default=str), __version__, _now(),
                 _owner()],
            )
        try:
            yield run_id
        except BaseException as exc:
            # KeyboardInterrupt has no text: say what it was
            self._finish_run(run_id, "failed", (str(exc) or type(exc).__name__)[:2000])
            raise
        else:
            self._finish_run(run_id, "ok", None)

    def annotate_run(self, run_id: str, message: str) -> None:
        """Record what a finished run could not do (e.g. a stage skipped) in ``runs.message``."""
        with self._lock:
            self.raw.execute("UPDATE runs SET message = ? WHERE run_id = ?", [message, run_id])

    def annotate_run_params(self, run_id: str, **values: Any) -> None:
        """Add ``values`` to the run's ``params`` (JSON) in the run log, e.g. what it computed."""
        with self._lock:
            row = self.raw.execute("SELECT params FROM runs WHERE run_id = ?", [run_id]).fetchone()
            params = json.loads(row[0]) if row and row[0] else {}
            params.update(values)
            self.raw.execute("UPDATE runs SET params = ? WHERE run_id = ?",
                             [json.dumps(params, default=str), run_id])

    def _finish_run(self, run_id: str, status: str, message: str | None) -> None:
        with self._lock:
            self.raw.execute(
                "UPDATE runs SET finished_at = ?, status = ?, message = ? WHERE run_id = ?",
                [_now(), status, message, run_id],
            )

    def close(self) -> None:
        """Close the connection (the file stays), releasing first the temporary tables of
        Ibis ``cache()`` calls still alive (a run stopped by an error holds some: their
        finalizers, run after the close when the error's frames are freed, printed
        "Connection already closed" tracebacks after the one-line error)."""
        with contextlib.suppress(Exception):
            self._cache_guard.drain()
        entries = getattr(self.con, "_cache_name_to_entry", None)  # Ibis's cache registry
        if entries:
            for name in list(entries):
                with contextlib.suppress(Exception):
                    self.con._finalize_cached_table(name)
        with contextlib.suppress(Exception):
            self.con.disconnect()
        _OPEN.discard(self.raw)
        self.closed = True

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.path!r}, schema_version={SCHEMA_VERSION})"


def open_reading(path: str | Path, *, memory_limit: str = "auto") -> Store:
    """The store at ``path`` opened read-only, for a command that only reads it: it shares
    the file with other readers and with a running ``segflow refresh``. A store of an older
    schema version is first upgraded by one opening for writing (which, like any writer, is
    refused with :class:`~segflow.store._refresh_guard.RefreshInProgress` while a refresh of
    it runs in another process: the refresh upgrades its copy itself).

    Raises
    ------
    StoreError
        No store at ``path``, not a DuckDB file, a newer schema, or (upgrade only) a refresh
        or another writing process holds it."""
    try:
        return Store(path, read_only=True, memory_limit=memory_limit)
    except StoreNeedsUpgrade:
        Store(path, memory_limit=memory_limit).close()
    return Store(path, read_only=True, memory_limit=memory_limit)


def _owner() -> str:
    """Who runs this process: written in a running run's ``message`` (see ``_recover_runs``)."""
    return f"running in process {os.getpid()} on {socket.gethostname()}"


def _column_names(data: Any) -> list[str]:
    if isinstance(data, pa.Table):
        return data.column_names
    if hasattr(data, "columns"):
        return [str(c) for c in data.columns]
    raise TypeError(f"cannot append object of type {type(data).__name__}")
