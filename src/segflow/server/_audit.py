"""The audit log: who read customer-level data and who exported.

``segflow serve`` never opens the store for writing (it reads a replica, so that ``ingest``
and ``run`` are not locked out), so it appends each event as one JSON line to a spool file
next to the store, under an exclusive ``flock``. Any writer that later holds the store's
write lock (any ``segflow tokens ...`` command) moves the spool into the
``audit_log`` table: it renames the spool under the same lock, inserts its events
(skipping ids already present, so a move cut half-way is redone without duplicates) and
deletes it. :func:`read_events` shows the table and the spool together.

A searched e-mail address, phone number or name is never stored: :func:`record` writes the
HMAC-SHA-256 of its key under the project's secret instead (``q_hmac``, :func:`scrub`; the
key the exports hash for that kind of value, the secret the pseudonymous ids are made
with), so the log gives nobody without the secret a hash to test guessed addresses
against; only an id-like search text (``C001``) is kept as typed
(:func:`segflow.server._search.audit_search`). Lines of older servers hold the plain SHA-256
(``q_sha256``): kept and shown as they are (a hash cannot be keyed afterwards), and found by
``segflow tokens audit --searched`` alike.

The two hot routes (``/score`` and customer lookups, :mod:`segflow.server._hot`) record
their events ``deferred``: kept in the worker process and written together at most 50 ms
later (:func:`flush`; also when the app stops, at interpreter exit, and before this process
reads or drains the log). A worker killed outright (``SIGKILL``, power loss) loses the events
of its last 50 ms; a normal stop (``SIGTERM``, Ctrl-C) writes them.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import fcntl
import json
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from segflow.exports._pseudonym import id_key
from segflow.server._search import audit_search, searched_names

_SPOOL = "audit.jsonl"
#: What an event records: one customer read, a list of customers read, a CSV download, a
#: scoring call (``segflow tokens audit --action`` offers the same words).
ACTIONS: tuple[str, ...] = ("read_customer", "read_customers", "export", "score")
_lock = threading.Lock()
#: Deferred events of this process (work folder -> JSON lines), written by :func:`flush`.
_pending: dict[Path, list[str]] = {}
_pending_lock = threading.Lock()
atexit.register(lambda: flush())


def work_dir_for(store_path: str | Path) -> Path:
    """The folder beside the store where serve keeps its replica and the audit spool."""
    store_path = Path(store_path)
    path = store_path.parent / f".{store_path.name}.serve"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def store_path_for(work_dir: Path) -> Path:
    """The store whose :func:`work_dir_for` is ``work_dir`` (its secret keys the log's
    searches)."""
    work_dir = Path(work_dir)
    return work_dir.parent / work_dir.name.removeprefix(".").removesuffix(".serve")


def _secret_of(work_dir: Path) -> Callable[[], bytes]:
    """The project's secret (:func:`segflow.exports._pseudonym.id_key`) of the store beside
    ``work_dir``, read when called (only for a search to record)."""
    return lambda: id_key(store_path_for(work_dir))


def spool_path(work_dir: Path) -> Path:
    return work_dir / _SPOOL


def record(work_dir: Path, *, token_id: str | None, role: str | None, action: str,
           resource: str, detail: dict[str, Any] | None = None, client: str | None = None,
           deferred: bool = False) -> dict[str, Any]:
    """Append one event to the spool (flushed to the OS before returning), or, ``deferred``,
    keep it in this process until the next :func:`flush` (the hot routes: one write for all
    the events of the last 50 ms instead of six system calls per request; the event's time is
    the request's either way)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; expected one of {ACTIONS}")
    resource, detail = scrub(resource, detail, _secret_of(work_dir))
    event = {
        "event_id": uuid.uuid4().hex,
        "at": dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds"),
        "token_id": token_id,
        "role": role,
        "action": action,
        "resource": resource,
        "detail": json.dumps(detail or {}, sort_keys=True, default=str),
        "client": client,
    }
    line = json.dumps(event) + "\n"
    if deferred:
        with _pending_lock:
            _pending.setdefault(Path(work_dir), []).append(line)
        return event
    _append(spool_path(work_dir), line)
    return event


def scrub(resource: str, detail: dict[str, Any] | None,
          secret: Callable[[], bytes]) -> tuple[str, dict[str, Any] | None]:
    """``resource`` (a path and its query string) and ``detail`` as the log records them: a
    search text (a ``q``, in either) that is not id-like replaced by its HMAC under the
    project's secret (``secret``, called only then), ``q_hmac``
    (:func:`segflow.server._search.audit_search`), so no address, phone number or name is
    stored. Anything else as given (the query string as it came, when it holds no such
    ``q``)."""
    if detail and isinstance(detail.get("q"), str) and audit_search(detail["q"], secret)[0] != "q":
        name, value = audit_search(detail["q"], secret)
        detail = {(name if k == "q" else k): (value if k == "q" else v) for k, v in detail.items()}
    path, sep, query = resource.partition("?")
    if sep and _may_name_q(query):  # (the hot routes' queries: no search)
        from urllib.parse import parse_qsl, urlencode

        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k == "q" and audit_search(v, secret)[0] != "q" for k, v in pairs):
            resource = path + "?" + urlencode([audit_search(v, secret) if k == "q" else (k, v) for k, v in pairs])
    return resource, detail


