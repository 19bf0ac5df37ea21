"""Gamma-Gamma model of the monetary value of repeat transactions.

References
----------
Fader, P. S. & Hardie, B. G. S. (2013). The Gamma-Gamma Model of Monetary Value. Note,
brucehardie.com. (FH 2013)

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: Using Iso-Value Curves for
Customer Base Analysis. *Journal of Marketing Research* 42(4), 415-430.

Model: the value z_i of each repeat transaction of a customer is Gamma(p, nu) (shape p,
rate nu); nu varies across customers as Gamma(q, gamma). A customer's mean transaction value
is E(Z | nu) = p / nu. The observed mean m of x transactions has the density FH (2013) eq. (3).
The model assumes the spend per transaction is independent of the purchase frequency; the fit
reports their correlation across repeat buyers (``frequency_spend_correlation_``) so users can
check it.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import digamma, gammaln

from segflow.errors import SegflowError
from segflow.models._btyd_base import BTYDModel
from segflow.models._btyd_input import Prediction, as_arrays, check_spend, pandas_aware

#: Above this absolute correlation of frequency and mean spend, the fit warns.
CORRELATION_WARNING = 0.3
#: Mean spends within this relative spread of each other count as one price (degenerate).
DEGENERATE_SPREAD = 1e-9
#: A single price is rounded to the fewest decimals within this relative distance of the
#: mean spends (their summation error is far smaller; a price is not moved by more).
PRICE_ROUNDING = 1e-13


class DegenerateSpendError(SegflowError):
    """Every repeat buyer has the same mean spend: the spend distribution is one price.

    ``price`` holds that price; :func:`fit_spend_model` turns it into a
    :class:`ConstantSpendModel`.
    """

    def __init__(self, price: float, buyers: int) -> None:
        self.price, self.buyers = price, buyers
        super().__init__(
            f"GammaGammaModel: all {buyers} repeat buyers have the same mean spend "
            f"{price:.10g} (a single price): the spend distribution is degenerate and the "
            "Gamma-Gamma model is not identified; the expected spend is that price"
        )


def _one_price(m: np.ndarray, weights: np.ndarray, low: float, high: float) -> float:
    """The price of mean spends ``m`` that are one price up to rounding: the weighted mean
    rounded to the fewest decimals that stay within the means' range widened by
    :data:`PRICE_ROUNDING` (relative). The means carry summation error in their last bits
    (19.98999999999999, 19.990000000000002); the price a shop wrote is the short decimal
    among them (19.99)."""
    mean = float(np.average(m, weights=weights))
    slack = PRICE_ROUNDING * high
    for decimals in range(16):
        price = round(mean, decimals)
        if low - slack <= price <= high + slack:
            return price
    return mean


class GammaGammaModel(BTYDModel):
    """Gamma-Gamma spend model (Fader & Hardie 2013), fitted on repeat buyers.

    Parameters
    ----------
    penalizer, n_starts, tol, max_iter, random_state
        As :class:`segflow.models.BetaGeoModel`.

    Attributes
    ----------
    params_ : dict
        ``p`` (shape of transaction values), ``q``, ``gamma`` (shape and rate of the
        customer-level rate nu, in currency units).
    n_customers_ : int
        Repeat buyers used (x > 0 and mean spend > 0).
    n_excluded_ : int
        Customers without repeat purchases or with a non-positive mean spend (not used).
    frequency_spend_correlation_ : float
        Weighted Pearson correlation of x and the mean spend among the repeat buyers: the
        model's independence assumption is doubtful when it is far from 0.
    mean_spend_ : float
        Mean of the customers' mean repeat spend (weighted by customers).

    Notes
    -----
    Input columns: ``x`` (number of repeat transactions) and ``monetary_value`` (the mean value
    of those x repeat transactions, the first purchase excluded), plus an optional ``count``.
    """

    _param_names = ("p", "q", "gamma")
    _columns = ("x", "monetary_value")
    _scaled_columns = ("monetary_value",)
    _param_units = (0, 0, 1)  # gamma is in currency units, p and q are unit-free

    def fit(self, summary: Any, y: None = None) -> GammaGammaModel:
        """Fit on per-customer ``x, monetary_value`` (rows with x = 0 are skipped, counted).

        The fit runs on the mean spends divided by their mean and scales gamma back, so p and
        q do not depend on the unit of money (cents or a currency with large nominal values
        give the same p, q and a gamma scaled with the amounts).

        Raises
        ------
        DegenerateSpendError
            When every repeat buyer has the same mean spend (one price).
        SegflowError
            With fewer than two repeat buyers with a positive mean spend.

        Warns
        -----
        UserWarning
            When q <= 1: the spend is heavy-tailed, the population mean is infinite, and only
            repeat buyers get a (finite) expected spend.
        """
        super().fit(summary, y)
        q = self.params_["q"]
        if q <= 1:
            warnings.warn(
                f"GammaGammaModel: q = {q:.3g} <= 1: spend per order is heavy-tailed across "
                "customers and the population mean spend is infinite; repeat buyers are "
                "scored (their expected spend is finite), customers without a repeat "
                "purchase get no expected spend or CLV. Capping extreme orders before "
                "fitting gives every customer a finite value.",
                UserWarning,
                stacklevel=2,
            )
        return self

    def _select(
        self, data: dict[str, np.ndarray], weights: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        repeat = data["x"] > 0
        keep = repeat & (data["monetary_value"] > 0)
        self.n_excluded_ = int(round(weights[~keep].sum()))
        # repeat buyers whose mean repeat spend is zero or negative (free repeat orders, or a
        # summary netting returns into spend): no Gamma density; left out, counted, scored
        self.n_nonpositive_spend_ = int(round(weights[repeat & ~keep].sum()))
        if self.n_nonpositive_spend_:
            warnings.warn(
                f"GammaGammaModel: {self.n_nonpositive_spend_} repeat buyers with a zero or "
                "negative mean spend (e.g. only free repeat orders) are left out of the "
                "spend fit; they are scored with the population's expected spend",
                UserWarning,
                stacklevel=3,
            )
        data = {k: v[keep] for k, v in data.items()}
        weights = weights[keep]
        if weights.sum() > 0:
            x, m = data["x"], data["monetary_value"]
            self.mean_spend_ = float(np.average(m, weights=weights))
            self.frequency_spend_correlation_ = _weighted_corr(x, m, weights)
            if abs(self.frequency_spend_correlation_) > CORRELATION_WARNING:
                warnings.warn(
                    f"frequency and mean spend are correlated (r = "
                    f"{self.frequency_spend_correlation_:.2f}); the Gamma-Gamma model assumes "
                    "they are independent",
                    UserWarning,
                    stacklevel=3,
                )
        return data, weights

    def _check_data(self, data: dict[str, np.ndarray], weights: np.ndarray) -> None:
        m = data["monetary_value"]
        if weights.sum() < 2:
            raise SegflowError(
                "GammaGammaModel: fewer than two repeat buyers with a positive mean spend; "
                "the spend model cannot be estimated"
            )
        low, high = float(m.min()), float(m.max())
        if high - low <= DEGENERATE_SPREAD * high:
            # every repeat buyer has the same mean spend up to rounding (one price): the
            # variance across customers is 0 and the MLE runs to q, gamma -> infinity
            raise DegenerateSpendError(_one_price(m, weights, low, high), int(weights.sum()))

    _has_gradient = True

    @staticmethod
    def _loglik_grad(
        params: np.ndarray, x: np.ndarray, monetary_value: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Log-likelihood and its analytic gradient in (p, q, gamma)."""
        p, q, gamma = params
        mx = monetary_value * x
        log_mx = np.log(mx)
        log_tail = np.log(gamma + mx)
        psi_all = digamma(p * x + q)
        ll = GammaGammaModel._loglik(params, x, monetary_value)
        g_p = x * (psi_all - digamma(p * x) + log_mx - log_tail)
        g_q = psi_all - digamma(q) + np.log(gamma) - log_tail
        g_gamma = q / gamma - (p * x + q) / (gamma + mx)
        return ll, np.stack([g_p, g_q, g_gamma])

    @staticmethod
    def _loglik(params: np.ndarray, x: np.ndarray, monetary_value: np.ndarray) -> np.ndarray:
        p, q, gamma = params
        m = monetary_value
        # FH (2013) eq. (3): density of the mean m of x transactions,
        # f(m | p,q,gamma,x) = Gamma(px+q)/(Gamma(px)Gamma(q)) gamma^q (m x)^(px-1) x
        #                      / (gamma + m x)^(px+q)
        return (
            gammaln(p * x + q)
            - gammaln(p * x)
            - gammaln(q)
            + q * np.log(gamma)
            + (p * x - 1) * np.log(m * x)
            + np.log(x)
            - (p * x + q) * np.log(gamma + m * x)
        )

    @pandas_aware("x", "monetary_value")
    def expected_spend(self, x: Any, monetary_value: Any) -> Prediction:
        """E(Z | x, m): expected value of a future transaction (FH 2013 eq. 5), in currency.

        A weighted mean of the population mean p*gamma/(q-1) and the customer's own mean m,
        the weight on m growing with x. Customers without a positive repeat spend get the
        population mean. Where the expectation is infinite (p*x + q <= 1; with q <= 1 at
        least every customer without a repeat purchase) the result is NaN.
        """
        p, q, gamma = self._params()
        x, m = as_arrays(("x", "monetary_value"), x, monetary_value)
        check_spend(f"{type(self).__name__}.expected_spend", x, m)
        m = np.nan_to_num(m, nan=0.0)
        x = np.where(m > 0, x, 0.0)
        m = np.where(m > 0, m, 0.0)
        den = p * x + q - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, p * (gamma + m * x) / den, np.nan)

    def spend_expression(self, x: Any, monetary_value: Any) -> Any:
        """:meth:`expected_spend` as an Ibis expression (null where it is infinite)."""
        import ibis

        p, q, gamma = self._params()
        has = monetary_value.notnull() & (monetary_value > 0) & (x > 0)
        xf = ibis.ifelse(has, x.cast("float64"), 0.0)
        mf = ibis.ifelse(has, monetary_value, 0.0)
        den = p * xf + (q - 1)
        return ibis.ifelse(den > 0, (p * (gamma + mf * xf)) / den, ibis.null("float64"))

    def population_mean_spend(self) -> float:
        """E(Z) = p gamma / (q - 1), the mean transaction value of the population."""
        p, q, gamma = self._params()
        return float(p * gamma / (q - 1)) if q > 1 else float("inf")

    def simulate(self, x: Any, *, random_state: int | None = None) -> dict:
        """Draw the mean value of x transactions for each customer (Monte Carlo tests)."""
        p, q, gamma = self._params()
        x = np.asarray(x, dtype=float)
        rng = np.random.default_rng(random_state)
        nu = rng.gamma(q, 1.0 / gamma, size=len(x))
        total = rng.gamma(p * x, 1.0 / nu)
        return {"x": x, "monetary_value": total / x}


