"""Who is calling: bearer tokens, browser sessions, roles, CSRF and the audit helper.

Every route except ``/login`` and the static library files depends on :func:`principal`:
a request carries ``Authorization: Bearer sf_...`` or the session cookie set by the login
form. Sessions live in the server's memory and in a SQLite file of its work folder (shared
by worker processes; see :class:`Sessions`), last at most
``session_hours`` and never outlive their token; a revoked token is refused, and its
sessions ended, within ``token_cache_seconds`` (see :mod:`segflow.server._token_cache`).
A session is bound to its token's record (id and the SHA-256 of the secret): it ends as soon
as the served copy of the store no longer holds that token (a rebuilt store, a backup copied
back), as a bearer token does.

CSRF: a state-changing request (POST) authenticated by the cookie must carry the session's
CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``) and, when the browser sends
an ``Origin``, come from this server. Bearer-token requests need neither: browsers never
attach that header on their own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from segflow.server import _audit
from segflow.server._tokens import TokenRecord, role_at_least

SESSION_COOKIE = "segflow_session"


class LoginRequired(Exception):
    """No valid credentials: 401 for the API, a redirect to the login page for pages."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass
class Session:
    """A browser login: its token (id and the SHA-256 of its secret), CSRF token and expiry."""

    session_id: str
    token_id: str
    csrf: str
    expires_at: dt.datetime
    #: the token's ``secret_sha256`` at login: a store whose token of that id differs (another
    #: store, a reused id) does not keep the session
    token_sha256: str = ""


class Sessions:
    """Browser sessions: session id -> token id, CSRF token, expiry.

    Kept in memory, and, with ``path`` (the server's work folder), also in a small SQLite
    file there so that every worker process of ``segflow serve --workers N`` knows every
    session (a login answered by one worker, the next page by another). The file holds the
    SHA-256 of each session id, never the id itself. A logout ends the session at once in
    the worker that answered it and within ``ttl`` seconds in the others.
    """

    def __init__(self, hours: float = 8.0, path: Path | None = None, ttl: float = 5.0) -> None:
        self.hours = hours
        self.ttl = ttl
        self._sessions: dict[str, tuple[Session, float]] = {}
        self._lock = threading.Lock()
        self._db: Path | None = None
        if path is not None:
            self._db = Path(path) / "sessions.sqlite"
            with contextlib.closing(self._connect()) as con, con:
                columns = {row[1] for row in con.execute("PRAGMA table_info(sessions)").fetchall()}
                if columns and "token_sha256" not in columns:  # an older segflow's: log in again
                    con.execute("DROP TABLE IF EXISTS sessions")
                con.execute("CREATE TABLE IF NOT EXISTS sessions (id_sha256 TEXT PRIMARY KEY, token_id TEXT, "
                            "csrf TEXT, expires_at TEXT, token_sha256 TEXT)")
            with contextlib.suppress(OSError):
                os.chmod(self._db, 0o600)

    def _connect(self) -> sqlite3.Connection:
        assert self._db is not None
        return sqlite3.connect(self._db, timeout=10, isolation_level=None)

    @staticmethod
    def _key(session_id: str) -> str:
        return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()

    def create(self, token: TokenRecord) -> Session:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        expires = now + dt.timedelta(hours=self.hours)
        if token.expires_at is not None:
            expires = min(expires, token.expires_at)
        session = Session(secrets.token_urlsafe(32), token.token_id, secrets.token_urlsafe(32), expires,
                          token.secret_sha256)
        if self._db is not None:
            with contextlib.closing(self._connect()) as con:
                con.execute("DELETE FROM sessions WHERE expires_at <= ?", [now.isoformat()])
                con.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                            [self._key(session.session_id), session.token_id, session.csrf, expires.isoformat(),
                             session.token_sha256])
        with self._lock:
            self._sessions = {k: v for k, v in self._sessions.items() if v[0].expires_at > now}
            self._sessions[session.session_id] = (session, time.monotonic())
        return session

    def get(self, session_id: str) -> Session | None:
        with self._lock:
            hit = self._sessions.get(session_id)
        clock = time.monotonic()
        session = hit[0] if hit is not None else None
        if self._db is not None and (hit is None or clock - hit[1] >= self.ttl):
            with contextlib.closing(self._connect()) as con:
                row = con.execute("SELECT token_id, csrf, expires_at, token_sha256 FROM sessions WHERE id_sha256 = ?",
                                  [self._key(session_id)]).fetchone()
            session = None if row is None else Session(session_id, row[0], row[1], dt.datetime.fromisoformat(row[2]),
                                                       row[3] or "")
            with self._lock:
                if session is None:
                    self._sessions.pop(session_id, None)
                else:
                    self._sessions[session_id] = (session, clock)
        if session is None or session.expires_at <= dt.datetime.now(dt.UTC).replace(tzinfo=None):
            return None
        return session

    def drop(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)
        if self._db is not None:
            with contextlib.closing(self._connect()) as con:
                con.execute("DELETE FROM sessions WHERE id_sha256 = ?", [self._key(session_id)])


