"""Vectorised statistics for experiment read-outs: intervals, tests, corrections, power.

Every function takes NumPy arrays (or scalars) of *aggregates* — counts, sums, means and
variances per arm — never customer rows, so the read-out runs on the small summary that the
engine computed.

References
----------
- Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
  inference. JASA 22, 209-212.
- Newcombe, R. G. (1998). Interval estimation for the difference between independent
  proportions: comparison of eleven methods. Statistics in Medicine 17, 873-890
  (method 10, the "hybrid score" interval).
- Welch, B. L. (1947). The generalization of "Student's" problem when several different
  population variances are involved. Biometrika 34, 28-35.
- Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scand. J. Stat.
- Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import stats

ArrayLike = np.ndarray | float | int

#: Fisher's exact test replaces the z-test when any expected 2x2 cell count is below this.
FISHER_MIN_EXPECTED = 5.0


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2.0))


def wilson_interval(
    successes: ArrayLike, n: ArrayLike, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion (Wilson 1927).

    Parameters
    ----------
    successes, n : array_like
        Number of successes and trials. ``n == 0`` gives ``(nan, nan)``.
    level : float, default=0.95
        Two-sided confidence level.

    Returns
    -------
    low, high : ndarray
        Bounds of the interval, within [0, 1].
    """
    x = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = _z(level)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = n + z * z
        centre = (x + z * z / 2.0) / denom
        half = z / denom * np.sqrt(x * (n - x) / n + z * z / 4.0)
        low, high = centre - half, centre + half
    bad = n <= 0
    low = np.where(bad, np.nan, np.clip(low, 0.0, 1.0))
    high = np.where(bad, np.nan, np.clip(high, 0.0, 1.0))
    # exact edges: at x = 0 the lower bound is 0, at x = n the upper bound is 1
    low = np.where(~bad & (x == 0), 0.0, low)
    high = np.where(~bad & (x == n), 1.0, high)
    return low, high


