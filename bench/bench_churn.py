"""Benchmark: the supervised churn model against the learners a user would otherwise pick.

    nice python bench/bench_churn.py                      # 50,000 customers
    nice python bench/bench_churn.py --customers 10000    # a quicker run

Data: a synthetic buy-till-you-die population (Poisson purchases at a gamma-distributed rate
until an exponential lifetime ends; acquisitions spread over the first 6 of 24 months), so
the chance of no purchase in the next 90 days depends on recency, frequency and tenure. The
stacked training set (real feature library, 8 monthly snapshots, 90-day label) is built once
in DuckDB and written to Parquet; its build time is reported.

Split (as ``segflow churn train``): the test snapshot is the latest with a complete label
window; training snapshots are those whose window ends by it. Each variant runs in a fresh
subprocess (its own peak resident memory, VmHWM), reads the Parquet file, fits on the
training rows and predicts the test rows; all are scored by the same ``evaluate_churn``.

* segflow ChurnModel: HistGradientBoosting + sigmoid calibration on the latest training
  snapshot, segflow's defaults, 1 thread and all cores.
* scikit-learn HistGradientBoostingClassifier with its own defaults, uncalibrated.
* scikit-learn LogisticRegression (median imputation + missing flags, standard scaling,
  one-hot categories), the usual first model.
* scikit-learn RandomForestClassifier (300 trees, 20 rows a leaf, all cores, ordinal
  categories), a common second model.
* BG/NBD P(no purchase in the next 90 days), fitted on all purchases before the test snapshot
  (segflow.models), the model-based alternative that needs no labels (customers first seen
  on the last day before the snapshot get T = 1 day, as the BG/NBD needs T > 0).

Writes ``bench/results/churn.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "churn.md"
HORIZON = 90
SNAPSHOTS = [dt.date(2024, m, 1) for m in range(1, 9)]  # data end 2025-01-01

PRELUDE = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np, pandas as pd
from segflow.models._churn import evaluate_churn
frame_path, tx_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
meta = json.loads(sys.argv[4])
timings = {}
t0 = time.perf_counter()
frame = pd.read_parquet(frame_path)
day = frame["snapshot_date"].astype(str)
train, test = frame[day.isin(meta["train"])], frame[day == meta["test"]]
cols = meta["features"]
cats = [c for c in cols if frame[c].dtype == object or str(frame[c].dtype) in ("string", "str")]
nums = [c for c in cols if c not in cats]
timings["read"] = time.perf_counter() - t0
def done(p, y):
    ev = evaluate_churn(np.asarray(y), np.asarray(p))
    # VmHWM (peak resident set of this process image): ru_maxrss would carry over the
    # parent's peak across fork + exec on Linux
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
    rss = int(hwm.split()[1]) / 1024
    json.dump({"timings": timings, "peak_mib": rss, **ev.metrics()}, open(out, "w"))
"""

