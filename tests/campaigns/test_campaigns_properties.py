"""Properties every interval and correction must have, over arbitrary counts (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from segflow.campaigns import _stats

counts = st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@settings(max_examples=300, deadline=None)
@given(counts, counts, st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_newcombe_contains_estimate_and_stays_in_range(a, b, level):
    (x1, n1), (x0, n0) = a, b
    low, high = _stats.newcombe_interval(x1, n1, x0, n0, level)
    d = x1 / n1 - x0 / n0
    assert -1 - 1e-12 <= low <= d + 1e-12 <= high + 2e-12 <= 1 + 3e-12
    wl, wh = _stats.wilson_interval(x1, n1, level)
    assert 0 <= wl <= x1 / n1 <= wh <= 1
    # a wider level gives a wider interval
    low99, high99 = _stats.newcombe_interval(x1, n1, x0, n0, 0.995)
    assert low99 <= low + 1e-12 and high99 >= high - 1e-12


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_adjusted_pvalues_are_monotone_and_bounded(p):
    p = np.array(p)
    holm = _stats.adjust_pvalues(p, "holm")
    bh = _stats.adjust_pvalues(p, "bh")
    assert (holm >= p - 1e-15).all() and (holm <= 1).all()
    assert (bh >= p - 1e-15).all() and (bh <= holm + 1e-12).all()
    order = np.argsort(p, kind="mergesort")
    assert (np.diff(holm[order]) >= -1e-12).all() and (np.diff(bh[order]) >= -1e-12).all()


@settings(max_examples=200, deadline=None)
@given(counts, counts)
def test_pvalues_are_probabilities(a, b):
    (x1, n1), (x0, n0) = a, b
    p = float(_stats.two_proportion_ztest(x1, n1, x0, n0))
    pf = float(_stats.fisher_pvalues(x1, n1, x0, n0)[0])
    assert 0 <= p <= 1 and 0 <= pf <= 1 + 1e-9
