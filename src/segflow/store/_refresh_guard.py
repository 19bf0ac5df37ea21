"""Writers of a store step aside while ``segflow refresh`` works on its copy.

A refresh (:mod:`segflow.refresh`) works on a copy of the store file and renames the copy
over the store at its very end, so anything another process writes to the store in between
is lost at that rename. The refresh holds ``fcntl.flock`` on ``<store>.refresh.lock`` from
before it first reads the store until after the rename, and writes ``pid N, started ...``
into that file; a killed refresh loses the lock (the kernel releases it) but may leave its
text behind.

:func:`refresh_holder` tells whether a refresh of another process holds that lock, without
taking it from a refresh that is starting: only when the file names a holder is the lock
tried (shared, without waiting, released at once), to tell a live refresh from the text of
a killed one. :class:`~segflow.store.Store` asks it whenever it opens a store for writing,
after DuckDB's own file lock is held: a refresh that starts later then cannot open the
store (DuckDB refuses it while this writer holds the file) and fails, leaving it as it is.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

from segflow.errors import StoreError


class RefreshInProgress(StoreError):
    """A ``segflow refresh`` of the same store is running in another process."""


def lock_path(store_path: str | Path) -> Path:
    """The refresh lock file of a store: ``<store>.refresh.lock`` beside it."""
    store_path = Path(store_path)
    return store_path.with_name(store_path.name + ".refresh.lock")


def refresh_holder(store_path: str | Path) -> str | None:
    """``"pid N, started YYYY-MM-DD HH:MM:SS UTC"`` of a refresh of ``store_path`` running in
    another process, else None (no refresh, a refresh of this process, or the text left by a
    killed one)."""
    path = lock_path(store_path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # no lock file: no refresh ever ran here
        return None
    try:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
        if not holder:  # released (or a refresh that has not read the store yet)
            return None
        pid = re.match(r"pid (\d+)", holder)
        if pid and int(pid.group(1)) == os.getpid():
            return None  # this process's own refresh (it logs its outcome in the store)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return holder
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None  # the text of a refresh that was killed: nobody holds the lock
    finally:
        os.close(fd)


def refuse_during_refresh(store_path: str | Path) -> None:
    """Raise :class:`RefreshInProgress` (one line naming the refresh and its pid) when a
    refresh of ``store_path`` runs in another process."""
    holder = refresh_holder(store_path)
    if holder is not None:
        raise RefreshInProgress(
            f"a refresh of {store_path} is running ({holder}); it will replace the store when "
            "it ends, so nothing may write to it meanwhile: run this command when the refresh "
            "has finished (or let `segflow refresh` do the work)")
