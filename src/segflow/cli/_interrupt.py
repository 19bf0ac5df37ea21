"""Ctrl-C (SIGINT) in a command: one line and exit status 130, never a traceback, never ignored.

Two ways Python and DuckDB lost an interrupt (a `segflow run` on the demo data, SIGINT at
2-14 s):

* DuckDB checks for the signal while a query runs, interrupts the query and raises
  ``RuntimeError: Query interrupted`` in place of the ``KeyboardInterrupt``: a traceback.
  Its check ends the Python call but leaves the query's worker threads running: the next
  statement on that connection (the run log's "failed", a ROLLBACK, the close) waited for
  them, i.e. until the query would have finished. The handler stops the queries of the
  open stores and of the in-memory DuckDBs commands read files into
  (:func:`segflow.store._store.interrupt_queries`, :func:`segflow.store.interruptible`).
* The signal handler runs at the next bytecode of the main thread, and that may be inside a
  garbage-collector callback or a finalizer (the store's ``_cache_guard`` has one; Ibis's
  cached tables have finalizers). Python prints "Exception ignored in ..." and drops the
  ``KeyboardInterrupt``: the run went on and exited 0.

:func:`install` records that SIGINT arrived (so :func:`segflow.cli._common.user_errors`
reads DuckDB's error as the interrupt it is) and delivers an interrupt that landed where
Python ignores exceptions once more, from a helper thread, a moment later.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

#: Whether SIGINT arrived during this command.
INTERRUPTED = [False]

#: What a command prints (after "error: ") when it is interrupted.
MESSAGE = ("interrupted: what was committed before it is kept and the step in progress was "
           "rolled back; run the command again to finish")


def _on_sigint(signum: int, frame: Any) -> None:
    INTERRUPTED[0] = True
    store = sys.modules.get("segflow.store._store")  # loaded when a store or an
    # interruptible() connection was opened
    if store is not None:  # stop DuckDB's worker threads too (not done by its own check)
        store.interrupt_queries()
    raise KeyboardInterrupt


def _redeliver() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def _unraisable(hook: Any) -> Any:
    def handle(unraisable: Any) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            # raised in a gc callback or a finalizer, where Python drops it: again, from outside
            timer = threading.Timer(0.05, _redeliver)
            timer.daemon = True
            timer.start()
            return
        hook(unraisable)

    return handle


def install() -> None:
    """Handle SIGINT as above (in the main thread of the ``segflow`` process)."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, _on_sigint)
    sys.unraisablehook = _unraisable(sys.unraisablehook)
