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


class CoalescingHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