def newcombe_interval(
    x1: ArrayLike, n1: ArrayLike, x0: ArrayLike, n0: ArrayLike, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval for ``p1 - p0`` (Newcombe 1998, method 10).

    Combines the Wilson intervals ``(l1, u1)`` and ``(l0, u0)`` of the two proportions:
    ``L = d - sqrt((p1 - l1)^2 + (u0 - p0)^2)`` and ``U = d + sqrt((u1 - p1)^2 + (p0 - l0)^2)``.
    It keeps close to nominal coverage for small counts and rates near 0 or 1, where the
    Wald interval fails.

    Parameters
    ----------
    x1, n1 : array_like
        Successes and size of the treated arm.
    x0, n0 : array_like
        Successes and size of the control arm.
    level : float, default=0.95

    Returns
    -------
    low, high : ndarray
        Bounds for the difference in proportions (treated minus control), in [-1, 1].
    """
    x1, n1, x0, n0 = (np.asarray(v, dtype=float) for v in (x1, n1, x0, n0))
    l1, u1 = wilson_interval(x1, n1, level)
    l0, u0 = wilson_interval(x0, n0, level)
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p0 = x1 / n1, x0 / n0
        d = p1 - p0
        low = d - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
        high = d + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return low, high


def two_proportion_ztest(
    x1: ArrayLike, n1: ArrayLike, x0: ArrayLike, n0: ArrayLike
) -> np.ndarray:
    """Two-sided p-value of the pooled two-proportion z-test of ``p1 = p0``.

    When both arms have rate 0 (or both 1) the pooled variance is 0 and the data give no
    evidence of a difference: the p-value is 1. Arms with ``n = 0`` give ``nan``.
    """
    x1, n1, x0, n0 = (np.asarray(v, dtype=float) for v in (x1, n1, x0, n0))
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = (x1 + x0) / (n1 + n0)
        se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n0))
        z = (x1 / n1 - x0 / n0) / se
        p = 2.0 * stats.norm.sf(np.abs(z))
    p = np.where(se == 0, 1.0, p)
    return np.where((n1 <= 0) | (n0 <= 0), np.nan, p)


def fisher_needed(x1: ArrayLike, n1: ArrayLike, x0: ArrayLike, n0: ArrayLike) -> np.ndarray:
    """True where the smallest expected count of the 2x2 table is below
    :data:`FISHER_MIN_EXPECTED` (Cochran's rule), so the z-test is not trusted."""
    x1, n1, x0, n0 = (np.asarray(v, dtype=float) for v in (x1, n1, x0, n0))
    with np.errstate(invalid="ignore", divide="ignore"):
        total = n1 + n0
        succ = x1 + x0
        fail = total - succ
        expected = np.minimum.reduce(
            [n1 * succ / total, n1 * fail / total, n0 * succ / total, n0 * fail / total]
        )
    return (n1 > 0) & (n0 > 0) & (expected < FISHER_MIN_EXPECTED)


def fisher_pvalues(x1: ArrayLike, n1: ArrayLike, x0: ArrayLike, n0: ArrayLike) -> np.ndarray:
    """Two-sided Fisher exact p-values, one per 2x2 table (loops over tables, not rows)."""
    x1, n1, x0, n0 = (np.atleast_1d(np.asarray(v, dtype=np.int64)) for v in (x1, n1, x0, n0))
    out = np.full(x1.shape, np.nan)
    for i in range(x1.size):
        if n1[i] > 0 and n0[i] > 0:
            table = [[x1[i], n1[i] - x1[i]], [x0[i], n0[i] - x0[i]]]
            out[i] = stats.fisher_exact(table, alternative="two-sided").pvalue
    return out


def welch_test(
    mean1: ArrayLike,
    var1: ArrayLike,
    n1: ArrayLike,
    mean0: ArrayLike,
    var0: ArrayLike,
    n0: ArrayLike,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Welch's unequal-variance t interval and test for ``mean1 - mean0`` (Welch 1947).

    Parameters
    ----------
    mean1, var1, n1 : array_like
        Mean, sample variance (``ddof=1``) and size of the treated arm.
    mean0, var0, n0 : array_like
        The same for the control arm.
    level : float, default=0.95

    Returns
    -------
    low, high, pvalue : ndarray
        Interval for the difference (in the outcome's units) and the two-sided p-value,
        with Welch-Satterthwaite degrees of freedom. ``nan`` when an arm has fewer than two
        customers. When both variances are 0 the interval is the point difference and the
        p-value is 1 if the means are equal, else 0.
    """
    m1, v1, n1, m0, v0, n0 = (np.asarray(a, dtype=float) for a in (mean1, var1, n1, mean0, var0, n0))
    with np.errstate(invalid="ignore", divide="ignore"):
        a1, a0 = v1 / n1, v0 / n0
        se = np.sqrt(a1 + a0)
        df = (a1 + a0) ** 2 / (a1**2 / (n1 - 1.0) + a0**2 / (n0 - 1.0))
        d = m1 - m0
        tcrit = stats.t.ppf(0.5 + level / 2.0, df)
        low, high = d - tcrit * se, d + tcrit * se
        p = 2.0 * stats.t.sf(np.abs(d / se), df)
    zero = se == 0
    low = np.where(zero, d, low)
    high = np.where(zero, d, high)
    p = np.where(zero, np.where(d == 0, 1.0, 0.0), p)
    bad = (n1 < 2) | (n0 < 2)
    nan = np.full(np.shape(d), np.nan)
    return np.where(bad, nan, low), np.where(bad, nan, high), np.where(bad, nan, p)


def relative_lift_interval(
    mean1: ArrayLike,
    var1: ArrayLike,
    n1: ArrayLike,
    mean0: ArrayLike,
    var0: ArrayLike,
    n0: ArrayLike,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relative lift ``mean1 / mean0 - 1`` with a delta-method interval on the log ratio.

    ``Var(log(m1/m0)) ~ v1 / (n1 m1^2) + v0 / (n0 m0^2)``; for proportions (``v = p(1-p)``)
    this is Katz's log interval for a risk ratio. Defined only when both means are positive;
    ``nan`` otherwise.

    Returns
    -------
    lift, low, high : ndarray
        Relative lift and its bounds (0.10 means +10 %).
    """
    m1, v1, n1, m0, v0, n0 = (np.asarray(a, dtype=float) for a in (mean1, var1, n1, mean0, var0, n0))
    z = _z(level)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (m1 > 0) & (m0 > 0) & (n1 > 0) & (n0 > 0)
        log_ratio = np.log(np.where(ok, m1, 1.0) / np.where(ok, m0, 1.0))
        se = np.sqrt(v1 / (n1 * m1**2) + v0 / (n0 * m0**2))
        lift = np.where((m0 != 0) & (n0 > 0) & (n1 > 0), m1 / m0 - 1.0, np.nan)
        low = np.where(ok, np.exp(log_ratio - z * se) - 1.0, np.nan)
        high = np.where(ok, np.exp(log_ratio + z * se) - 1.0, np.nan)
    return lift, low, high


def adjust_pvalues(
    pvalues: ArrayLike, method: Literal["holm", "bh", "none"] = "holm"
) -> np.ndarray:
    """Adjust a family of p-values for multiple comparisons.

    Parameters
    ----------
    pvalues : array_like
        One family; ``nan`` entries are left out of the family and stay ``nan``.
    method : {"holm", "bh", "none"}, default="holm"
        ``"holm"``: Holm's step-down procedure, controls the family-wise error rate.
        ``"bh"``: Benjamini-Hochberg step-up, controls the false discovery rate.

    Returns
    -------
    ndarray
        Adjusted p-values (capped at 1), in the input order.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    keep = ~np.isnan(p)
    q = p[keep]
    m = q.size
    if m == 0 or method == "none":
        out[keep] = q
        return out
    order = np.argsort(q, kind="mergesort")
    ranked = q[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * ranked)
    elif method == "bh":
        adj = np.minimum.accumulate((m / np.arange(m, 0, -1)) * ranked[::-1])[::-1]
    else:
        raise ValueError(f"unknown correction {method!r}; expected 'holm', 'bh' or 'none'")
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[keep] = res
    return out


def minimum_detectable_effect(
    sd0: ArrayLike, n1: ArrayLike, n0: ArrayLike, *, level: float = 0.95, power: float = 0.8
) -> np.ndarray:
    """Smallest absolute difference a two-sided test at ``1 - level`` detects with ``power``.

    ``MDE = (z_{1-alpha/2} + z_{power}) * sd0 * sqrt(1/n1 + 1/n0)``, with ``sd0`` the
    control arm's standard deviation (``sqrt(p0 (1 - p0))`` for a rate): the normal
    approximation with the variance under no effect. In the outcome's units.

    ``nan`` when the control arm has no variance (a rate of 0 or 1, or every value equal):
    the formula then gives 0, "any lift is detectable", while with a control rate of 0 % in
    30 + 30 customers a lift of 5 points is found well under half the time.
    """
    sd0, n1, n0 = (np.asarray(a, dtype=float) for a in (sd0, n1, n0))
    k = _z(level) + float(stats.norm.ppf(power))
    with np.errstate(invalid="ignore", divide="ignore"):
        mde = k * sd0 * np.sqrt(1.0 / n1 + 1.0 / n0)
    return np.where((n1 > 0) & (n0 > 0) & (sd0 > 0), mde, np.nan)


def balance_pvalue(counts: np.ndarray, expected_shares: np.ndarray) -> float:
    """p-value that a segment's arm counts follow the expected arm shares.

    Exact binomial test for two arms, Pearson's chi-square goodness of fit for more.
    ``counts`` and ``expected_shares`` are aligned per arm. Returns ``nan`` for an empty
    segment.
    """
    counts = np.asarray(counts, dtype=float)
    shares = np.asarray(expected_shares, dtype=float)
    total = counts.sum()
    if total <= 0:
        return float("nan")
    if counts.size == 2:  # the first arm's count against its share of the two
        return float(stats.binomtest(int(counts[0]), int(total), float(shares[0] / shares.sum())).pvalue)
    expected = shares / shares.sum() * total
    return float(stats.chisquare(counts, expected).pvalue)


def independence_pvalue(counts: np.ndarray, rest: np.ndarray) -> float:
    """p-value that a segment's arm split equals the split of the rest of the experiment.

    Pearson's chi-square test of independence on the 2 x k table (segment vs all other
    customers, by arm), without continuity correction; Fisher's exact test for two arms
    when an expected count is below :data:`FISHER_MIN_EXPECTED`. ``nan`` when the segment
    or the rest is empty.
    """
    table = np.vstack([np.asarray(counts, dtype=float), np.asarray(rest, dtype=float)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) <= 0).any():
        return float("nan")
    expected = np.outer(table.sum(1), table.sum(0)) / table.sum()
    if table.shape[1] == 2 and expected.min() < FISHER_MIN_EXPECTED:
        return float(stats.fisher_exact(table.astype(np.int64)).pvalue)
    return float(stats.chi2_contingency(table, correction=False).pvalue)
