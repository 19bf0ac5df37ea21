"""Load test of ``segflow serve`` on 127.0.0.1 (bounded: a few seconds per step).

Starts ``segflow serve`` on a free loopback port for an existing project (e.g. one made by
``segflow demo -o DIR --customers N``), creates an analyst token, and measures:

1. customer lookup, segment sizes and the migration matrix with 8 and 32 concurrent
   clients (closed loop, ``--seconds`` each) while ``segflow ingest --force`` runs in a loop
   on the same project (the server reads a copy of the store, so ingest is not locked out;
   ``--no-ingest`` skips it);
2. ``POST /api/v1/score`` (one client in sequence: the single-request latency) and, open
   loop, ``POST /api/v1/score`` and ``GET /api/v1/customers/{id}`` at fixed arrival rates
   (``--rates``, default 100 and 500 requests/s): requests leave on schedule whatever the
   answers (one asyncio event loop, httpx), and latency is measured from the *scheduled*
   send time, so a server that falls behind shows it (no coordinated omission). Each score
   request posts the history of one of ``--customers`` stored customers (transactions,
   events, survey answers, campaign exposures and attributes before the latest snapshot);
   lookups cycle over ``--lookup-customers`` stored customers (default 5,000, a random
   sample);
3. with ``--wrk SECONDS``, a cross-check by ``wrk`` (closed loop: the most the server answers
   with 16 connections, and wrk's own latency percentiles; :mod:`_wrk`).

Prints p50/p99 latency (ms), throughput (answers/s) and errors per step, and writes them
to ``--out`` (default ``bench/results/server.json``). Usage::

    python bench/bench_server.py PROJECT_DIR --skip-closed --no-ingest --rates 100 500 --workers 2

Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
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


def _server_pids(pid: int) -> list[int]:
    pids = [pid]
    try:
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    return pids


def _server_rss_mib(pid: int) -> float:
    """Resident memory of the server and its worker processes (MiB, Linux /proc)."""
    total = 0
    for p in _server_pids(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children so far (Linux /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _settle(base: str, token: str, limit: float = 30.0) -> float:
    """Wait until the server answers a health check within 50 ms (the queue of the previous
    step has drained), at most ``limit`` seconds; returns the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        t = time.perf_counter()
        try:
            ok = httpx.get(f"{base}/api/v1/whoami", headers={"authorization": f"Bearer {token}"}, timeout=5).status_code == 200
        except httpx.HTTPError:
            ok = False
        if ok and time.perf_counter() - t < 0.05:
            break
        time.sleep(0.5)
    return round(time.perf_counter() - t0, 1)


