"""BG/NBD and MBG/NBD: beta-geometric dropout with Poisson purchasing, continuous time.

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting Your Customers" the Easy Way:
An Alternative to the Pareto/NBD Model. *Marketing Science* 24(2), 275-284. (FHL 2005)

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2007). Computing P(alive) Using the BG/NBD Model.
Note, brucehardie.com.

Batislam, E. P., Denizel, M. & Filiztekin, A. (2007). Empirical validation and comparison of
models for customer base analysis. *International Journal of Research in Marketing* 24(3),
201-209. (MBG/NBD)

Model (BG/NBD): while alive a customer buys as a Poisson process with rate lambda,
lambda ~ Gamma(r, alpha) (shape r, rate alpha, in purchases per time unit); after each *repeat*
purchase the customer drops out with probability p, p ~ Beta(a, b). MBG/NBD lets the customer
also drop out right after the first purchase (time 0), so customers with no repeat purchase can
be dead; its P(alive) for x = 0 is below one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma, gammaln, hyp2f1

from segflow.errors import SegflowError
from segflow.models._btyd_base import BTYDModel
from segflow.models._btyd_input import (
    Prediction,
    as_arrays,
    check_horizon,
    check_recency,
    check_triples,
    pandas_aware,
)


def _log_a1(r: float, alpha: float, x: np.ndarray) -> np.ndarray:
    """ln[ Gamma(r+x) alpha^r / Gamma(r) ], the common NBD factor of FHL (2005) eq. (6)."""
    return gammaln(r + x) - gammaln(r) + r * np.log(alpha)


def _bg_family(
    params: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    xu: np.ndarray | None,
    xi: np.ndarray | None,
    shift: int,
    grad: bool,
    tu: np.ndarray | None = None,
    ti: np.ndarray | None = None,
    txu: np.ndarray | None = None,
    txi: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Log-likelihood (and gradient) of BG/NBD (shift=0) and MBG/NBD (shift=1).

    ln L = A1 + ln[ exp(u) + exp(v) ] with
    u = ln B(a, b+x+shift) - ln B(a,b) - (r+x) ln(alpha+T)
    v = ln B(a+1, b+x+shift-1) - ln B(a,b) - (r+x) ln(alpha+t_x)   (BG/NBD: only if x > 0)
    Special functions and logarithms are evaluated once per distinct x, T and t_x and
    gathered (``xu[xi] == x`` etc.), so a row costs one exp and one log1p.
    """
    r, alpha, a, b = params
    if xu is None or xi is None:
        xu, xi = np.unique(x, return_inverse=True)
    if tu is None or ti is None or txu is None or txi is None:
        tu, ti = np.unique(T, return_inverse=True)
        txu, txi = np.unique(t_x, return_inverse=True)
    has_v = (xu > 0) if shift == 0 else np.ones(len(xu), dtype=bool)
    bx = b + xu + shift
    bv_arg = np.where(has_v, bx - 1, b)  # placeholder where v is absent
    lb0 = betaln(a, b)
    log_a1 = gammaln(r + xu) - gammaln(r) + r * np.log(alpha)
    bu = betaln(a, bx) - lb0
    bv = np.where(has_v, betaln(a + 1, bv_arg) - lb0, -np.inf)
    rx = r + x
    l_t = np.log(alpha + tu)[ti]
    l_tx = np.log(alpha + txu)[txi]
    u = bu[xi] - rx * l_t
    v = bv[xi] - rx * l_tx
    # stable ln(e^u + e^v) = max + log1p(e^-|u-v|)
    big = np.maximum(u, v)
    e = np.exp(-np.abs(u - v))
    ll = log_a1[xi] + big + np.log1p(e)
    if not grad:
        return ll, None
    share = 1.0 / (1.0 + e)  # weight of the larger term
    wu = np.where(u >= v, share, 1.0 - share)
    wv = 1.0 - wu
    psi_ab = digamma(a + bx)
    inv_t = (1.0 / (alpha + tu))[ti]
    inv_tx = (1.0 / (alpha + txu))[txi]
    g_r = (digamma(r + xu) - digamma(r))[xi] + np.log(alpha) - wu * l_t - wv * l_tx
    g_alpha = r / alpha - rx * (wu * inv_t + wv * inv_tx)
    g_a = (
        wu * (digamma(a) - psi_ab)[xi]
        + wv * (digamma(a + 1) - psi_ab)[xi]
        - (digamma(a) - digamma(a + b))
    )
    db_v = np.where(has_v, digamma(bv_arg) - psi_ab, 0.0)
    g_b = wu * (digamma(bx) - psi_ab)[xi] + wv * db_v[xi] - (digamma(b) - digamma(a + b))
    return ll, np.stack([g_r, g_alpha, g_a, g_b])


