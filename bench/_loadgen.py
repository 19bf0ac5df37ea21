"""An open-loop HTTP/1.1 load generator for 127.0.0.1, light enough to share the machine.

Requests leave on a fixed schedule (request i at ``start + i / rate``) whatever the answers,
and each latency runs from that *scheduled* time to the last byte of the answer, so a server
that falls behind shows its queue (no coordinated omission). One asyncio event loop; each
request is pre-encoded bytes written on a keep-alive connection taken from a pool (a new
connection is opened when none is idle, up to ``max_connections``; beyond that a request
waits for one, and the wait counts in its latency). Answers are read by ``Content-Length``
(what uvicorn sends for JSON); no TLS, no chunked bodies, no redirects.

Why not httpx: its per-request cost in Python (about 1 ms of CPU here) would take half a
core at 500 requests/s from the server being measured on a 2-core machine; this client
costs a few tens of microseconds per request. Its own CPU time is reported with the results
(``generator_cpu_seconds``).
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

HOST = "127.0.0.1"


def encode(method: str, path: str, body: Any, headers: dict[str, str], port: int) -> bytes:
    """One request as bytes (JSON body when ``body`` is not None)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Accept: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    payload = b""
    if body is not None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer


async def _exchange(conn: _Conn, request: bytes) -> tuple[int, bool]:
    """Send one request, read its answer; (status, connection still usable)."""
    conn.writer.write(request)
    head = await conn.reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, keep = None, True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
    if length is None:
        raise ValueError("answer without Content-Length")
    await conn.reader.readexactly(length)
    return status, keep


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def open_loop(port: int, requests: Sequence[bytes], rate: float, seconds: float, *,
              timeout: float = 2.0, max_connections: int = 256) -> dict[str, Any]:
    """Send ``rate`` requests/s for ``seconds`` to 127.0.0.1:``port`` (``requests`` cycled).

    Returns requests answered 200, errors (other statuses, timeouts after ``timeout`` s,
    connection failures: counted by kind), p50/p90/p99/max latency in ms from the scheduled
    send time, the achieved throughput (answers per second of the step) and the generator's
    own CPU seconds (user + system of this process during the step).
    """

    async def run() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        idle: deque[_Conn] = deque()
        opened = [0]
        slots = asyncio.Semaphore(max_connections)
        latencies: list[float] = []
        errors: dict[str, int] = {}
        n = int(rate * seconds)
        start = loop.time() + 0.05

        async def one(i: int, due: float) -> None:
            async with slots:
                conn = idle.pop() if idle else None
                try:
                    if conn is None:
                        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
                        conn = _Conn(reader, writer)
                        opened[0] += 1
                    try:
                        status, keep = await asyncio.wait_for(_exchange(conn, requests[i % len(requests)]), timeout)
                    except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
                        # an idle keep-alive connection the server had closed (uvicorn: after 5 s):
                        # what any HTTP client does, send once more on a new connection
                        if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                            raise
                        conn.writer.close()
                        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
                        conn = _Conn(reader, writer)
                        opened[0] += 1
                        status, keep = await asyncio.wait_for(_exchange(conn, requests[i % len(requests)]), timeout)
                except TimeoutError:
                    errors["timeout"] = errors.get("timeout", 0) + 1
                    if conn is not None:
                        conn.writer.close()
                    return
                except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    if conn is not None:
                        conn.writer.close()
                    return
                done = loop.time()
                if keep:
                    idle.append(conn)
                else:
                    conn.writer.close()
                if status == 200:
                    latencies.append(done - due)
                else:
                    errors[str(status)] = errors.get(str(status), 0) + 1

        tasks = []
        i = 0
        while i < n:
            now = loop.time()
            while i < n and start + i / rate <= now:  # everything due is sent now
                tasks.append(asyncio.ensure_future(one(i, start + i / rate)))
                i += 1
            if i < n:
                await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
        await asyncio.gather(*tasks)
        elapsed = loop.time() - start
        while idle:
            idle.pop().writer.close()
        ms = [v * 1000 for v in latencies]
        return {"offered_rps": rate, "requests": n, "answered_ok": len(latencies),
                "errors": sum(errors.values()), "error_kinds": errors,
                "p50_ms": round(_percentile(ms, 50), 2), "p90_ms": round(_percentile(ms, 90), 2),
                "p99_ms": round(_percentile(ms, 99), 2), "max_ms": round(max(ms), 2) if ms else float("nan"),
                "throughput_rps": round(len(latencies) / elapsed, 1), "connections_opened": opened[0]}

    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter()
    out = asyncio.run(run())
    after = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - wall
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out["generator_cpu_seconds"] = round(cpu, 2)
    out["generator_cpu_share_of_one_core"] = round(cpu / wall, 2)
    return out