@dataclasses.dataclass(frozen=True)
class Principal:
    """The caller: its token id and role, and its session when it came with the cookie."""

    token_id: str
    role: str
    name: str | None
    session: Session | None = None


async def principal(request: Request) -> Principal:
    """The authenticated caller, or :class:`LoginRequired`. Runs on the event loop (no I/O
    but a ``stat`` of the token file when a cached check is older than its lifetime)."""
    header = request.headers.get("authorization")
    book = request.app.state.token_book
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise LoginRequired("the Authorization header must read 'Bearer <token>'")
        record = book.verify(value, request.app.state.replica.current)
        if record is None:
            raise LoginRequired("the token is unknown, expired or revoked")
        found = Principal(record.token_id, record.role, record.name)
    else:
        session_id = request.cookies.get(SESSION_COOKIE)
        session = request.app.state.sessions.get(session_id) if session_id else None
        if session is None:
            raise LoginRequired("log in, or send 'Authorization: Bearer <token>'")
        record = book.lookup(session.token_id, request.app.state.replica.current)
        if (record is None or record.state() != "active"
                or not hmac.compare_digest(record.secret_sha256, session.token_sha256)):
            request.app.state.sessions.drop(session.session_id)
            raise LoginRequired("the token of this session was revoked, has expired or is no longer in the store")
        found = Principal(record.token_id, record.role, record.name, session)
    request.state.principal = found
    return found


PrincipalDep = Annotated[Principal, Depends(principal)]


def refuse_below(who: Principal, role: str) -> None:
    """Refuse (403) a caller below ``role``: the one check and message of every role requirement."""
    if not role_at_least(who.role, role):
        raise HTTPException(
            status_code=403,
            detail=f"this needs the {role} role or above; token {who.token_id} has the {who.role} role",
        )


def require(role: str) -> Any:
    """A dependency refusing (403) callers below ``role``. The role is also read from the
    route before a store connection is leased (:func:`route_role`), so a caller whose role is
    too low is refused without waiting at the admission gate, whatever the order of the
    route's parameters."""

    async def check(who: PrincipalDep) -> Principal:
        refuse_below(who, role)
        return who

    check.required_role = role  # type: ignore[attr-defined]
    return Depends(check)


def route_role(route: Any) -> str | None:
    """The highest role the dependencies of ``route`` (a FastAPI route, or None) require
    through :func:`require`, or None; found once per route (walking its dependency tree) and
    kept on it."""
    if route is None:
        return None
    known = getattr(route, "_segflow_required_role", False)
    if known is not False:
        return known
    needed: str | None = None
    stack = list(getattr(getattr(route, "dependant", None), "dependencies", []))
    while stack:
        dep = stack.pop()
        role = getattr(dep.call, "required_role", None)
        if role is not None and (needed is None or role_at_least(role, needed)):
            needed = role
        stack.extend(dep.dependencies)
    route._segflow_required_role = needed
    return needed


Viewer = Annotated[Principal, require("viewer")]
Analyst = Annotated[Principal, require("analyst")]
Admin = Annotated[Principal, require("admin")]


def same_secret(sent: str, expected: str) -> bool:
    """Whether ``sent`` (from the request) equals the secret ``expected``, in constant time.
    The secrets segflow makes are ASCII; a text with any other character is simply wrong
    (``hmac.compare_digest`` raises TypeError on non-ASCII text: a CSRF token of ``é`` made
    the login form and the session's POSTs answer 500)."""
    return sent.isascii() and expected.isascii() and hmac.compare_digest(sent, expected)


def same_origin(request: Request) -> bool:
    """Whether the browser's ``Origin`` (when sent) is this server."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


async def check_csrf(request: Request, who: PrincipalDep) -> Principal:
    """For state-changing requests authenticated by the session cookie: the CSRF token."""
    if who.session is None:
        return who
    if not same_origin(request):
        raise HTTPException(status_code=403, detail="cross-origin request refused (CSRF)")
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not sent or not same_secret(sent, who.session.csrf):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token")
    return who


CsrfChecked = Annotated[Principal, Depends(check_csrf)]


def audit(request: Request, who: Principal, action: str, detail: dict[str, Any] | None = None,
          path: str | None = None) -> None:
    """Record that ``who`` read customer-level data or exported (see :mod:`._audit`);
    ``path``: the path to record instead of the request's (a customer's, with the id the
    event records)."""
    resource = path or request.url.path
    if request.url.query:
        resource += "?" + request.url.query
    _audit.record(
        request.app.state.replica.work_dir,
        token_id=who.token_id,
        role=who.role,
        action=action,
        resource=resource,
        detail=detail,
        client=request.client.host if request.client else None,
    )
