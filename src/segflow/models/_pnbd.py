"""Pareto/NBD: Poisson purchasing with an exponential lifetime, continuous time.

References
----------
Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987). Counting Your Customers: Who Are
They and What Will They Do Next? *Management Science* 33(1), 1-24. (SMC 1987)

Fader, P. S. & Hardie, B. G. S. (2005). A Note on Deriving the Pareto/NBD Model and Related
Expressions. Note, brucehardie.com. (FH 2005 note; equation numbers below refer to it)

Model: while alive a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha);
the lifetime is exponential with rate mu ~ Gamma(s, beta); lambda and mu independent.

Numerics. The likelihood (FH 2005 note, eq. 19) holds the term A0, a difference of two
Gauss hypergeometric functions 2F1(r+s+x, s+1; r+s+x+1; z) whose argument z tends to 1 when
alpha >> beta (or r+x; with alpha < beta): there the series diverges like (1-z)^-s and direct
evaluation loses all digits. We apply Euler's transformation
``2F1(a, b; c; z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z)`` with c - a = 1, which turns each term
into ``2F1(1, r+x; r+s+x+1; z)`` (or ``2F1(1, s+1; r+s+x+1; z)``), a series of positive terms
that converges at z = 1, times closed-form powers taken in log space; the difference is then
formed with a signed log-sum-exp.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import gammaln, hyp2f1, logsumexp

from segflow.models._bgnbd import _ContinuousBTYD


def _log_a0_term(
    r: float, alpha: float, s: float, beta: float, x: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """ln of one A0 term of FH (2005) eq. (19), after Euler's transformation.

    For alpha >= beta:  2F1(r+s+x, s+1; r+s+x+1; z)/(alpha+t)^(r+s+x), z = (alpha-beta)/(alpha+t)
        = (beta+t)^-s (alpha+t)^-(r+x) 2F1(1, r+x; r+s+x+1; z).
    For alpha < beta:   2F1(r+s+x, r+x; r+s+x+1; z)/(beta+t)^(r+s+x),   z = (beta-alpha)/(beta+t)
        = (alpha+t)^(1-r-x) (beta+t)^-(s+1) 2F1(1, s+1; r+s+x+1; z).
    """
    c = r + s + x + 1
    if alpha >= beta:
        z = (alpha - beta) / (alpha + t)
        return -s * np.log(beta + t) - (r + x) * np.log(alpha + t) + np.log(hyp2f1(1.0, r + x, c, z))
    z = (beta - alpha) / (beta + t)
    return (1 - r - x) * np.log(alpha + t) - (s + 1) * np.log(beta + t) + np.log(
        hyp2f1(1.0, s + 1, c, z)
    )


def _log_bracket(
    r: float, alpha: float, s: float, beta: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """ln of the bracket of eq. (19) and ln of its first ("alive") term.

    bracket = (alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) [A0(t_x) - A0(T)]
    """
    log_alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    log_ratio = np.log(s) - np.log(r + s + x)
    terms = np.stack(
        [
            log_alive,
            log_ratio + _log_a0_term(r, alpha, s, beta, x, t_x),
            log_ratio + _log_a0_term(r, alpha, s, beta, x, T),
        ]
    )
    signs = np.array([1.0, 1.0, -1.0]).reshape((3,) + (1,) * (terms.ndim - 1))
    signs = np.broadcast_to(signs, terms.shape)
    return logsumexp(terms, axis=0, b=signs), log_alive


class ParetoNBDModel(_ContinuousBTYD):
    """Pareto/NBD model (Schmittlein, Morrison & Colombo 1987).

    Parameters
    ----------
    penalizer, n_starts, tol, max_iter, random_state
        As :class:`segflow.models.BetaGeoModel`.

    Attributes
    ----------
    params_ : dict
        ``r``, ``alpha`` (Gamma of purchase rates), ``s``, ``beta`` (Gamma of dropout rates),
        rates per time unit of the summary.
    log_likelihood_, standard_errors_, n_customers_, converged_, fit_seconds_
        As :class:`segflow.models.BetaGeoModel`.

    Notes
    -----
    Assumes Poisson purchasing while alive, an exponential lifetime that can end at any time
    (not only after purchases), Gamma heterogeneity in both rates, and independence of the
    two rates.
    """

    _param_names = ("r", "alpha", "s", "beta")
    _param_units = (0, 1, 0, 1)

    @staticmethod
    def _loglik(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        r, alpha, s, beta = params
        # FH (2005) eq. (19): L = Gamma(r+x) alpha^r beta^s / Gamma(r) * bracket
        log_bracket, _ = _log_bracket(r, alpha, s, beta, x, t_x, T)
        return gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + log_bracket

    def _p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(alive at T | x, t_x, T) (FH 2005 note, eq. 20): the alive term over the bracket."""
        r, alpha, s, beta = self._params()
        log_bracket, log_alive = _log_bracket(r, alpha, s, beta, x, t_x, T)
        return np.exp(log_alive - log_bracket)

    def _expected_purchases(self, t: Any, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """E[X(T, T+t) | x, t_x, T] (FH 2005 note, eq. 21), for s != 1.

        P(alive) (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)].
        """
        r, alpha, s, beta = self._params()
        if abs(s - 1) < 1e-8:  # limit s -> 1: (beta+T) ln((beta+T+t)/(beta+T))
            tail = (beta + T) * np.log((beta + T + t) / (beta + T))
        else:
            tail = (beta + T) / (s - 1) * (1 - ((beta + T) / (beta + T + t)) ** (s - 1))
        return self._p_alive(x, t_x, T) * (r + x) / (alpha + T) * tail

    def _expected_purchases_new(self, t: np.ndarray) -> np.ndarray:
        """E[X(t)] = r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)] (FH 2005 note, eq. 17)."""
        r, alpha, s, beta = self._params()
        if abs(s - 1) < 1e-8:
            return r * beta / alpha * np.log((beta + t) / beta)
        return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))

    def simulate(self, T: Any, *, random_state: int | None = None, params: dict | None = None) -> dict:
        """Draw (x, t_x) for customers observed for T time units after their first purchase."""
        T = np.asarray(T, dtype=float)
        theta = self._params() if params is None else np.array([params[n] for n in self._param_names])
        r, alpha, s, beta = theta
        rng = np.random.default_rng(random_state)
        n = len(T)
        lam = rng.gamma(r, 1.0 / alpha, size=n)
        mu = rng.gamma(s, 1.0 / beta, size=n)
        end = np.minimum(rng.exponential(1.0 / mu), T)
        x = rng.poisson(lam * end).astype(float)
        # given x events of a Poisson process in (0, end], the last is end * U^(1/x)
        t_x = np.where(x > 0, end * rng.random(n) ** (1.0 / np.maximum(x, 1)), 0.0)
        return {"x": x, "t_x": t_x, "T": T}
