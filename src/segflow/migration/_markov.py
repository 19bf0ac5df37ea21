"""Markov-chain models of customer migration: forecast, steady state, absorption, value.

The states are the segments of a scheme plus ``(gone)`` (absorbing); the one-period
transition matrix ``P`` is estimated from pooled transition counts (maximum likelihood:
row shares of the summed counts, which assumes the migration is the same in every period).

References
----------
Pfeifer, P. E. and Carraway, R. L. (2000). Modeling customer relationships as Markov
chains. Journal of Interactive Marketing 14(2), 43-55.
Kemeny, J. G. and Snell, J. L. (1976). Finite Markov Chains. Springer (fundamental matrix).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from segflow.errors import ArgumentError, SegflowError
from segflow.migration._pairs import GONE, NEW
from segflow.migration._transitions import TransitionMatrix

Vector = Sequence[float] | np.ndarray | pd.Series | Mapping[str, float]


class MarkovChain(BaseEstimator):
    """A time-homogeneous Markov chain over segments, fitted on transition counts.

    Parameters
    ----------
    absorbing : sequence of str, optional
        States to treat as absorbing (e.g. ``["Lost"]``) in addition to ``(gone)``: their
        observed exits are ignored and their row becomes 1 on the diagonal.
    prior : float, default=0.0
        Pseudo-count added to every cell of each non-absorbing row before normalising
        (0 = maximum likelihood; 0.5 = Jeffreys-style smoothing of never-seen moves).

    Attributes
    ----------
    states_ : list of str
        Segments in order, then ``(gone)`` when present.
    counts_ : pandas.DataFrame of shape (n_states, n_states)
        Transition counts used (rows: from, columns: to).
    transition_matrix_ : pandas.DataFrame of shape (n_states, n_states)
        One-period transition probabilities; each row sums to 1.
    entry_distribution_ : pandas.Series or None
        Where ``(new)`` customers enter (shares over states), when the input had a ``(new)`` row.
    absorbing_states_ : list of str

    Examples
    --------
    >>> import pandas as pd
    >>> counts = pd.DataFrame([[8, 2], [0, 10]], index=["A", "(gone)"], columns=["A", "(gone)"])
    >>> chain = MarkovChain().fit(counts)
    >>> round(float(chain.absorption().loc["A", "expected_periods"]), 6)  # 1 / (1 - 0.8)
    5.0
    """

    def __init__(self, *, absorbing: Sequence[str] | None = None, prior: float = 0.0) -> None:
        self.absorbing = absorbing
        self.prior = prior

    # -- fitting ------------------------------------------------------------------------
    def fit(self, X: TransitionMatrix | pd.DataFrame | np.ndarray, y: None = None) -> MarkovChain:
        """Estimate ``P`` from a (pooled) :class:`TransitionMatrix` or a square count table.

        Parameters
        ----------
        X : TransitionMatrix, pandas.DataFrame or ndarray of shape (n, n)
            Counts with rows = from-state, columns = to-state. A DataFrame may carry a
            ``(new)`` row (used for :attr:`entry_distribution_`, not as a state). An ndarray
            gets states ``"0", "1", ...``.
        y : ignored

        Returns
        -------
        self
        """
        if self.prior < 0:
            raise SegflowError(f"prior must be >= 0, got {self.prior}")
        counts, entry = _square_counts(X)
        states = list(counts.index)
        absorbing = [s for s in states if s == GONE or s in set(self.absorbing or ())]
        unknown = sorted(set(self.absorbing or ()) - set(states))
        if unknown:
            raise SegflowError(f"absorbing state(s) {unknown} are not states of the chain {states}")
        values = counts.to_numpy(dtype=float).copy()
        probs = np.zeros_like(values)
        empty = []
        for i, state in enumerate(states):  # one pass over the (few) states
            if state in absorbing:
                probs[i, i] = 1.0
                continue
            row = values[i] + self.prior
            if row.sum() <= 0:
                empty.append(state)
                probs[i, i] = 1.0
                continue
            probs[i] = row / row.sum()
        if empty:
            warnings.warn(
                f"{len(empty)} state(s) had no observed exits and were made absorbing: {empty}",
                UserWarning,
                stacklevel=2,
            )
        self.states_ = states
        self.counts_ = counts
        self.transition_matrix_ = pd.DataFrame(probs, index=states, columns=states)
        self.absorbing_states_ = [*absorbing, *empty]
        self.entry_distribution_ = entry
        return self

    # -- predictions --------------------------------------------------------------------
    def forecast(
        self, mix: Vector, k: int, *, arrivals: float | Sequence[float] = 0.0
    ) -> pd.DataFrame:
        """Expected customers per state for ``k`` periods ahead: ``x_{t+1} = x_t P + a_t e``.

        Parameters
        ----------
        mix : vector or mapping
            Customers (or shares) per state now; missing states count 0. A mapping (or
            Series) may hold ``(new)``: customers about to enter, who arrive in the first
            period as the ``(new)`` row of the counts defines them (customers absent at one
            snapshot and in a segment at the next), placed by :attr:`entry_distribution_`
            (added to that period's ``arrivals``). Any other key that is not a state is an
            ``ArgumentError`` naming it.
        k : int
            Number of periods ahead (>= 0).
        arrivals : float or sequence of float, default=0
            New customers entering in each period (one number, or one per period); they
            are spread over the states by :attr:`entry_distribution_`.

        Returns
        -------
        pandas.DataFrame of shape (k + 1, n_states)
            Row ``h`` is the expected mix ``h`` periods ahead (row 0 = ``mix``).
        """
        check_is_fitted(self)
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
            raise ArgumentError(f"MarkovChain.forecast: argument 'k': expected a whole number of "
                                f"periods >= 0; got {k!r}")
        x = self._vector(mix, "mix", "forecast", nonnegative=True, new=True)
        a = _arrivals(arrivals, k)
        entering = self._entering(mix)
        if entering and k:
            a = a.copy()
            a[0] += entering  # they enter in the first period, as the (new) row counts them
        entry = self._entry() if np.any(a) else np.zeros_like(x)
        p = self.transition_matrix_.to_numpy()
        rows = [x]
        for h in range(k):  # one step per period
            rows.append(rows[-1] @ p + a[h] * entry)
        return pd.DataFrame(rows, columns=self.states_).rename_axis("period")

    def steady_state(self, *, arrivals: float | None = None) -> pd.Series:
        """Long-run state distribution.

        Without ``arrivals``: the stationary distribution ``pi = pi P`` (shares summing to
        1) of the closed chain; with ``(gone)`` absorbing and reachable that is all mass in
        ``(gone)``. Absorbing states that no other state leads to are left out (share 0).
        With ``arrivals`` (new customers per period, constant): the long-run customers per
        transient state of the open population, ``a e_T (I - Q)^{-1}``. A closed group of
        segments that the arrivals reach (nobody ever leaves it, e.g. ``(gone)`` never
        entered in the history) grows without bound: its states are ``inf``, decided on the
        graph of positive probabilities as in :meth:`absorption`; the other states keep
        their finite value, and a closed group the arrivals never reach holds 0.

        Raises
        ------
        SegflowError
            If the closed chain has several closed classes (no unique stationary law), or
            ``arrivals`` is negative or not a number.
        """
        check_is_fitted(self)
        p = self.transition_matrix_.to_numpy()
        n = len(self.states_)
        if arrivals is not None and not arrivals >= 0:  # NaN too
            raise SegflowError(f"arrivals must be a number >= 0, got {arrivals}")
        if arrivals is not None:
            transient = self._transient()
            idx = [self.states_.index(s) for s in transient]
            exits = np.delete(p[idx], idx, axis=1).sum(axis=1) > 0  # to an absorbing state
            x = _open_steady_state(p[np.ix_(idx, idx)], exits, self._entry()[idx], arrivals)
            return pd.Series(x, index=transient, name="customers")
        # an absorbing state no other state leads to (e.g. (gone) in data where nobody
        # left) is a closed class of its own that the chain never enters: leave it out
        others = p - np.diag(np.diag(p))
        keep = np.array(
            [
                not (s in self.absorbing_states_ and others[:, i].sum() == 0)
                for i, s in enumerate(self.states_)
            ]
        )
        sub = p[np.ix_(keep, keep)]
        m = int(keep.sum())
        a = np.vstack([(sub.T - np.eye(m)), np.ones(m)])
        b = np.r_[np.zeros(m), 1.0]
        sol, *_ = np.linalg.lstsq(a, b, rcond=None)
        if np.linalg.matrix_rank(a) < m or not np.allclose(a @ sol, b, atol=1e-9):
            raise SegflowError(
                "the chain has no unique stationary distribution (several closed classes)"
            )
        pi = np.zeros(n)
        pi[keep] = sol
        return pd.Series(np.clip(pi, 0.0, None), index=self.states_, name="share")

    def absorption(self) -> pd.DataFrame:
        """Expected periods until absorption and absorption probabilities per transient state.

        With ``Q`` the transient-to-transient block and ``R`` the transient-to-absorbing
        block, the fundamental matrix is ``N = (I - Q)^{-1}``; ``N 1`` is the expected number
        of periods spent before absorption (counting the current one) and ``N R`` the
        probability of ending in each absorbing state (Kemeny & Snell 1976, ch. 3).

        Reachability is decided on the graph of positive transition probabilities, not by
        inverting a (near-)singular matrix: a state from which no absorbing state can be
        reached is **never** absorbed, and one from which a never-absorbed state can be
        reached is absorbed with probability below 1. For both, ``expected_periods`` is
        ``inf`` ("never": the expected time is infinite) and ``p_never`` says how likely it
        is never to be absorbed. The fundamental matrix is inverted only over states that
        reach absorption, where it is non-singular.

        Returns
        -------
        pandas.DataFrame
            Index: transient states; columns ``expected_periods`` (``inf`` = never, see
            above), ``p_<absorbing state>`` for each absorbing state, and ``p_never``.
            With no absorbing state at all every row is ``inf`` with ``p_never = 1``.
        """
        check_is_fitted(self)
        transient = self._transient()
        absorbing = [s for s in self.states_ if s not in transient]
        p = self.transition_matrix_
        index = pd.Index(transient, name="state")
        q = p.loc[transient, transient].to_numpy()
        r = p.loc[transient, absorbing].to_numpy() if absorbing else np.zeros((len(transient), 0))
        edge = q > 0
        reaches_abs = _reaches(edge, r.sum(axis=1) > 0) if absorbing else np.zeros(len(transient), bool)
        never = ~reaches_abs  # can never be absorbed
        reaches_never = _reaches(edge, never)  # may escape absorption (includes never)
        probs = np.zeros((len(transient), len(absorbing)))
        ok = np.flatnonzero(reaches_abs)
        if ok.size:
            probs[ok] = np.linalg.solve(np.eye(ok.size) - q[np.ix_(ok, ok)], r[ok])
        periods = np.full(len(transient), np.inf)
        sure = np.flatnonzero(reaches_abs & ~reaches_never)
        if sure.size:
            periods[sure] = np.linalg.solve(np.eye(sure.size) - q[np.ix_(sure, sure)],
                                            np.ones(sure.size))
        out = pd.DataFrame({"expected_periods": periods}, index=index)
        for j, state in enumerate(absorbing):
            out[f"p_{state}"] = probs[:, j]
        out["p_never"] = np.clip(1.0 - probs.sum(axis=1), 0.0, 1.0)
        out.loc[~reaches_never, "p_never"] = 0.0
        return out

    def value(self, rewards: Vector, discount_rate: float, horizon: int | None = None) -> pd.Series:
        """Markov-chain customer value per starting state; see :func:`markov_clv`."""
        check_is_fitted(self)
        return markov_clv(
            self.transition_matrix_, self._vector(rewards, "rewards", "value"), discount_rate, horizon
        )

    # -- helpers ------------------------------------------------------------------------
    def _vector(self, values: Vector, what: str, method: str, *, nonnegative: bool = False,
                new: bool = False) -> np.ndarray:
        """``values`` (a mapping by state or one number per state) as an array in state
        order; NaN or infinite values (negative ones too with ``nonnegative``: customers per
        state) are an ``ArgumentError`` naming the first state (they gave NaN or negative
        forecasts and values), and so is a key that is no state (``(new)`` too unless
        ``new``: it is read by :meth:`_entering`). Such keys were dropped without a word:
        a ``(new)`` count vanished from the forecast."""
        if isinstance(values, Mapping | pd.Series):
            _once(values, f"MarkovChain.{method}: argument {what!r}")
            allowed = {*self.states_, *((NEW,) if new else ())}
            unknown = sorted((k for k in values.keys() if k not in allowed), key=repr)
            if unknown:
                listed = ", ".join(repr(k) for k in unknown)
                hint = (" ((new) is no state: customers enter through forecast's mix or arrivals)"
                        if NEW in unknown else "")
                raise ArgumentError(
                    f"MarkovChain.{method}: argument {what!r}: unknown state{'s' if len(unknown) > 1 else ''} "
                    f"{listed}; the states are {', '.join(map(repr, self.states_))}{hint}")
            arr = np.array([_number(values.get(s, 0.0), method, what, s) for s in self.states_])
        else:
            try:
                arr = np.asarray(values, dtype=float)
            except (TypeError, ValueError):
                arr = np.array([_number(v, method, what, s) for v, s in zip(values, self.states_, strict=False)])
            if arr.shape != (len(self.states_),):
                raise SegflowError(
                    f"{what} needs {len(self.states_)} numbers (states {self.states_}), got {arr.shape}"
                )
        bad = ~np.isfinite(arr) | ((arr < 0) if nonnegative else False)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise ArgumentError(
                f"MarkovChain.{method}: argument {what!r}: expected "
                f"{'numbers >= 0' if nonnegative else 'finite numbers'}; got {float(arr[first])!r} for state {self.states_[first]!r} ({int(bad.sum())} of {len(arr)} states)")
        return arr

    def _entering(self, mix: Vector) -> float:
        """The ``(new)`` customers of a mapping ``mix`` (0 without), checked: a number >= 0,
        and a chain fitted with a ``(new)`` row to place them."""
        if not isinstance(mix, Mapping | pd.Series) or NEW not in mix.keys():
            return 0.0
        n = _number(mix[NEW], "forecast", "mix", NEW)
        if not (np.isfinite(n) and n >= 0):
            raise ArgumentError(f"MarkovChain.forecast: argument 'mix': expected numbers >= 0; got {n!r} "
                                f"for state {NEW!r}")
        if n and self.entry_distribution_ is None:
            raise ArgumentError(
                f"MarkovChain.forecast: argument 'mix': {NEW!r} holds {n:g} customers, but the chain "
                "was fitted without a (new) row, so where they enter is unknown; fit on counts with "
                "a (new) row or leave them out")
        return n

    def _entry(self) -> np.ndarray:
        if self.entry_distribution_ is None:
            raise SegflowError(
                "the chain was fitted without a (new) row, so arrivals cannot be placed"
            )
        return self.entry_distribution_.reindex(self.states_).fillna(0.0).to_numpy()

    def _transient(self) -> list[str]:
        return [s for s in self.states_ if s not in set(self.absorbing_states_)]


def _once(values: Mapping | pd.Series, where: str) -> None:
    """An :class:`ArgumentError` when a Series names a state more than once (``where``: the
    method and argument): ``get`` gave a Series, refused in a message of several lines."""
    if isinstance(values, pd.Series) and not values.index.is_unique:
        twice = list(dict.fromkeys(values.index[values.index.duplicated()].tolist()))
        raise ArgumentError(f"{where}: state{'s' if len(twice) > 1 else ''} named more than once: "
                            f"{', '.join(map(repr, twice))}; give one value per state")


def _number(value: Any, method: str, what: str, state: Any) -> float:
    """``value`` (of ``state`` in argument ``what``) as a float, else an :class:`ArgumentError`
    (``None`` or a text gave Python's TypeError or ValueError)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ArgumentError(f"MarkovChain.{method}: argument {what!r}: expected numbers; got {value!r} "
                            f"for state {state!r}") from None


def _arrivals(arrivals: Any, k: int) -> np.ndarray:
    """The new customers of each of ``k`` periods: one number or ``k`` of them, finite and
    >= 0, else an :class:`ArgumentError` (a wrong length or a text gave NumPy's ValueError,
    inf an infinite forecast)."""
    def refuse(got: str) -> ArgumentError:
        return ArgumentError("MarkovChain.forecast: argument 'arrivals': expected one number "
                             f"or k = {k} numbers, finite and >= 0; got {got}")

    try:
        a = np.asarray(arrivals, dtype=float)
    except (TypeError, ValueError):
        raise refuse(repr(arrivals)) from None
    if a.ndim > 1 or (a.ndim == 1 and len(a) != k):
        raise refuse(f"{a.size} numbers")
    bad = ~(np.isfinite(a) & (a >= 0))  # NaN too
    if bad.any():
        raise refuse(repr(float(np.ravel(a)[np.flatnonzero(np.ravel(bad))[0]])))
    return np.broadcast_to(a, (k,)) if k else np.zeros(0)


def _reaches(edge: np.ndarray, target: np.ndarray) -> np.ndarray:
    """States from which a ``target`` state can be reached along ``edge`` (itself included)."""
    hit = target.copy()
    while True:  # at most n rounds over a small matrix
        more = hit | (edge & hit[None, :]).any(axis=1)
        if (more == hit).all():
            return hit
        hit = more


def _closed_classes(edge: np.ndarray, exits: np.ndarray) -> np.ndarray:
    """States in a closed communicating class of the transient graph ``edge``: every state
    they reach reaches them back, and none of those states ``exits`` (to an absorbing state)."""
    n = len(edge)
    reach = edge.copy()
    for k in range(n):  # transitive closure (Warshall), small matrices
        reach |= reach[:, [k]] & reach[[k], :]
    return np.array([reach[i].any() and not exits[reach[i]].any()
                     and all(reach[j, i] for j in np.flatnonzero(reach[i])) for i in range(n)],
                    dtype=bool)


def _open_steady_state(q: np.ndarray, exits: np.ndarray, entry: np.ndarray,
                       arrivals: float) -> np.ndarray:
    """``a e (I - Q)^{-1}`` per transient state, ``inf`` where the arrivals pile up for ever.

    The expected customers in ``j`` after ``t`` periods is ``a sum_{s<t} (e Q^s)_j``; it
    diverges exactly on the closed classes of ``Q`` (no way out, not even to ``(gone)``) that
    an entry state reaches. Outside the closed classes ``I - Q`` is invertible (every such
    state is eventually left), and no closed class leads back into them."""
    closed = _closed_classes(q > 0, exits)
    fed = _reaches((q > 0).T, entry > 0) if arrivals > 0 else np.zeros(len(q), bool)
    x = np.where(closed & fed, np.inf, 0.0)
    free = np.flatnonzero(~closed)
    if free.size:
        x[free] = np.linalg.solve((np.eye(free.size) - q[np.ix_(free, free)]).T,
                                  arrivals * entry[free])
    return x


def _square_counts(X: Any) -> tuple[pd.DataFrame, pd.Series | None]:
    if isinstance(X, TransitionMatrix):
        counts = X.counts().astype(float)
    elif isinstance(X, pd.DataFrame):
        counts = X.astype(float)
    else:
        arr = np.asarray(X, dtype=float)
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
            raise SegflowError(f"counts must be a square matrix, got shape {arr.shape}")
        labels = [str(i) for i in range(arr.shape[0])]
        counts = pd.DataFrame(arr, index=labels, columns=labels)
    if (counts.to_numpy() < 0).any() or not np.isfinite(counts.to_numpy()).all():
        raise SegflowError("transition counts must be finite and non-negative")
    entry = None
    if NEW in counts.index:
        new = counts.loc[NEW].fillna(0.0)
        counts = counts.drop(index=NEW)
        entry = new / new.sum() if new.sum() > 0 else None
    states = list(counts.index)
    if GONE in counts.columns and GONE not in states:
        states.append(GONE)
    if set(counts.columns) - set(states):
        raise SegflowError(
            f"count columns {sorted(set(counts.columns) - set(states))} are not rows; "
            "the matrix must be square over the same states"
        )
    counts = counts.reindex(index=states, columns=states).fillna(0.0)
    if entry is not None:
        entry = entry.reindex(states).fillna(0.0)
    return counts, entry


def markov_clv(
    P: pd.DataFrame | np.ndarray,
    rewards: Vector,
    discount_rate: float,
    horizon: int | None = None,
) -> pd.Series:
    """Expected discounted value of a customer per starting state (Pfeifer & Carraway 2000).

    Parameters
    ----------
    P : DataFrame or ndarray of shape (n, n)
        One-period transition matrix (rows sum to 1).
    rewards : vector of length n, or mapping state -> reward
        Net reward (contribution minus cost) received in each state per period, in currency.
    discount_rate : float
        Discount rate per period ``d`` (e.g. 0.2 = 20 % per period).
    horizon : int, optional
        ``None``: infinite horizon, ``V = (I - P / (1 + d))^{-1} R`` (P&C eq. 8).
        ``T``: the finite sum ``V_T = sum_{t=0}^{T} (P / (1 + d))^t R`` (P&C eq. 7), i.e.
        the current period's reward plus ``T`` discounted future periods.

    Returns
    -------
    pandas.Series
        Value per starting state (index: state labels, or 0..n-1 for arrays).
    """
    labels = list(P.index) if isinstance(P, pd.DataFrame) else list(range(len(P)))
    p = np.asarray(P, dtype=float)
    n = p.shape[0]
    if p.shape != (n, n) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-9) or (p < 0).any():
        raise SegflowError("P must be a square matrix of probabilities whose rows sum to 1")
    rate = discount_rate
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) \
            or not (np.isfinite(rate) and rate > -1):  # NaN gave NaN values
        raise ArgumentError(f"markov_clv: argument 'discount_rate': expected a finite number > -1; got {rate!r}")
    if horizon is not None and (isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral)
                                or horizon < 0):  # 2.5 raised Python's TypeError
        raise ArgumentError(f"markov_clv: argument 'horizon': expected None or a whole number of periods "
                            f">= 0; got {horizon!r}")
    if isinstance(rewards, Mapping | pd.Series):
        _once(rewards, "markov_clv: argument 'rewards'")
        unknown = sorted((k for k in rewards.keys() if k not in set(labels)), key=repr)
        if unknown:  # (they were dropped without a word)
            raise ArgumentError(
                f"markov_clv: argument 'rewards': unknown state{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; the states are {', '.join(map(repr, labels))}")
        r = np.array([float(rewards.get(s, 0.0)) for s in labels])
    else:
        r = np.asarray(rewards, dtype=float)
    if r.shape != (n,):
        raise SegflowError(f"rewards must have {n} entries, got {r.shape}")
    m = p / (1.0 + discount_rate)
    if horizon is None:
        if discount_rate <= 0:
            raise SegflowError("an infinite horizon needs a positive discount_rate")
        v = np.linalg.solve(np.eye(n) - m, r)
    else:
        v = r.copy()
        for _ in range(horizon):  # V_{t+1} = R + M V_t: one step per period
            v = r + m @ v
    return pd.Series(v, index=labels, name="value")
