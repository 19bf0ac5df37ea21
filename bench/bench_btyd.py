"""Benchmark: BTYD summary + BG/NBD fit, segflow vs lifetimes vs PyMC-Marketing (MAP).

Usage::

    nice python bench/bench_btyd.py --sizes 1000000 10000000 [--peers-venv /tmp/segflow-bench-peers]

Each tool runs in its own subprocess on the same Parquet file of synthetic transactions (a
BG/NBD population, daily timestamps, some same-day lines), so wall time and peak resident
memory (``ru_maxrss`` of the child) are measured alike. The peers run in a separate virtual
environment that this script creates on first use (``pip install lifetimes pymc-marketing``);
segflow runs in the current interpreter's environment. Also times the CDNOW fit (golden data).
Writes ``bench/results/btyd.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CAL_END = "2021-01-01"
START = np.datetime64("2019-01-01")


def make_transactions(n_tx: int, path: Path, seed: int = 0) -> dict:
    """Synthetic BG/NBD transaction log with about ``n_tx`` lines, written to Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_cust = max(1000, n_tx // 8)
    r, alpha, a, b = 0.8, 40.0, 0.8, 4.0  # per day: mean rate 0.02/day
    lam = rng.gamma(r, 1 / alpha, n_cust)
    p = rng.beta(a, b, n_cust)
    birth = rng.integers(0, 365, n_cust).astype(float)
    horizon = 730.0
    chunks_c, chunks_t = [np.arange(n_cust)], [birth.copy()]
    now = birth.copy()
    active = np.arange(n_cust)
    while active.size:
        now[active] += rng.exponential(1.0, active.size) / lam[active]
        ok = now[active] < horizon
        idx = active[ok]
        chunks_c.append(idx)
        chunks_t.append(now[idx].copy())
        active = idx[rng.random(idx.size) >= p[idx]]
    cust = np.concatenate(chunks_c)
    days = np.floor(np.concatenate(chunks_t))
    # top up to n_tx lines with extra same-day lines (baskets of several items)
    extra = max(0, n_tx - cust.size)
    pick = rng.integers(0, cust.size, extra)
    cust = np.concatenate([cust, cust[pick]])
    days = np.concatenate([days, days[pick]])
    secs = (days * 86400 + rng.integers(0, 86400, cust.size)).astype("int64")
    ts = START.astype("datetime64[s]") + secs.astype("timedelta64[s]")
    table = pa.table(
        {
            "customer_id": pa.array(np.char.add("c", cust.astype(str))),
            "ts": pa.array(ts.astype("datetime64[us]")),
            "amount": pa.array(np.round(rng.gamma(4.0, 10.0, cust.size), 2)),
        }
    )
    pq.write_table(table, path)
    return {"rows": table.num_rows, "customers": int(n_cust)}


SEGFLOW = """
import time, json, sys
t0 = time.perf_counter()
import ibis
from segflow.models import BetaGeoModel, btyd_summary, compress
ti = time.perf_counter()
con = ibis.duckdb.connect()
tx = con.read_parquet(sys.argv[1])
summary = btyd_summary(tx, calibration_end="{cal}", time_unit="D", warn=False)
triples = compress(summary)
t1 = time.perf_counter()
model = BetaGeoModel().fit(triples)
t2 = time.perf_counter()
print(json.dumps({{"import": ti - t0, "summary": t1 - ti, "fit": t2 - t1, "params": model.params_,
                  "ll": model.log_likelihood_, "customers": model.n_customers_,
                  "triples": len(triples)}}))
"""

LIFETIMES = """
import time, json, sys, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
import pandas as pd
from lifetimes import BetaGeoFitter
from lifetimes.utils import summary_data_from_transaction_data
ti = time.perf_counter()
df = pd.read_parquet(sys.argv[1])
df = df[df.ts < "{cal}"]
s = summary_data_from_transaction_data(df, "customer_id", "ts", observation_period_end=pd.Timestamp("{cal}") - pd.Timedelta(days=1), freq="D")
t1 = time.perf_counter()
m = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
t2 = time.perf_counter()
print(json.dumps({{"import": ti - t0, "summary": t1 - ti, "fit": t2 - t1, "params": {{k: float(v) for k, v in m.params_.items()}},
                  "ll": float(-m._negative_log_likelihood_ * len(s)) if hasattr(m, "_negative_log_likelihood_") else None,
                  "customers": len(s)}}))
"""

PYMC = """
import time, json, sys, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
import pandas as pd
from pymc_marketing.clv import BetaGeoModel
from pymc_marketing.clv.utils import rfm_summary
ti = time.perf_counter()
df = pd.read_parquet(sys.argv[1])
df = df[df.ts < "{cal}"]
s = rfm_summary(df, "customer_id", "ts", observation_period_end=pd.Timestamp("{cal}") - pd.Timedelta(days=1), time_unit="D")
t1 = time.perf_counter()
m = BetaGeoModel(data=s[["customer_id", "frequency", "recency", "T"]])
m.fit(method="map")
t2 = time.perf_counter()
post = getattr(m.fit_result, "posterior", m.fit_result)
params = {{k: float(post[k].values.ravel()[0]) for k in ("r", "alpha", "a", "b") if k in post}}
print(json.dumps({{"import": ti - t0, "summary": t1 - ti, "fit": t2 - t1, "params": params, "customers": len(s)}}))
"""


def run_measured(python: str, code: str, data: Path, timeout: float) -> dict:
    """Run a snippet in a child process: wall time, peak RSS (MB) and its JSON output.

    A small wrapper process starts the child and reads ``RUSAGE_CHILDREN.ru_maxrss``, which
    is then the peak resident memory of that one child.
    """
    wrapper = textwrap.dedent(
        """
        import os, subprocess, sys, time, json
        t = time.perf_counter()
        p = subprocess.Popen([sys.argv[1], "-c", sys.argv[2], sys.argv[3]],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = p.communicate()
        import resource
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(json.dumps({"rc": p.returncode, "out": out, "err": err[-2000:], "peak_mb": peak,
                          "wall": time.perf_counter() - t}))
        """
    )
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", wrapper, python, code, str(data)],
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s", "wall": time.perf_counter() - started}
    meta = json.loads(proc.stdout.strip().splitlines()[-1])
    result: dict = {"wall": meta["wall"], "peak_mb": meta["peak_mb"]}
    if meta["rc"] != 0:
        lines = [ln for ln in meta["err"].strip().splitlines() if ln.strip()]
        result["error"] = (lines or ["failed"])[-1][:300]
        return result
    result.update(json.loads(meta["out"].strip().splitlines()[-1]))
    return result


def ensure_peers(venv: Path) -> str:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "lifetimes", "pymc-marketing", "pyarrow"],
            check=True,
        )
    return str(python)


