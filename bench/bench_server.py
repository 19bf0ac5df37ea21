"""Load test of ``segflow serve`` on 127.0.0.1 (bounded: a few seconds per step).

Starts ``segflow serve`` on a free loopback port for an existing project (e.g. one made by
``segflow demo -o DIR --customers N``), creates an analyst token, and measures:

1. customer lookup, segment sizes and the migration matrix with 8 and 32 concurrent
   clients (closed loop, ``--seconds`` each) while ``segflow ingest --force`` runs in a loop
   on the same project (the server reads a copy of the store, so ingest is not locked out);
2. ``POST /api/v1/score`` at a fixed arrival rate (open loop: 100 and 500 requests/s).

Prints p50/p99 latency (ms), throughput (requests/s) and errors per step, and writes them
to ``bench/results/server.json``. Usage::

    python bench/bench_server.py PROJECT_DIR [--seconds 8]

Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import httpx
import numpy as np

HOST = "127.0.0.1"
SEGFLOW = [str(Path(sys.executable).parent / "segflow")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _stats(latencies: list[float], errors: int, seconds: float) -> dict[str, float]:
    lat = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {"requests": len(latencies), "errors": errors, "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1), "throughput_rps": round(len(latencies) / seconds, 1)}


def closed_loop(base: str, token: str, urls: list[str], clients: int, seconds: float) -> dict[str, float]:
    """``clients`` threads each sending the next request as soon as the last one answered."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=30) as c:
            while time.perf_counter() < stop:
                url = rng.choice(urls)
                t = time.perf_counter()
                try:
                    ok = c.get(url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                dt = time.perf_counter() - t
                with lock:
                    if ok:
                        latencies.append(dt)
                    else:
                        errors[0] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _stats(latencies, errors[0], time.perf_counter() - start)


def open_loop(base: str, token: str, body: dict, rate: float, seconds: float) -> dict[str, float]:
    """Requests sent at ``rate`` per second whatever the answers (a pool of 64 senders);
    an answer slower than 2 s counts as an error."""
    latencies: list[float] = []
    errors = [0]
    kinds: dict[str, int] = {}
    lock = threading.Lock()
    local = threading.local()

    def send() -> None:
        c = getattr(local, "c", None)
        if c is None:
            c = local.c = httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=2)
        t = time.perf_counter()
        try:
            status = c.post("/api/v1/score", json=body).status_code
        except httpx.TimeoutException:
            status = "timeout"
        except httpx.HTTPError:
            status = "connection"
        dt = time.perf_counter() - t
        with lock:
            if status == 200:
                latencies.append(dt)
            else:
                errors[0] += 1
                kinds[str(status)] = kinds.get(str(status), 0) + 1

    n = int(rate * seconds)
    start = time.perf_counter()
    with cf.ThreadPoolExecutor(64) as pool:
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send)
    elapsed = time.perf_counter() - start
    out = _stats(latencies, errors[0], elapsed)
    out["offered_rps"] = rate
    out["error_kinds"] = kinds
    return out


def score_sequential(base: str, token: str, body: dict, seconds: float) -> dict[str, float]:
    """One client scoring one customer after another: the single-request latency."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    with httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=30) as c:
        while time.perf_counter() < stop:
            t = time.perf_counter()
            ok = c.post("/api/v1/score", json=body).status_code == 200
            if ok:
                latencies.append(time.perf_counter() - t)
            else:
                errors += 1
    return _stats(latencies, errors, seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("project", type=Path)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--no-ingest", action="store_true", help="Do not run ingest during the lookups.")
    args = ap.parse_args()
    project = args.project
    env = {**os.environ}
    token = subprocess.run([*SEGFLOW, "tokens", "create", "--role", "analyst", "--name", "bench", "--expires", "2h",
                            "-p", str(project)], check=True, capture_output=True, text=True, env=env).stdout.strip()
    store = project / "segflow.duckdb"
    con = duckdb.connect(str(store), read_only=True)
    ids = [r[0] for r in con.execute("SELECT customer_id FROM segment_assignments USING SAMPLE 500 ROWS").fetchall()]
    schemes = [r[0] for r in con.execute("SELECT DISTINCT scheme FROM segment_assignments").fetchall()]
    n_customers = con.execute("SELECT count(*) FROM customers").fetchone()[0]
    snap = con.execute("SELECT max(snapshot_date) FROM customer_features").fetchone()[0]
    tx = con.execute("SELECT ts, amount, category, channel FROM transactions WHERE customer_id = ? AND ts < ? "
                     "ORDER BY ts", [ids[0], snap]).fetchall()
    con.close()
    body = {"customer_id": ids[0], "transactions": [
        {"ts": ts.isoformat(), "amount": a, "category": c, "channel": ch} for ts, a, c, ch in tx]}

    port = _free_port()
    base = f"http://{HOST}:{port}"
    server = subprocess.Popen([*SEGFLOW, "serve", "-p", str(project), "--host", HOST, "--port", str(port),
                               "--pool-size", "8"], env=env, stderr=subprocess.DEVNULL)
    ingest: subprocess.Popen | None = None
    results: dict[str, object] = {"customers": n_customers, "cpu_count": os.cpu_count(), "steps": []}
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"{base}/api/v1/health", headers={"authorization": f"Bearer {token}"}).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.3)
        stop_ingest = threading.Event()
        ingests = {"ok": 0, "failed": 0}

        def ingest_loop() -> None:
            nonlocal ingest
            while not stop_ingest.is_set():
                ingest = subprocess.Popen([*SEGFLOW, "ingest", "--force", "-p", str(project)], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                ingests["ok" if ingest.wait() == 0 else "failed"] += 1

        runner = None
        if not args.no_ingest:
            runner = threading.Thread(target=ingest_loop)
            runner.start()
        steps = {
            "customer lookup": [f"/api/v1/customers/{i}" for i in ids],
            "segment sizes": [f"/api/v1/segments/{s}" for s in schemes],
            "migration matrix": [f"/api/v1/migration/{s}" for s in schemes],
        }
        for name, urls in steps.items():
            for clients in (8, 32):
                row = {"step": name, "clients": clients, **closed_loop(base, token, urls, clients, args.seconds)}
                print(json.dumps(row), flush=True)
                results["steps"].append(row)
        stop_ingest.set()
        if runner:
            runner.join()
        results["ingests_during_reads"] = ingests
        print(json.dumps({"ingests_during_reads": ingests}), flush=True)
        row = {"step": "score", "clients": 1, **score_sequential(base, token, body, args.seconds)}
        print(json.dumps(row), flush=True)
        results["steps"].append(row)
        for rate in (100, 500):
            row = {"step": "score", **open_loop(base, token, body, rate, min(args.seconds, 3.0))}
            print(json.dumps(row), flush=True)
            results["steps"].append(row)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    out = Path(__file__).parent / "results" / "server.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
