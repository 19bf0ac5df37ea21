"""A small random-but-fixed data set with hand-placed boundary rows, and an independent
pandas computation of every feature (plain per-customer Python, written apart from the
library's Ibis code) to test against."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

S = dt.date(2024, 7, 1)
S_TS = pd.Timestamp(S)
DAY = pd.Timedelta(days=1)
#: survey question texts -> column (every question becomes a feature; case and
#: punctuation do not matter; 'satisfaction' has numbers only, so it is numeric)
QUESTIONS = {"lifestyle": "lifestyle", "Lifestyle": "lifestyle",
             "price_sensitivity": "price_sensitivity", "other": "other",
             "Satisfaction (1-10)": "satisfaction_1_10", "frequency": "survey_frequency"}
NUMERIC_QUESTIONS = ("satisfaction_1_10",)


def make_tables(seed: int = 7) -> dict[str, pd.DataFrame]:
    """The five canonical tables as pandas frames (canonical columns only)."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i:02d}" for i in range(40)]
    start = pd.Timestamp("2021-01-01")

    def rand_ts(n: int, lo: pd.Timestamp = start, hi: pd.Timestamp | None = None) -> pd.Series:
        hi = hi or pd.Timestamp("2024-09-01")
        secs = rng.integers(0, int((hi - lo).total_seconds()), n)
        return pd.Series(lo + pd.to_timedelta(secs, unit="s"))

    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "created_at": rand_ts(40),
            "email": None,
            "phone": None,
            "age_band": rng.choice(["18-24", "25-34", "35-44"], 40),
            "gender": rng.choice(["female", "male"], 40),
            "income_band": rng.choice(["<25k", "25-50k"], 40),
            "region": rng.choice(["London", "Paris", "Wales"], 40),
            "city": rng.choice(["A", "B"], 40),
            "signup_channel": rng.choice(["web", "app"], 40),
        }
    )
    customers.loc[3, "created_at"] = pd.NaT  # unknown sign-up date
    customers.loc[38, "created_at"] = S_TS  # signs up exactly at s: not yet known
    customers.loc[39, "created_at"] = S_TS - pd.Timedelta(seconds=1)  # just before s
    dup = customers.iloc[[6]].copy()
    dup["created_at"] = dup["created_at"] + pd.Timedelta(days=3)
    dup["region"] = "Duplicate-later"
    customers = pd.concat([customers, dup], ignore_index=True)

    # orders, then lines; unknown customers u0..u2 have transactions but no customer row
    buyers = ids[:34] + ["u0", "u1", "u2"]
    n_orders = 420
    o_cust = rng.choice(buyers, n_orders)
    o_ts = rand_ts(n_orders, pd.Timestamp("2021-06-01"))
    # hand-placed boundary orders
    edge = {
        0: S_TS,  # exactly at s: excluded
        1: S_TS - 365 * DAY,  # exactly 365 days before s: inside the 12 months
        2: S_TS - 365 * DAY - pd.Timedelta(seconds=1),  # just outside the 12 months
        3: S_TS - 730 * DAY,  # start of the previous 12 months
        4: S_TS - 180 * DAY,  # start of a 180-day window
        5: S_TS - pd.Timedelta(seconds=1),  # last second before s
    }
    for i, ts in edge.items():
        o_ts[i] = ts
        o_cust[i] = "c01"
    o_id = np.array([f"T{i}" for i in range(n_orders)], dtype=object)
    o_id[rng.random(n_orders) < 0.05] = None
    lines = []
    for i in range(n_orders):
        for _ in range(1 + int(rng.random() < 0.2)):
            lines.append(
                {
                    "transaction_id": o_id[i],
                    "customer_id": o_cust[i],
                    "ts": o_ts[i],
                    "amount": float(np.round(rng.lognormal(3, 0.7), 2)),
                    "quantity": float(rng.integers(1, 4)) if rng.random() > 0.1 else None,
                    "unit_price": None,
                    "category": rng.choice(["books", "home", "toys", "food"])
                    if rng.random() > 0.1 else None,
                    "channel": rng.choice(["web", "app", "store"]) if rng.random() > 0.1 else None,
                    "promo_code": rng.choice(["P10", "", "X"]) if rng.random() < 0.2 else None,
                    "is_return": False,
                }
            )
    tx = pd.DataFrame(lines)
    # returns: separate rows with negative amounts; some without the flag
    ret = tx.sample(40, random_state=seed).copy()
    ret["transaction_id"] = ["R" + str(i) for i in range(len(ret))]
    ret["ts"] = ret["ts"] + pd.to_timedelta(rng.integers(1, 20 * 86400, len(ret)), unit="s")
    ret["amount"] = -ret["amount"] * rng.choice([1.0, 0.5], len(ret))
    ret["quantity"] = -1.0
    ret["is_return"] = rng.choice([True, None], len(ret))
    zero = tx.sample(5, random_state=seed + 1).copy()
    zero["amount"] = 0.0
    zero["transaction_id"] = ["Z" + str(i) for i in range(len(zero))]
    # a customer with returns only, one with a single purchase, a seasonal buyer
    special = [
        dict(transaction_id="RO1", customer_id="c35", ts=S_TS - 40 * DAY, amount=-25.0,
             quantity=-1.0, category="books", channel="web", promo_code=None, is_return=True),
        dict(transaction_id="RESP", customer_id="c02", ts=S_TS - 95 * DAY, amount=15.0,
             quantity=1.0, category="books", channel="web", promo_code=None, is_return=False),
        dict(transaction_id="ONE", customer_id="c36", ts=S_TS - 10 * DAY, amount=42.0,
             quantity=2.0, category="home", channel="store", promo_code=None, is_return=False),
    ]
    for year in (2021, 2022, 2023):
        for day in (3, 17):
            special.append(dict(transaction_id=f"SEA{year}{day}", customer_id="c37",
                                ts=pd.Timestamp(year, 11, day, 12), amount=80.0, quantity=1.0,
                                category="toys", channel="web", promo_code="XMAS",
                                is_return=False))
    special.append(dict(transaction_id="SEA_SPRING", customer_id="c37",
                        ts=pd.Timestamp(2023, 4, 2), amount=20.0, quantity=1.0,
                        category="books", channel="web", promo_code=None, is_return=False))
    tx = pd.concat([tx, ret, zero, pd.DataFrame(special)], ignore_index=True)
    tx["unit_price"] = tx["unit_price"].astype("float64")
    # product ids from a stream of their own (the rest of the data is as before products)
    prng = np.random.default_rng(seed + 1000)
    tx["product_id"] = [f"P{k}" if k < 12 else None for k in prng.integers(0, 14, len(tx))]
    tx.loc[tx["customer_id"] == "c36", "product_id"] = None  # bought, but no product id
    tx["is_return"] = tx["is_return"].astype("object")

    events = _events(rng, ids + ["u0"])
    exposures = _exposures(rng, ids)
    survey = _survey(rng, ids)
    return {
        "customers": customers,
        "transactions": tx,
        "events": events,
        "campaign_exposures": exposures,
        "survey_responses": survey,
    }


