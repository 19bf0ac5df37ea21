"""The coalescing transport of `segflow serve` (segflow.server._protocol): one write per
event-loop step, same bytes, and a real server answering through it on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import pytest

uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("httptools")


class _Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_writes_of_one_loop_step_leave_as_one():
    from segflow.server._protocol import CoalescingTransport

    async def run() -> _Recorder:
        real = _Recorder()
        t = CoalescingTransport(real, asyncio.get_running_loop())
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"body")
        assert real.writes == [], "nothing sent within the step"
        await asyncio.sleep(0)
        assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        t.write(b"next")
        await asyncio.sleep(0)
        t.write(b"last")
        t.close()  # sends what is pending first
        assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"next", b"last"] and real.closed
        assert t.get_extra_info("peername") == "info:peername"
        return real

    asyncio.run(run())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_on_the_coalescing_protocol_answers_keep_alive_and_streams():
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = (await receive())["body"]
        if scope["path"] == "/stream":  # three body messages, one awaited pause between
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]})
            await send({"type": "http.response.body", "body": b"ab", "more_body": True})
            await asyncio.sleep(0.01)
            await send({"type": "http.response.body", "body": b"cd", "more_body": True})
            await send({"type": "http.response.body", "body": b"ef"})
            return
        answer = b"echo:" + body
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(answer)).encode())]})
        await send({"type": "http.response.body", "body": answer})

    with _serving(app) as port, socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        stream = sock.makefile("rb")
        for i in range(3):  # keep-alive: three requests on one connection
            payload = f"x{i}".encode()
            sock.sendall(b"POST /e HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n" + payload)
            assert stream.readline() == b"HTTP/1.1 200 OK\r\n"
            headers = {}
            while (line := stream.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            assert stream.read(int(headers["content-length"])) == b"echo:" + payload
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        rest = stream.read()
        assert rest.startswith(b"HTTP/1.1 200 OK\r\n") and rest.endswith(b"\r\n\r\nabcdef")


async def _count_body(scope, receive, send):
    """An app answering the size of the request's body."""
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    answer = str(size).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})


@contextlib.contextmanager
def _serving(app, *, lifespan: str = "off", **config):
    """A uvicorn server on the coalescing protocol on 127.0.0.1, in a thread: its port
    (``lifespan="on"`` for segflow's app, which opens its copy of the store at start-up;
    ``config``: more of uvicorn's Config)."""
    from segflow.server._protocol import CoalescingHttpTools

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=CoalescingHttpTools,
                                           log_level="critical", lifespan=lifespan, **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30  # an app's start-up on a busy machine
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "the server did not start within 30 s"
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_request_head_beyond_its_bound_is_refused_431_and_bodies_are_not_counted():
    """A header growing past MAX_HEAD_BYTES (uvicorn's httptools protocol read any size: 80 MB
    held in memory, then answered) gets 431 once the head passes the bound, and the connection closes;
    a head just under the bound and a body of 1 MiB after a small head are answered."""
    from segflow.server._protocol import MAX_HEAD_BYTES

    with _serving(_count_body) as port:

        def exchange(head: bytes, body: bytes = b"") -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(head + body)
                return sock.makefile("rb").read()

        start = b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        # a head that goes on past the bound (the client stops there, so that the server has
        # read all it was sent and closes without a reset)
        big = exchange(start + b"X-Big: " + b"a" * (MAX_HEAD_BYTES + 1000))
        assert big.startswith(b"HTTP/1.1 431 ") and big.endswith(b"larger than 64 KiB\"}"), big[:80]
        filler = MAX_HEAD_BYTES - len(start) - 200
        near = exchange(start + b"X-Big: " + b"a" * filler + b"\r\nContent-Length: 0\r\n\r\n")
        assert near.startswith(b"HTTP/1.1 200 OK") and near.endswith(b"\r\n\r\n0"), near[:80]
        body = exchange(start + f"Content-Length: {2**20}\r\n\r\n".encode(), b"b" * 2**20)
        assert body.startswith(b"HTTP/1.1 200 OK") and body.endswith(f"\r\n\r\n{2**20}".encode()), body[:80]


def test_a_head_that_does_not_arrive_in_time_closes_the_connection(monkeypatch):
    """A connection that sends nothing, or part of a head, is closed HEAD_SECONDS after it
    opened or the head began (uvicorn kept both open for ever: any number of them, without a
    token); a slow body after a complete head, and a second request on a kept-alive
    connection, are answered."""
    from segflow.server import _protocol

    monkeypatch.setattr(_protocol, "HEAD_SECONDS", 0.5)
    with _serving(_count_body) as port:
        silent = socket.create_connection(("127.0.0.1", port), timeout=5)
        partial = socket.create_connection(("127.0.0.1", port), timeout=5)
        partial.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        began = time.monotonic()
        assert silent.recv(10) == b"" and partial.recv(10) == b""  # closed by the server
        assert time.monotonic() - began < 4
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            stream = sock.makefile("rb")
            for _ in range(2):  # a slow body, twice on one connection, each past HEAD_SECONDS
                sock.sendall(b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n\r\nab")
                time.sleep(0.8)
                sock.sendall(b"cd")
                assert stream.readline() == b"HTTP/1.1 200 OK\r\n"
                while stream.readline() != b"\r\n":
                    pass
                assert stream.read(1) == b"4"
        silent.close()
        partial.close()


def _head_of(answer: bytes) -> tuple[bytes, dict[str, str]]:
    """An answer's status line and its headers (lower-case names)."""
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    return head[0].encode(), dict((n.strip().lower(), v.strip()) for n, _, v in (h.partition(":") for h in head[1:]))


def _assert_security_headers(headers: dict[str, str]) -> None:
    from segflow.server._security import _FIXED

    for name, value in _FIXED:
        assert headers[name.decode()] == value.decode(), (name, headers)
    assert headers["content-security-policy"].startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"


def test_the_protocols_own_answers_431_400_and_503_carry_the_security_headers():
    """The 431 of an oversized head, uvicorn's 400 for a request it cannot parse and its 503
    over limit_concurrency (`serve --max-connections`) were sent without nosniff, framing
    and CSP headers; they carry them now (and an app's answer keeps its own headers)."""
    from segflow.server._protocol import MAX_HEAD_BYTES

    def exchange(port: int, data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(data)
            return sock.makefile("rb").read()

    with _serving(_count_body, limit_concurrency=2) as port:
        status, headers = _head_of(exchange(port, b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (MAX_HEAD_BYTES + 10)))
        assert status.startswith(b"HTTP/1.1 431 ")
        _assert_security_headers(headers)
        status, headers = _head_of(exchange(port, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"))
        assert status == b"HTTP/1.1 400 Bad Request" and headers["connection"] == "close"
        _assert_security_headers(headers)
        plain = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        status, headers = _head_of(exchange(port, plain))  # one connection: under the limit
        assert status == b"HTTP/1.1 200 OK" and "x-frame-options" not in headers
        with socket.create_connection(("127.0.0.1", port), timeout=10) as held:  # the 2nd open
            held.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert held.recv(12) == b"HTTP/1.1 200"  # the server has it (it counts connections)
            answer = exchange(port, plain)
        status, headers = _head_of(answer)
        assert status == b"HTTP/1.1 503 Service Unavailable", answer[:80]
        assert answer.endswith(b"(serve --max-connections); try again\"}")
        _assert_security_headers(headers)
