"""The two hot routes answered without FastAPI's routing and dependency machinery.

``POST /api/v1/score`` and ``GET /api/v1/customers/{id}`` are what integrations call at
hundreds of requests per second. Through FastAPI each request crosses about fifteen layers
of middleware, routing, dependency resolution and exception handling, about 0.6 ms of CPU
on this machine, as much as the customer lookup itself. :class:`HotPaths` is called by the
app before any of it (:class:`segflow.server.app.SegflowApp`) and answers the **successful**
requests of those two routes itself, with the same functions the routes use
(:func:`segflow.server.routes.score.score_answer`,
:func:`segflow.server.routes.api.customer_answer`, the same token check and audit record;
the record is written with the others of the next 50 ms: :mod:`segflow.server._audit`),
after the same Host check (an exact allowed name) and with the same security headers
(:func:`segflow.server._security.security_headers`); an unexpected error answers 500 as
the app does (:data:`segflow.server._security.INTERNAL_ERROR`, one JSON line) and is raised
on to the server's log.

Anything else is handed to the full app unchanged, so every refusal and error is the
app's own: a Host header that is not exactly an allowed name (the app answers 400, or
accepts a wildcard name), no or a malformed ``Authorization`` header (browsers with the session cookie
included, so CSRF checks stay where they are), a token that is unknown, expired, revoked
or below the analyst role, a body that does not validate (the body already read is passed
on), a customer id with characters beyond ``[A-Za-z0-9._~@:+-]``, a query string other
than nothing, ``pii=default``, ``pii=include`` or ``pii=full``, an unknown customer, a copy without lookup
files, a scorer not yet built. The tests compare both paths' answers and audit lines.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterable
from typing import Any

from fastapi import HTTPException
from pydantic import ValidationError

from segflow.errors import SegflowError
from segflow.exports._pseudonym import PSEUDONYM_PREFIX
from segflow.server import _audit, _views
from segflow.server._pseudonyms import audited_id, server_key
from segflow.server._security import INTERNAL_ERROR, security_headers
from segflow.server._tokens import role_at_least
from segflow.server.routes.api import customer_answer
from segflow.server.routes.score import ScoreIn, _ready_scorer, score_answer

_SCORE = "/api/v1/score"
_CUSTOMER = "/api/v1/customers/"
_SAFE_ID = re.compile(r"[A-Za-z0-9._~@:+\-]{1,200}")
_PII = {b"": "mask", b"pii=default": "mask", b"pii=include": "full", b"pii=full": "full"}
#: Larger score bodies go through the app (whose validation bounds the lists).
MAX_BODY = 4 * 1024 * 1024
#: Seconds an audit event of a hot route waits to be written with the others (at most).
AUDIT_FLUSH_SECONDS = 0.05

Scope = dict[str, Any]




async def _answer(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", content_type),
               *security_headers(secrets.token_urlsafe(16))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class HotPaths:
    """The hot routes' successful requests, answered in front of the app (module notes).

    Parameters
    ----------
    app : ASGI callable
        The full app (its middleware stack): every request not answered here goes to it.
    allowed_hosts : iterable of str
        Host names answered here (the app's TrustedHost list; patterns with ``*`` are left
        to the app).
    """

    def __init__(self, app: Any, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.hosts = frozenset(h for h in allowed_hosts if "*" not in h)
        self._flush_loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and "app" in scope:
            path, method = scope["path"], scope["method"]
            if method == "POST" and path == _SCORE and self._host_ok(scope):
                await self._score(scope, receive, send)
                return
            if method == "GET" and path.startswith(_CUSTOMER) and self._host_ok(scope):
                await self._customer(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _host_ok(self, scope: Scope) -> bool:
        """Whether the Host header (without its port) is exactly one of the allowed names,
        as :class:`starlette.middleware.trustedhost.TrustedHostMiddleware` reads it."""
        for key, value in scope["headers"]:
            if key == b"host":
                return value.decode("latin-1").split(":")[0] in self.hosts
        return False

    @staticmethod
    def _analyst(scope: Scope) -> Any:
        """The token record of an analyst (or admin) bearer token, else None."""
        header = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                header = value
                break
        if header is None:
            return None
        kind, _, token = header.decode("latin-1").partition(" ")
        if kind.lower() != "bearer" or not token:
            return None
        state = scope["app"].state
        record = state.token_book.verify(token, state.replica.current)
        return record if record is not None and role_at_least(record.role, "analyst") else None

    def _audit(self, scope: Scope, record: Any, action: str, detail: dict[str, Any],
               path: str | None = None) -> None:
        """What :func:`segflow.server._auth.audit` records for the same request."""
        resource = path or scope["path"]
        if scope.get("query_string"):
            resource += "?" + scope["query_string"].decode()
        client = scope.get("client")
        _audit.record(scope["app"].state.replica.work_dir, token_id=record.token_id, role=record.role,
                      action=action, resource=resource, detail=detail, client=client[0] if client else None,
                      deferred=True)
        # Written with the others of the next 50 ms (segflow.server._audit). A flush is due on
        # one event loop; a request on another loop (a loop that ended before its timer ran,
        # as test clients and server restarts do) schedules its own, so no event waits forever.
        loop = asyncio.get_running_loop()
        if self._flush_loop is not loop:
            self._flush_loop = loop
            loop.call_later(AUDIT_FLUSH_SECONDS, self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._flush_loop is loop:
            self._flush_loop = None
        _audit.flush()

    async def _customer(self, scope: Scope, receive: Any, send: Any) -> None:
        try:
            body = self._customer_body(scope)
        except Exception:
            await _answer(send, 500, INTERNAL_ERROR, b"application/json")
            raise
        if body is None:
            await self.app(scope, receive, send)
            return
        await _answer(send, 200, body, b"application/json")

    def _customer_body(self, scope: Scope) -> bytes | None:
        """The lookup's answer (audited), or None when the app is to answer."""
        customer_id = scope["path"][len(_CUSTOMER):]
        how = _PII.get(scope.get("query_string", b""))
        if how is None or not _SAFE_ID.fullmatch(customer_id) or customer_id.startswith(PSEUDONYM_PREFIX):
            return None  # a pseudonymous key (pid-...): the app resolves it
        record = self._analyst(scope)
        if record is None:
            return None
        try:
            parts = _views.customer_rows_indexed(scope["app"].state.replica.current, customer_id)
        except HTTPException:  # unknown customer: the app answers 404
            return None
        if parts is None:
            return None
        key = server_key(scope["app"].state)
        shown = audited_id(customer_id, key)  # an address as its key, as the app records it
        self._audit(scope, record, "read_customer", {"customer_id": shown, "pii": how}, path=_CUSTOMER + shown)
        return customer_answer(parts, customer_id, how, key)

    async def _score(self, scope: Scope, receive: Any, send: Any) -> None:
        try:
            record = self._analyst(scope)
        except Exception:
            await _answer(send, 500, INTERNAL_ERROR, b"application/json")
            raise
        if record is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size, more, last = 0, True, None
        while more and size <= MAX_BODY:
            last = await receive()
            if last["type"] != "http.request":
                break  # client gone: let the app see it
            chunks.append(last.get("body", b""))
            size += len(chunks[-1])
            more = last.get("more_body", False)
        raw = b"".join(chunks)
        answer = None
        if not more and size <= MAX_BODY and last is not None and last["type"] == "http.request":
            try:
                answer = self._score_body(scope, record, raw)
            except Exception:
                await _answer(send, 500, INTERNAL_ERROR, b"application/json")
                raise
        if answer is None:  # the app answers (422, 409, a scorer to build...), from the same body
            await self.app(scope, _replay(raw, more, last, receive), send)
            return
        await _answer(send, 200, answer, b"application/json")

    def _score_body(self, scope: Scope, record: Any, raw: bytes) -> bytes | None:
        """The score's answer (audited), or None when the app is to answer."""
        try:
            body = ScoreIn.model_validate_json(raw or b"null")
            scorer = _ready_scorer(scope["app"].state.replica.current, body.as_of)
            if scorer is None:
                return None
            answer, lines = score_answer(scorer, body)
        except (ValidationError, SegflowError):
            return None
        self._audit(scope, record, "score", {"customer_id": body.customer_id, "transactions": lines})
        return answer


def _replay(raw: bytes, more: bool, last: dict[str, Any] | None, receive: Any) -> Any:
    """A ``receive`` giving the app the body already read, then the rest of the stream."""
    pending: list[dict[str, Any]] = []
    if last is not None and last["type"] != "http.request":
        pending = [{"type": "http.request", "body": raw, "more_body": False}, last]
    else:
        pending = [{"type": "http.request", "body": raw, "more_body": more}]

    async def replay() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
