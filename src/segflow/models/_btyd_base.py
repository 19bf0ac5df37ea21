"""Shared machinery of the "buy till you die" (BTYD) models: data checks, fitting, errors.

Every model is a maximum-likelihood fit on the *compressed summary*: the distinct
``(x, t_x, T)`` triples (or ``(x, t_x, n)`` for BG/BB) with a ``count`` column. The weighted
log-likelihood of the triples equals the log-likelihood of the customers, so the fit costs the
number of distinct triples, not the number of customers.

Fitting is done on the log of the (positive) parameters with BFGS from several start points;
the best optimum is kept, the gradient at it is checked, and the standard errors come from the
numerical Hessian of the log-likelihood (observed information, delta method back to the
natural scale). The optional L2 penalty follows the convention of the ``lifetimes`` library:
``penalizer * sum(theta**2)`` is added to the *mean* negative log-likelihood per customer.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from segflow.errors import InputError, SegflowError
from segflow.models._btyd_input import as_triples

#: Log-parameters beyond this magnitude mean the optimizer ran to a boundary (e^15 ~ 3e6).
_LOG_BOUND = 15.0
#: Above this many distinct rows, start points run on a coarsened summary first.
_COARSE_ROWS = 20_000
#: Number of grid steps over the longest observation time in the coarsened summary.
_COARSE_GRID = 32
#: Relative agreement of log-likelihoods for two starts to count as the same optimum.
_LL_AGREE = 1e-6



def _boundary_message(model: str, names: Sequence[str], log_params: np.ndarray,
                      unit_factor: np.ndarray) -> str:
    """The error of a fit whose optimum lies at a boundary: the parameters past
    :data:`_LOG_BOUND` by the way they went (without limit or towards 0; the farthest first),
    each with its value in the summary's units, as ``params_`` would hold it. Before, the
    message gave the largest and the smallest of all the parameters, which need not be the
    named one's value."""
    values = np.exp(log_params) * unit_factor
    out = sorted((i for i, lp in enumerate(log_params) if abs(lp) > _LOG_BOUND), key=lambda i: -abs(log_params[i]))
    ways = sorted({bool(log_params[i] > 0) for i in out}, key=lambda up: up != (log_params[out[0]] > 0))
    parts = []
    for up in ways:
        group = [i for i in out if (log_params[i] > 0) == up]
        them = [names[i] for i in group]
        listed = them[0] if len(them) == 1 else f"{', '.join(them[:-1])} and {them[-1]}"
        parts.append((f"parameter{'s' if len(group) > 1 else ''} {listed}",
                      "growing without limit" if up else "shrinking towards 0",
                      ", ".join(f"{names[i]} = {values[i]:.3g}" for i in group)))
    (who, way, vals), *rest = parts
    text = (f"{model}: the data cannot identify the model: {who} ran to a boundary, {way} ({vals} when the "
            "fit stopped)")
    text += "".join(f"; {who}, {way} ({vals})" for who, way, vals in rest)
    return (text + ". Check the calibration period and that enough customers repeat; consider a "
            "penalizer or a simpler model.")


