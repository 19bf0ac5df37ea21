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
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


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
        super().on_headers_complete()

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
            b"content-length: ", str(len(_TOO_LARGE)).encode(), b"\r\nconnection: close\r\n\r\n", _TOO_LARGE]))
        self.transport.close()