def _may_name_q(query: str) -> bool:
    """Whether a query string may hold a ``q`` parameter: ``q=`` as written, or the name
    percent-encoded (``%71=``, which the server decodes to ``q`` alike; before, such a query
    was kept as it came, the searched address in clear). A cheap test before parsing."""
    return "q=" in query or "%71" in query


def _scrub_stored(event: dict[str, Any], secret: Callable[[], bytes]) -> None:
    """:func:`scrub` a spooled event in place (its detail a JSON text), so that a line an
    older server wrote with a searched address is moved into ``audit_log`` without it."""
    if not _may_name_q(event["resource"]) and '"q"' not in event["detail"]:
        return
    with contextlib.suppress(json.JSONDecodeError):
        resource, detail = scrub(event["resource"], json.loads(event["detail"]), secret)
        event["resource"] = resource
        event["detail"] = json.dumps(detail or {}, sort_keys=True, default=str)


def _searched_for(event: dict[str, Any], names: dict[str, str]) -> bool:
    """Whether the event's detail records a search by one of ``names`` (field -> value)."""
    try:
        detail = json.loads(event["detail"] or "{}")
    except (TypeError, json.JSONDecodeError):
        return False
    return isinstance(detail, dict) and any(detail.get(k) == v for k, v in names.items())


def flush() -> int:
    """Write this process's deferred events to their spools (one locked write per folder);
    returns how many. Called by the hot routes' timer, when the app stops, at exit and before
    the log is read."""
    with _pending_lock:
        batches = list(_pending.items())
        _pending.clear()
    for work_dir, lines in batches:
        _append(spool_path(work_dir), "".join(lines))
    return sum(len(lines) for _, lines in batches)


def _append(path: Path, text: str) -> None:
    """Append ``text`` to the spool under an exclusive ``flock`` (to the file a drainer has
    not renamed away)."""
    with _lock:
        while True:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                # A drainer may have renamed the file between open and lock: write to the new one.
                try:
                    same = os.fstat(fd).st_ino == os.stat(path).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    os.write(fd, text.encode("utf-8"))
                    return
            finally:
                os.close(fd)


def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a line cut by a crash mid-write
            events.append(json.loads(line))
    return events


def drain(work_dir: Path, con: Any) -> int:
    """Move spooled events into ``audit_log`` (``con`` open for writing). Returns how many."""
    flush()
    path = spool_path(work_dir)
    moved = 0
    pending = sorted(work_dir.glob(_SPOOL + ".*.draining"))
    if path.exists():
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            target = work_dir / f"{_SPOOL}.{uuid.uuid4().hex}.draining"
            os.replace(path, target)
            pending.append(target)
        finally:
            os.close(fd)
    for target in pending:
        events = _read_lines(target)
        if events:
            con.execute("BEGIN TRANSACTION")
            try:
                for e in events:
                    _scrub_stored(e, _secret_of(work_dir))  # a line a server before the scrub wrote
                    con.execute(
                        "INSERT INTO audit_log SELECT ?, ?, ?, ?, ?, ?, ?, ? "
                        "WHERE NOT EXISTS (SELECT 1 FROM audit_log WHERE event_id = ?)",
                        [e["event_id"], dt.datetime.fromisoformat(e["at"]), e["token_id"], e["role"],
                         e["action"], e["resource"], e["detail"], e["client"], e["event_id"]],
                    )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            moved += len(events)
        target.unlink()
    return moved


def read_events(work_dir: Path, con: Any | None, *, limit: int = 1000, offset: int = 0,
                action: str | None = None, token_id: str | None = None,
                searched: str | None = None) -> list[dict[str, Any]]:
    """Events of the store table (``con`` may be a read-only connection or ``None``) and of
    the spool (this process's deferred events written first), newest first; ``searched``:
    only the searches for that text (as the log records it: ``q_hmac`` under the project's
    secret, an older server's ``q_sha256``, or an id-like ``q`` as typed)."""
    flush()
    events: list[dict[str, Any]] = []
    if con is not None:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'audit_log'"
        ).fetchone()[0]
        if exists:
            cols = ["event_id", "at", "token_id", "role", "action", "resource", "detail", "client"]
            rows = con.execute(
                "SELECT event_id, event_at, token_id, role, action, resource, detail, client FROM audit_log"
            ).fetchall()
            events = [dict(zip(cols, r, strict=True)) for r in rows]
            for e in events:
                e["at"] = e["at"].isoformat(timespec="microseconds")
    seen = {e["event_id"] for e in events}
    for path in [*sorted(work_dir.glob(_SPOOL + ".*.draining")), spool_path(work_dir)]:
        events.extend(e for e in _read_lines(path) if e["event_id"] not in seen)
    if action:
        events = [e for e in events if e["action"] == action]
    if token_id:
        events = [e for e in events if e["token_id"] == token_id]
    if searched is not None:
        events = [e for e in events if _searched_for(e, searched_names(searched, _secret_of(work_dir)()))]
    events.sort(key=lambda e: (e["at"], e["event_id"]), reverse=True)
    return events[offset : offset + limit]
