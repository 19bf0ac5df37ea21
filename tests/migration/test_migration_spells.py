"""Migration and the CRM segment list read from the change rows equal the per-snapshot
readers on the view ``segment_assignments`` (issue 10), on histories with entries, exits,
returns and changes back and forth."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.pipeline._spells_fixture import _random_history, _write

from segflow.exports import segment_list
from segflow.migration import pooled_transition_matrix, transition_matrix
from segflow.migration._pairs import cell_counts, scheme_rows
from segflow.migration._spells import spell_cell_counts, spell_segment_list
from segflow.store import Store


@pytest.fixture(params=[11, 12])
def history(request):
    frame = _random_history(request.param, n_customers=60)
    store = Store(":memory:")
    days = sorted(frame["snapshot_date"].unique())
    for d in days[:4]:  # written in steps, as runs do
        _write(store, frame, [d], "r")
    _write(store, frame, days[4:], "r2")
    yield store, days
    store.close()


def test_all_pair_counts_from_spells_equal_the_view(history):
    store, days = history
    view = scheme_rows(store.table("segment_assignments"), "s")
    for dates in (days, days[::2], days[2:5]):
        want = cell_counts(view, dates)
        got = spell_cell_counts(store, "s", dates)
        want = want.sort_values(["pair", "from_segment", "to_segment"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)
        # the history has exits and entries, not only moves
        assert {"(new)", "(gone)"} <= set(got["from_segment"]) | set(got["to_segment"])


def test_transition_matrices_from_the_store_equal_those_from_the_view(history):
    store, days = history
    view = store.table("segment_assignments")
    a = transition_matrix(view, scheme="s", from_date=days[1], to_date=days[4])
    b = transition_matrix(store, scheme="s", from_date=days[1], to_date=days[4])
    pd.testing.assert_frame_equal(a.counts(), b.counts())
    pa_ = pooled_transition_matrix(view, scheme="s", weights=2.0)
    pb = pooled_transition_matrix(store, scheme="s", weights=2.0)
    pd.testing.assert_frame_equal(pa_.counts(), pb.counts())
    assert pa_.pairs == pb.pairs == len(days) - 1


def test_segment_list_from_spells_equals_the_view(history):
    store, days = history
    for day in (days[0], days[3], days[-1]):
        want = segment_list(store.table("segment_assignments"), "s", day).order_by(
            "customer_id").to_pandas()
        got = spell_segment_list(store, "s", day).order_by("customer_id").to_pandas()
        pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)
    assert want["previous_segment"].notna().any() and (want["periods_in_segment"] > 1).any()


def test_paths_and_time_in_segment_from_spells_equal_the_view(history):
    from segflow.migration import customer_paths

    store, _ = history
    want = customer_paths(store.table("segment_assignments"), "s", top=50)
    got = customer_paths(store, "s", top=50)
    pd.testing.assert_frame_equal(got.to_pandas(), want.to_pandas())
    pd.testing.assert_frame_equal(got.time_in_segment, want.time_in_segment, check_dtype=False)
    assert (got.customers, got.distinct_paths, got.dates) == (
        want.customers, want.distinct_paths, want.dates)
    assert want.time_in_segment["completed_runs"].sum() > 0
    assert any("(gone)" in p for p in want.to_pandas()["path"])
