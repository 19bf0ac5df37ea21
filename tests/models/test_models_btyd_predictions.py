"""Predictions against closed forms, numerical integration and Monte Carlo of each model.

The simulators here are written independently of the models' own ``simulate`` methods: whole
purchase paths are drawn per customer (event-time matrices), then cut at T and T + t.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from segflow.models import (
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
)


def _fitted(cls, **params):
    model = cls()
    model.params_ = params
    return model


BG = dict(r=0.6, alpha=4.0, a=0.8, b=2.5)
PNBD = dict(r=0.55, alpha=10.6, s=0.6, beta=11.7)


# -- likelihood against numerical integration over the individual-level model --------------
# Substitutions lam = u^(1/r), p = w^(1/a) remove the integrable singularities at 0:
# Gamma(r, alpha) density d lam = alpha^r/Gamma(r) e^(-alpha lam) du / r, and
# Beta(a, b) density dp = (1-p)^(b-1)/B(a, b) dw / a.
def _gamma_weight(shape: float, rate: float, u: float) -> tuple[float, float]:
    lam = u ** (1 / shape)
    log_w = shape * math.log(rate) - math.lgamma(shape) - rate * lam - math.log(shape)
    return lam, math.exp(log_w)


@pytest.mark.parametrize(("x", "t_x", "T"), [(0, 0.0, 30.0), (1, 5.0, 30.0), (4, 27.5, 30.0)])
def test_bgnbd_likelihood_by_integration(x: int, t_x: float, T: float) -> None:
    r, alpha, a, b = BG.values()
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)

    def individual(w: float, u: float) -> float:
        lam, g = _gamma_weight(r, alpha, u)
        p = w ** (1 / a)
        like = (1 - p) ** x * lam**x * math.exp(-lam * T)
        if x > 0:
            like += p * (1 - p) ** (x - 1) * lam**x * math.exp(-lam * t_x)
        return like * g * (1 - p) ** (b - 1) * math.exp(-log_beta) / a

    value, _ = integrate.dblquad(individual, 0, 50**r, 0, 1, epsabs=1e-14, epsrel=1e-9)
    got = BetaGeoModel._loglik(np.array(list(BG.values())), np.array([x]), np.array([t_x]), np.array([T]))
    assert got[0] == pytest.approx(np.log(value), abs=1e-6)


@pytest.mark.parametrize(
    ("params", "x", "t_x", "T"),
    [
        (PNBD, 0, 0.0, 30.0),
        (PNBD, 2, 10.0, 30.0),
        (dict(r=0.5, alpha=2.0, s=0.8, beta=30.0), 3, 20.0, 39.0),  # alpha < beta branch
        (dict(r=0.5, alpha=80.0, s=0.4, beta=1.0), 6, 2.0, 39.0),  # z close to 1
    ],
)
def test_pnbd_likelihood_by_integration(params: dict, x: int, t_x: float, T: float) -> None:
    r, alpha, s, beta = params.values()

    def individual(v: float, u: float) -> float:
        # SMC (1987): lam^x e^-(lam+mu)T + lam^x mu/(lam+mu) [e^-(lam+mu)t_x - e^-(lam+mu)T]
        lam, g = _gamma_weight(r, alpha, u)
        mu, h = _gamma_weight(s, beta, v)
        k = lam + mu
        like = lam**x * math.exp(-k * T) + lam**x * mu / k * (math.exp(-k * t_x) - math.exp(-k * T))
        return like * g * h

    value, _ = integrate.dblquad(individual, 0, 5**r, 0, 20**s, epsabs=1e-16, epsrel=1e-9)
    got = ParetoNBDModel._loglik(np.array(list(params.values())), np.array([x]), np.array([t_x]), np.array([T]))
    assert got[0] == pytest.approx(np.log(value), abs=1e-5)


def test_closed_forms_small_cases() -> None:
    bg = _fitted(BetaGeoModel, **BG)
    # no repeat purchase: ln L = r ln(alpha/(alpha+T)), P(alive) = 1
    ll = BetaGeoModel._loglik(np.array(list(BG.values())), np.array([0.0]), np.array([0.0]), np.array([10.0]))
    assert ll[0] == pytest.approx(BG["r"] * np.log(4.0 / 14.0))
    assert bg.p_alive(0, 0, 10) == 1.0
    # E[X(t)] at t = 0 is 0; P(no purchase | x=0) = ((alpha+T)/(alpha+T+t))^r
    assert bg.expected_purchases_new(0.0) == pytest.approx(0.0, abs=1e-12)
    assert bg.p_no_purchase(5.0, 0, 0, 10.0) == pytest.approx((14 / 19) ** BG["r"])
    # Pareto/NBD unconditional expectation vs its closed form, and P(alive) in (0, 1)
    pn = _fitted(ParetoNBDModel, **PNBD)
    r, alpha, s, beta = PNBD.values()
    assert pn.expected_purchases_new(39.0) == pytest.approx(
        r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + 39.0)) ** (s - 1))
    )
    assert 0 < pn.p_alive(3, 5.0, 30.0) < pn.p_alive(3, 25.0, 30.0) < 1
    # Gamma-Gamma: x = 0 gets the population mean p gamma / (q - 1)
    gg = _fitted(GammaGammaModel, p=6.25, q=3.74, gamma=15.44)
    assert gg.expected_spend(0, np.nan) == pytest.approx(6.25 * 15.44 / 2.74)
    assert gg.expected_spend(5, 40.0) == pytest.approx(6.25 * (15.44 + 200) / (6.25 * 5 + 2.74))


# -- Monte Carlo of each model ------------------------------------------------------------
def _walk(lam: np.ndarray, stop: np.ndarray, after_purchase, T: float, t: float, rng):
    """Step through purchase events of all customers at once (loop over event index).

    ``stop`` is a time at which the customer dies (inf if none); ``after_purchase(idx)``
    returns which of the customers ``idx`` die right after their current purchase.
    Returns calibration x, t_x, purchases in (T, T+t] and the alive-at-T flag.
    """
    n = len(lam)
    now = np.zeros(n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    future = np.zeros(n)
    death = stop.copy()
    active = np.arange(n)
    while active.size:
        now[active] += rng.exponential(1.0, size=active.size) / lam[active]
        ok = now[active] <= np.minimum(death[active], T + t)
        idx = active[ok]
        cal = now[idx] <= T
        x[idx[cal]] += 1
        t_x[idx[cal]] = now[idx[cal]]
        future[idx[~cal]] += 1
        dies = after_purchase(idx)
        death[idx[dies]] = now[idx[dies]]
        active = idx[~dies]
    return x, t_x, future, death > T


def _simulate(cls, params: dict, n: int, T: float, t: float, rng: np.random.Generator):
    if cls is ParetoNBDModel:
        r, alpha, s, beta = params.values()
        lam = rng.gamma(r, 1 / alpha, size=n)
        mu = rng.gamma(s, 1 / beta, size=n)
        return _walk(lam, rng.exponential(1 / mu), lambda idx: np.zeros(len(idx), bool), T, t, rng)
    r, alpha, a, b = params.values()
    lam = rng.gamma(r, 1 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    stop = np.full(n, np.inf)
    if cls is ModifiedBetaGeoModel:  # dropout right after the first purchase, at time 0
        stop[rng.random(n) < p] = 0.0
    return _walk(lam, stop, lambda idx: rng.random(len(idx)) < p[idx], T, t, rng)


@pytest.mark.slow
@pytest.mark.parametrize("cls", [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel])
def test_monte_carlo_conditional_predictions(cls) -> None:
    rng = np.random.default_rng(7)
    n, T, t = 200_000, 30.0, 20.0
    params = PNBD if cls is ParetoNBDModel else BG
    model = _fitted(cls, **params)
    x, t_x, future, alive = _simulate(cls, params, n, T, t, rng)
    frame = pd.DataFrame({"x": x, "t_x": t_x, "future": future, "alive": alive, "none": future == 0})
    frame["e"] = model.expected_purchases(t, x, t_x, np.full(n, T))
    frame["pa"] = model.p_alive(x, t_x, np.full(n, T))
    frame["p0"] = model.p_no_purchase(t, x, t_x, np.full(n, T))
    # unconditional: E[X(T)] of a new customer
    assert x.mean() == pytest.approx(model.expected_purchases_new(T), abs=4 * x.std() / np.sqrt(n))
    # conditional expectations by calibration frequency (what the validation plots show)
    for k, g in frame.groupby(np.minimum(frame.x, 4)):
        m = len(g)
        assert g.future.mean() == pytest.approx(g.e.mean(), abs=4 * g.future.std() / np.sqrt(m) + 1e-3), k
        assert g.alive.mean() == pytest.approx(g.pa.mean(), abs=4 * 0.5 / np.sqrt(m)), k
        assert g.none.mean() == pytest.approx(g.p0.mean(), abs=4 * 0.5 / np.sqrt(m)), k


@pytest.mark.slow
def test_monte_carlo_bgbb() -> None:
    params = dict(alpha=1.2, beta=0.75, gamma=0.66, delta=2.8)
    model = _fitted(BetaGeoBetaBinomModel, **params)
    rng = np.random.default_rng(11)
    size, n, extra = 200_000, 6, 5
    p = rng.beta(1.2, 0.75, size=size)
    theta = rng.beta(0.66, 2.8, size=size)
    # dies before opportunity D, D ~ Geometric(theta): alive at opportunities 1..D-1
    dies_before = rng.geometric(theta)
    buys = rng.random((size, n + extra)) < p[:, None]
    opp = np.arange(1, n + extra + 1)[None, :]
    buys &= opp < dies_before[:, None]
    x = buys[:, :n].sum(axis=1)
    t_x = np.where(x > 0, (buys[:, :n] * opp[:, :n]).max(axis=1), 0)
    future = buys[:, n:].sum(axis=1)
    alive = dies_before > n + 1
    frame = pd.DataFrame({"x": x, "future": future, "alive": alive})
    frame["e"] = model.expected_purchases(extra, x, t_x, n)
    frame["pa"] = model.p_alive(x, t_x, n)
    frame["p0"] = model.p_no_purchase(extra, x, t_x, n)
    frame["none"] = future == 0
    assert x.mean() == pytest.approx(model.expected_purchases_new(n), abs=4 * x.std() / np.sqrt(size))
    for k, g in frame.groupby("x"):
        m = len(g)
        assert g.future.mean() == pytest.approx(g.e.mean(), abs=4 * g.future.std() / np.sqrt(m) + 1e-3), k
        assert g.alive.mean() == pytest.approx(g.pa.mean(), abs=4 * 0.5 / np.sqrt(m)), k
        assert g.none.mean() == pytest.approx(g.p0.mean(), abs=4 * 0.5 / np.sqrt(m)), k


def test_monte_carlo_gamma_gamma() -> None:
    p, q, gamma = 6.25, 3.74, 15.44
    model = _fitted(GammaGammaModel, p=p, q=q, gamma=gamma)
    rng = np.random.default_rng(5)
    n = 400_000
    x = rng.integers(1, 8, size=n).astype(float)
    nu = rng.gamma(q, 1 / gamma, size=n)
    m = rng.gamma(p * x, 1 / nu) / x
    truth = p / nu  # the customer's true mean transaction value
    pred = model.expected_spend(x, m)
    frame = pd.DataFrame({"x": x, "bin": pd.qcut(m, 5, labels=False), "err": truth - pred})
    for _, g in frame.groupby(["x", "bin"]):
        assert abs(g.err.mean()) < 4 * g.err.std() / np.sqrt(len(g)) + 1e-3