VARIANTS = {
    "segflow ChurnModel, 1 thread": """
from segflow.models._churn import ChurnModel
t = time.perf_counter()
m = ChurnModel(n_threads=1, random_state=0).fit(train[cols], train.churned, groups=train.snapshot_date)
timings["fit"] = time.perf_counter() - t; t = time.perf_counter()
p = m.predict_proba(test[cols])[:, 1]
timings["predict"] = time.perf_counter() - t
done(p, test.churned)
""",
    "segflow ChurnModel, all cores": """
from segflow.models._churn import ChurnModel
t = time.perf_counter()
m = ChurnModel(random_state=0).fit(train[cols], train.churned, groups=train.snapshot_date)
timings["fit"] = time.perf_counter() - t; t = time.perf_counter()
p = m.predict_proba(test[cols])[:, 1]
timings["predict"] = time.perf_counter() - t
done(p, test.churned)
""",
    "scikit-learn HistGradientBoosting, defaults, uncalibrated": """
from sklearn.ensemble import HistGradientBoostingClassifier
X = train[cols].copy(); Xt = test[cols].copy()
for c in cats:
    X[c] = X[c].astype("category"); Xt[c] = pd.Categorical(Xt[c], categories=X[c].cat.categories)
t = time.perf_counter()
m = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0).fit(X, train.churned)
timings["fit"] = time.perf_counter() - t; t = time.perf_counter()
p = m.predict_proba(Xt)[:, 1]
timings["predict"] = time.perf_counter() - t
done(p, test.churned)
""",
    "scikit-learn LogisticRegression (impute, scale, one-hot)": """
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
X = train[cols].copy(); Xt = test[cols].copy()
for c in nums:
    X[c] = X[c].astype(float); Xt[c] = Xt[c].astype(float)
pre = ColumnTransformer([
    ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), nums),
    ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                          OneHotEncoder(handle_unknown="ignore", min_frequency=20)), cats),
])
t = time.perf_counter()
m = make_pipeline(pre, LogisticRegression(max_iter=2000)).fit(X, train.churned)
timings["fit"] = time.perf_counter() - t; t = time.perf_counter()
p = m.predict_proba(Xt)[:, 1]
timings["predict"] = time.perf_counter() - t
done(p, test.churned)
""",
    "scikit-learn RandomForest (300 trees, all cores)": """
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder
X = train[cols].copy(); Xt = test[cols].copy()
for c in nums:
    X[c] = X[c].astype(float); Xt[c] = Xt[c].astype(float)
pre = ColumnTransformer([
    ("num", "passthrough", nums),
    ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                           encoded_missing_value=-2), cats),
])
t = time.perf_counter()
m = make_pipeline(pre, RandomForestClassifier(n_estimators=300, min_samples_leaf=20, n_jobs=-1,
                                              random_state=0)).fit(X, train.churned)
timings["fit"] = time.perf_counter() - t; t = time.perf_counter()
p = m.predict_proba(Xt)[:, 1]
timings["predict"] = time.perf_counter() - t
done(p, test.churned)
""",
    "BG/NBD P(no purchase in 90 days), no labels": """
import datetime as dt, ibis
from segflow.models import BetaGeoModel, btyd_summary
con = ibis.duckdb.connect()
tx = con.read_parquet(tx_path)
end = dt.date.fromisoformat(meta["test"])
t = time.perf_counter()
s = btyd_summary(tx, calibration_end=end, time_unit="W", warn=False).to_pandas()
# customers first seen on the last calibration day have T = 0, which the BG/NBD refuses:
# give them one day of observation (x = t_x = 0) so they are scored like the newest others
s["T"] = s["T"].clip(lower=1 / 7)
m = BetaGeoModel().fit(s)
timings["fit"] = time.perf_counter() - t; t = time.perf_counter()
p = m.p_no_purchase(90 / 7, s.x.to_numpy(), s.t_x.to_numpy(), s["T"].to_numpy())
timings["predict"] = time.perf_counter() - t
joined = test[["customer_id", "churned"]].merge(
    pd.DataFrame({"customer_id": s.customer_id.astype(str), "p": p}), on="customer_id")
assert len(joined) == len(test)
done(joined.p, joined.churned)
""",
}


def synth_transactions(n: int, seed: int = 0):  # noqa: ANN201
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    start, span = pd.Timestamp("2023-01-01"), 731
    birth = rng.uniform(0, 180, n)
    rate = rng.gamma(2.0, 1 / 60, n)
    alive = np.minimum(birth + rng.exponential(400, n), span - 1e-3) - birth
    counts = rng.poisson(rate * alive) + 1
    cust = np.repeat(np.arange(n), counts)
    first = np.r_[0, np.cumsum(counts)[:-1]]
    offset = rng.uniform(0, 1, counts.sum()) * alive[cust]
    offset[first] = 0.0
    ts = start + pd.to_timedelta(np.round((birth[cust] + offset) * 86400).astype("int64"), unit="s")
    m = len(cust)
    ret = rng.random(m) < 0.03
    amount = np.round(rng.gamma(2.0, 25.0, m), 2)
    amount[ret] *= -1
    return pa.table({
        "transaction_id": pa.array([f"t{i}" for i in range(m)]),
        "customer_id": pa.array([f"c{c}" for c in cust]),
        "ts": pa.array(ts.astype("datetime64[us]")),
        "amount": amount,
        "is_return": ret,
        "channel": pa.array(rng.choice(["web", "store", "app"], m)),
        "category": pa.array(rng.choice(["music", "books", "games", "film"], m)),
    })