def versions(python: str) -> str:
    code = (
        "import importlib.metadata as m\n"
        "print(', '.join(f'{p} {m.version(p)}' for p in ('lifetimes','pymc-marketing','pymc','pandas')))"
    )
    return subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip()


def cdnow_fit_time() -> str:
    path = HERE.parent.parent / "shared" / "data" / "cdnow" / "CDNOW_sample.txt"
    if not path.exists():
        return "CDNOW data not found; skipped"
    code = f"""
import time, json, warnings
warnings.simplefilter("ignore")
import pandas as pd, ibis
from segflow.models import BetaGeoModel, ParetoNBDModel, btyd_summary, compress
df = pd.read_csv("{path}", sep=r"\\s+", header=None, names=["customer_id","s","date","n","amount"], dtype={{"customer_id": str, "date": str}})
df["ts"] = pd.to_datetime(df.date, format="%Y%m%d")
t0 = time.perf_counter()
s = btyd_summary(ibis.memtable(df[["customer_id","ts","amount"]]), calibration_end="1997-10-01", time_unit="W")
c = compress(s)
t1 = time.perf_counter()
m = BetaGeoModel().fit(c)
t2 = time.perf_counter()
p = ParetoNBDModel().fit(c)
t3 = time.perf_counter()
print(json.dumps({{"summary": t1-t0, "bgnbd": t2-t1, "pnbd": t3-t2, "ll": m.log_likelihood_}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        return f"failed: {out.stderr.strip().splitlines()[-1]}"
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return (
        f"CDNOW (2,357 customers, weekly): summary {r['summary']:.2f} s, BG/NBD fit "
        f"{r['bgnbd']:.2f} s (LL {r['ll']:.2f}), Pareto/NBD fit {r['pnbd']:.2f} s"
    )


def fmt(r: dict) -> tuple[str, ...]:
    if "error" in r:
        return ("—", "—", "—", "—", f"{r['wall']:.1f}", f"failed: {r['error']}")
    peak = f"{r['peak_mb']:.0f}" if r.get("peak_mb") else "?"
    params = ", ".join(f"{k}={v:.3g}" for k, v in r.get("params", {}).items())
    return (
        f"{r['import']:.2f}", f"{r['summary']:.2f}", f"{r['fit']:.2f}",
        f"{r['summary'] + r['fit']:.2f}", f"{r['wall']:.1f}", f"{peak} MB; {params}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--peers-venv", type=Path, default=Path("/tmp/segflow-bench-peers"))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/segflow-bench-btyd"))
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "btyd.md")
    parser.add_argument(
        "--rerun", nargs="*", default=None,
        help="Tools to run again (segflow, lifetimes, pymc); the others reuse cached results "
        "from <workdir>/results.json. Default: run everything.",
    )
    args = parser.parse_args()
    cache_path = args.workdir / "results.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    args.workdir.mkdir(parents=True, exist_ok=True)
    peers = None if args.no_peers else ensure_peers(args.peers_venv)
    lines = [
        "## BTYD: summary + BG/NBD fit (bench/bench_btyd.py)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs, "
        f"Python {platform.python_version()}. Peers: {versions(peers) if peers else 'not run'}.",
        "Data: synthetic BG/NBD population (daily unit, 2 years, acquisitions in year 1, "
        "same-day basket lines), Parquet. Calibration end 2021-01-01. Each tool runs in its own "
        "process, reading the same file; time includes reading, peak memory is the child's "
        "max RSS. Summary and fit are timed after the imports (summary includes reading the "
        "file). Peers run at their documented defaults: lifetimes "
        "`summary_data_from_transaction_data` + `BetaGeoFitter.fit`; PyMC-Marketing "
        "`rfm_summary` + `BetaGeoModel.fit(method=\"map\")`.",
        "",
        "| transactions | tool | imports s | summary s | fit s | summary + fit s | process wall s | peak memory; estimates |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for size in args.sizes:
        data = args.workdir / f"tx_{size}.parquet"
        if not data.exists():
            info = make_transactions(size, data)
            print(f"generated {data}: {info}", flush=True)
        tools = [("segflow", sys.executable, SEGFLOW)]
        if peers:
            tools += [("lifetimes", peers, LIFETIMES), ("pymc-marketing (MAP)", peers, PYMC)]
        runs = {}
        for name, python, code in tools:
            key = f"{size}/{name}"
            fresh = args.rerun is None or any(name.startswith(t) for t in args.rerun)
            if fresh or key not in cache:
                cache[key] = run_measured(python, code.format(cal=CAL_END), data, args.timeout)
                cache_path.write_text(json.dumps(cache, indent=1))
            runs[name] = cache[key]
            print(size, name, runs[name], flush=True)
        for name, r in runs.items():
            lines.append(f"| {size:,} | {name} | " + " | ".join(fmt(r)) + " |")
        ok = {k: v for k, v in runs.items() if "error" not in v and k != "segflow"}
        if ok and "error" not in runs["segflow"]:
            best = min(ok, key=lambda k: ok[k]["summary"] + ok[k]["fit"])
            ours = runs["segflow"]["summary"] + runs["segflow"]["fit"]
            theirs = ok[best]["summary"] + ok[best]["fit"]
            mem = (
                f"; peak memory {runs['segflow']['peak_mb']:.0f} MB vs {ok[best]['peak_mb']:.0f} MB"
                if runs["segflow"].get("peak_mb") and ok[best].get("peak_mb") else ""
            )
            lines.append(
                f"| {size:,} | **speed-up vs fastest peer ({best})** | | | | "
                f"**{theirs / ours:.1f}x** | | target 20x{mem} |"
            )
    lines += ["", cdnow_fit_time(), ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
