"""The full aggregates computed by chunks of customers (as at 10M customers, where every
snapshot's states at once outgrew the machine) equal those computed at once: every stored
segment row and transition cell of the demo project (1,500 customers, 18 snapshots, six
schemes): counts and money to the last bit, the model outputs' sums to 1e-14."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def _stored(store) -> tuple[pd.DataFrame, pd.DataFrame]:
    seg = store.sql("SELECT * FROM summary_segments").to_pandas()
    tr = store.sql("SELECT * FROM summary_transitions").to_pandas()
    return (seg.sort_values(["scheme", "snapshot_date", "segment"], ignore_index=True),
            tr.sort_values(["scheme", "from_date", "to_date", "from_segment", "to_segment"],
                           ignore_index=True))


def test_aggregates_by_chunks_of_customers_equal_all_at_once(demo_project, tmp_path, monkeypatch):
    from segflow.project import Project
    from segflow.summaries import _write, write_aggregates

    shutil.copytree(demo_project, tmp_path / "p")
    with Project.open(tmp_path / "p") as project:
        store = project.store
        run = store.sql("SELECT run_id FROM runs WHERE command = 'run' AND status = 'ok' "
                        "ORDER BY started_at DESC LIMIT 1").to_pandas()["run_id"].iloc[0]
        n = store.sql("SELECT count(DISTINCT customer_id) AS n FROM segment_spells").to_pandas()["n"].iloc[0]
        assert n > 1_000
        write_aggregates(store, run, audit=False, results=False)
        seg, tr = _stored(store)
        monkeypatch.setattr(_write, "AGGREGATE_CHUNK_CUSTOMERS", 400)  # four chunks
        write_aggregates(store, run, audit=False, results=False)
        seg4, tr4 = _stored(store)
    assert len(seg) > 100 and len(tr) > 500 and seg["revenue_12m"].sum() > 0
    # counts and money exactly; the model outputs' sums (P(alive), expected purchases, CLV)
    # to a double's last bits: a chunk's exact sum is a double before the chunks are added
    scores = ["mean_p_alive", "expected_purchases", "clv", "mean_clv", "clv_share"]
    exact = [c for c in seg.columns if c not in scores]
    pd.testing.assert_frame_equal(seg4[exact], seg[exact], check_exact=True)
    pd.testing.assert_frame_equal(seg4[scores], seg[scores], check_exact=False, rtol=1e-14)
    exact = [c for c in tr.columns if c != "clv"]
    pd.testing.assert_frame_equal(tr4[exact], tr[exact], check_exact=True)
    pd.testing.assert_series_equal(tr4["clv"], tr["clv"], check_exact=False, rtol=1e-14)


@pytest.mark.parametrize("budget", [1, 60_000])
def test_profiles_with_medians_in_batches_equal_all_at_once(demo_project, monkeypatch, budget):
    """The segment profiles' exact medians taken a few features and schemes at a time (as at
    10M customers, where one query of every median was killed for memory) equal one query:
    ``budget`` 1 gives one feature per query and one scheme per batch, 60,000 batches of
    schemes with several features per query."""
    from segflow.pipeline import resolve_schemes
    from segflow.project import Project
    from segflow.segments import _profile
    from segflow.summaries._write import profile_frames

    with Project.open(demo_project, read_only=True) as project:
        store = project.store
        schemes = [s for s in resolve_schemes(project.settings) if s.kind != "cluster"]
        names = [s.name for s in schemes]
        rule_based = dict.fromkeys(names, True)
        segs, longs = profile_frames(store, names, rule_based)
        monkeypatch.setattr(_profile, "MEDIAN_VALUES", budget)
        segs_b, longs_b = profile_frames(store, names, rule_based)
    assert len(names) >= 4 and sum(len(x) for x in longs) > 200
    assert longs[0]["median"].notna().sum() > 10
    for a, b in zip(segs + longs, segs_b + longs_b, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