class _ContinuousBTYD(BTYDModel):
    """Shared data checks and derived predictions of the continuous-time count models."""

    _columns = ("x", "t_x", "T")
    _scaled_columns = ("T", "t_x")

    def _select(
        self, data: dict[str, np.ndarray], weights: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Leave out customers with T = 0 (first purchase on the last calibration day).

        Their likelihood is 1 whatever the parameters (no time to repeat: x = t_x = T = 0
        makes every model's L(x, t_x, T) equal to 1), so leaving them out gives the same
        estimates; they are counted in ``n_zero_T_`` and still scored (P(alive) = 1 and the
        expected purchases of a new customer).
        """
        check_recency(data["x"], data["t_x"], data["T"], where=getattr(self, "_where", None))
        zero = data["T"] <= 0
        self.n_zero_T_ = int(round(weights[zero].sum()))
        if not zero.any():
            return data, weights
        if self.n_zero_T_ and weights[~zero].sum() == 0:  # (was "the summary holds no customers")
            raise SegflowError(
                f"{type(self).__name__}: every customer of the summary ({self.n_zero_T_:,}) was first "
                "seen on the last calibration day (T = 0), which tells nothing about purchase "
                "rates or dropout; use a later calibration end")
        return {k: v[~zero] for k, v in data.items()}, weights[~zero]

    def _check_data(self, data: dict[str, np.ndarray], weights: np.ndarray) -> None:
        repeaters = float(weights[data["x"] > 0].sum())
        if repeaters == 0:
            raise SegflowError(
                f"{type(self).__name__}: no repeat buyers in the calibration period (every "
                "customer bought on a single day), so the purchase rate and the dropout "
                "process cannot be estimated. Use a longer calibration period (an earlier "
                "start of the data or a later calibration end); a different time unit does "
                "not help, since purchases are counted as days whatever the unit."
            )
        if repeaters == weights.sum():
            raise SegflowError(
                f"{type(self).__name__}: every customer repeats, so dropout cannot be separated "
                "from purchasing; the model is not identified on these data"
            )

    def _coarsen(
        self, data: dict[str, np.ndarray], weights: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        """Round t_x and T to a grid of _COARSE_GRID steps and re-compress (order kept)."""
        from segflow.models._btyd_base import _COARSE_GRID

        step = float(data["T"].max()) / _COARSE_GRID
        frame = pd.DataFrame(
            {
                "x": data["x"],
                "t_x": np.round(data["t_x"] / step) * step,
                "T": np.maximum(np.round(data["T"] / step), 1.0) * step,
                "w": weights,
            }
        )
        frame["t_x"] = np.minimum(frame["t_x"], frame["T"])
        grouped = frame.groupby(["x", "t_x", "T"], as_index=False, sort=False)["w"].sum()
        cols = {c: grouped[c].to_numpy(dtype=float) for c in ("x", "t_x", "T")}
        return cols, grouped["w"].to_numpy(dtype=float)

    def _prepare(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self._has_gradient:
            return data
        xu, xi = np.unique(data["x"], return_inverse=True)
        tu, ti = np.unique(data["T"], return_inverse=True)
        txu, txi = np.unique(data["t_x"], return_inverse=True)
        return {**data, "xu": xu, "xi": xi, "tu": tu, "ti": ti, "txu": txu, "txi": txi}

    def _arrays(self, x: Any, t_x: Any, T: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if (type(x) is type(t_x) is type(T) is np.ndarray and x.dtype == t_x.dtype == T.dtype == np.float64
                and x.shape == t_x.shape == T.shape):
            return x, t_x, T  # already what the broadcast gives (real-time scoring: 10 us a call)
        x, t_x, T = as_arrays(("x", "t_x", "T"), x, t_x, T)
        return x, t_x, T

    def _inputs(self, method: str, x: Any, t_x: Any, T: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The public door of a prediction: fitted first (scikit-learn's ``NotFittedError``),
        then (x, t_x, T) as float arrays of one shape in the fit's domain
        (:func:`check_triples`: an ``ArgumentError``, a ``ValueError``, naming the argument)."""
        self._params()
        x, t_x, T = self._arrays(x, t_x, T)
        check_triples(f"{type(self).__name__}.{method}", x, t_x, T)
        return x, t_x, T

    def _horizon(self, method: str, t: Any) -> Any:
        """The horizon ``t`` of a prediction, checked (finite, >= 0)."""
        self._params()
        return check_horizon(f"{type(self).__name__}.{method}", t)

    @pandas_aware("x", "t_x", "T")
    def p_alive(self, x: Any, t_x: Any, T: Any) -> Prediction:
        """P(alive at T | x, t_x, T).

        Parameters
        ----------
        x : array-like of whole numbers >= 0
            Repeat purchases in (0, T].
        t_x : array-like
            Time of the last repeat purchase, 0 <= t_x <= T (0 when x = 0).
        T : array-like
            Time since the first purchase, finite and >= 0. The three broadcast together.

        Returns
        -------
        float, pandas.Series or ndarray
            A float for numbers; for pandas Series (``df["frequency"]``...), a Series with
            their index, named after the method; else an array of the broadcast shape. The
            same holds for every prediction method.

        Raises
        ------
        ArgumentError
            A ``ValueError`` naming the first argument out of its domain, the first offending
            value and how many offend (NaN included); also for Series whose indexes differ
            (they are matched by label, never by position).
        """
        return self._p_alive(*self._inputs("p_alive", x, t_x, T))

    @pandas_aware("t", "x", "t_x", "T")
    def expected_purchases(self, t: Any, x: Any, t_x: Any, T: Any) -> Prediction:
        """E[X(T, T+t) | x, t_x, T]: expected purchases in the next ``t`` time units (finite,
        >= 0), arguments as :meth:`p_alive`."""
        t = self._horizon("expected_purchases", t)
        return self._expected_purchases(t, *self._inputs("expected_purchases", x, t_x, T))

    @pandas_aware("t")
    def expected_purchases_new(self, t: Any) -> Prediction:
        """E[X(t)]: expected repeat purchases of a new customer in (0, t], ``t`` finite, >= 0."""
        return self._expected_purchases_new(np.asarray(self._horizon("expected_purchases_new", t), dtype=float))

    @pandas_aware("t", "x", "t_x", "T")
    def p_no_purchase(self, t: Any, x: Any, t_x: Any, T: Any) -> Prediction:
        """P(no purchase in (T, T+t] | x, t_x, T), arguments as :meth:`expected_purchases`.

        The event "x purchases in (0, T] with the last at t_x and none in (T, T+t]" has the
        likelihood L(x, t_x, T+t), so the probability is the ratio L(x, t_x, T+t)/L(x, t_x, T).
        """
        t = self._horizon("p_no_purchase", t)
        x, t_x, T = self._inputs("p_no_purchase", x, t_x, T)
        theta = self._params()
        return np.exp(self._loglik(theta, x=x, t_x=t_x, T=T + t) - self._loglik(theta, x=x, t_x=t_x, T=T))

    def simulate(self, T: Any, *, random_state: int | None = None, params: dict | None = None) -> dict:
        """Draw (x, t_x) for customers observed for T time units after their first purchase.

        Used by the Monte Carlo tests and the refit bootstrap.
        """
        T = np.asarray(T, dtype=float)
        theta = self._params() if params is None else np.array([params[n] for n in self._param_names])
        rng = np.random.default_rng(random_state)
        return _simulate_bg(theta, T, rng, modified=isinstance(self, ModifiedBetaGeoModel))


class BetaGeoModel(_ContinuousBTYD):
    """BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005).

    Parameters
    ----------
    penalizer : float, default=0.0
        L2 penalty on the parameters, added to the mean negative log-likelihood per customer.
    n_starts : int, default=4
        Number of start points of the optimizer (the first is all parameters = 1).
    tol : float, default=1e-9
        Gradient tolerance of BFGS (on the mean log-likelihood).
    max_iter : int, default=2000
    random_state : int or None, default=0
        Seed of the random start points.

    Attributes
    ----------
    params_ : dict
        ``r``, ``alpha`` (Gamma of purchase rates: shape, rate per time unit), ``a``, ``b``
        (Beta of dropout probabilities).
    log_likelihood_ : float
    standard_errors_ : dict
        From the observed information (numerical Hessian), delta method.
    n_customers_ : int
    converged_ : bool
    fit_seconds_ : float

    Notes
    -----
    Times (t_x, T, t) are in the time unit of the summary (e.g. weeks). Assumes: Poisson
    purchasing while alive, heterogeneity in rates Gamma, dropout only right after a repeat
    purchase, rates and dropout independent.

    Examples
    --------
    >>> import pandas as pd
    >>> from segflow.models import BetaGeoModel
    >>> data = pd.DataFrame({"x": [0, 1, 1, 2, 3, 5, 7], "t_x": [0, 4.0, 30, 25, 12, 36, 38],
    ...                      "T": 39.0, "count": [1400, 160, 180, 150, 90, 60, 40]})
    >>> model = BetaGeoModel().fit(data)
    >>> {name: round(value, 2) for name, value in model.params_.items()}
    {'r': 0.24, 'alpha': 9.47, 'a': 1.29, 'b': 5.2}
    >>> round(float(model.p_alive(2, 8.0, 38.0)), 2)  # two repeats, the last 30 weeks ago
    0.34
    """

    _param_names = ("r", "alpha", "a", "b")
    _param_units = (0, 1, 0, 0)
    _has_gradient = True

    @staticmethod
    def _loglik_grad(params, x, t_x, T, xu=None, xi=None, **cache):  # noqa: ANN001, ANN205
        return _bg_family(params, x, t_x, T, xu, xi, shift=0, grad=True, **cache)

    @staticmethod
    def _loglik(
        params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
        xu: np.ndarray | None = None, xi: np.ndarray | None = None, **cache: np.ndarray,
    ) -> np.ndarray:
        r, alpha, a, b = params
        # FHL (2005) eq. (6), in log space:
        # L = A1 * [ B(a, b+x)/B(a,b) (alpha+T)^-(r+x)
        #            + d(x>0) B(a+1, b+x-1)/B(a,b) (alpha+t_x)^-(r+x) ]
        log_alive = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
        with np.errstate(invalid="ignore", divide="ignore"):
            log_dead = np.where(
                x > 0,
                betaln(a + 1, b + np.maximum(x, 1) - 1) - betaln(a, b) - (r + x) * np.log(alpha + t_x),
                -np.inf,
            )
        return _log_a1(r, alpha, x) + np.logaddexp(log_alive, log_dead)

    def _p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(alive at T | x, t_x, T) (Fader, Hardie & Lee 2007 note, eq. 2); valid input."""
        r, alpha, a, b = self._params()
        # 1 / (1 + d(x>0) a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)), computed in log space
        log_odds = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * (
            np.log(alpha + T) - np.log(alpha + t_x)
        )
        return np.where(x > 0, 1.0 / (1.0 + np.exp(log_odds)), 1.0)

    def _expected_purchases(self, t: Any, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """E[X(T, T+t) | x, t_x, T] (FHL eq. 10); valid input."""
        r, alpha, a, b = self._params()
        z = t / (alpha + T + t)
        head = (a + b + x - 1) / (a - 1)
        inner = 1 - np.exp((r + x) * np.log((alpha + T) / (alpha + T + t))) * hyp2f1(
            r + x, b + x, a + b + x - 1, z
        )
        return head * inner * self._p_alive(x, t_x, T)

    def _expected_purchases_new(self, t: np.ndarray) -> np.ndarray:
        """E[X(t)] of a new customer (FHL eq. 7); valid input."""
        r, alpha, a, b = self._params()
        return (a + b - 1) / (a - 1) * (
            1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t))
        )


class ModifiedBetaGeoModel(_ContinuousBTYD):
    """MBG/NBD model (Batislam, Denizel & Filiztekin 2007).

    As :class:`BetaGeoModel`, but a customer may also drop out right after the first purchase,
    so P(alive) < 1 for customers without repeat purchases. Same parameters (r, alpha, a, b)
    and the same constructor arguments.
    """

    _param_names = ("r", "alpha", "a", "b")
    _param_units = (0, 1, 0, 0)
    _has_gradient = True

    @staticmethod
    def _loglik_grad(params, x, t_x, T, xu=None, xi=None, **cache):  # noqa: ANN001, ANN205
        return _bg_family(params, x, t_x, T, xu, xi, shift=1, grad=True, **cache)

    @staticmethod
    def _loglik(
        params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray,
        xu: np.ndarray | None = None, xi: np.ndarray | None = None, **cache: np.ndarray,
    ) -> np.ndarray:
        r, alpha, a, b = params
        # Batislam et al. (2007) eq. (7): every one of the x+1 purchases (incl. the first)
        # may be followed by dropout:
        # L = A1 [ B(a, b+x+1)/B(a,b) (alpha+T)^-(r+x) + B(a+1, b+x)/B(a,b) (alpha+t_x)^-(r+x) ]
        log_alive = betaln(a, b + x + 1) - betaln(a, b) - (r + x) * np.log(alpha + T)
        log_dead = betaln(a + 1, b + x) - betaln(a, b) - (r + x) * np.log(alpha + t_x)
        return _log_a1(r, alpha, x) + np.logaddexp(log_alive, log_dead)

    def _check_data(self, data: dict[str, np.ndarray], weights: np.ndarray) -> None:
        super()._check_data(data, weights)

    def _p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(alive at T | x, t_x, T) = 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x))."""
        r, alpha, a, b = self._params()
        log_odds = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        return 1.0 / (1.0 + np.exp(log_odds))

    def _expected_purchases(self, t: Any, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """E[X(T, T+t) | x, t_x, T]; the posterior of p given alive is Beta(a, b+x+1)."""
        r, alpha, a, b = self._params()
        z = t / (alpha + T + t)
        head = (a + b + x) / (a - 1)
        inner = 1 - np.exp((r + x) * np.log((alpha + T) / (alpha + T + t))) * hyp2f1(
            r + x, b + x + 1, a + b + x, z
        )
        return head * inner * self._p_alive(x, t_x, T)

    def _expected_purchases_new(self, t: np.ndarray) -> np.ndarray:
        """E[X(t)] for a new customer: b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; .)]."""
        r, alpha, a, b = self._params()
        return b / (a - 1) * (
            1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b + 1, a + b, t / (alpha + t))
        )


def _simulate_bg(theta: np.ndarray, T: np.ndarray, rng: np.random.Generator, *, modified: bool) -> dict:
    """Simulate BG/NBD (or MBG/NBD) histories; vectorised over customers, looping over events."""
    r, alpha, a, b = theta
    n = len(T)
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    if modified:
        alive &= rng.random(n) >= p
    now = np.zeros(n)
    while alive.any():
        idx = np.flatnonzero(alive)
        now[idx] += rng.exponential(1.0 / lam[idx])
        bought = now[idx] <= T[idx]
        hit = idx[bought]
        x[hit] += 1
        t_x[hit] = now[hit]
        alive[idx[~bought]] = False
        alive[hit] = rng.random(len(hit)) >= p[hit]
    return {"x": x, "t_x": t_x, "T": T}
