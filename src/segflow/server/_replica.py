"""What ``segflow serve`` reads: a copy of the store, served by a pool of read-only connections.

DuckDB lets one process write a database file and nobody else open it meanwhile, so a
server holding the store open would lock ``ingest`` and ``run`` out. The server therefore
never opens the store itself: it copies the store file into its work folder (without
taking DuckDB's lock; see :func:`_copy_consistent`) and opens the copy read-only. Worker
processes of one server (``segflow serve --workers N``) share each copy: the first that
needs it makes and indexes it under a file lock, the others open the same file read-only,
and the last one to let go deletes it (:func:`_shared_copy`). A poller
copies again when the store file changes (a writer checkpoints on commit of a run and on
close), and swaps the new copy in between requests; requests running on the old copy
finish on it. Each copy is served by a pool of DuckDB cursors (one per concurrent request;
DuckDB runs queries on several cursors in parallel and releases the GIL while it does).

Results of aggregate queries are cached per copy (they cannot change until the next copy).

On Spark (``[engine] kind = "spark"`` or ``segflow serve --engine spark``) the copy of the
store file is then filled from the project's warehouse before it is indexed
(:func:`segflow.warehouse.fill_served_copy`): the aggregates, the run and load logs, the
quarantine and the customer-level tables come from the warehouse's committed state, and only
the server's own records (API tokens, the audit log) are the DuckDB store's, so
authentication works exactly as on DuckDB. A copy is made again when the store file changes
or a run commits in the warehouse (the poller looks at the warehouse's run log, a small
Spark job, at most every ``min_refresh_seconds``).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb

from segflow.config import Settings
from segflow.errors import StoreError
from segflow.project import Project
from segflow.server._audit import work_dir_for
from segflow.server._token_cache import published_id
from segflow.server._tokens import TokenRecord, load_tokens
from segflow.store import Store
from segflow.store._cache_guard import CacheGuard

_counter = itertools.count(1)


def _fingerprint(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


#: What a copy shows: the store file's fingerprint (plus, on Spark, the warehouse's latest
#: committed run).
Fingerprint = tuple[Any, ...]


def _copy_consistent(src: Path, dst: Path, *, attempts: int = 5) -> tuple[int, int, int]:
    """Copy the store file without DuckDB's lock: a writer's committed data reach the main
    file only at a checkpoint, so a copy during which the file's size and modification time
    did not change is the state of the last checkpoint. Retries while a checkpoint runs."""
    for _ in range(attempts):
        before = _fingerprint(src)
        shutil.copyfile(src, dst)
        if _fingerprint(src) == before:
            return before
        time.sleep(0.2)
    raise StoreError(f"the store {src} kept changing while it was copied ({attempts} attempts)")


#: Tables read per customer: the copy gets an index on ``customer_id`` for each.
_CUSTOMER_TABLES = ("segment_spells", "customers", "customer_scores", "customer_features")


def _prepare(path: Path, memory_limit: str | None = None) -> None:
    """Index the copy for customer lookups (the copy is private: the store is untouched):
    DuckDB indexes on ``customer_id``, the customer search's e-mail keys
    (:func:`segflow.server._search.build_email_keys`) and the memory-mapped lookup files of
    :mod:`segflow.server._lookup` (``<copy>.lookup/``; none when the store cannot be indexed
    that way, and lookups then use DuckDB)."""
    from segflow.server import _lookup, _search

    con = duckdb.connect(str(path))
    try:
        con.execute("SET enable_progress_bar = false")
        if memory_limit:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'").fetchall()}
        for table in _CUSTOMER_TABLES:
            if table in present:
                con.execute(f"CREATE INDEX IF NOT EXISTS _serve_{table}_customer ON {table} (customer_id)")
        # the customer search's e-mail keys (an ibis backend on a cursor of its own: it sets
        # session options such as the time zone)
        keys = con.cursor()
        try:
            _search.build_email_keys(keys)
        finally:
            keys.close()
        con.execute("CHECKPOINT")
        with contextlib.suppress(_lookup.IndexNotBuilt):
            _lookup.build(con, lookup_folder(path))
    finally:
        con.close()


def lookup_folder(path: Path) -> Path:
    """The folder of a copy's lookup files."""
    return path.with_suffix(".lookup")