def _events(rng: np.random.Generator, ids: list[str]) -> pd.DataFrame:
    rows = []
    lo = S_TS - 200 * DAY
    for k in range(150):
        cust = rng.choice(ids[:30])
        ts = lo + pd.Timedelta(seconds=int(rng.integers(0, 210 * 86400)))
        if k == 0:
            ts, cust = S_TS - 90 * DAY, "c02"  # exactly 90 days before s: inside
        if k == 1:
            ts, cust = S_TS, "c02"  # exactly at s: excluded
        sid = f"s{k}" if rng.random() > 0.15 else None
        kinds = ["visit"] + list(rng.choice(["product_view", "PRODUCT_VIEW", "cart_add",
                                             "purchase", "search"], rng.integers(0, 4)))
        for j, kind in enumerate(kinds):
            rows.append({"customer_id": cust, "ts": ts + pd.Timedelta(seconds=30 * j),
                         "event_type": kind, "item": None, "category": None, "session_id": sid})
    return pd.DataFrame(rows)


def _exposures(rng: np.random.Generator, ids: list[str]) -> pd.DataFrame:
    rows = []
    for camp, when in (("C1", S_TS - 400 * DAY), ("C2", S_TS - 100 * DAY), ("C3", S_TS),
                       ("C4", S_TS - 365 * DAY)):
        for cust in ids[:25]:
            arm = "control" if rng.random() < 0.2 else "treatment"
            rows.append({"campaign_id": camp, "customer_id": cust, "ts": when, "arm": arm,
                         "exposure_type": "send"})
            if arm == "treatment" and rng.random() < 0.5:
                rows.append({"campaign_id": camp, "customer_id": cust, "ts": when + DAY,
                             "arm": arm, "exposure_type": "open"})
                if rng.random() < 0.5:
                    rows.append({"campaign_id": camp, "customer_id": cust, "ts": when + 2 * DAY,
                                 "arm": arm, "exposure_type": "click"})
            elif arm == "treatment" and rng.random() < 0.1:  # a click without an open row
                rows.append({"campaign_id": camp, "customer_id": cust, "ts": when + DAY,
                             "arm": arm, "exposure_type": "CLICK"})
    return pd.DataFrame(rows)


