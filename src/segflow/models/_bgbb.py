"""BG/BB: beta-geometric dropout with beta-Bernoulli purchasing at discrete opportunities.

References
----------
Fader, P. S., Hardie, B. G. S. & Shang, J. (2010). Customer-Base Analysis in a Discrete-Time
Noncontractual Setting. *Marketing Science* 29(6), 1086-1108. (FHS 2010; equation numbers
below refer to it)

Model: there are n discrete transaction opportunities after the first (e.g. yearly charity
drives, weekly events). Before each opportunity a living customer dies with probability
theta, theta ~ Beta(gamma, delta); at each opportunity a living customer transacts with
probability p, p ~ Beta(alpha, beta). The summary per customer is x (transactions in the n
opportunities), t_x (the opportunity of the last one, 0 if none) and n.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import betaln, gammaln, logsumexp

from segflow.errors import SegflowError
from segflow.models._btyd_base import BTYDModel
from segflow.models._btyd_input import (
    Prediction,
    as_arrays,
    check_horizon,
    check_recency,
    check_triples,
    pandas_aware,
    refuse_rows,
)


class BetaGeoBetaBinomModel(BTYDModel):
    """BG/BB model for discrete transaction opportunities (Fader, Hardie & Shang 2010).

    Parameters
    ----------
    penalizer, n_starts, tol, max_iter, random_state
        As :class:`segflow.models.BetaGeoModel`.

    Attributes
    ----------
    params_ : dict
        ``alpha``, ``beta`` (Beta of the transaction probability p), ``gamma``, ``delta``
        (Beta of the dropout probability theta).
    log_likelihood_, standard_errors_, n_customers_, converged_, fit_seconds_
        As :class:`segflow.models.BetaGeoModel`.

    Notes
    -----
    Input columns ``x, t_x, n`` (also accepted: ``frequency, recency, periods``) and an
    optional ``count`` (or ``weights``). All three are integers with 0 <= x <= t_x <= n.
    """

    _param_names = ("alpha", "beta", "gamma", "delta")
    _columns = ("x", "t_x", "n")

    _integer_columns = ("x", "t_x", "n")

    def _select(
        self, data: dict[str, np.ndarray], weights: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Check the rows as given (naming them): 0 <= x <= t_x <= n (whole numbers, checked
        by :func:`as_triples`), t_x = 0 exactly when x = 0."""
        x, t_x, n = data["x"], data["t_x"], data["n"]
        where = getattr(self, "_where", None)
        check_recency(x, t_x, n, t_name="n", where=where)
        bad = x > t_x
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            refuse_rows(bad, "x", "x <= t_x (one transaction per opportunity at most)",
                        f"x={x[row]:g}, t_x={t_x[row]:g}, n={n[row]:g}", where=where, values=False)
        return data, weights

    def _check_data(self, data: dict[str, np.ndarray], weights: np.ndarray) -> None:
        x = data["x"]
        if float(weights[x > 0].sum()) == 0:
            raise SegflowError(
                "BetaGeoBetaBinomModel: no customer transacts after the first opportunity; "
                "the transaction and dropout probabilities cannot be estimated"
            )

    @staticmethod
    def _loglik(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, n: np.ndarray) -> np.ndarray:
        alpha, beta, gamma, delta = params
        # FHS (2010) eq. (5):
        # L = B(a+x, b+n-x)/B(a,b) B(g, d+n)/B(g,d)
        #     + sum_{i=0}^{n-t_x-1} B(a+x, b+t_x-x+i)/B(a,b) B(g+1, d+t_x+i)/B(g,d)
        base = -betaln(alpha, beta) - betaln(gamma, delta)
        terms = [betaln(alpha + x, beta + n - x) + betaln(gamma, delta + n)]
        gaps = n - t_x
        for i in range(int(np.max(gaps)) if np.size(gaps) else 0):  # (0-d: one customer)
            term = betaln(alpha + x, beta + t_x - x + i) + betaln(gamma + 1, delta + t_x + i)
            terms.append(np.where(i < gaps, term, -np.inf))
        return base + logsumexp(np.stack(terms), axis=0)

    def _inputs(self, method: str, x: Any, t_x: Any, n: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fitted first, then (x, t_x, n) as float arrays of one shape in the fit's domain:
        whole numbers, 0 <= x <= t_x <= n, t_x = 0 when x = 0 (an ``ArgumentError``, a
        ``ValueError``, naming the argument, as :meth:`BetaGeoModel.p_alive`)."""
        self._params()
        x, t_x, n = as_arrays(("x", "t_x", "n"), x, t_x, n)
        check_triples(f"{type(self).__name__}.{method}", x, t_x, n, t_name="n", discrete=True)
        return x, t_x, n

    def _horizon(self, method: str, t: Any, name: str = "t") -> Any:
        """A number of future opportunities, checked (a whole number >= 0)."""
        self._params()
        return check_horizon(f"{type(self).__name__}.{method}", t, name=name, integer=True)

    @pandas_aware("x", "t_x", "n")
    def p_alive(self, x: Any, t_x: Any, n: Any) -> Prediction:
        """P(alive at opportunity n+1 | x, t_x, n) (FHS 2010 eq. 11)."""
        x, t_x, n = self._inputs("p_alive", x, t_x, n)
        theta = self._params()
        alpha, beta, gamma, delta = theta
        log_num = (
            betaln(alpha + x, beta + n - x) - betaln(alpha, beta)
            + betaln(gamma, delta + n + 1) - betaln(gamma, delta)
        )
        return np.exp(log_num - self._loglik(theta, x=x, t_x=t_x, n=n))

    @pandas_aware("t", "x", "t_x", "n")
    def expected_purchases(self, t: int, x: Any, t_x: Any, n: Any) -> Prediction:
        """E[X(n, n+t) | x, t_x, n]: transactions in the next t opportunities (FHS eq. 13)."""
        t = self._horizon("expected_purchases", t)
        x, t_x, n = self._inputs("expected_purchases", x, t_x, n)
        theta = self._params()
        alpha, beta, gamma, delta = theta
        gamma = _off_one(gamma)
        # valid for gamma < 1 too: delta/(gamma-1) and the bracket are then both negative
        log_head = (
            betaln(alpha + x + 1, beta + n - x) - betaln(alpha, beta)
            + np.log(delta / abs(gamma - 1)) + gammaln(gamma + delta) - gammaln(1 + delta)
        )
        bracket = np.exp(gammaln(1 + delta + n) - gammaln(gamma + delta + n)) - np.exp(
            gammaln(1 + delta + n + t) - gammaln(gamma + delta + n + t)
        )
        bracket = bracket * np.sign(gamma - 1)
        return np.exp(log_head - self._loglik(theta, x=x, t_x=t_x, n=n)) * bracket

    @pandas_aware("n")
    def expected_purchases_new(self, n: Any) -> Prediction:
        """E[X(n)]: transactions of a new customer in the first n opportunities (FHS eq. 8)."""
        n = np.asarray(self._horizon("expected_purchases_new", n, name="n"), dtype=float)
        alpha, beta, gamma, delta = self._params()
        gamma = _off_one(gamma)
        return alpha / (alpha + beta) * delta / (gamma - 1) * (
            1 - np.exp(gammaln(gamma + delta) - gammaln(gamma + delta + n) + gammaln(1 + delta + n) - gammaln(1 + delta))
        )

    @pandas_aware("t", "x", "t_x", "n")
    def p_no_purchase(self, t: int, x: Any, t_x: Any, n: Any) -> Prediction:
        """P(no transaction in the next t opportunities) = L(x, t_x, n+t) / L(x, t_x, n)."""
        t = self._horizon("p_no_purchase", t)
        x, t_x, n = self._inputs("p_no_purchase", x, t_x, n)
        theta = self._params()
        return np.exp(self._loglik(theta, x=x, t_x=t_x, n=n + t) - self._loglik(theta, x=x, t_x=t_x, n=n))

    def simulate(self, n: Any, *, random_state: int | None = None, params: dict | None = None) -> dict:
        """Draw (x, t_x) for customers with n opportunities (Monte Carlo tests, bootstrap)."""
        n = np.asarray(n, dtype=int)
        theta = self._params() if params is None else np.array([params[k] for k in self._param_names])
        alpha, beta, gamma, delta = theta
        rng = np.random.default_rng(random_state)
        size = len(n)
        p = rng.beta(alpha, beta, size=size)
        death = rng.beta(gamma, delta, size=size)
        alive = np.ones(size, dtype=bool)
        x = np.zeros(size)
        t_x = np.zeros(size)
        for k in range(1, int(n.max()) + 1 if size else 1):
            open_ = k <= n
            alive &= ~(open_ & (rng.random(size) < death))
            buy = alive & open_ & (rng.random(size) < p)
            x[buy] += 1
            t_x[buy] = k
        return {"x": x, "t_x": t_x, "n": n.astype(float)}


def _off_one(gamma: float) -> float:
    """gamma = 1 is a removable singularity of eqs. (8) and (13); step just beside it."""
    return gamma + 1e-7 if abs(gamma - 1) < 1e-7 else gamma