def open_loop_step(port: int, server_pid: int, requests: list[bytes], rate: float, seconds: float,
                   token: str) -> dict[str, object]:
    """One open-loop step (:func:`_loadgen.open_loop`) once the server is idle, with the
    server's CPU use beside the generator's, and the machine's load average before it."""
    from _loadgen import open_loop

    settled = _settle(f"http://{HOST}:{port}", token)
    load = os.getloadavg()[0]
    cpu = _process_cpu(server_pid)
    row = open_loop(port, requests, rate, seconds)
    row["server_cpu_seconds"] = round(_process_cpu(server_pid) - cpu, 2)
    row["server_cpu_ms_per_answer"] = round(1000 * row["server_cpu_seconds"] / max(1, row["answered_ok"]), 2)
    row["server_rss_mib"] = _server_rss_mib(server_pid)
    row["load_average_1m_before"] = round(load, 2)
    row["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    row["settle_seconds_before"] = settled
    return row


def _lookup_files(project: Path) -> dict[str, object] | None:
    """What the served copy's lookup files hold (segflow.server._lookup), their size and build time."""
    for folder in (project / ".segflow.duckdb.serve").glob("replica-*.lookup"):
        try:
            meta = json.loads((folder / "index.json").read_text())
        except (OSError, ValueError):
            continue
        size = sum(f.stat().st_size for f in folder.iterdir())
        return {"customers": meta.get("customers"), "build_seconds": meta.get("seconds"),
                "rows": {k: v["rows"] for k, v in meta.get("parts", {}).items()}, "mib": round(size / 2**20, 1)}
    return None


def _bodies(con: duckdb.DuckDBPyConnection, ids: list[str], snap: object) -> list[dict]:
    """Score requests: each customer's rows before the snapshot, as an API client sends them."""
    con.execute("CREATE TEMP TABLE _ids AS SELECT unnest(?) AS customer_id", [ids])
    by: dict[str, dict] = {i: {"customer_id": i, "transactions": [], "events": [], "survey_responses": [],
                               "campaign_exposures": [], "attributes": {}} for i in ids}
    for cid, ts, amount, qty, cat, ch, promo, ret, tid, pid in con.execute(
            "SELECT customer_id, ts, amount, quantity, category, channel, promo_code, is_return, transaction_id, "
            "product_id FROM transactions JOIN _ids USING (customer_id) WHERE ts < ? AND amount IS NOT NULL "
            "ORDER BY ts", [snap]).fetchall():
        by[cid]["transactions"].append({"ts": ts.isoformat(), "amount": amount, "quantity": qty, "category": cat,
                                        "channel": ch, "promo_code": promo, "is_return": bool(ret),
                                        "transaction_id": tid, "product_id": pid})
    for cid, ts, kind, session in con.execute(
            "SELECT customer_id, ts, event_type, session_id FROM events JOIN _ids USING (customer_id) "
            "WHERE ts < ? AND event_type IS NOT NULL", [snap]).fetchall():
        by[cid]["events"].append({"ts": ts.isoformat(), "event_type": kind, "session_id": session})
    for cid, ts, q, a in con.execute(
            "SELECT customer_id, ts, question, answer FROM survey_responses JOIN _ids USING (customer_id) "
            "WHERE ts < ? AND question IS NOT NULL AND answer IS NOT NULL", [snap]).fetchall():
        by[cid]["survey_responses"].append({"ts": ts.isoformat(), "question": q, "answer": str(a)})
    for cid, ts, camp, kind, arm in con.execute(
            "SELECT customer_id, ts, campaign_id, exposure_type, arm FROM campaign_exposures "
            "JOIN _ids USING (customer_id) WHERE ts < ? AND campaign_id IS NOT NULL", [snap]).fetchall():
        by[cid]["campaign_exposures"].append({"ts": ts.isoformat(), "campaign_id": camp, "exposure_type": kind,
                                              "arm": arm})
    for cid, created, region in con.execute(
            "SELECT customer_id, min(created_at), min(region) FROM customers JOIN _ids USING (customer_id) "
            "GROUP BY 1").fetchall():
        by[cid]["attributes"] = {k: v for k, v in (("created_at", created and created.isoformat()),
                                                   ("region", region)) if v is not None}
    return [b for b in by.values() if b["transactions"]]


def score_sequential(base: str, token: str, bodies: list[dict], seconds: float) -> dict[str, float]:
    """One client scoring one customer after another: the single-request latency."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    with httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=30) as c:
        i = 0
        while time.perf_counter() < stop:
            t = time.perf_counter()
            ok = c.post("/api/v1/score", json=bodies[i % len(bodies)]).status_code == 200
            i += 1
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
    ap.add_argument("--rates", type=float, nargs="+", default=[100.0, 500.0], help="Open-loop rates (requests/s).")
    ap.add_argument("--open-seconds", type=float, default=10.0, help="Length of each open-loop step.")
    ap.add_argument("--customers", type=int, default=200, help="Distinct customers posted to /score.")
    ap.add_argument("--skip-closed", action="store_true", help="Only the score and open-loop steps.")
    ap.add_argument("--workers", type=int, default=1, help="`segflow serve --workers` (processes).")
    ap.add_argument("--steps", nargs="+", default=["score", "customer lookup"], help="Open-loop steps to run.")
    ap.add_argument("--lookup-customers", type=int, default=5000,
                    help="Distinct stored customers the lookups cycle over (random sample).")
    ap.add_argument("--repeat", type=int, default=1, help="Run every open-loop step this many times (in turn).")
    ap.add_argument("--wrk", type=float, default=0.0, metavar="SECONDS",
                    help="Also run wrk (closed loop, 16 connections, one thread) on each route for this long.")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "server.json",
                    help="Where the figures go (JSON).")
    args = ap.parse_args()
    project = args.project
    env = {**os.environ}
    token = subprocess.run([*SEGFLOW, "tokens", "create", "--role", "analyst", "--name", "bench", "--expires", "2h",
                            "-p", str(project)], check=True, capture_output=True, text=True, env=env).stdout.strip()
    store = project / "segflow.duckdb"
    con = duckdb.connect(str(store), read_only=True)
    snap = con.execute("SELECT max(snapshot_date) FROM customer_features").fetchone()[0]
    ids = [r[0] for r in con.execute(
        "SELECT customer_id FROM customer_features WHERE snapshot_date = ? ORDER BY hash(customer_id) LIMIT ?",
        [snap, max(args.lookup_customers, args.customers)]).fetchall()]
    schemes = [r[0] for r in con.execute("SELECT DISTINCT scheme FROM segment_snapshots").fetchall()]
    n_customers = con.execute("SELECT count(*) FROM customers").fetchone()[0]
    bodies = _bodies(con, ids[: args.customers], snap)
    con.close()
    sizes = sorted(len(b["transactions"]) for b in bodies)
    print(json.dumps({"customers": n_customers, "score_bodies": len(bodies),
                      "transactions_per_body_median": sizes[len(sizes) // 2]}), flush=True)

    port = _free_port()
    base = f"http://{HOST}:{port}"
    server = subprocess.Popen([*SEGFLOW, "serve", "-p", str(project), "--host", HOST, "--port", str(port),
                               "--pool-size", "8", "--workers", str(args.workers)], env=env, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # its own process group: workers stop with it
    ingest: subprocess.Popen | None = None
    results: dict[str, object] = {"customers": n_customers, "cpu_count": os.cpu_count(), "snapshot": str(snap),
                                  "score_bodies": len(bodies), "load_average_before": os.getloadavg(), "steps": []}
    launched = time.time()
    try:
        deadline = time.time() + 1800  # a 1M-customer store is copied and indexed first
        while True:
            try:
                if httpx.get(f"{base}/api/v1/health", headers={"authorization": f"Bearer {token}"}).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.3)
        started = time.time()
        results["server_answering_seconds"] = round(started - launched, 1)  # copy, indexes, lookup files
        results["lookup_files"] = _lookup_files(project)
        print(json.dumps({"server_answering_seconds": results["server_answering_seconds"],
                          "lookup_files": results["lookup_files"]}), flush=True)
        while not httpx.get(f"{base}/api/v1/health", headers={"authorization": f"Bearer {token}"}).json().get("warm"):
            time.sleep(1)  # the first copy is served at once and warmed in the background
        warm = httpx.post(f"{base}/api/v1/score", json=bodies[0], timeout=1800,
                          headers={"authorization": f"Bearer {token}"})
        if warm.status_code != 200:
            raise SystemExit(f"score warm-up failed: {warm.status_code} {warm.text[:300]}")
        results["scorer_ready_seconds"] = round(time.time() - started, 1)
        print(json.dumps({"scorer_ready_seconds": results["scorer_ready_seconds"],
                          "warm_up_notes": warm.json()["notes"]}), flush=True)
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
        for name, urls in ({} if args.skip_closed else steps).items():
            for clients in (8, 32):
                row = {"step": name, "clients": clients, **closed_loop(base, token, urls, clients, args.seconds)}
                print(json.dumps(row), flush=True)
                results["steps"].append(row)
        stop_ingest.set()
        if runner:
            runner.join()
        results["ingests_during_reads"] = ingests
        print(json.dumps({"ingests_during_reads": ingests}), flush=True)
        row = {"step": "score", "clients": 1, **score_sequential(base, token, bodies, args.seconds)}
        print(json.dumps(row), flush=True)
        results["steps"].append(row)
        from _loadgen import encode

        auth = {"Authorization": f"Bearer {token}"}
        score_requests = [encode("POST", "/api/v1/score", b, auth, port) for b in bodies]
        lookup_requests = [encode("GET", f"/api/v1/customers/{i}", None, auth, port) for i in ids]
        for repeat in range(args.repeat):
            for name, requests in (("score", score_requests), ("customer lookup", lookup_requests)):
                if name not in args.steps:
                    continue
                for rate in args.rates:
                    row = {"step": name, "clients": "open", "workers": args.workers, "repeat": repeat + 1,
                           **open_loop_step(port, server.pid, requests, rate, args.open_seconds, token)}
                    print(json.dumps(row), flush=True)
                    results["steps"].append(row)
        if args.wrk:
            from _wrk import run_wrk

            for name, method, items in (("score", "POST", bodies), ("customer lookup", "GET", ids)):
                if name in args.steps:
                    _settle(base, token)
                    cpu, load = _process_cpu(server.pid), os.getloadavg()[0]
                    row = {"step": name, "clients": "wrk closed loop", "workers": args.workers,
                           **run_wrk(port, token, method, items, args.wrk)}
                    row["server_cpu_ms_per_answer"] = round(
                        1000 * (_process_cpu(server.pid) - cpu) / max(1, row.get("requests") or 1), 2)
                    row["load_average_1m_before"] = round(load, 2)
                    print(json.dumps(row), flush=True)
                    results["steps"].append(row)
    finally:
        import signal

        os.killpg(server.pid, signal.SIGTERM)  # the server and its worker processes
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    results["load_average_after"] = os.getloadavg()
    out = args.out
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