def _survey(rng: np.random.Generator, ids: list[str]) -> pd.DataFrame:
    rows = []
    for _ in range(45):
        cust = rng.choice(ids[:20])
        rows.append({
            "customer_id": cust,
            "ts": S_TS - pd.Timedelta(days=int(rng.integers(-30, 400))),
            "question": rng.choice(["lifestyle", "price_sensitivity", "Lifestyle", "other"]),
            "answer": rng.choice(["family", "student", "low", "high"]),
        })
    for k in range(30):  # a numeric question, and one named like a feature
        rows.append({
            "customer_id": rng.choice(ids[:25]),
            "ts": S_TS - pd.Timedelta(days=int(rng.integers(-30, 400)), hours=k),
            "question": "Satisfaction (1-10)" if k % 3 else "frequency",
            "answer": f" {rng.integers(1, 11)}" if k % 3 else rng.choice(["weekly", "rarely"]),
        })
    return pd.DataFrame(rows)


def to_store(store, frames: dict[str, pd.DataFrame]) -> None:  # noqa: ANN001
    """Append the frames to the canonical tables of ``store`` (through Arrow)."""
    from segflow.store import CANONICAL_TABLES

    for name, frame in frames.items():
        cols = [c for c in CANONICAL_TABLES[name] if c in frame.columns]
        arrow = pa.Table.from_pandas(frame[list(cols)], preserve_index=False)
        store.append(name, arrow)


# -- independent reference --------------------------------------------------------------
def _days(a: pd.Timestamp, b: pd.Timestamp) -> int:
    """Whole calendar days from the day of ``a`` to the day of ``b``."""
    return (b.normalize() - a.normalize()).days


