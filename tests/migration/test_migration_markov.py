"""Markov forecast, steady state, absorption and value against hand-solved chains."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from segflow.errors import SegflowError
from segflow.migration import MarkovChain, markov_clv

# Pfeifer & Carraway (2000) recency example: purchase probability by recency state
PURCHASE = [0.30, 0.20, 0.15, 0.05, 0.0]
CONTRIBUTION, MARKETING, RATE = 40.0, 4.0, 0.2


def _recency_P() -> np.ndarray:
    """State i -> state 1 with p_i (a purchase), else -> i+1 (state 5 stays 5)."""
    p = np.zeros((5, 5))
    for i, pi in enumerate(PURCHASE):
        p[i, 0] = pi
        p[i, min(i + 1, 4)] += 1 - pi
    return p


def _rewards() -> np.ndarray:
    # state 1: contribution of the purchase minus this period's mailing; states 2-4 are
    # mailed (cost 4) without a purchase; state 5 is no longer mailed
    return np.array([CONTRIBUTION - MARKETING, -MARKETING, -MARKETING, -MARKETING, 0.0])


def _recency_value_by_hand() -> np.ndarray:
    """Back-substitution: write V_i = a_i + b_i V_1 from state 5 upwards, then solve V_1."""
    delta = 1.0 / (1.0 + RATE)
    r = _rewards()
    # V5 = r5 + delta * V5  ->  V5 = 0 (r5 = 0)
    a5, b5 = 0.0, 0.0
    a, b = {5: a5}, {5: b5}
    for i in (4, 3, 2):
        p = PURCHASE[i - 1]
        # V_i = r_i + delta * (p V1 + (1 - p) V_{i+1})
        a[i] = r[i - 1] + delta * (1 - p) * a[i + 1]
        b[i] = delta * p + delta * (1 - p) * b[i + 1]
    p1 = PURCHASE[0]
    a1 = r[0] + delta * (1 - p1) * a[2]
    b1 = delta * p1 + delta * (1 - p1) * b[2]
    v1 = a1 / (1 - b1)
    return np.array([v1] + [a[i] + b[i] * v1 for i in (2, 3, 4, 5)])


def test_recency_example_infinite_horizon_value():
    v = markov_clv(_recency_P(), _rewards(), RATE)
    np.testing.assert_allclose(v.to_numpy(), _recency_value_by_hand(), rtol=1e-12)
    assert v.iloc[0] > v.iloc[1] > v.iloc[2] > v.iloc[4] == 0.0


def test_finite_horizon_is_the_discounted_sum():
    p, r = _recency_P(), _rewards()
    for horizon in (0, 1, 3, 10):
        expected = sum(np.linalg.matrix_power(p / (1 + RATE), t) @ r for t in range(horizon + 1))
        np.testing.assert_allclose(markov_clv(p, r, RATE, horizon=horizon).to_numpy(), expected)
    # the finite sum converges to the infinite-horizon value
    np.testing.assert_allclose(
        markov_clv(p, r, RATE, horizon=400).to_numpy(), _recency_value_by_hand()
    )


def test_chain_value_uses_labels():
    labels = ["1", "2", "3", "4", "5"]
    counts = pd.DataFrame(_recency_P() * 1000, index=labels, columns=labels)
    chain = MarkovChain().fit(counts)
    v = chain.value(dict(zip(labels, _rewards(), strict=True)), RATE)
    np.testing.assert_allclose(v.to_numpy(), _recency_value_by_hand(), rtol=1e-12)


def test_forecast_two_state_by_hand():
    counts = pd.DataFrame([[90, 10], [0, 0]], index=["A", "(gone)"], columns=["A", "(gone)"])
    chain = MarkovChain().fit(counts)
    fc = chain.forecast({"A": 100}, 2)
    np.testing.assert_allclose(fc.loc[2].to_numpy(), [81.0, 19.0])
    # arrivals placed by the (new) row: 30% to A... here all new customers enter A
    counts_new = pd.concat(
        [counts, pd.DataFrame([[5, 0]], index=["(new)"], columns=["A", "(gone)"])]
    )
    chain = MarkovChain().fit(counts_new)
    fc = chain.forecast({"A": 100}, 2, arrivals=10)
    # x1 = 100*.9 + 10 = 100; x2 = 100*.9 + 10 = 100
    np.testing.assert_allclose(fc["A"].to_numpy(), [100, 100, 100])
    # open-population steady state: a / (1 - q) = 10 / 0.1
    assert chain.steady_state(arrivals=10)["A"] == pytest.approx(100.0)


def test_forecast_and_value_refuse_what_is_no_count_or_reward():
    """A NaN or negative mix forecast NaN or negative customers, a NaN reward gave NaN
    values, k = 2.5 raised Python's TypeError (session 59): each an ArgumentError (a
    ValueError) naming the argument, the first state and how many."""
    from segflow.errors import ArgumentError

    counts = pd.DataFrame([[8, 2, 0], [1, 6, 3], [0, 0, 10]], index=["A", "B", "(gone)"],
                          columns=["A", "B", "(gone)"])
    chain = MarkovChain().fit(counts)
    for call, message in [
        (lambda: chain.forecast({"A": np.nan}, 2), "forecast: argument 'mix': expected numbers >= 0; got nan "
                                                   "for state 'A' (1 of 3 states)"),
        (lambda: chain.forecast([4, -5, -1], 2), "forecast: argument 'mix': expected numbers >= 0; got -5.0 "
                                                 "for state 'B' (2 of 3 states)"),
        (lambda: chain.forecast({"A": 5}, 2.5), "forecast: argument 'k': expected a whole number of periods "
                                                ">= 0; got 2.5"),
        (lambda: chain.forecast({"A": 5}, 2, arrivals=[1, np.nan]), "forecast: argument 'arrivals': expected "
                                                                    "one number or k = 2 numbers, finite and "
                                                                    ">= 0; got nan"),
        (lambda: chain.value({"A": 1, "B": np.inf}, 0.1), "value: argument 'rewards': expected finite numbers; "
                                                          "got inf for state 'B' (1 of 3 states)"),
        # session 59's review: these gave NumPy's or Python's errors, inf arrivals an
        # infinite forecast, a NaN discount rate NaN values
        (lambda: chain.forecast({"A": 5}, 3, arrivals=[1, 2]), "forecast: argument 'arrivals': expected one "
                                                               "number or k = 3 numbers, finite and >= 0; got 2 "
                                                               "numbers"),
        (lambda: chain.forecast({"A": 5}, 2, arrivals=np.inf), "forecast: argument 'arrivals': expected one "
                                                               "number or k = 2 numbers, finite and >= 0; got inf"),
        (lambda: chain.forecast({"A": None}, 2), "forecast: argument 'mix': expected numbers; got None for state 'A'"),
        (lambda: chain.forecast(["4", "x", 1], 2), "forecast: argument 'mix': expected numbers; got 'x' for state 'B'"),
    ]:
        with pytest.raises(ArgumentError) as err:
            call()
        assert isinstance(err.value, ValueError) and str(err.value) == f"MarkovChain.{message}"
    for call, message in [
        (lambda: chain.value({"A": 1}, np.nan), "argument 'discount_rate': expected a finite number > -1; got nan"),
        (lambda: chain.value({"A": 1}, 0.1, horizon=2.5),
         "argument 'horizon': expected None or a whole number of periods >= 0; got 2.5"),
        (lambda: chain.value({"A": 1}, 0.1, horizon=-1),
         "argument 'horizon': expected None or a whole number of periods >= 0; got -1"),
    ]:
        with pytest.raises(ArgumentError) as err:
            call()
        assert str(err.value) == f"markov_clv: {message}"
    # a negative reward (a cost) is a reward: v = r + P v / (1 + d), solved by hand
    p = chain.transition_matrix_.to_numpy()[:2, :2]
    want = np.linalg.solve(np.eye(2) - p / 1.1, [-1.0, 2.0])
    np.testing.assert_allclose(chain.value({"A": -1, "B": 2}, 0.1)[["A", "B"]], want, rtol=1e-9)


def test_open_steady_state_is_inf_on_a_closed_group_the_arrivals_feed():
    """Nobody ever leaves B (no observed exit): arrivals pile up there for ever, so its
    long-run size is inf, not the huge number of a solve with a singular I - Q; A and C
    keep their finite values, and D (closed, never fed) holds 0. Hand values: x_C = 4 /
    (1 - .2) = 5, x_A = (6 + .2 x_C) / (1 - .5) = 14; checked against iterating the
    forecast step x <- x Q + a e for 400 periods."""
    states = ["A", "B", "C", "D", "(gone)"]
    counts = pd.DataFrame(0.0, index=["(new)", *states[:4]], columns=states)
    counts.loc["(new)", ["A", "C"]] = [6, 4]
    counts.loc["A", ["A", "B", "(gone)"]] = [50, 25, 25]
    counts.loc["B", "B"] = 10
    counts.loc["C", ["A", "C", "(gone)"]] = [20, 20, 60]
    counts.loc["D", "D"] = 5
    chain = MarkovChain().fit(counts)  # B and D: every customer stayed
    got = chain.steady_state(arrivals=10)
    q = chain.transition_matrix_.loc[states[:4], states[:4]].to_numpy()
    e = np.array([0.6, 0.0, 0.4, 0.0])
    x = np.zeros(4)
    for _ in range(400):
        x = x @ q + 10 * e
    assert got["A"] == pytest.approx(14.0) and got["C"] == pytest.approx(5.0)
    np.testing.assert_allclose(got[["A", "C"]].to_numpy(), x[[0, 2]], rtol=1e-12)
    assert got["B"] == np.inf and x[1] > 0.9 * 400 * 10 * 0.14  # B gains 14 * .25 = 3.5 a period
    assert got["D"] == 0.0 and x[3] == 0.0
    assert (chain.steady_state(arrivals=0) == 0).all()
    for bad in (-5.0, float("nan")):  # -5 gave A = -10 beside B = 0 (not -inf)
        with pytest.raises(SegflowError, match="arrivals must be a number >= 0"):
            chain.steady_state(arrivals=bad)


def test_steady_state_two_state_closed_form():
    a, b = 0.2, 0.05
    counts = (
        pd.DataFrame(
            [[1 - a, a], [b, 1 - b]], index=["Active", "Lapsed"], columns=["Active", "Lapsed"]
        )
        * 1000
    )
    pi = MarkovChain().fit(counts).steady_state()
    np.testing.assert_allclose(pi.to_numpy(), [b / (a + b), a / (a + b)])


def test_absorption_times_by_hand():
    # A -> A .5, B .3, gone .2 ; B -> A .1, B .7, gone .2
    counts = pd.DataFrame(
        [[50, 30, 20], [10, 70, 20], [0, 0, 0]],
        index=["A", "B", "(gone)"],
        columns=["A", "B", "(gone)"],
    )
    ab = MarkovChain().fit(counts).absorption()
    # t = (I - Q)^-1 1, solved by hand: tA = 1 + .5 tA + .3 tB, tB = 1 + .1 tA + .7 tB
    # -> .5 tA - .3 tB = 1 ; -.1 tA + .3 tB = 1 -> .4 tA = 2 -> tA = 5, tB = (1 + .5) / .3 = 5
    np.testing.assert_allclose(ab["expected_periods"].to_numpy(), [5.0, 5.0])
    np.testing.assert_allclose(ab["p_(gone)"].to_numpy(), [1.0, 1.0])
    # forcing B absorbing: from A, P(end in B) = .3 / (1 - .5) = .6
    ab2 = MarkovChain(absorbing=["B"]).fit(counts).absorption()
    assert ab2.loc["A", "p_B"] == pytest.approx(0.6)
    assert ab2.loc["A", "expected_periods"] == pytest.approx(2.0)


def test_estimator_contract_and_errors():
    chain = MarkovChain(prior=0.5)
    assert clone(chain).get_params() == {"absorbing": None, "prior": 0.5}
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        chain.forecast([1.0], 1)
    with pytest.raises(SegflowError, match="square"):
        MarkovChain().fit(np.ones((2, 3)))
    with pytest.raises(SegflowError, match="rows sum to 1"):
        markov_clv(np.array([[0.5, 0.2], [0, 1]]), [1, 0], 0.1)
    with pytest.warns(UserWarning, match="no observed exits"):
        MarkovChain().fit(np.array([[1.0, 1.0], [0.0, 0.0]]))


def test_steady_state_ignores_an_unreachable_gone_state():
    # nobody left: (gone) is absorbing but never entered; A <-> B with a = .5, b = .2
    counts = pd.DataFrame(
        [[5, 5, 0], [2, 8, 0], [0, 0, 0]], index=["A", "B", "(gone)"], columns=["A", "B", "(gone)"]
    )
    pi = MarkovChain().fit(counts).steady_state()
    np.testing.assert_allclose(pi.to_numpy(), [0.2 / 0.7, 0.5 / 0.7, 0.0])


def test_absorption_says_never_when_gone_is_unreachable():
    # nobody left: (gone) is absorbing but never entered; before, inverting I - Q gave
    # nonsense like -3.65e16 periods
    counts = pd.DataFrame(
        [[5, 5, 0], [2, 8, 0], [0, 0, 0]], index=["A", "B", "(gone)"], columns=["A", "B", "(gone)"]
    )
    ab = MarkovChain().fit(counts).absorption()
    assert np.isinf(ab["expected_periods"]).all()
    np.testing.assert_allclose(ab["p_(gone)"], [0.0, 0.0])
    np.testing.assert_allclose(ab["p_never"], [1.0, 1.0])


def test_absorption_with_a_closed_class_beside_gone():
    # A -> A .5, B .25, gone .25 ; B -> B .5, C .5 ; C -> C 1 (a closed class, never absorbed)
    counts = pd.DataFrame(
        [[2, 1, 0, 1], [0, 1, 1, 0], [0, 0, 4, 0], [0, 0, 0, 0]],
        index=["A", "B", "C", "(gone)"], columns=["A", "B", "C", "(gone)"],
    )
    chain = MarkovChain().fit(counts)
    ab = chain.absorption()
    # from A: P(gone) = .25 / (1 - .5) = .5 (the other half goes to B and then to C for good)
    assert ab.loc["A", "p_(gone)"] == pytest.approx(0.5)
    assert ab.loc["A", "p_never"] == pytest.approx(0.5)
    assert ab.loc["B", "p_(gone)"] == 0.0 and ab.loc["C", "p_never"] == 1.0
    # absorption is not certain from any state: the expected time is infinite everywhere
    assert np.isinf(ab["expected_periods"]).all()
    # with C absorbing too, every state is absorbed for sure: finite, solved by hand
    ab2 = MarkovChain(absorbing=["C"]).fit(counts).absorption()
    # tB = 1 + .5 tB -> 2 ; tA = 1 + .5 tA + .25 tB -> tA = (1 + .5) / .5 = 3
    assert ab2.loc["A", "expected_periods"] == pytest.approx(3.0)
    assert ab2.loc["B", "expected_periods"] == pytest.approx(2.0)
    assert ab2.loc["A", "p_C"] == pytest.approx(0.5) and (ab2["p_never"] == 0).all()


def test_absorption_without_any_absorbing_state_is_never():
    chain = MarkovChain().fit(pd.DataFrame([[1, 1], [1, 1]], index=["A", "B"], columns=["A", "B"]))
    ab = chain.absorption()
    assert np.isinf(ab["expected_periods"]).all() and (ab["p_never"] == 1).all()


def test_chain_fits_a_half_life_weighted_pooled_matrix():
    # `segflow migrate forecast --half-life 3` failed on the demo ("transition counts must be
    # finite and non-negative"): weighted counts() kept the (new) -> (gone) cell as NaN
    import datetime as dt

    import ibis

    from segflow.migration import pooled_transition_matrix

    rows = [("a", 0, "A"), ("a", 1, "A"), ("a", 2, "B"),
            ("b", 0, "A"), ("b", 1, "B"), ("b", 2, "B"),
            ("c", 1, "A"), ("c", 2, "A"),
            ("d", 0, "B")]
    days = [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)]
    frame = pd.DataFrame(
        [(c, days[k], s, None) for c, k, s in rows],
        columns=["customer_id", "snapshot_date", "segment", "segment_rank"],
    )
    frame["scheme"] = "x"
    pooled = pooled_transition_matrix(ibis.memtable(frame), scheme="x", weights=2.0)
    assert not pooled.counts().isna().any().any()
    chain = MarkovChain().fit(pooled)
    w0 = 0.5 ** 0.5  # pair 0 of 2 with half-life 2
    # by hand: A -> A (a, pair 0; c, pair 1), A -> B (b, pair 0; a, pair 1);
    # B -> B (b, pair 1), B -> (gone) (d, pair 0); (new) -> A (c, pair 0)
    p = chain.transition_matrix_
    assert p.loc["A", "A"] == pytest.approx(0.5)
    assert p.loc["B", "B"] == pytest.approx(1 / (1 + w0))
    assert p.loc["B", "(gone)"] == pytest.approx(w0 / (1 + w0))
    fc = chain.forecast({"A": 1, "B": 2}, 1, arrivals=4)
    assert fc.loc[1, "A"] == pytest.approx(0.5 + 4)
    assert fc.loc[1, "B"] == pytest.approx(0.5 + 2 / (1 + w0))


def test_forecast_places_new_in_the_mix_by_the_entry_distribution_and_refuses_unknown_keys():
    """A mix with (new) lost those customers without a word (session 59), and so did any
    key that is no state: (new) now enters in the first period as the (new) row defines
    it, an unknown key is an ArgumentError naming it."""
    from segflow.errors import ArgumentError

    counts = pd.DataFrame([[8, 2, 0], [1, 6, 3], [0, 0, 0], [3, 1, 0]],
                          index=["A", "B", "(gone)", "(new)"], columns=["A", "B", "(gone)"])
    chain = MarkovChain().fit(counts)
    p = np.array([[0.8, 0.2, 0.0], [0.1, 0.6, 0.3], [0.0, 0.0, 1.0]])
    e = np.array([0.75, 0.25, 0.0])  # the (new) row's shares
    fc = chain.forecast({"A": 100, "B": 50, "(new)": 40}, 2, arrivals=10)
    x1 = np.array([100, 50, 0]) @ p + (10 + 40) * e
    x2 = x1 @ p + 10 * e
    np.testing.assert_allclose(fc.to_numpy(), [[100, 50, 0], x1, x2], rtol=1e-12)
    # a Series mix alike; (new) of 0 changes nothing
    np.testing.assert_allclose(chain.forecast(pd.Series({"A": 100.0, "B": 50.0, "(new)": 40.0}), 2),
                               chain.forecast({"A": 100, "B": 50}, 2, arrivals=[40, 0]), rtol=1e-12)
    closed = MarkovChain().fit(counts.drop(index="(new)"))
    np.testing.assert_allclose(closed.forecast({"A": 1, "(new)": 0}, 1).loc[1], [0.8, 0.2, 0.0])
    for call, message in [
        (lambda: chain.forecast({"A": 1, "Z": 2, "Lost": 3}, 1),
         "forecast: argument 'mix': unknown states 'Lost', 'Z'; the states are 'A', 'B', '(gone)'"),
        (lambda: chain.forecast({"A": 1, "(new)": -2}, 1),
         "forecast: argument 'mix': expected numbers >= 0; got -2.0 for state '(new)'"),
        (lambda: closed.forecast({"A": 1, "(new)": 5}, 1),
         "forecast: argument 'mix': '(new)' holds 5 customers, but the chain was fitted without a "
         "(new) row, so where they enter is unknown; fit on counts with a (new) row or leave them out"),
        (lambda: chain.value({"A": 1, "(new)": 2}, 0.1),
         "value: argument 'rewards': unknown state '(new)'; the states are 'A', 'B', '(gone)' ((new) is "
         "no state: customers enter through forecast's mix or arrivals)"),
    ]:
        with pytest.raises(ArgumentError) as err:
            call()
        assert str(err.value) == f"MarkovChain.{message}"
    with pytest.raises(ArgumentError) as err:  # the function alike
        markov_clv(chain.transition_matrix_, {"A": 1, "Z": 2}, 0.1)
    assert str(err.value) == "markov_clv: argument 'rewards': unknown state 'Z'; the states are 'A', 'B', '(gone)'"


def test_a_state_named_twice_in_a_series_is_one_line():
    """A mix or rewards Series naming a state twice (two rows of a groupby left unsummed)
    was refused with the repr of a Series, a message of several lines; now one line naming
    the state."""
    from segflow.errors import ArgumentError

    counts = pd.DataFrame([[8, 2], [1, 9], [3, 1]], index=["A", "B", "(new)"], columns=["A", "B"])
    chain = MarkovChain().fit(counts)
    mix, rewards = "MarkovChain.forecast: argument 'mix'", "argument 'rewards'"
    for call, where, state in [
        (lambda: chain.forecast(pd.Series([100, 50, 7], index=["A", "B", "A"]), 1), mix, "A"),
        (lambda: chain.forecast(pd.Series([1, 40, 5], index=["A", "(new)", "(new)"]), 1), mix, "(new)"),
        (lambda: chain.value(pd.Series([1.0, 2.0, 3.0], index=["A", "B", "A"]), 0.1),
         f"MarkovChain.value: {rewards}", "A"),
        (lambda: markov_clv(chain.transition_matrix_, pd.Series([1.0, 3.0], index=["B", "B"]), 0.1),
         f"markov_clv: {rewards}", "B"),
    ]:
        with pytest.raises(ArgumentError) as err:
            call()
        assert str(err.value) == f"{where}: state named more than once: {state!r}; give one value per state"
