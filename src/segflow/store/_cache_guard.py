"""Ibis's cached tables dropped only where the DuckDB connection can take a statement.

An Ibis ``cache()`` table is dropped by a ``weakref.finalize`` callback when its expression
is garbage. The cyclic garbage collector runs that callback in whichever thread happens to
allocate when a collection starts: Rich's progress-bar thread, a server worker, a sampling
profiler. Its ``DROP TABLE`` on the run's connection, while the run's thread is fetching a
query's result on it, closes that result: the run failed after 29 minutes at 10M customers
with "Attempting to execute an unsuccessful or closed pending query result" (session 48).
:class:`CacheGuard` defers such drops (requested during a collection, or from another thread
than the connection's owner) and performs them in the owner thread at its next cache or
release, or when the store closes. The thread that works with the store is the one that
made its latest cached table (a notebook, a worker thread or a Streamlit script run may
each be it): its own releases are done at once, so nothing piles up.
"""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

#: Whether the cyclic garbage collector is running (set by its callbacks; it runs in one
#: thread at a time, holding the GIL).
_collecting = [False]


def _phase(phase: str, info: dict[str, Any]) -> None:
    _collecting[0] = phase == "start"


gc.callbacks.append(_phase)


class CacheGuard:
    """Wraps the cache calls of an Ibis DuckDB backend ``con``."""

    def __init__(self, con: Any) -> None:
        self.owner = threading.get_ident()
        self.pending: list[str] = []
        # a weak reference: the backend holds the guard, and a cycle would keep the DuckDB
        # connection (and its file) open after the store is dropped, until a collection
        self._con = weakref.ref(con)
        self._type = type(con)
        con._finalize_cached_table = self.finalize
        con._create_cached_table = self.create

    def _finalize(self, name: str) -> None:
        con = self._con()
        if con is not None:
            self._type._finalize_cached_table(con, name)

    def _create(self, name: str, expr: Any) -> Any:
        return self._type._create_cached_table(self._con(), name, expr)

    def _safe(self) -> bool:
        return not _collecting[0] and threading.get_ident() == self.owner

    def drain(self) -> None:
        """Drop the deferred tables now (the caller knows the connection is idle)."""
        while self.pending:
            self._finalize(self.pending.pop())

    def finalize(self, name: str) -> None:
        if not self._safe():
            self.pending.append(name)  # list.append is atomic under the GIL
            return
        self.drain()
        self._finalize(name)

    def create(self, name: str, expr: Any) -> Any:
        self.owner = threading.get_ident()  # the thread working with the store now
        if self._safe():
            self.drain()
        return self._create(name, expr)