def reference_features(
    frames: dict[str, pd.DataFrame], snapshot: dt.date, window_days: int | None = None
) -> pd.DataFrame:
    """Every feature, one customer at a time, in plain pandas/Python."""
    s = pd.Timestamp(snapshot)
    cust = frames["customers"].copy()
    cust = cust.sort_values("created_at", na_position="last", kind="stable")
    # the attributes: of the earliest record made before s (or undated); a record made at or
    # after s does not describe the customer at s
    records = cust[cust["created_at"].isna() | (cust["created_at"] < s)]
    records = records.drop_duplicates("customer_id", keep="first").set_index("customer_id")
    cust = cust.drop_duplicates("customer_id", keep="first").set_index("customer_id")
    tx = frames["transactions"]
    tx = tx[tx["ts"] < s].copy()
    tx["ret"] = (tx["is_return"] == True) | (tx["amount"] < 0)  # noqa: E712
    tx["buy"] = ~tx["ret"] & (tx["amount"] >= 0)  # a $0 line is a purchase occasion
    tx["key"] = tx["transaction_id"].where(
        tx["transaction_id"].notna(), tx["customer_id"] + "@" + tx["ts"].astype(str)
    )
    known = set(cust.index[cust["created_at"] < s]) | set(tx["customer_id"])
    ev = frames["events"]
    ev = ev[ev["ts"] < s]
    ex = frames["campaign_exposures"]
    ex = ex[(ex["ts"] < s) & (ex["ts"] >= s - 365 * DAY)]
    sv = frames["survey_responses"]
    sv = sv[sv["ts"] < s]
    w_lo = s - window_days * DAY if window_days else pd.Timestamp.min
    rows = []
    for cid in sorted(known):
        mine = tx[tx["customer_id"] == cid]
        buys = mine[mine["buy"]]
        rets = mine[mine["ret"]]
        wb = buys[buys["ts"] >= w_lo]
        wr = rets[rets["ts"] >= w_lo]
        b12 = buys[buys["ts"] >= s - 365 * DAY]
        r12 = rets[rets["ts"] >= s - 365 * DAY]
        bprev = buys[(buys["ts"] >= s - 730 * DAY) & (buys["ts"] < s - 365 * DAY)]
        r: dict[str, object] = {"customer_id": cid}
        r["recency_days"] = _days(buys["ts"].max(), s) if len(buys) else None
        r["frequency"] = wb["key"].nunique()
        r["monetary"] = wb["amount"].sum() - wr["amount"].abs().sum()
        r["frequency_12m"] = b12["key"].nunique()
        r["monetary_12m"] = b12["amount"].sum() - r12["amount"].abs().sum()
        rprev = rets[(rets["ts"] >= s - 730 * DAY) & (rets["ts"] < s - 365 * DAY)]
        r["frequency_prev_12m"] = bprev["key"].nunique()
        r["monetary_prev_12m"] = bprev["amount"].sum() - rprev["amount"].abs().sum()
        r["orders_total"] = buys["key"].nunique()
        r["first_purchase_date"] = buys["ts"].min().normalize() if len(buys) else None
        r["last_purchase_date"] = buys["ts"].max().normalize() if len(buys) else None
        created = cust["created_at"].get(cid) if cid in cust.index else None
        created = created if created is not None and not pd.isna(created) and created < s else None
        starts = [x for x in (created, mine["ts"].min() if len(mine) else None) if x is not None]
        r["tenure_days"] = _days(min(starts), s) if starts else None
        gross = wb["amount"].sum()
        n = r["frequency"]
        paid = (wb.groupby("key")["amount"].sum() > 0).sum()  # spend averages: paid orders
        r["avg_order_value"] = gross / paid if paid else None
        qty = wb["quantity"].dropna()
        r["basket_size"] = qty.sum() / n if n and len(qty) else None
        days = sorted({_days(pd.Timestamp("1970-01-01"), t) for t in wb["ts"]})
        gaps = np.diff(days)
        r["ipt_mean_days"] = float(np.mean(gaps)) if len(days) >= 2 else None
        r["ipt_cv"] = float(np.std(gaps, ddof=1) / np.mean(gaps)) if len(days) >= 3 else None
        g12, gp = b12["amount"].sum(), bprev["amount"].sum()
        r["spend_trend"] = (g12 - gp) / (g12 + gp) if g12 + gp else None
        r["category_count"] = wb["category"].nunique()
        r["top_category"], r["top_category_share"] = _top(wb, "category")
        promo = wb["promo_code"].fillna("").str.strip() != ""
        r["promo_share"] = wb.loc[promo, "key"].nunique() / n if n else None
        r["return_rate"] = wr["amount"].abs().sum() / gross if gross else None
        r["main_channel"], r["main_channel_share"] = _top(wb, "channel")
        r["channel_count"] = wb["channel"].nunique()
        r.update(_breadth(buys, b12))
        r.update(_season(buys))
        r.update(_web(ev[ev["customer_id"] == cid], s))
        r.update(_campaigns(ex[ex["customer_id"] == cid], buys, s))
        if cid in cust.index:
            r["signup_date"] = created.normalize() if created is not None else None
        if cid in records.index:
            row = records.loc[cid]
            for col in ("age_band", "gender", "income_band", "region", "city", "signup_channel"):
                r[col] = row[col]
        mine_sv = sv[sv["customer_id"] == cid].assign(a=lambda d: d["answer"].str.strip())
        for col in sorted(set(QUESTIONS.values())):
            texts = [q for q, c in QUESTIONS.items() if c == col]
            ans = mine_sv[mine_sv["question"].isin(texts)].sort_values(["ts", "a"])
            value = ans["a"].iloc[-1] if len(ans) else None
            r[col] = float(value) if value is not None and col in NUMERIC_QUESTIONS else value
        rows.append(r)
    return pd.DataFrame(rows).set_index("customer_id")


def _top(lines: pd.DataFrame, col: str) -> tuple[object, object]:
    have = lines[lines[col].notna()]
    if have.empty:
        return None, None
    # exact money (integer millionths), as the definition: equal spends tie
    spend = (have["amount"] * 1_000_000).round().astype("int64").groupby(have[col]).sum()
    ties = sorted(k for k, v in spend.items() if v == spend.max())
    return ties[0], float(spend[ties[0]]) / float(spend.sum())


def _breadth(buys: pd.DataFrame, b12: pd.DataFrame) -> dict[str, object]:
    out: dict[str, object] = {}
    for col, name in (("product_id", "products"), ("category", "categories")):
        known = buys[col].notna().any()
        out[f"{name}_total"] = buys[col].nunique() if known else None
        out[f"{name}_12m"] = b12[col].nunique() if known else None
    return out


