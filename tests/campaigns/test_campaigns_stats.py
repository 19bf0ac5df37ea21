"""The read-out statistics against independent implementations (statsmodels, scipy) and
against the values Newcombe (1998) published."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from segflow.campaigns import _stats

sm_prop = pytest.importorskip("statsmodels.stats.proportion")
sm_mt = pytest.importorskip("statsmodels.stats.multitest")

# Newcombe (1998), Statistics in Medicine 17, Table II, method 10 (score, no continuity
# correction): (x1, n1, x0, n0) -> 95% interval for p1 - p0, 4 decimals as published.
NEWCOMBE_PUBLISHED = {
    (56, 70, 48, 80): (0.0524, 0.3339),
    (9, 10, 3, 10): (0.1705, 0.8090),
    (6, 7, 2, 7): (0.0582, 0.8062),
    (5, 56, 0, 29): (-0.0381, 0.1926),
    (0, 10, 0, 20): (-0.1611, 0.2775),
    (0, 10, 0, 10): (-0.2775, 0.2775),
    (10, 10, 0, 20): (0.6791, 1.0000),
    (10, 10, 0, 10): (0.6075, 1.0000),
}


@pytest.mark.parametrize(("counts", "published"), list(NEWCOMBE_PUBLISHED.items()))
def test_newcombe_matches_published(counts, published):
    low, high = _stats.newcombe_interval(*counts)
    assert float(low) == pytest.approx(published[0], abs=5e-5)
    assert float(high) == pytest.approx(published[1], abs=5e-5)


def test_wilson_and_newcombe_match_statsmodels():
    rng = np.random.default_rng(1)
    n1, n0 = rng.integers(1, 400, 50), rng.integers(1, 400, 50)
    x1, x0 = rng.binomial(n1, 0.3), rng.binomial(n0, 0.2)
    for level in (0.9, 0.95):
        low, high = _stats.wilson_interval(x1, n1, level)
        ref_low, ref_high = sm_prop.proportion_confint(x1, n1, alpha=1 - level, method="wilson")
        np.testing.assert_allclose(low, ref_low, atol=1e-12)
        np.testing.assert_allclose(high, ref_high, atol=1e-12)
        dlow, dhigh = _stats.newcombe_interval(x1, n1, x0, n0, level)
        for i in range(n1.size):
            ref = sm_prop.confint_proportions_2indep(
                x1[i], n1[i], x0[i], n0[i], method="newcomb", compare="diff", alpha=1 - level
            )
            assert dlow[i] == pytest.approx(ref[0], abs=1e-10)
            assert dhigh[i] == pytest.approx(ref[1], abs=1e-10)


def test_ztest_matches_statsmodels_and_fisher_matches_scipy():
    rng = np.random.default_rng(2)
    n1, n0 = rng.integers(20, 500, 30), rng.integers(20, 500, 30)
    x1, x0 = rng.binomial(n1, 0.25), rng.binomial(n0, 0.2)
    p = _stats.two_proportion_ztest(x1, n1, x0, n0)
    for i in range(30):
        _, ref = sm_prop.proportions_ztest([x1[i], x0[i]], [n1[i], n0[i]])
        assert p[i] == pytest.approx(ref, rel=1e-10)
    pf = _stats.fisher_pvalues(x1[:5], n1[:5], x0[:5], n0[:5])
    for i in range(5):
        ref = stats.fisher_exact([[x1[i], n1[i] - x1[i]], [x0[i], n0[i] - x0[i]]]).pvalue
        assert pf[i] == pytest.approx(ref, rel=1e-12)
    # equal all-zero arms: no evidence, p = 1; empty arm: undefined
    assert _stats.two_proportion_ztest(0, 10, 0, 12) == 1.0
    assert np.isnan(_stats.two_proportion_ztest(1, 10, 0, 0))
    assert _stats.fisher_needed(1, 10, 0, 12)
    assert not _stats.fisher_needed(100, 1000, 90, 1000)


def test_welch_matches_scipy_ttest():
    rng = np.random.default_rng(3)
    a = rng.gamma(2.0, 30.0, 300)
    b = rng.gamma(2.0, 25.0, 120)
    low, high, p = _stats.welch_test(a.mean(), a.var(ddof=1), a.size, b.mean(), b.var(ddof=1), b.size)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert float(p) == pytest.approx(ref.pvalue, rel=1e-10)
    ci = ref.confidence_interval(0.95)
    assert float(low) == pytest.approx(ci.low, rel=1e-10)
    assert float(high) == pytest.approx(ci.high, rel=1e-10)
    assert np.isnan(_stats.welch_test(1.0, 1.0, 1, 2.0, 1.0, 10)[2])


@pytest.mark.parametrize(("method", "sm_method"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjust_pvalues_match_multipletests(method, sm_method):
    rng = np.random.default_rng(4)
    p = np.concatenate([rng.uniform(0, 0.05, 6), rng.uniform(0, 1, 14)])
    rng.shuffle(p)
    ref = sm_mt.multipletests(p, method=sm_method)[1]
    np.testing.assert_allclose(_stats.adjust_pvalues(p, method), ref, rtol=1e-12)
    with_nan = np.insert(p, 3, np.nan)
    out = _stats.adjust_pvalues(with_nan, method)
    assert np.isnan(out[3])
    np.testing.assert_allclose(np.delete(out, 3), ref, rtol=1e-12)


def test_relative_lift_is_katz_log_interval():
    # Katz interval for the risk ratio, written out: exp(log RR +- z sqrt(1/x1 - 1/n1 + 1/x0 - 1/n0))
    x1, n1, x0, n0 = 60, 500, 40, 500
    rr = (x1 / n1) / (x0 / n0)
    se = np.sqrt(1 / x1 - 1 / n1 + 1 / x0 - 1 / n0)
    z = stats.norm.ppf(0.975)
    p1, p0 = x1 / n1, x0 / n0
    lift, low, high = _stats.relative_lift_interval(p1, p1 * (1 - p1), n1, p0, p0 * (1 - p0), n0)
    assert float(lift) == pytest.approx(rr - 1)
    assert float(low) == pytest.approx(rr * np.exp(-z * se) - 1, rel=1e-12)
    assert float(high) == pytest.approx(rr * np.exp(z * se) - 1, rel=1e-12)


def test_mde_matches_statsmodels_power():
    from statsmodels.stats.power import NormalIndPower

    p0, n1, n0 = 0.1, 4000, 1000
    sd = np.sqrt(p0 * (1 - p0))
    mde = float(_stats.minimum_detectable_effect(sd, n1, n0))
    # statsmodels: standardized effect with ratio n0/n1 gives power 0.8 at the MDE
    power = NormalIndPower().power(effect_size=mde / sd, nobs1=n1, alpha=0.05, ratio=n0 / n1)
    assert power == pytest.approx(0.8, abs=1e-3)


def test_balance_pvalue():
    assert _stats.balance_pvalue(np.array([50, 50]), np.array([0.5, 0.5])) == pytest.approx(1.0)
    ref = stats.binomtest(80, 100, 0.5).pvalue
    assert _stats.balance_pvalue(np.array([80, 20]), np.array([0.5, 0.5])) == pytest.approx(ref)
    ref3 = stats.chisquare([30, 30, 40], [100 / 3] * 3).pvalue
    assert _stats.balance_pvalue(np.array([30, 30, 40]), np.ones(3) / 3) == pytest.approx(ref3)
    assert np.isnan(_stats.balance_pvalue(np.array([0, 0]), np.array([0.5, 0.5])))


def test_interval_coverage_simulation():
    """Newcombe and Welch intervals cover planted differences at the stated 95 % rate."""
    rng = np.random.default_rng(5)
    reps = 4000
    p1, p0, n1, n0 = 0.14, 0.10, 400, 300
    x1, x0 = rng.binomial(n1, p1, reps), rng.binomial(n0, p0, reps)
    low, high = _stats.newcombe_interval(x1, n1, x0, n0)
    cover = np.mean((low <= p1 - p0) & (p1 - p0 <= high))
    # binomial sd of the coverage estimate is ~0.0034; allow 3.5 sd
    assert abs(cover - 0.95) < 0.012
    a = rng.gamma(2.0, 30.0, (reps, 200))
    b = rng.gamma(2.0, 25.0, (reps, 150))
    low, high, _ = _stats.welch_test(a.mean(1), a.var(1, ddof=1), 200, b.mean(1), b.var(1, ddof=1), 150)
    cover = np.mean((low <= 10.0) & (10.0 <= high))
    assert abs(cover - 0.95) < 0.012


def test_mde_is_undefined_without_control_variance():
    """A control rate of 0 (or 1, or a constant mean) has sd0 = 0, and the formula's MDE of
    0 would claim any lift is detectable; the read-out leaves it empty instead."""
    import pandas as pd

    from segflow.campaigns import campaign_effect

    assert np.isnan(_stats.minimum_detectable_effect(0.0, 30, 30))
    # by simulation (independent of the formula): from a control rate of 0, a lift of 5 points
    # with 30 + 30 customers is found by Fisher's exact test far less than 80 % of the time
    rng = np.random.default_rng(0)
    hits = [stats.fisher_exact([[x, 30 - x], [0, 30]])[1] < 0.05 for x in rng.binomial(30, 0.05, 400)]
    assert np.mean(hits) < 0.2
    df = pd.DataFrame({
        "arm": ["t"] * 30 + ["c"] * 30 + ["t"] * 40 + ["c"] * 40,
        "segment": ["zero"] * 60 + ["some"] * 80,
        "bought": [1] * 3 + [0] * 27 + [0] * 30 + [1] * 12 + [0] * 28 + [1] * 10 + [0] * 30,
    })
    rows = campaign_effect(df, arm_col="arm", control="c", outcomes=["bought"],
                           by=["segment"]).to_pandas()
    treated = rows[(rows.arm == "t") & (rows["by"] == "segment")].set_index("segment")
    assert np.isnan(treated.loc["zero", "mde_abs"])
    p0 = 10 / 40  # by hand: (z_.975 + z_.8) * sqrt(p0 (1 - p0)) * sqrt(1/40 + 1/40)
    expected = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * np.sqrt(p0 * (1 - p0) * (2 / 40))
    assert treated.loc["some", "mde_abs"] == pytest.approx(expected, rel=1e-9)