class BTYDModel(BaseEstimator):
    """Base class: multi-start penalised maximum likelihood on compressed triples.

    Subclasses define ``_param_names``, ``_columns`` and ``_loglik(params, **columns)``, which
    returns the log-likelihood of each row (unweighted), and ``_check_data``.
    """

    _param_names: tuple[str, ...] = ()
    _columns: tuple[str, ...] = ("x", "t_x", "T")
    #: Columns that hold whole numbers (counts; the BG/BB's opportunities too).
    _integer_columns: tuple[str, ...] = ("x",)
    #: Columns measured in a unit the user chooses (time, money): the fit runs on them divided
    #: by a typical value, so the estimates do not depend on the unit (see :meth:`_unit_scale`).
    _scaled_columns: tuple[str, ...] = ()
    #: Per parameter, the power of that unit it carries (alpha is in time units: 1; r: 0).
    _param_units: tuple[int, ...] = ()

    def __init__(
        self,
        penalizer: float = 0.0,
        *,
        n_starts: int = 4,
        tol: float = 1e-9,
        max_iter: int = 2000,
        random_state: int | None = 0,
    ) -> None:
        self.penalizer = penalizer
        self.n_starts = n_starts
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

    # -- subclass hooks -------------------------------------------------------------------
    #: True when the subclass implements ``_loglik_grad`` (analytic gradient).
    _has_gradient = False

    @staticmethod
    def _loglik(params: np.ndarray, **data: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def _loglik_grad(
        params: np.ndarray, **data: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        """Per-row log-likelihood and its gradient (shape (n_params, n_rows))."""
        raise NotImplementedError

    def _prepare(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Precompute data-only quantities once per fit (default: none)."""
        return data

    def _select(
        self, data: dict[str, np.ndarray], weights: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Rows the model is fitted on (default: all)."""
        return data, weights

    def _check_data(self, data: dict[str, np.ndarray], weights: np.ndarray) -> None:
        """Raise :class:`SegflowError` when the data cannot identify the model."""

    def _unit_scale(self, data: dict[str, np.ndarray], weights: np.ndarray) -> float:
        """A typical positive value of the first scaled column (its weighted mean), or 1.

        The fit runs on the scaled columns divided by it and multiplies the parameters by
        ``scale ** _param_units`` afterwards. The likelihood is equivariant in the unit (the
        estimates in another unit are the same, rescaled), but the optimizer's start points
        (all parameters 1) and its boundary check (|log theta| <= 15) are not: amounts in a
        currency with large nominal values or times in a very short unit put the optimum
        far from the start or past the boundary.
        """
        if not self._scaled_columns:
            return 1.0
        values = data[self._scaled_columns[0]]
        positive = values > 0
        if not positive.any():
            return 1.0
        scale = float(np.average(values[positive], weights=weights[positive]))
        return scale if np.isfinite(scale) and scale > 0 else 1.0

    # -- fitting --------------------------------------------------------------------------
    def fit(self, summary: Any, y: None = None) -> BTYDModel:
        """Fit by maximum likelihood on the summary (per customer or compressed triples).

        Parameters
        ----------
        summary : pandas.DataFrame, pyarrow.Table or ibis.Table
            Columns ``x, t_x, T`` (BG/BB: ``x, t_x, n``) and optionally ``count``, the number
            of customers sharing the row. Times are in the summary's time unit.
        y : None
            Ignored: there is no target (scikit-learn's convention for unsupervised models,
            so that a ``Pipeline`` ending in the model can call ``fit(X, y)``).

        Returns
        -------
        self
        """
        started = time.perf_counter()
        data, weights, self._where = as_triples(summary, self._columns, return_namer=True,
                                                integer=self._integer_columns)
        try:  # _select checks the rows as given, naming them with self._where
            data, weights = self._select(data, weights)
        finally:
            self._where = None  # a closure over the input frame: not kept on the model
        keep = weights > 0
        data = {k: v[keep] for k, v in data.items()}
        weights = weights[keep]
        if weights.sum() == 0:  # (an empty summary, or one whose counts are all 0)
            raise InputError(f"{type(self).__name__}: the summary holds no customers")
        self._check_data(data, weights)
        data, weights = _canonical_order(data, weights, self._columns)
        n_total = float(weights.sum())
        natural_data = data
        scale = self._unit_scale(data, weights)
        data = {k: v / scale if k in self._scaled_columns else v for k, v in data.items()}
        units = np.array(self._param_units or (0,) * len(self._param_names), dtype=float)
        self._unit_factor = scale**units  # natural parameters = fitted parameters * factor
        coarse = self._coarsen(data, weights) if len(weights) > _COARSE_ROWS else None
        data = self._prepare(data)
        objective, objective_grad = self._objectives(data, weights)
        if coarse is None:
            results = self._multistart(objective, objective_grad, self._start_points())
            best = self._best(results)
            lead = best
        else:
            # coarse-to-fine: the start points run on a coarsened summary (times rounded to a
            # grid of _COARSE_GRID steps, re-compressed); the best optimum is then refined on
            # the full data, where it starts close and needs few iterations
            c_data, c_weights = coarse
            c_obj, c_grad = self._objectives(self._prepare(c_data), c_weights)
            results = self._multistart(c_obj, c_grad, self._start_points())
            lead = self._best(results)
            with_inv = [r for r in results if getattr(r, "hess_inv", None) is not None]
            hess_inv0 = min(with_inv, key=lambda r: r.fun).hess_inv if with_inv else None
            best = self._best(self._multistart(objective, objective_grad, [lead.x], hess_inv0))
        log_params = best.x
        if np.any(np.abs(log_params) > _LOG_BOUND):
            raise SegflowError(_boundary_message(type(self).__name__, self._param_names, log_params,
                                                 self._unit_factor))
        fitted = np.exp(log_params)  # on the scaled data
        params = fitted * self._unit_factor
        total_ll = float(_wsum(weights, self._loglik(params, **natural_data)))
        if self._has_gradient:
            hess = _hessian_from_gradient(
                lambda lp: (self._loglik_grad(np.exp(lp), **data)[1] * weights).sum(axis=1) * np.exp(lp),
                log_params,
                central=coarse is None,  # large data: forward differences, half the cost
            )
            grad = objective_grad(log_params)[1]
        else:
            hess = _hessian(
                lambda lp: _wsum(weights, self._loglik(np.exp(lp), **data)), log_params
            )
            grad = optimize.approx_fprime(log_params, objective, 1e-7)
        agreeing = sum(
            1
            for r in results
            if np.isfinite(r.fun) and abs(r.fun - lead.fun) <= _LL_AGREE * max(1.0, abs(lead.fun))
        )
        self.params_ = dict(zip(self._param_names, params.tolist(), strict=True))
        self.log_likelihood_ = total_ll
        self.n_customers_ = int(round(n_total))
        self.n_rows_ = int(len(weights))
        self.standard_errors_, self.log_covariance_ = _standard_errors(
            hess, params, self._param_names
        )
        hessian_ok = self.log_covariance_ is not None
        self.gradient_norm_ = float(np.max(np.abs(grad)))
        self.n_starts_agreeing_ = agreeing
        self.converged_ = bool(hessian_ok and self.gradient_norm_ < 1e-4 and agreeing >= 1)
        self.fit_seconds_ = time.perf_counter() - started
        if not self.converged_:
            warnings.warn(
                f"{type(self).__name__} may not have converged: max |gradient| "
                f"{self.gradient_norm_:.2g}, Hessian negative definite: {hessian_ok}, "
                f"{agreeing} of {len(results)} starts agree",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _objectives(
        self, data: dict[str, np.ndarray], weights: np.ndarray
    ) -> tuple[Callable[[np.ndarray], float], Callable | None]:
        """The penalised mean negative log-likelihood on the log-parameters (and gradient)."""
        n_total = float(weights.sum())
        penalizer = float(self.penalizer)
        # the penalty is on the parameters in the user's units (lifetimes' convention)
        factor2 = getattr(self, "_unit_factor", np.ones(len(self._param_names))) ** 2

        def objective(log_params: np.ndarray) -> float:
            if np.any(np.abs(log_params) > 30):
                return np.inf
            params = np.exp(log_params)
            with np.errstate(all="ignore"):
                ll = self._loglik(params, **data)
            value = -_wsum(weights, ll) / n_total + penalizer * np.sum(factor2 * params**2)
            return float(value) if np.isfinite(value) else np.inf

        def objective_grad(log_params: np.ndarray) -> tuple[float, np.ndarray]:
            if np.any(np.abs(log_params) > 30):
                return np.inf, np.zeros_like(log_params)
            params = np.exp(log_params)
            with np.errstate(all="ignore"):
                ll, grad = self._loglik_grad(params, **data)
            value = -_wsum(weights, ll) / n_total + penalizer * np.sum(factor2 * params**2)
            # chain rule to the log-parameters: d/d(log theta) = theta * d/d theta
            g = (-(grad * weights).sum(axis=1) / n_total + 2 * penalizer * factor2 * params) * params
            if not (np.isfinite(value) and np.all(np.isfinite(g))):
                return np.inf, np.zeros_like(log_params)
            return float(value), g

        return objective, (objective_grad if self._has_gradient else None)

    def _coarsen(
        self, data: dict[str, np.ndarray], weights: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        """A smaller summary approximating the likelihood surface (default: none)."""
        return None

    def _start_points(self) -> list[np.ndarray]:
        rng = np.random.default_rng(self.random_state)
        k = len(self._param_names)
        starts = [np.zeros(k)]
        starts += [rng.normal(0.0, 1.0, size=k) for _ in range(max(0, int(self.n_starts) - 1))]
        return starts

    def _multistart(
        self,
        objective: Callable[[np.ndarray], float],
        objective_grad: Callable[[np.ndarray], tuple[float, np.ndarray]] | None,
        starts: list[np.ndarray],
        hess_inv0: np.ndarray | None = None,
    ) -> list[optimize.OptimizeResult]:
        results = []
        if objective_grad is not None:  # analytic gradient: BFGS converges tightly alone
            for start in starts:
                if not np.isfinite(objective(start)):
                    continue
                lead = self._best(results) if results else None
                options: dict[str, Any] = {"gtol": self.tol, "maxiter": self.max_iter}
                if hess_inv0 is not None and _positive_definite(hess_inv0):
                    # warm start from the coarse fit (exactly symmetric, as scipy checks)
                    options["hess_inv0"] = (hess_inv0 + hess_inv0.T) / 2
                results.append(
                    optimize.minimize(
                        objective_grad, start, jac=True, method="BFGS", options=options,
                        callback=None if lead is None else _stop_near(lead),
                    )
                )
            return results
        for start in starts:
            if not np.isfinite(objective(start)):
                continue
            # numerical gradients are good to ~1e-8: a tighter gtol only burns evaluations
            # in failing line searches (the Nelder-Mead polish takes over from there)
            options = {"gtol": max(self.tol, 1e-6), "maxiter": self.max_iter}
            if hess_inv0 is not None and _positive_definite(hess_inv0):
                options["hess_inv0"] = (hess_inv0 + hess_inv0.T) / 2
            results.append(optimize.minimize(objective, start, method="BFGS", options=options))
        refining = hess_inv0 is not None
        if results and not (refining and all(r.success for r in results)):
            # polish the best optimum: Nelder-Mead is robust where BFGS stops on a flat
            # numerical gradient (skipped when a warm-started refinement converged)
            lead = min(results, key=lambda r: r.fun)
            polished = optimize.minimize(
                objective,
                lead.x,
                method="Nelder-Mead",
                options={"xatol": 1e-9, "fatol": 1e-13, "maxiter": self.max_iter},
            )
            if polished.fun <= lead.fun:
                results.append(polished)
        return results

    def _best(self, results: list[optimize.OptimizeResult]) -> optimize.OptimizeResult:
        finite = [r for r in results if np.isfinite(r.fun)]
        if not finite:
            raise SegflowError(
                f"{type(self).__name__}: the log-likelihood is not finite at any start point; "
                "check the summary (times in the right unit, t_x <= T)"
            )
        return min(finite, key=lambda r: r.fun)

    # -- shared helpers -------------------------------------------------------------------
    def _params(self) -> np.ndarray:
        if not hasattr(self, "params_"):  # check_is_fitted costs 15 us a call (real-time scoring)
            check_is_fitted(self, "params_")
        return np.array([self.params_[n] for n in self._param_names])

    def summary(self) -> pd.DataFrame:
        """Parameters with standard errors and 95% Wald intervals (on the log scale)."""
        check_is_fitted(self, "params_")
        rows = []
        for name in self._param_names:
            est, se = self.params_[name], self.standard_errors_[name]
            half = 1.959963984540054 * se / est if np.isfinite(se) else np.nan
            rows.append(
                {"parameter": name, "estimate": est, "std_error": se,
                 "lower_95": est * np.exp(-half), "upper_95": est * np.exp(half)}
            )
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """Fitted state as a JSON-ready dict (parameters by their usual names)."""
        check_is_fitted(self, "params_")
        return {
            "model": type(self).__name__,
            "params": dict(self.params_),
            "standard_errors": dict(self.standard_errors_),
            "log_likelihood": self.log_likelihood_,
            "n_customers": self.n_customers_,
            "n_rows": self.n_rows_,
            "converged": self.converged_,
            "fit_seconds": self.fit_seconds_,
            "penalizer": self.penalizer,
        }

    def log_likelihood(self, summary: Any, params: dict[str, float] | None = None) -> float:
        """Total log-likelihood of a summary at ``params`` (default: the fitted ones).

        An optimizer-free check: evaluate at published estimates to compare published LLs.
        """
        data, weights = as_triples(summary, self._columns)
        theta = (
            self._params()
            if params is None
            else np.array([float(params[n]) for n in self._param_names])
        )
        return float(_wsum(weights, self._loglik(theta, **data)))

    def _bootstrap_params(self, n: int, seed: int | None) -> np.ndarray:
        """Draws of the parameters from the asymptotic normal of the log-parameters."""
        check_is_fitted(self, "params_")
        theta = self._params()
        cov = getattr(self, "log_covariance_", None)
        if cov is None:
            raise SegflowError("no covariance: the Hessian was not negative definite")
        rng = np.random.default_rng(seed)
        return np.exp(rng.multivariate_normal(np.log(theta), cov, size=n))


def _hessian(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar function."""
    k = len(x)
    hess = np.empty((k, k))
    f0 = f(x)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h
        hess[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h**2
        for j in range(i + 1, k):
            ej = np.zeros(k)
            ej[j] = h
            val = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h**2)
            hess[i, j] = hess[j, i] = val
    return hess


def _positive_definite(matrix: np.ndarray) -> bool:
    sym = (matrix + matrix.T) / 2
    if not np.all(np.isfinite(sym)) or np.abs(sym - matrix).max() > 1e-8 * np.abs(matrix).max():
        return False
    try:
        np.linalg.cholesky(sym)
    except np.linalg.LinAlgError:
        return False
    return True


def _stop_near(lead: optimize.OptimizeResult) -> Callable[[optimize.OptimizeResult], None]:
    """BFGS callback: stop a further start once it reaches the basin of the best optimum.

    Such a start is recorded with the best optimum's value, so it counts as agreeing; starts
    heading elsewhere run to convergence and are compared by their log-likelihood.
    """

    def callback(intermediate_result: optimize.OptimizeResult) -> None:
        if np.max(np.abs(intermediate_result.x - lead.x)) < 1e-3:
            intermediate_result.fun = min(intermediate_result.fun, lead.fun)
            raise StopIteration

    return callback


def _hessian_from_gradient(
    grad: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: float = 1e-5, central: bool = True
) -> np.ndarray:
    """Central (or forward) differences of an analytic gradient, symmetrised."""
    k = len(x)
    hess = np.empty((k, k))
    g0 = None if central else grad(x)
    for i in range(k):
        e = np.zeros(k)
        e[i] = h
        if central:
            hess[:, i] = (grad(x + e) - grad(x - e)) / (2 * h)
        else:
            hess[:, i] = (grad(x + e) - g0) / h
    return (hess + hess.T) / 2


def _standard_errors(
    hess_log: np.ndarray, params: np.ndarray, names: tuple[str, ...]
) -> tuple[dict[str, float], np.ndarray | None]:
    """Standard errors from the observed information on the log scale (delta method).

    Returns the standard errors on the natural scale and the covariance matrix of the
    log-parameters (``None`` when the Hessian is not negative definite).
    """
    try:
        np.linalg.cholesky(-hess_log)
        cov_log = np.linalg.inv(-hess_log)
    except np.linalg.LinAlgError:
        return {n: float("nan") for n in names}, None
    se = params * np.sqrt(np.diag(cov_log))
    return dict(zip(names, se.tolist(), strict=True)), cov_log


def bootstrap_intervals(
    model: BTYDModel,
    predict: Callable[[BTYDModel], np.ndarray],
    *,
    summary: Any = None,
    n_boot: int = 200,
    level: float = 0.9,
    method: str = "asymptotic",
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Parametric-bootstrap intervals of any prediction of a fitted model.

    Parameters
    ----------
    model : fitted BTYD model
    predict : callable
        ``predict(m) -> ndarray`` evaluated on each bootstrap copy ``m`` of the model
        (e.g. ``lambda m: m.expected_purchases(39, x, t_x, T)``).
    summary : DataFrame, optional
        The (compressed) data the model was fitted on; needed for ``method="refit"``.
    n_boot : int, default=200
    level : float, default=0.9
        Coverage of the percentile interval.
    method : {"asymptotic", "refit"}, default="asymptotic"
        ``"asymptotic"`` draws parameters from the normal approximation of the
        log-parameters (observed information); ``"refit"`` simulates new data sets from the
        fitted model with the same observation lengths (T or n) and refits each one
        (slower, no normal approximation).

    Returns
    -------
    pandas.DataFrame
        ``estimate``, ``lower``, ``upper`` per element of the prediction.
    """
    from sklearn.base import clone

    check_is_fitted(model, "params_")
    estimate = np.asarray(predict(model), dtype=float)
    rng = np.random.default_rng(random_state)
    draws = []
    if method == "asymptotic":
        for theta in model._bootstrap_params(n_boot, int(rng.integers(2**31))):
            copy = clone(model)
            copy.params_ = dict(zip(model._param_names, theta.tolist(), strict=True))
            draws.append(predict(copy))
    elif method == "refit":
        if summary is None:
            raise SegflowError('method="refit" needs the summary the model was fitted on')
        data, weights = as_triples(summary, model._columns)
        length = data[model._columns[2]]
        reps = np.repeat(length, weights.astype(int))
        for _ in range(n_boot):
            sim = model.simulate(reps, random_state=int(rng.integers(2**31)))
            frame = pd.DataFrame(sim).groupby(list(model._columns)).size().reset_index(name="count")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                copy = clone(model).set_params(n_starts=1).fit(frame)
            draws.append(predict(copy))
    else:
        raise SegflowError(f"unknown bootstrap method {method!r}; expected asymptotic or refit")
    stack = np.vstack([np.atleast_1d(d) for d in draws])
    tail = (1 - level) / 2
    return pd.DataFrame(
        {
            "estimate": np.atleast_1d(estimate),
            "lower": np.quantile(stack, tail, axis=0),
            "upper": np.quantile(stack, 1 - tail, axis=0),
        }
    )


def _wsum(weights: np.ndarray, values: np.ndarray) -> float:
    """Weighted sum without BLAS (``np.dot`` on 1-D arrays was 100x slower on a busy host)."""
    return float((weights * values).sum())


def _canonical_order(
    data: dict[str, np.ndarray], weights: np.ndarray, columns: tuple[str, ...]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The summary's rows sorted by its columns (first column first, the weight last).

    The log-likelihood is a float sum over rows, so its last bits depend on the rows' order;
    on a nearly flat likelihood (few repeat buyers) that is enough to send the optimiser to
    a different point, or to a boundary on one engine and not the other. Sorted, the same
    rows in any order (DuckDB's, Spark's, a shuffled frame) give the same fit bit for bit.
    """
    order = np.lexsort([weights, *(data[c] for c in reversed(columns) if c in data)])
    return {k: v[order] for k, v in data.items()}, weights[order]