def build(tmp: Path, customers: int) -> dict:
    import pyarrow.parquet as pq

    from segflow.features import customer_features
    from segflow.models._churn_data import churn_training_set, feature_columns, time_split
    from segflow.store import Store

    tx = synth_transactions(customers)
    pq.write_table(tx, tmp / "transactions.parquet")
    store = Store(tmp / "bench.duckdb")
    store.append("transactions", tx)
    tables = {n: store.table(n) for n in
              ("customers", "transactions", "events", "campaign_exposures", "survey_responses")}
    train, test = time_split(SNAPSHOTS, HORIZON, dt.date(2025, 1, 1))
    t = time.perf_counter()
    frame = churn_training_set(lambda s: customer_features(tables, s), tables["transactions"],
                               SNAPSHOTS, HORIZON)
    seconds = time.perf_counter() - t
    frame["snapshot_date"] = frame["snapshot_date"].astype(str)
    frame.to_parquet(tmp / "frame.parquet", index=False)
    store.close()
    return {
        "train": [str(s) for s in train], "test": str(test),
        "features": feature_columns(frame), "rows": len(frame),
        "transactions": tx.num_rows, "build_seconds": seconds,
        "test_rows": int((frame.snapshot_date == str(test)).sum()),
    }


def run_variant(name: str, code: str, tmp: Path, meta: dict) -> dict:
    script = tmp / "variant.py"
    script.write_text(PRELUDE + code)
    out = tmp / "out.json"
    out.unlink(missing_ok=True)
    args = [sys.executable, str(script), str(tmp / "frame.parquet"),
            str(tmp / "transactions.parquet"), str(out), json.dumps(meta)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(out.read_text())


def write(results: dict, meta: dict, customers: int) -> None:
    load = os.getloadavg()[0]
    lines = [
        "## Churn model (`segflow churn train`)",
        "",
        f"`bench/bench_churn.py`: {customers:,} synthetic buy-till-you-die customers "
        f"({meta['transactions']:,} transaction lines over 24 months); the stacked training "
        f"set has {meta['rows']:,} rows (customer x snapshot, 8 monthly snapshots, "
        f"{len(meta['features'])} features from the feature library) and took "
        f"{meta['build_seconds']:.1f} s to build in DuckDB. Training snapshots "
        f"{meta['train'][0]} .. {meta['train'][-1]}, test snapshot {meta['test']} "
        f"({meta['test_rows']:,} customers), 90-day churn. 2 cores, run with `nice` while other "
        f"work shared the machine (load average {load:.1f} at the end). Each row is a fresh "
        "process; peak memory is its peak resident set (includes pandas reading the training "
        "set). Fit and predict exclude imports and reading.",
        "",
        "| variant | fit | predict | peak memory | AUC | Brier | ECE | lift top 10 % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | | | | | | |")
            continue
        t = r["timings"]
        lines.append(
            f"| {name} | {t['fit']:.1f} s | {t['predict']:.2f} s | {r['peak_mib']:.0f} MiB | "
            f"{r['auc']:.3f} | {r['brier']:.4f} | {r['ece']:.3f} | {r['lift_at_10']:.2f} |"
        )
    lines += ["", _reading(results)]
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text("\n".join(lines) + "\n")


def _reading(results: dict) -> str:
    """A data-driven reading of the table (the committed file may carry a hand-written one)."""
    ok = {k: v for k, v in results.items() if "error" not in v}
    if not ok:
        return "Reading: every variant failed; see the errors above."
    best_ece = min(ok, key=lambda k: ok[k]["ece"])
    best_auc = max(ok, key=lambda k: ok[k]["auc"])
    fastest = min(ok, key=lambda k: ok[k]["timings"]["fit"])
    text = (
        f"Reading. Highest AUC: {best_auc} ({ok[best_auc]['auc']:.3f}); best calibrated: "
        f"{best_ece} (ECE {ok[best_ece]['ece']:.3f}); fastest fit: {fastest} "
        f"({ok[fastest]['timings']['fit']:.1f} s)."
    )
    one, many = ok.get("segflow ChurnModel, 1 thread"), ok.get("segflow ChurnModel, all cores")
    if one and many:
        text += (
            f" segflow's fit took {one['timings']['fit']:.1f} s on one thread and "
            f"{many['timings']['fit']:.1f} s on all cores at this machine's load."
        )
    return text + " Synthetic data are easy; see docs/churn.md for CDNOW and the demo data."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="segflow-bench-churn-") as tmp_name:
        tmp = Path(tmp_name)
        meta = build(tmp, args.customers)
        print(f"training set: {meta['rows']} rows in {meta['build_seconds']:.1f} s", flush=True)
        results = {}
        for name, code in VARIANTS.items():
            results[name] = run_variant(name, code, tmp, meta)
            print(name, json.dumps(results[name]), flush=True)
    write(results, meta, args.customers)
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
