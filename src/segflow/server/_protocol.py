"""uvicorn's httptools protocol with one socket write per answer instead of two.

uvicorn writes an answer's status line and headers with one ``transport.write`` and its body
with another, so every answer is two system calls and two TCP segments, and on loopback two
wake-ups of the client. On this machine's virtual CPUs those writes were about a third of
the server's CPU per ``/score`` request (py-spy, 200 requests/s). :class:`CoalescingHttpTools`
hands uvicorn's protocol a transport (:class:`CoalescingTransport`) that collects the writes
made during one step of the event loop and sends them together at the end of the step
(``loop.call_soon``): the same bytes in the same order, one write when an answer is
complete in one step (always for the JSON answers here), nothing held longer than the step.
``close`` sends what is collected first. Everything else is the transport's own.

``segflow serve`` uses it when uvicorn's httptools protocol is available (the ``server``
extra installs httptools), else uvicorn's default.

It also bounds a request's head (request line and headers) to :data:`MAX_HEAD_BYTES` and
answers ``431`` beyond, closing the connection, and closes a connection whose head is not
complete :data:`HEAD_SECONDS` after it began (or after the connection opened): uvicorn keeps
a connection that sent part of a head, or nothing, open for ever, so a client without a
token could hold any number of them ("slowloris"). uvicorn's httptools protocol sets no such
bound (its h11 protocol stops at 16 KiB): a client without a token could send one header of
80 MB, held in memory until it ended (the server's resident memory grew by 100 MB and the
request was answered).

The answers the protocol gives itself, before the app and its security-headers middleware
run, carry the same security headers (:data:`segflow.server._security.PROTOCOL_HEADER_LINES`,
with a policy allowing nothing): the ``431`` above, uvicorn's ``400`` for a request it cannot
parse, and uvicorn's ``503`` once ``serve --max-connections`` (uvicorn's ``limit_concurrency``)
is reached (uvicorn sent them without any).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from segflow.server._security import PROTOCOL_HEADER_LINES


class CoalescingTransport:
    """A transport whose writes within one event-loop step leave as one write.

    Parameters
    ----------
    transport : asyncio.Transport
        The connection's transport (every other attribute is read from it).
    loop : asyncio.AbstractEventLoop
        The loop the connection runs on (the send is scheduled with ``call_soon``).
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._send)
        self._pending.append(data)

    def _send(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._send()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


#: Largest request head (request line and headers, in bytes) the server reads; larger: 431.
MAX_HEAD_BYTES = 64 * 1024
_HEAD_END = b"\r\n\r\n"
_TOO_LARGE = b'{"detail":"the request line and headers are larger than 64 KiB"}'
#: Seconds a request head may take to arrive, from its first byte (or the connection's start).
HEAD_SECONDS = 30.0


class CoalescingHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`CoalescingTransport`, with request heads
    bounded to :data:`MAX_HEAD_BYTES`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._in_head, self._head_bytes, self._tail, self._refused = True, 0, b"", False
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(HEAD_SECONDS, self._head_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:  # closing: what the client still sends is not read
            return
        if self._in_head:  # count the head's bytes only (a chunk may go on into the body)
            if self._head_timer is None:  # the first bytes of the next request's head
                self._head_timer = self.loop.call_later(HEAD_SECONDS, self._head_late)
            seen = self._tail + data
            end = seen.find(_HEAD_END)
            self._head_bytes += len(data) if end < 0 else max(0, end + len(_HEAD_END) - len(self._tail))
            self._tail = seen[-(len(_HEAD_END) - 1):]
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse_head()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        limit = self.limit_concurrency
        if limit is None or (len(self.connections) < limit and len(self.tasks) < limit):
            super().on_headers_complete()
            return
        # over the limit: uvicorn would run its own 503 app, without the security headers;
        # it runs this one instead (uvicorn's checks see no limit for this one request)
        app, self.app, self.limit_concurrency = self.app, _service_unavailable, None
        try:
            super().on_headers_complete()
        finally:
            self.app, self.limit_concurrency = app, limit
        self.logger.warning("Exceeded concurrency limit.")

    def send_400_response(self, msg: str) -> None:
        """uvicorn's 400 for a request it cannot parse, with the security headers."""
        body = msg.encode("ascii", "replace")
        content = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([b"content-type: text/plain; charset=utf-8\r\n", PROTOCOL_HEADER_LINES,
                        b"content-length: ", str(len(body)).encode(), b"\r\nconnection: close\r\n\r\n",
                        body])
        self.transport.write(b"".join(content))
        self.transport.close()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes, self._tail = True, 0, b""

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        """The head did not arrive in time: close (a silent or slow client holds no
        connection for ever)."""
        self._head_timer = None
        if self._in_head and not self._refused:
            self._refused = True
            self.transport.close()

    def _refuse_head(self) -> None:
        """Answer 431 and close: the rest of the head is never read."""
        self._refused = True
        self.transport.write(b"".join([
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n",
            PROTOCOL_HEADER_LINES,
            b"content-length: ", str(len(_TOO_LARGE)).encode(), b"\r\nconnection: close\r\n\r\n", _TOO_LARGE]))
        self.transport.close()


_UNAVAILABLE = b'{"detail":"the server is at its limit of connections (serve --max-connections); try again"}'


async def _service_unavailable(scope: Any, receive: Any, send: Any) -> None:
    """uvicorn's 503 over the connection limit, as JSON and with the security headers."""
    lines = [line.split(b": ", 1) for line in PROTOCOL_HEADER_LINES.split(b"\r\n") if line]
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(_UNAVAILABLE)).encode()),
                            (b"connection", b"close"), *((n, v) for n, v in lines)]})
    await send({"type": "http.response.body", "body": _UNAVAILABLE, "more_body": False})
