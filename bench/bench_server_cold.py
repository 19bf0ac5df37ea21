"""The aggregate routes of ``segflow serve`` on a fresh copy of the store: first (cold) and
second (cached) answer of each, in process (FastAPI test client, no network), with the
process's CPU seconds per answer.

Every copy of the store (at start and after each ingest or run) computes or reads its
aggregates once and caches them (docs/server.md, "Aggregates"); the background warm-up
covers the first pages only (latest sizes and matrix of every scheme). This measures what a
route costs the first time, warm-up off, one route after another, in this order::

    python bench/bench_server_cold.py PROJECT_DIR [--scheme rfm] [--out FILE]

Creates an analyst token in PROJECT_DIR's store (use a copy). Prints one JSON object per
route (``route``, ``status``, ``cold_s``, ``cold_cpu_s``, ``cached_ms``) and the 1-minute
load average before and after, to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
import warnings
from pathlib import Path


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("project", type=Path)
    ap.add_argument("--scheme", default="rfm")
    ap.add_argument("--out", type=Path, default=None, help="Also write the results here (JSON).")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

    from segflow.project import Project
    from segflow.server import ServerSettings, create_app
    from segflow.server._tokens import create_token

    with Project.open(args.project) as p, p.store.transaction() as con:
        token = create_token(con, "analyst", name="bench cold routes")[0]
    started = time.perf_counter()
    app = create_app(ServerSettings(project_dir=args.project, allowed_hosts=["testserver"], poll_seconds=0,
                                    warm=False))
    load_before = os.getloadavg()[0]
    out = []
    with TestClient(app, base_url="https://testserver", headers={"authorization": f"Bearer {token}"}) as c:
        ready = time.perf_counter() - started
        s = args.scheme

        def timed(route: str) -> dict:
            t, cpu = time.perf_counter(), _cpu()
            r = c.get(route)
            cold, cold_cpu = time.perf_counter() - t, _cpu() - cpu
            t = time.perf_counter()
            c.get(route)
            row = {"route": route, "status": r.status_code, "cold_s": round(cold, 3), "cold_cpu_s": round(cold_cpu, 3),
                   "cached_ms": round((time.perf_counter() - t) * 1000, 2)}
            print(json.dumps(row), flush=True)
            out.append(row)
            return r.json() if r.status_code == 200 and route.startswith("/api/") else {}

        timed("/api/v1/schemes")
        dates = [d["snapshot_date"] for d in timed(f"/api/v1/snapshots/{s}")["data"]]
        timed(f"/api/v1/segments/{s}")
        timed(f"/api/v1/segments/{s}?snapshot={dates[0]}")
        timed(f"/api/v1/migration/{s}")
        timed(f"/api/v1/migration/{s}?from_date={dates[0]}&to_date={dates[-1]}")
        timed(f"/api/v1/forecasts/{s}")
        timed(f"/api/v1/profiles/{s}")
        campaigns = timed("/api/v1/campaigns")["data"]
        if campaigns:
            timed(f"/api/v1/campaigns/{campaigns[0]['campaign_id']}?scheme=lifecycle")
        timed("/")
    summary = {"copy_ready_s": round(ready, 1), "load_1min_before": load_before, "load_1min_after": os.getloadavg()[0]}
    print(json.dumps(summary))
    if args.out:
        args.out.write_text(json.dumps({"routes": out, **summary}, indent=1))


if __name__ == "__main__":
    main()
