"""Promotion sensitivity by segment against pandas, and the coverage of its cluster-robust
interval in a simulation where customers differ in their taste for promotions."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from segflow.campaigns import promotion_response, promotion_sensitivity
from segflow.campaigns._promotions import _shares
from segflow.campaigns._stats import wilson_interval

SNAP = dt.date(2024, 2, 1)


def test_promotion_sensitivity_matches_pandas(campaign_store):
    fx = campaign_store
    res = promotion_sensitivity(fx.store, "value", SNAP)
    t = res.to_pandas().set_index("segment")
    seg = fx.assignments[fx.assignments.snapshot_date == SNAP].set_index("customer_id").segment
    tx = fx.transactions[fx.transactions.ts < pd.Timestamp(SNAP)].copy()
    tx = tx[tx.customer_id.isin(seg.index)]
    tx["segment"] = tx.customer_id.map(seg)
    tx["promo"] = tx.promo_code.notna()
    buys = tx[~tx.is_return]
    for name, g in buys.groupby("segment"):
        row = t.loc[name]
        assert row.transactions == len(g) and row.promo_transactions == g.promo.sum()
        assert row.promo_share == pytest.approx(g.promo.mean())
        per = g.groupby("customer_id").agg(p=("promo", "sum"), n=("promo", "size"))
        r = per.p.sum() / per.n.sum()
        k = len(per)
        se = np.sqrt(((per.p - r * per.n) ** 2).sum() / (k * (k - 1))) / per.n.mean()
        assert row.promo_share_high - row.promo_share == pytest.approx(1.959964 * se, rel=1e-5)
        assert row.promo_buyer_share == pytest.approx((per.p > 0).mean())
        allg = tx[tx.segment == name]
        assert row.promo_revenue_share == pytest.approx(
            allg.amount[allg.promo].sum() / allg.amount.sum())
    assert list(t.index) == ["high", "mid", "low"]
    assert len(res.figure().data) == 2


def test_cluster_robust_interval_coverage():
    """Customers have their own promotion propensity, so transactions are not independent;
    the customer-level interval keeps 95 % coverage (a transaction-level Wilson would not)."""
    rng = np.random.default_rng(0)
    reps, n = 500, 200
    tx = rng.poisson(4.0, (reps, n)) + 1
    propensity = rng.beta(0.5, 1.5, (reps, n))  # mean 0.25, very dispersed
    ptx = rng.binomial(tx, propensity)
    agg = pd.DataFrame({
        "segment": np.arange(reps).astype(str), "segment_rank": 1, "customers": n, "buyers": n,
        "promo_buyers": (ptx > 0).sum(1), "transactions": tx.sum(1), "promo_transactions": ptx.sum(1),
        "revenue": 1.0, "promo_revenue": 0.5,
        "s_pp": (ptx * ptx).sum(1), "s_pt": (ptx * tx).sum(1), "s_tt": (tx * tx).sum(1)})
    out = _shares(agg, 0.95)
    truth = 0.25 * 5.0 / 5.0  # E[p t] / E[t] with independent t and propensity
    cover = ((out.promo_share_low <= truth) & (truth <= out.promo_share_high)).mean()
    assert abs(cover - 0.95) < 0.03, cover
    low, high = wilson_interval(agg.promo_transactions, agg.transactions)
    naive = ((low <= truth) & (truth <= high)).mean()
    assert naive < 0.85, naive


def test_promotion_response_lists_each_campaign(campaign_store):
    with pytest.warns(UserWarning):
        resp = promotion_response(campaign_store.store, "value")
    # c0 has no control arm and no snapshot before it: skipped with a warning; c1 read out
    assert set(resp.campaign_id) == {"c1"}
    low = resp[(resp.segment == "low") & (resp.arm == "treatment") & (resp.outcome == "purchased")]
    assert bool(low.significant.iloc[0])
