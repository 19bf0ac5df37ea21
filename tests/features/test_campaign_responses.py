"""Campaign responses against an order-by-order computation, with orders whose lines span an
exposure: an order's time is its first purchase line's (segflow.features._purchases.order_table),
so an order started before a campaign's first exposure is not a response to it even when a
later line of it falls in the 14 days."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pytest

from segflow.features._behaviour import RESPONSE_DAYS, campaign_features
from segflow.features._purchases import prepare_lines
from segflow.features._window import Frame

S = dt.date(2024, 7, 1)
S_TS = pd.Timestamp(S)
DAY = pd.Timedelta(days=1)


def _fixture(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    customers = [f"c{i:02d}" for i in range(30)]
    lines = []
    for i in range(400):
        cid = customers[rng.integers(len(customers))]
        seconds = pd.Timedelta(seconds=int(rng.integers(0, 86_400)))
        start = S_TS - int(rng.integers(0, 420)) * DAY - seconds
        tid = None if rng.random() < 0.15 else f"o{i}"
        # most orders one line; some with later lines days apart (spanning an exposure)
        n = 1 if rng.random() < 0.6 else int(rng.integers(2, 4))
        for j in range(n):
            ts = start if tid is None or j == 0 else start + int(rng.integers(0, 20)) * DAY
            amount = float(rng.choice([25.0, 0.0, -5.0])) if j else 25.0
            lines.append({"transaction_id": tid, "customer_id": cid, "ts": ts, "amount": amount,
                          "quantity": 1.0, "is_return": bool(rng.random() < 0.05),
                          "category": "a", "channel": "web", "promo_code": "",
                          "product_id": "p1"})
    exposures = []
    for cid in customers:
        for k in range(int(rng.integers(0, 4))):
            t0 = S_TS - int(rng.integers(0, 380)) * DAY
            arm = "control" if rng.random() < 0.1 else "treatment"
            for kind, later in (("send", 0 * DAY), ("open", DAY)):
                exposures.append({"customer_id": cid, "campaign_id": f"k{k}", "ts": t0 + later,
                                  "exposure_type": kind, "arm": arm})
    return pd.DataFrame(lines), pd.DataFrame(exposures)


def _by_hand(lines: pd.DataFrame, exposures: pd.DataFrame) -> dict[str, float]:
    """Response rate per customer: orders by their first purchase line, campaigns by their
    first treated exposure in the 365 days before S, eligible when 14 days before S."""
    buys = lines[(lines.ts < S_TS) & ~lines.is_return & (lines.amount >= 0)].copy()
    buys["key"] = buys.transaction_id.where(buys.transaction_id.notna(), buys.ts.astype(str))
    order_ts = buys.groupby(["customer_id", "key"]).ts.min()
    ex = exposures[(exposures.ts < S_TS) & (exposures.ts >= S_TS - 365 * DAY)
                   & (exposures.arm != "control")]
    out = {}
    for cid, mine in ex.groupby("customer_id"):
        firsts = mine.groupby("campaign_id").ts.min()
        eligible = firsts[firsts <= S_TS - RESPONSE_DAYS * DAY]
        if not len(eligible):
            continue
        known = cid in order_ts.index.get_level_values(0)
        starts = order_ts[cid] if known else pd.Series([], dtype="datetime64[ns]")
        end = RESPONSE_DAYS * DAY
        hit = sum(bool(((starts >= t0) & (starts < t0 + end)).any()) for t0 in eligible)
        out[cid] = hit / len(eligible)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_responses_follow_the_first_line_of_each_order(seed):
    lines, exposures = _fixture(seed)
    con = ibis.duckdb.connect()
    t = con.create_table("transactions", lines)
    e = con.create_table("campaign_exposures", exposures)
    frame = Frame(snapshot=S, window_days=None)
    got = campaign_features(e, prepare_lines(t, frame), frame).to_pandas().set_index("customer_id")
    want = _by_hand(lines, exposures)
    rates = got["campaign_response_rate_12m"].dropna().to_dict()
    assert rates == pytest.approx(want, abs=1e-12)
    assert 0 < sum(v > 0 for v in want.values()) < len(want)  # some respond, some not
    # the fixture has orders that began before an exposure and continue inside its 14 days:
    # counted by their later line they would respond
    buys = lines[~lines.is_return & (lines.amount >= 0)]
    spans = buys.groupby("transaction_id").ts.agg(["min", "max"])
    assert (spans["max"] > spans["min"]).sum() > 20


def test_the_window_edges_and_a_missing_campaign_id():
    """A campaign first received exactly 14 days before S is eligible (its whole window is
    before S), one received a second later is not; an order at t0 + 14 days is no response;
    an exposure without a campaign id counts nowhere (ingest quarantines such rows)."""
    t0 = S_TS - RESPONSE_DAYS * DAY
    line = {"quantity": 1.0, "is_return": False, "category": "a", "channel": "web",
            "promo_code": "", "product_id": "p1", "amount": 10.0}
    lines = pd.DataFrame([
        {**line, "transaction_id": "o1", "customer_id": "a", "ts": t0 + DAY},
        {**line, "transaction_id": "o2", "customer_id": "b", "ts": t0 + 2 * DAY},
        {**line, "transaction_id": "o3", "customer_id": "c", "ts": t0 - 20 * DAY + 14 * DAY},
    ])
    exposures = pd.DataFrame([
        {"customer_id": "a", "campaign_id": "k1", "ts": t0},  # eligible, answered
        {"customer_id": "a", "campaign_id": None, "ts": t0},  # no campaign: left out
        {"customer_id": "b", "campaign_id": "k1", "ts": t0 + pd.Timedelta(seconds=1)},
        {"customer_id": "c", "campaign_id": "k2", "ts": t0 - 20 * DAY},  # order at t0 + 14 d
    ]).assign(exposure_type="send", arm="treatment")
    con = ibis.duckdb.connect()
    t = con.create_table("transactions", lines)
    e = con.create_table("campaign_exposures", exposures)
    frame = Frame(snapshot=S, window_days=None)
    got = campaign_features(e, prepare_lines(t, frame), frame).to_pandas().set_index("customer_id")
    assert got.loc["a", "campaign_response_rate_12m"] == 1.0
    assert got.loc["a", "campaigns_received_12m"] == 1
    assert pd.isna(got.loc["b", "campaign_response_rate_12m"])  # not eligible yet
    assert got.loc["c", "campaign_response_rate_12m"] == 0.0