def _season(buys: pd.DataFrame) -> dict[str, object]:
    if buys.empty:
        return {"peak_quarter": None, "peak_quarter_share": None, "same_season_flag": False}
    orders = buys.drop_duplicates("key")[["key", "ts"]]
    # one quarter per order key (lines of an order share ts)
    q = orders["ts"].dt.quarter
    counts = q.value_counts()
    peak = min(k for k, v in counts.items() if v == counts.max())
    share = counts[peak] / counts.sum()
    year = orders["ts"].dt.year
    per_year = pd.DataFrame({"all": year.value_counts(), "peak": year[q == peak].value_counts()})
    per_year = per_year.fillna(0)
    flag = len(per_year) >= 2 and bool((2 * per_year["peak"] >= per_year["all"]).all())
    return {"peak_quarter": peak, "peak_quarter_share": share, "same_season_flag": flag}


def _web(ev: pd.DataFrame, s: pd.Timestamp) -> dict[str, object]:
    out: dict[str, object] = {
        "days_since_last_visit": _days(ev["ts"].max(), s) if len(ev) else None,
    }
    recent = ev[ev["ts"] >= s - 90 * DAY].copy()
    recent["sess"] = recent["session_id"].where(
        recent["session_id"].notna(), "day" + recent["ts"].dt.date.astype(str)
    )
    kind = recent["event_type"].str.lower()
    out["visits_90d"] = recent["sess"].nunique()
    out["product_views_90d"] = int((kind == "product_view").sum())
    out["cart_adds_90d"] = int((kind == "cart_add").sum())
    carts = set(recent.loc[kind == "cart_add", "sess"])
    buys = set(recent.loc[kind == "purchase", "sess"])
    out["cart_abandonment_rate_90d"] = len(carts - buys) / len(carts) if carts else None
    n = out["visits_90d"]
    out["browse_to_buy_90d"] = len(buys) / n if n else None
    return out


def _campaigns(ex: pd.DataFrame, buys: pd.DataFrame, s: pd.Timestamp) -> dict[str, object]:
    treated = ex[ex["arm"] != "control"]
    eligible = responded = 0
    for _, first in treated.groupby("campaign_id")["ts"].min().items():
        if first <= s - 14 * DAY:
            eligible += 1
            responded += int(((buys["ts"] >= first) & (buys["ts"] < first + 14 * DAY)).any())
    kind = treated["exposure_type"].str.lower()
    received = treated["campaign_id"].nunique()
    opened = treated.loc[kind.isin(["open", "click"]), "campaign_id"].nunique()
    clicked = treated.loc[kind == "click", "campaign_id"].nunique()
    return {
        "campaigns_received_12m": received,
        "campaign_open_rate_12m": opened / received if received else None,
        "campaign_click_rate_12m": clicked / received if received else None,
        "campaign_response_rate_12m": responded / eligible if eligible else None,
    }


def assert_same_features(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Column by column: numbers to 1e-9, dates by day, text and flags exactly."""
    from segflow.features import FEATURES, Feature

    assert list(got.index) == list(want.index)
    survey = {c: Feature(c, "", "", "survey",
                         "numeric" if c in NUMERIC_QUESTIONS else "categorical")
              for c in got.columns if c not in FEATURES}
    assert set(survey) == set(QUESTIONS.values())
    for name, feature in {**FEATURES, **survey}.items():
        if name == "customer_id":
            continue
        g, w = got[name], want.reindex(got.index)[name] if name in want else None
        assert w is not None, f"reference lacks {name}"
        if feature.kind in ("numeric",):
            gv = pd.to_numeric(g, errors="coerce").astype(float).to_numpy()
            wv = pd.to_numeric(w, errors="coerce").astype(float).to_numpy()
            np.testing.assert_allclose(gv, wv, rtol=1e-9, atol=1e-9, equal_nan=True,
                                       err_msg=name)
        elif feature.kind == "date":
            gv = _plain(pd.to_datetime(g).dt.normalize())
            wv = _plain(pd.to_datetime(w).dt.normalize())
            assert gv == wv, name
        elif feature.kind == "boolean":
            assert (g.fillna(False).astype(bool) == w.fillna(False).astype(bool)).all(), name
        else:
            assert _plain(g) == _plain(w), name


def _plain(values: pd.Series) -> list[object]:
    return [None if pd.isna(v) else v for v in values]