@contextlib.contextmanager
def _copies_lock(work_dir: Path) -> Iterator[None]:
    """The work folder's lock around making, taking and deleting copies (between processes)."""
    fd = os.open(work_dir / "replica.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _copy_name(work_dir: Path, fingerprint: Fingerprint) -> Path:
    return work_dir / ("replica-" + "-".join(str(part) for part in fingerprint) + ".duckdb")


def _take(path: Path) -> int:
    """Mark the copy at ``path`` as used by this process (a shared lock on its ``.users``
    file, held until :func:`_give_back`); returns the file descriptor."""
    fd = os.open(path.with_suffix(".users"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def _delete_if_unused(path: Path) -> None:
    """Delete a copy (and its markers) when no process holds it (call under the lock)."""
    users = path.with_suffix(".users")
    if users.exists():
        fd = os.open(users, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another worker serves it
        finally:
            os.close(fd)
    for leftover in (path, Path(f"{path}.wal"), path.with_suffix(".ready"), users):
        with contextlib.suppress(OSError):
            leftover.unlink()
    shutil.rmtree(lookup_folder(path), ignore_errors=True)


def _give_back(path: Path, fd: int, work_dir: Path) -> None:
    """Release this process's use of a copy; the last user deletes it."""
    with _copies_lock(work_dir):
        os.close(fd)
        _delete_if_unused(path)


def _shared_copy(store_path: Path, work_dir: Path, memory_limit: str | None = None,
                 source: Callable[[], Fingerprint] | None = None,
                 fill: Callable[[Path], None] | None = None) -> tuple[Path, Fingerprint, int]:
    """The copy of the store's current state, made and indexed by the first process that
    needs it and reused by the others (``segflow serve --workers N`` keeps one copy, not N):
    (path, fingerprint of the store it copies, descriptor from :func:`_take`).

    ``source``: the warehouse's part of the fingerprint (its latest committed run), appended
    to the store file's; ``fill``: called with the fresh copy before it is indexed (on Spark:
    :func:`segflow.warehouse.fill_served_copy`)."""
    with _copies_lock(work_dir):
        extra = source() if source is not None else ()
        fingerprint = (*_fingerprint(store_path), *extra)
        target = _copy_name(work_dir, fingerprint)
        if not (target.exists() and target.with_suffix(".ready").exists()):
            tmp = work_dir / f"replica-tmp-{os.getpid()}-{next(_counter)}.duckdb"
            # the token file as it is before the copy: the copy holds what it shows (see
            # segflow.server._token_cache); kept in the copy's .ready marker for every worker
            token_file_before = published_id(work_dir)
            try:
                fingerprint = (*_copy_consistent(store_path, tmp), *extra)
                if fill is not None:
                    fill(tmp)
                _prepare(tmp, memory_limit)
            except BaseException:
                tmp.unlink(missing_ok=True)
                shutil.rmtree(lookup_folder(tmp), ignore_errors=True)
                raise
            target = _copy_name(work_dir, fingerprint)
            shutil.rmtree(lookup_folder(target), ignore_errors=True)
            if lookup_folder(tmp).exists():
                os.replace(lookup_folder(tmp), lookup_folder(target))
            os.replace(tmp, target)
            _write_marker(target.with_suffix(".ready"), token_file_before)
        return target, fingerprint, _take(target)


def _write_marker(path: Path, token_file_before: str | None) -> None:
    """The ``.ready`` marker of a finished copy, holding the token file's ``publish_id`` read
    before the copy was made (empty: there was no token file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token_file_before or "")


def read_marker(path: Path) -> str | None:
    """The token file's ``publish_id`` kept with the copy at ``path`` (None: none, or the
    marker cannot be read)."""
    try:
        return path.with_suffix(".ready").read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _pooled_project(directory: Path, settings: Settings, path: Path, cursor: duckdb.DuckDBPyConnection) -> Project:
    """A Project whose store is one read-only cursor of the replica (no lock, no upgrade)."""
    import ibis

    store = Store.__new__(Store)
    store.path = str(path)
    store._lock = threading.RLock()
    store.con = ibis.duckdb.from_connection(cursor)
    store.raw = cursor
    store._cache_guard = CacheGuard(store.con)  # cached tables dropped only when safe
    return Project(directory, settings, store)


def _check_schema_version(db: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse a copy of a store written by a newer segflow, as opening the store does
    (:class:`segflow.store.Store`): the server would misread tables it does not know.
    ``path`` names the project's store in the message (not the served copy of it).

    Raises
    ------
    StoreError
        The store's schema version is above :data:`segflow.store.SCHEMA_VERSION`.
    """
    from segflow.store import SCHEMA_VERSION

    version = int(db.execute("SELECT max(version) FROM schema_info").fetchone()[0] or 0)
    if version > SCHEMA_VERSION:
        db.close()
        raise StoreError(
            f"store {path} has schema version {version}, but this segflow knows versions "
            f"up to {SCHEMA_VERSION}; upgrade segflow to serve it")


class Generation:
    """One copy of the store with its connection pool, tokens and result cache."""

    def __init__(self, directory: Path, settings: Settings, path: Path, fingerprint: Fingerprint, pool_size: int,
                 users_fd: int | None = None, threads: int | None = None) -> None:
        self.number = next(_counter)
        self.path = path
        self.users_fd = users_fd  # this process's hold on a shared copy (see _shared_copy)
        self.fingerprint = fingerprint
        self.db = duckdb.connect(str(path), read_only=True)
        self.db.execute("SET enable_progress_bar = false")
        _check_schema_version(self.db, directory / settings.project.store)
        if threads:  # requests are the unit of parallelism: one thread per query costs less CPU
            self.db.execute(f"SET threads = {int(threads)}")
        self.tokens: dict[str, TokenRecord] = load_tokens(self.db)
        #: the token file's publish_id when this copy was made: that file is not newer than the
        #: copy and is ignored (segflow.server._token_cache.TokenBook.tokens)
        self.token_file_before: str | None = read_marker(path)
        from segflow.server._lookup import open_index

        self.lookup = open_index(lookup_folder(path))  # None: lookups read DuckDB
        self.pool: queue.Queue[Project] = queue.Queue()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        for _ in range(pool_size):
            cursor = self.db.cursor()
            cursor.execute("SET enable_progress_bar = false")
            self._cursors.append(cursor)
            self.pool.put(_pooled_project(directory, settings, path, cursor))
        self.pool_size = pool_size
        self.users = 0
        self.retired = False
        self._lock = threading.Lock()
        self._cache: dict[Any, Any] = {}
        self._key_locks: dict[Any, threading.Lock] = {}
        self.warmed = threading.Event()  # set when the first pages' aggregates and the scorer are ready
        #: a copy filled from a Spark warehouse: no transactions, the stored aggregates instead
        self.warehouse = False

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per copy and key (aggregates only: they are small); concurrent
        requests for the same key wait for the first one instead of computing it again."""
        try:
            return self._cache[key]
        except KeyError:
            pass
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        try:
            with key_lock:
                try:
                    return self._cache[key]
                except KeyError:
                    value = compute()
                with self._lock:
                    if len(self._cache) > 2048:
                        self._cache.clear()
                    self._cache[key] = value
                return value
        finally:
            # the lock of a key is only needed while it is computed: kept, the locks grew by
            # one per distinct key asked for, for the life of the copy
            with self._lock:
                if self._key_locks.get(key) is key_lock and not key_lock.locked():
                    del self._key_locks[key]

    def peek(self, key: Any) -> Any:
        """The cached value of ``key``, or None (never computes; no store connection needed)."""
        return self._cache.get(key)

    def _release(self) -> None:
        with self._lock:
            self.users -= 1
            done = self.retired and self.users == 0
        if done:
            self.close()

    def close(self) -> None:
        # the background warm-up may still be querying this copy: interrupt it and wait for it
        # to end (closing the database under a running query crashes the process)
        deadline = time.monotonic() + 30
        while not self.warmed.wait(0.05) and time.monotonic() < deadline:
            for cursor in self._cursors:
                with contextlib.suppress(Exception):
                    cursor.interrupt()
        with contextlib.suppress(Exception):
            self.db.close()
        self.lookup = None  # requests still reading it keep their maps; the files may go
        if self.users_fd is None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            shutil.rmtree(lookup_folder(self.path), ignore_errors=True)
            return
        fd, self.users_fd = self.users_fd, None
        with contextlib.suppress(OSError):
            _give_back(self.path, fd, self.path.parent)


class Replica:
    """The served copy of a project's store, refreshed when the store changes.

    Parameters
    ----------
    directory : Path
        The project folder.
    pool_size : int, default=8
        Read-only connections, i.e. requests reading at the same time.
    poll_seconds : float, default=2.0
        How often the store file is checked for changes (0: never; call :meth:`refresh`).
    min_refresh_seconds : float, default=10.0
        Least time between two copies made by the poller (a store being written
        continuously is not copied again and again).
    warm : callable, optional
        Called with each new copy before it is swapped in (to precompute aggregates).
    threads : int, optional
        DuckDB threads per query on the copy (None: DuckDB's default, one per core).
    engine : str, optional
        ``duckdb`` or ``spark`` (None: ``[engine] kind``); on Spark the copy shows the
        project's warehouse (see the module notes).

    Raises
    ------
    StoreError
        When the store does not exist or its copy cannot be opened.
    SegflowError
        On Spark: the warehouse has no committed run with aggregates.
    """

    def __init__(self, directory: Path, *, pool_size: int = 8, poll_seconds: float = 2.0,
                 min_refresh_seconds: float = 10.0, warm: Callable[[Generation], None] | None = None,
                 threads: int | None = None, engine: str | None = None) -> None:
        from segflow.engine import resolve_engine

        self.directory = Path(directory)
        self.settings = Settings.load(self.directory)
        self.engine = resolve_engine(engine, self.settings.engine)
        self._warehouse: Any = None
        self.store_path = self.directory / self.settings.project.store
        if not self.store_path.exists():
            raise StoreError(f"no store at {self.store_path}; run `segflow init` and `segflow ingest` first")
        self.work_dir = work_dir_for(self.store_path)
        with _copies_lock(self.work_dir):  # copies left by stopped servers (not those in use)
            for stale in self.work_dir.glob("replica-*.duckdb"):
                with contextlib.suppress(OSError):
                    _delete_if_unused(stale)
        self.pool_size = pool_size
        self.threads = threads
        from segflow.store._memory import resolve_memory_limit

        self.memory_limit = resolve_memory_limit(self.settings.project.memory_limit)
        self.min_refresh_seconds = min_refresh_seconds
        if self.engine == "spark":  # each look at the warehouse is a Spark job: not every 2 s
            poll_seconds = max(poll_seconds, min_refresh_seconds) if poll_seconds > 0 else 0
        self.warm = warm
        self._last_refresh = 0.0
        self._swap_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._current: Generation | None = None
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self.start()

    def start(self) -> None:
        """Copy the store (if not open) and start the poller; idempotent."""
        if self._current is None:
            self.refresh()
        if self.poll_seconds > 0 and (self._poller is None or not self._poller.is_alive()):
            self._stop = threading.Event()
            self._poller = threading.Thread(target=self._poll, args=(self.poll_seconds,), daemon=True,
                                            name="segflow-replica")
            self._poller.start()

    @property
    def warehouse(self) -> Any:
        """The project's Spark store (on Spark; the session starts on first use)."""
        if self._warehouse is None:
            from segflow.store._spark import SparkStore

            self._warehouse = SparkStore.open(self.settings.engine, self.directory)
        return self._warehouse

    def _source(self) -> Fingerprint:
        """The warehouse's latest committed run (on Spark), read afresh."""
        runs = self.warehouse.committed_runs(fresh=True)
        return (runs[-1] if runs else "none",)

    def _fill(self, path: Path) -> None:
        from segflow.warehouse import fill_served_copy

        fill_served_copy(path, self.warehouse)

    def _current_fingerprint(self) -> Fingerprint:
        extra = self._source() if self.engine == "spark" else ()
        return (*_fingerprint(self.store_path), *extra)

    @property
    def current(self) -> Generation:
        assert self._current is not None
        return self._current

    def refresh(self) -> bool:
        """Copy the store again if it changed since the last copy; True when swapped."""
        with self._refresh_lock:  # one copy at a time; requests go on meanwhile
            if self._current is not None and self._current_fingerprint() == self._current.fingerprint:
                return False
            spark = self.engine == "spark"
            target, fingerprint, users_fd = _shared_copy(
                self.store_path, self.work_dir, self.memory_limit,
                source=self._source if spark else None, fill=self._fill if spark else None)
            if self._current is not None and fingerprint == self._current.fingerprint:
                _give_back(target, users_fd, self.work_dir)
                return False
            first = self._current is None
            try:
                generation = Generation(self.directory, self.settings, target, fingerprint, self.pool_size, users_fd, self.threads)
                generation.warehouse = spark
                if self.warm is not None and not first:  # precompute the first pages before the swap
                    with contextlib.suppress(Exception):
                        self.warm(generation)
                    generation.warmed.set()
                elif self.warm is None:
                    generation.warmed.set()
            except StoreError:
                _give_back(target, users_fd, self.work_dir)
                raise
            except duckdb.Error as exc:
                _give_back(target, users_fd, self.work_dir)
                raise StoreError(f"cannot open the copy of {self.store_path}: {exc}") from exc
            with self._swap_lock:
                old, self._current = self._current, generation
            if self.warm is not None and first:
                # the first copy is served at once (start-up in about a second); its aggregates
                # and scorer are computed in the background, and a request that needs one
                # meanwhile waits for that same computation (Generation.cached)
                threading.Thread(target=self._warm_quietly, args=(generation,), daemon=True,
                                 name="segflow-warm").start()
        if old is not None:
            with old._lock:
                old.retired = True
                idle = old.users == 0
            if idle:
                old.close()
        return True

    def _warm_quietly(self, generation: Generation) -> None:
        with contextlib.suppress(Exception):
            self.warm(generation)  # type: ignore[misc]
        generation.warmed.set()

    def _poll(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            if time.monotonic() - self._last_refresh < self.min_refresh_seconds:
                continue  # a store written continuously is copied at most this often
            with contextlib.suppress(Exception):  # a failed copy keeps the current one
                if self.refresh():
                    self._last_refresh = time.monotonic()

    @contextlib.contextmanager
    def lease(self, timeout: float = 30.0) -> Iterator[tuple[Generation, Project]]:
        """A project on one pooled read-only connection of the current copy."""
        with self._swap_lock:
            generation = self.current
            with generation._lock:
                generation.users += 1
        try:
            project = generation.pool.get(timeout=timeout)
        except queue.Empty:
            generation._release()
            raise StoreError(f"the server is busy: no free store connection within {timeout:g} s") from None
        try:
            yield generation, project
        finally:
            generation.pool.put(project)
            generation._release()

    def close(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        with self._swap_lock:
            if self._current is not None:
                self._current.close()
                self._current = None
