"""``wrk`` (Debian's package) against the hot routes of a server on 127.0.0.1: a closed-loop
cross-check of :mod:`_loadgen`.

wrk keeps ``connections`` requests in flight and sends the next one on a connection as soon
as the last answered, so its figures are the most the server answers per second with that
much concurrency, and latency percentiles that leave out the waiting of requests that were
never sent (coordinated omission): compare its throughput, not its tail, with the open-loop
steps. A Lua script rotates the request over the given customers (lookups) or bodies
(``/score``). Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"

_SCRIPT = """
wrk.method = "{method}"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Accept"] = "application/json"
wrk.headers["Content-Type"] = "application/json"
local items = {{
{items}
}}
local i = 0
request = function()
  i = i % #items + 1
  {request}
end
"""


def _lua_string(text: str) -> str:
    """A Lua long string holding ``text`` (a level of '=' that the text does not contain)."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse(text: str) -> dict[str, Any]:
    """Requests, errors, requests/s and latency percentiles (ms) from wrk's ``--latency`` report."""
    out: dict[str, Any] = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["throughput_rps"] = float(m.group(1))
    for pct, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M):
        out[f"p{pct}_ms"] = round(_ms(value, unit), 2)
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(g) for g in m.groups())
    out["errors"] = errors
    return out


def run_wrk(port: int, token: str, method: str, items: list[Any], seconds: float, *,
            connections: int = 16, threads: int = 1) -> dict[str, Any]:
    """Run wrk for ``seconds`` against ``/api/v1/score`` (``method`` POST, ``items`` the JSON
    bodies) or ``/api/v1/customers/{id}`` (GET, ``items`` the customer ids).

    Raises
    ------
    SystemExit
        When wrk is not installed (``apt-get install wrk``).
    """
    exe = shutil.which("wrk")
    if exe is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (or leave out --wrk)")
    if method == "POST":
        lua_items = ",\n".join(_lua_string(json.dumps(b, separators=(",", ":"))) for b in items)
        request = 'return wrk.format(nil, "/api/v1/score", nil, items[i])'
    else:
        lua_items = ",\n".join(_lua_string(f"/api/v1/customers/{c}") for c in items)
        request = "return wrk.format(nil, items[i])"
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "rotate.lua"
        script.write_text(_SCRIPT.format(method=method, token=token, items=lua_items, request=request))
        done = subprocess.run([exe, "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--latency",
                               "-s", str(script), f"http://{HOST}:{port}/"], capture_output=True, text=True,
                              timeout=seconds + 60)
    row = {"connections": connections, "seconds": seconds, **parse(done.stdout)}
    if done.returncode != 0 or "requests" not in row:
        row["wrk_error"] = (done.stderr or done.stdout)[-300:]
    return row
