"""BTYD and Gamma-Gamma on what real shops look like: T = 0, units of money and time,
heavy-tailed spend (q <= 1), one-price shops, negative mean spend, errors naming customers.

Expected values come from independent computations in the tests (numerical integration,
scipy.stats densities, a separate optimizer) or from published estimates.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats

from segflow.errors import InputError, SegflowError
from segflow.models import (
    BetaGeoModel,
    ConstantSpendModel,
    DegenerateSpendError,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    compress,
    fit_spend_model,
    score_customers,
)


def _bgnbd_triples(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    model = BetaGeoModel()
    T = np.random.default_rng(seed).uniform(5, 40, size=n).round()
    sim = model.simulate(T, random_state=seed, params={"r": 0.5, "alpha": 3.0, "a": 0.8, "b": 2.5})
    frame = pd.DataFrame(sim)
    return frame.groupby(["x", "t_x", "T"], as_index=False).size().rename(columns={"size": "count"})


# -- T = 0 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel])
def test_t_zero_customers_do_not_change_the_fit(cls) -> None:
    triples = _bgnbd_triples()
    newcomers = pd.DataFrame({"x": [0], "t_x": [0.0], "T": [0.0], "count": [37]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        without = cls().fit(triples)
        with_zero = cls().fit(pd.concat([triples, newcomers], ignore_index=True))
    assert with_zero.n_zero_T_ == 37 and without.n_zero_T_ == 0
    assert with_zero.n_customers_ == without.n_customers_ == int(triples["count"].sum())
    for name, value in without.params_.items():
        assert with_zero.params_[name] == pytest.approx(value, rel=1e-8), name
    # the reason it is exact: L(0, 0, 0) = 1 for any parameters
    theta = {n: v * 1.7 for n, v in without.params_.items()}
    zero = pd.DataFrame({"x": [0], "t_x": [0.0], "T": [0.0]})
    assert without.log_likelihood(zero, theta) == pytest.approx(0.0, abs=1e-12)


def test_t_zero_customer_is_scored_as_a_new_customer() -> None:
    """P(alive) = 1 and E[X(t)] of a new customer, here by direct integration of the BG/NBD
    individual-level expectation E[X(t) | lambda, p] = (1 - exp(-lambda p t)) / p over the
    Gamma(r, alpha) x Beta(a, b) mixing distributions (FHL 2005, eq. 7 in integral form)."""
    import ibis

    model = BetaGeoModel().fit(_bgnbd_triples())
    summary = ibis.memtable(pd.DataFrame({
        "customer_id": ["new", "old"], "x": [0, 2], "t_x": [0.0, 10.0], "T": [0.0, 20.0],
        "monetary_value": [None, 30.0],
    }))
    scores = score_customers(summary, model, horizon=52, time_unit="W").execute()
    new = scores.set_index("customer_id").loc["new"]
    assert new.p_alive == 1.0
    r, alpha, a, b = (model.params_[k] for k in ("r", "alpha", "a", "b"))
    t = 52.0

    def inner(p: float) -> float:
        # E over lambda of (1 - exp(-lambda p t)) = 1 - (alpha / (alpha + p t))^r
        return (1 - (alpha / (alpha + p * t)) ** r) / p * stats.beta.pdf(p, a, b)

    expected, _ = integrate.quad(inner, 0, 1, limit=200)
    assert new.expected_purchases == pytest.approx(expected, rel=1e-6)


# -- units of money and time -----------------------------------------------------------------
def test_gamma_gamma_is_invariant_to_the_unit_of_money(cdnow_summary: pd.DataFrame) -> None:
    """Published on CDNOW (Fader & Hardie 2013): p 6.25, q 3.74, gamma 15.44 in dollars.
    In a currency with 1,000,000 units per dollar p and q stay, gamma scales."""
    pairs = compress(cdnow_summary, ("x", "monetary_value"))
    base = GammaGammaModel().fit(pairs)
    assert (round(base.params_["p"], 2), round(base.params_["q"], 2),
            round(base.params_["gamma"], 2)) == (6.25, 3.74, 15.44)
    for factor in (1e-6, 1e6, 1e9):
        scaled = pairs.assign(monetary_value=pairs.monetary_value * factor)
        model = GammaGammaModel().fit(scaled)
        assert model.params_["p"] == pytest.approx(base.params_["p"], rel=1e-6)
        assert model.params_["q"] == pytest.approx(base.params_["q"], rel=1e-6)
        assert model.params_["gamma"] == pytest.approx(base.params_["gamma"] * factor, rel=1e-6)
        assert model.standard_errors_["gamma"] == pytest.approx(
            base.standard_errors_["gamma"] * factor, rel=1e-3)
        # the density of the mean spend changes by the Jacobian: LL - n ln(factor)
        n = base.n_customers_
        assert model.log_likelihood_ == pytest.approx(base.log_likelihood_ - n * np.log(factor),
                                                      rel=1e-9)
        spend = model.expected_spend([0, 3], [0.0, 40.0 * factor])
        assert spend == pytest.approx(base.expected_spend([0, 3], [0.0, 40.0]) * factor, rel=1e-6)


@pytest.mark.parametrize("cls", [BetaGeoModel, ParetoNBDModel])
def test_count_models_are_invariant_to_the_time_unit(cls, cdnow_summary: pd.DataFrame) -> None:
    """Times in a 10^6 times shorter unit put alpha (and beta) past e^15, the boundary the
    fit used to stop at; in a 10^5 times longer unit far below 1."""
    triples = compress(cdnow_summary)
    base = cls().fit(triples)
    for factor in (1e-5, 1e6):
        scaled = triples.assign(t_x=triples.t_x * factor, T=triples["T"] * factor)
        model = cls().fit(scaled)
        for name, value in base.params_.items():
            unit = factor if name in ("alpha", "beta") else 1.0
            assert model.params_[name] == pytest.approx(value * unit, rel=1e-5), (factor, name)
        # P(alive) does not depend on the unit
        x, t_x, T = (triples[c].to_numpy() for c in ("x", "t_x", "T"))
        assert model.p_alive(x, t_x * factor, T * factor) == pytest.approx(
            base.p_alive(x, t_x, T), abs=1e-6)


def test_penalizer_stays_on_the_users_scale() -> None:
    """The L2 penalty is on the parameters in the user's unit (lifetimes' convention), so the
    optimum of the penalised fit is that of an independent optimizer on the same objective."""
    triples = _bgnbd_triples(800)
    penalizer = 0.01
    model = BetaGeoModel(penalizer=penalizer).fit(triples)
    w = triples["count"].to_numpy(float)
    data = {c: triples[c].to_numpy(float) for c in ("x", "t_x", "T")}

    def objective(log_theta: np.ndarray) -> float:
        theta = np.exp(log_theta)
        ll = BetaGeoModel._loglik(theta, **data)
        return -(w * ll).sum() / w.sum() + penalizer * (theta**2).sum()

    best = optimize.minimize(objective, np.zeros(4), method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000})
    for name, value in zip(("r", "alpha", "a", "b"), np.exp(best.x), strict=True):
        assert model.params_[name] == pytest.approx(value, rel=1e-4), name


# -- heavy-tailed spend (q <= 1) -----------------------------------------------------------
def _heavy_tailed_pairs(seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 600
    x = rng.integers(1, 6, size=n).astype(float)
    nu = rng.gamma(0.7, 1 / 100.0, size=n)  # q = 0.7 < 1: E(1/nu) infinite
    m = rng.gamma(1.5 * x, 1 / nu) / x
    return pd.DataFrame({"x": x, "monetary_value": m})


def test_q_below_one_matches_an_independent_fit_and_warns() -> None:
    """The mean of x Gamma(p, nu) orders times x is Gamma(p x, nu); mixed over nu ~ Gamma(q,
    gamma) it is beta-prime(p x, q) with scale gamma. Its MLE by Nelder-Mead on
    scipy.stats.betaprime is the independent fit."""
    pairs = _heavy_tailed_pairs()
    with pytest.warns(UserWarning, match=r"q = 0\.\d+ <= 1.*heavy-tailed"):
        model = GammaGammaModel().fit(pairs)
    x, m = pairs.x.to_numpy(), pairs.monetary_value.to_numpy()

    def nll(log_theta: np.ndarray) -> float:
        p, q, gamma = np.exp(log_theta)
        return -stats.betaprime.logpdf(m * x, p * x, q, scale=gamma).sum()

    best = optimize.minimize(nll, np.log([1.0, 1.0, 100.0]), method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 20000})
    p, q, gamma = np.exp(best.x)
    assert q < 1
    assert model.params_["p"] == pytest.approx(p, rel=1e-4)
    assert model.params_["q"] == pytest.approx(q, rel=1e-4)
    assert model.params_["gamma"] == pytest.approx(gamma, rel=1e-4)
    # a repeat buyer's expected spend is finite: the posterior mean of p / nu with
    # nu | x, m ~ Gamma(q + p x, rate gamma + m x), by numerical expectation
    p, q, gamma = (model.params_[k] for k in ("p", "q", "gamma"))
    post = stats.gamma(q + p * 1, scale=1 / (gamma + 500.0 * 1))
    expected = post.expect(lambda v: p / v)
    got = model.expected_spend([1, 0], [500.0, np.nan])
    assert got[0] == pytest.approx(expected, rel=1e-6)
    assert np.isnan(got[1])  # infinite for a customer without repeat purchases
    assert model.population_mean_spend() == float("inf")


def test_q_below_one_scores_everybody_and_leaves_spend_empty_only_where_infinite() -> None:
    import ibis

    pairs = _heavy_tailed_pairs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spend = GammaGammaModel().fit(pairs)
    count = BetaGeoModel().fit(_bgnbd_triples())
    summary = ibis.memtable(pd.DataFrame({
        "customer_id": ["a", "b", "c"], "x": [0, 1, 4], "t_x": [0.0, 3.0, 20.0],
        "T": [30.0, 30.0, 30.0], "monetary_value": [None, 500.0, 80.0],
    }))
    scores = score_customers(summary, count, horizon=52, spend_model=spend).execute()
    scores = scores.set_index("customer_id")
    assert scores.p_alive.notna().all() and scores.expected_purchases.notna().all()
    assert pd.isna(scores.loc["a", "expected_spend"]) and pd.isna(scores.loc["a", "clv"])
    p, q, gamma = (spend.params_[k] for k in ("p", "q", "gamma"))
    assert scores.loc["b", "expected_spend"] == pytest.approx(p * (gamma + 500) / (p + q - 1))
    assert scores.loc["c", "clv"] == pytest.approx(
        scores.loc["c", "expected_spend"] * scores.loc["c", "discounted_purchases"])


# -- one price, negative mean spend ---------------------------------------------------------
def test_one_price_is_degenerate_and_spends_that_price() -> None:
    # the mean of ten 19.99 orders differs from 19.99 in the last bit (summation)
    noisy = sum([19.99] * 10) / 10
    assert noisy != 19.99
    pairs = pd.DataFrame({"x": [1, 2, 3, 5], "monetary_value": [19.99, noisy, 19.99, 19.99],
                          "count": [40, 20, 10, 3]})
    with pytest.raises(DegenerateSpendError, match="same mean spend 19.99") as info:
        GammaGammaModel().fit(pairs)
    # the price as written (the short decimal the means round to), not their noisy average
    assert info.value.price == 19.99 and info.value.buyers == 73
    model, notes = fit_spend_model(pairs)
    assert isinstance(model, ConstantSpendModel) and model.value == 19.99
    assert notes and "single price" in notes[0]
    assert model.expected_spend([0, 4], [np.nan, 19.99]) == pytest.approx([19.99, 19.99])
    # only noisy means (every one off in its last bit): still the price as written
    above = np.nextafter(19.99, 20.0)
    for means in ([noisy] * 4, [above] * 4, [noisy, above, noisy, above]):
        with pytest.raises(DegenerateSpendError) as only_noisy:
            GammaGammaModel().fit(pairs.assign(monetary_value=means))
        assert only_noisy.value.price == 19.99
    # a price without a short decimal (20 / 7) is kept to the digits it has
    seventh = pairs.assign(monetary_value=[20 / 7, 40 / 14, 60 / 21, 20 / 7])
    with pytest.raises(DegenerateSpendError) as info:
        GammaGammaModel().fit(seventh)
    assert info.value.price == pytest.approx(20 / 7, rel=1e-12)


def test_negative_mean_spend_is_left_out_of_the_fit_and_scored(cdnow_summary: pd.DataFrame) -> None:
    import ibis

    pairs = compress(cdnow_summary, ("x", "monetary_value"))
    base = GammaGammaModel().fit(pairs)
    bad = pd.DataFrame({"x": [2, 1], "monetary_value": [-15.0, 0.0], "count": [2, 1]})
    with pytest.warns(UserWarning, match="3 repeat buyers with a zero or negative mean spend"):
        model = GammaGammaModel().fit(pd.concat([pairs, bad], ignore_index=True))
    assert model.n_nonpositive_spend_ == 3
    for name, value in base.params_.items():
        assert model.params_[name] == pytest.approx(value, rel=1e-8)
    summary = ibis.memtable(pd.DataFrame({
        "customer_id": ["neg"], "x": [2], "t_x": [5.0], "T": [20.0], "monetary_value": [-15.0]}))
    count = BetaGeoModel().fit(compress(cdnow_summary))
    row = score_customers(summary, count, horizon=39, spend_model=model).execute().iloc[0]
    assert row.expected_spend == pytest.approx(model.population_mean_spend())


# -- messages --------------------------------------------------------------------------------
def test_no_repeat_buyers_message_does_not_advise_a_coarser_unit() -> None:
    once = pd.DataFrame({"x": [0, 0], "t_x": [0.0, 0.0], "T": [10.0, 20.0], "count": [5, 7]})
    for cls in (BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel):
        with pytest.raises(SegflowError, match="no repeat buyers") as info:
            cls().fit(once)
        assert "coarser" not in str(info.value)
        assert "longer calibration period" in str(info.value)


def test_errors_name_the_customer_not_an_internal_row() -> None:
    per_customer = pd.DataFrame({"customer_id": ["c1", "c2", "c3"], "x": [1, 2, 0],
                                 "t_x": [3.0, 50.0, 0.0], "T": [10.0, 20.0, 5.0]})
    with pytest.raises(InputError, match=r"^customer 'c2', column 't_x': .*, got x=2, t_x=50, T=20$"):
        BetaGeoModel().fit(per_customer)
    spend = pd.DataFrame({"customer_id": ["k1", "k2"], "x": [1, 2],
                          "monetary_value": [10.0, np.inf]})
    with pytest.raises(InputError, match=r"^customer 'k2', column 'monetary_value': expected a finite "
                                         r"number, got inf$"):
        GammaGammaModel().fit(spend)
    compressed = pd.DataFrame({"x": [1, 2], "t_x": [3.0, 50.0], "T": [10.0, 20.0],
                               "count": [4, 9]})
    with pytest.raises(InputError, match=r"^summary row 2, column 't_x': .*, got x=2, t_x=50, "
                                         r"T=20$") as info:
        BetaGeoModel().fit(compressed)
    assert "row 1" not in str(info.value)
