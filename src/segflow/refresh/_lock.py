"""One refresh at a time: an advisory lock file beside the store.

The lock is ``fcntl.flock`` on ``<store>.refresh.lock``: the kernel releases it when the
holder exits, however it ends (a killed refresh never leaves a stale lock). The file holds
the holder's pid and start time, for the message a second refresh shows, and for the one
of a command that would write the store meanwhile (:mod:`segflow.store._refresh_guard`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from segflow.errors import SegflowError
from segflow.store._refresh_guard import lock_path


class RefreshLocked(SegflowError):
    """Another refresh of the same store holds the lock."""


@contextlib.contextmanager
def refresh_lock(store_path: Path, *, wait: float = 0.0, poll: float = 0.2) -> Iterator[Path]:
    """Hold the refresh lock of ``store_path`` for the ``with`` block.

    Parameters
    ----------
    store_path : Path
    wait : float, default=0
        Seconds to wait for another refresh to finish; 0 refuses at once.
    poll : float, default=0.2
        Seconds between two tries while waiting.

    Raises
    ------
    RefreshLocked
        The lock is still held after ``wait`` seconds; the message names the holder.
    """
    path = lock_path(store_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + max(0.0, wait)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
                    raise RefreshLocked(
                        f"another refresh of {store_path} is running ({holder}); "
                        + (f"waited {wait:g} s; " if wait else "")
                        + "try again later or pass --wait SECONDS"
                    ) from None
                time.sleep(poll)
        started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {started}".encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