def _weighted_corr(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    mx, my = np.average(x, weights=w), np.average(y, weights=w)
    cov = np.average((x - mx) * (y - my), weights=w)
    var = np.average((x - mx) ** 2, weights=w) * np.average((y - my) ** 2, weights=w)
    return float(cov / np.sqrt(var)) if var > 0 else float("nan")


class ConstantSpendModel:
    """Expected spend equal to one value for every customer (a one-price shop, or a given
    average order value).

    Parameters
    ----------
    value : float
        Expected spend per purchase, in currency units.
    source : str
        Where the value comes from (``"single price"``, ``"given"``, ``"observed mean"``).
    """

    def __init__(self, value: float, source: str = "given") -> None:
        if not np.isfinite(value):
            raise SegflowError(f"the average order value must be a finite number, got {value!r}")
        self.value = float(value)
        self.source = source

    @pandas_aware("x", "monetary_value")
    def expected_spend(self, x: Any, monetary_value: Any) -> Prediction:
        """``value`` for every customer (as :meth:`GammaGammaModel.expected_spend` returns)."""
        return np.full(np.shape(np.asarray(x, dtype=float)), self.value)

    def spend_expression(self, x: Any, monetary_value: Any) -> Any:
        from segflow._literals import float_literal

        return float_literal(self.value)

    def population_mean_spend(self) -> float:
        return self.value

    def to_dict(self) -> dict[str, Any]:
        return {"model": "constant", "expected_spend": self.value, "source": self.source}


def fit_spend_model(
    summary: Any, *, penalizer: float = 0.0
) -> tuple[GammaGammaModel | ConstantSpendModel, list[str]]:
    """Fit the Gamma-Gamma model, or a constant spend when every order has one price.

    Parameters
    ----------
    summary : DataFrame or Ibis table with ``x``, ``monetary_value`` (optionally ``count``)

    Returns
    -------
    (model, notes)
        ``notes`` holds the degenerate-spend message when a :class:`ConstantSpendModel` is
        returned.
    """
    try:
        return GammaGammaModel(penalizer=penalizer).fit(summary), []
    except DegenerateSpendError as exc:
        return ConstantSpendModel(exc.price, "single price"), [str(exc)]
