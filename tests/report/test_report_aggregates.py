"""The run's stored aggregates equal a direct computation from customer-level tables, on the
demo project: segment sizes and revenue at every snapshot, CLV by segment, every stored pair
of snapshots' transitions with the revenue moved, profiles and the audit."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(demo_project):
    from segflow.project import Project

    with Project.open(demo_project, read_only=True) as p:
        yield p


def _frame(project, sql, params=()):
    return project.store.sql(sql, list(params)).to_pandas()


def test_the_run_stored_aggregates_of_its_own_run(project):
    from segflow.summaries import summaries_run

    run = _frame(project, "SELECT run_id FROM runs WHERE command = 'run' AND status = 'ok' "
                 "ORDER BY started_at DESC LIMIT 1")["run_id"].iloc[0]
    assert summaries_run(project.store) == run
    counts = _frame(project, "SELECT scheme, count(DISTINCT snapshot_date) AS n FROM summary_segments GROUP BY 1")
    dates = project.snapshot_dates()
    assert len(dates) == 18
    assert dict(zip(counts.scheme, counts.n, strict=True)) == {s: 18 for s in project.schemes()}


def test_segment_sizes_and_revenue_match_the_customer_level_tables(project):
    from segflow.report._queries import segment_sizes
    from segflow.summaries import segment_table

    store = project.store
    for scheme in project.schemes():
        dates = project.snapshot_dates(scheme)
        for snapshot in (dates[0], dates[len(dates) // 2], dates[-1]):
            direct = segment_sizes(store, scheme, snapshot)
            stored = segment_table(store, scheme, snapshot)
            assert list(stored.segment) == list(direct.segment)
            assert list(stored.customers) == list(direct.customers)
            np.testing.assert_allclose(stored.revenue_12m, direct.revenue_12m, atol=0.005)
            np.testing.assert_allclose(stored.share, direct.share, atol=1e-12)
            np.testing.assert_allclose(stored.revenue_share, direct.revenue_share, atol=1e-9)
    # all-time revenue: every line of the segment's customers before the snapshot (pandas)
    scheme, snapshot = "rfm", project.snapshot_dates("rfm")[-1]
    a = _frame(project, "SELECT customer_id, segment FROM segment_assignments WHERE scheme = ? "
               "AND snapshot_date = ?", [scheme, snapshot])
    t = _frame(project, "SELECT customer_id, ts, amount FROM transactions WHERE customer_id IS NOT NULL")
    before = t[t.ts < pd.Timestamp(snapshot)].groupby("customer_id").amount.sum()
    expected = a.assign(r=a.customer_id.map(before).fillna(0.0)).groupby("segment").r.sum()
    stored = segment_table(store, scheme, snapshot).set_index("segment").revenue_all_time
    assert expected.sum() > 100_000  # real money, not an empty join
    np.testing.assert_allclose(stored.reindex(expected.index), expected, atol=0.005)


def test_clv_by_segment_matches_the_scores(project):
    from segflow.report._queries import value_by_segment
    from segflow.summaries import value_table

    store = project.store
    latest = project.snapshot_dates()[-1]
    for scheme in project.schemes():
        direct = value_by_segment(store, scheme, latest)
        stored = value_table(store, scheme, latest)
        assert list(stored.segment) == list(direct.segment)
        assert direct.clv.sum() > 0
        np.testing.assert_allclose(stored.clv, direct.clv, rtol=1e-9)
        np.testing.assert_allclose(stored.mean_p_alive, direct.mean_p_alive, rtol=1e-9)
        np.testing.assert_allclose(stored.expected_purchases, direct.expected_purchases, rtol=1e-9)
    # no scores at earlier snapshots: no CLV there
    assert value_table(store, "rfm", project.snapshot_dates()[0]) is None


def test_every_stored_pair_matches_the_transition_matrix(project):
    from segflow.migration import transition_matrix
    from segflow.summaries import snapshot_pairs, transition_table

    store = project.store
    a, tx = store.table("segment_assignments"), store.table("transactions")
    dates = project.snapshot_dates("lifecycle")
    pairs = snapshot_pairs(dates)
    assert len(pairs) == 17 + 16
    stored_pairs = _frame(project, "SELECT DISTINCT from_date, to_date FROM summary_transitions WHERE scheme = ?",
                          ["lifecycle"])
    assert len(stored_pairs) == len(pairs)
    for f, t in [pairs[0], pairs[16], (dates[0], dates[-1]), (dates[9], dates[-1])]:
        direct = transition_matrix(a, scheme="lifecycle", from_date=f, to_date=t, transactions=tx)
        stored = transition_table(store, "lifecycle", f, t)
        assert stored.segments == direct.segments
        pd.testing.assert_frame_equal(stored.counts(), direct.counts())
        np.testing.assert_allclose(stored.revenue().fillna(0).to_numpy(), direct.revenue().fillna(0).to_numpy(),
                                   atol=0.005)
        assert direct.summary()["revenue_in_motion"] > 0


def test_revenue_moved_equals_a_pandas_computation(project):
    """Cell (new) -> segment and segment -> segment revenue from the raw tables."""
    dates = project.snapshot_dates("rfm")
    f, t = dates[3], dates[-1]
    a = _frame(project, "SELECT snapshot_date, customer_id, segment FROM segment_assignments WHERE scheme = 'rfm'")
    frm = a[a.snapshot_date == f].set_index("customer_id").segment
    to = a[a.snapshot_date == t].set_index("customer_id").segment
    both = pd.DataFrame({"from_segment": frm, "to_segment": to})
    both["from_segment"] = both.from_segment.fillna("(new)")
    both["to_segment"] = both.to_segment.fillna("(gone)")
    tx = _frame(project, "SELECT customer_id, ts, amount FROM transactions WHERE customer_id IS NOT NULL")
    between = tx[(tx.ts >= pd.Timestamp(f)) & (tx.ts < pd.Timestamp(t))].groupby("customer_id").amount.sum()
    both["revenue"] = both.index.map(between).fillna(0.0)
    expected = both.groupby(["from_segment", "to_segment"]).agg(customers=("revenue", "size"), revenue=("revenue", "sum"))
    stored = _frame(project, "SELECT from_segment, to_segment, customers, revenue FROM summary_transitions "
                    "WHERE scheme = 'rfm' AND from_date = ? AND to_date = ?", [f, t])
    stored = stored.set_index(["from_segment", "to_segment"]).sort_index()
    expected = expected.sort_index()
    assert list(stored.index) == list(expected.index)
    assert list(stored.customers) == list(expected.customers)
    np.testing.assert_allclose(stored.revenue, expected.revenue, atol=0.005)
    assert expected.loc[expected.index.get_level_values(0) == "(new)", "customers"].sum() > 0


def test_movements_pooled_matrices_profiles_and_audit_match(project):
    from segflow.migration import pooled_transition_matrix
    from segflow.quality import audit
    from segflow.report._movement import movement_cells
    from segflow.segments import profile_segments
    from segflow.summaries import audit_table, movement_table, pooled_table, profile_table

    store = project.store
    dates = project.snapshot_dates("value_tiers")
    direct = movement_cells(store, "value_tiers", dates[-2], dates[-1])
    stored = movement_table(store, "value_tiers", dates[-2], dates[-1])
    cols = ["from_segment", "to_segment", "customers", "direction"]
    pd.testing.assert_frame_equal(stored[cols], direct[cols])
    np.testing.assert_allclose(stored.revenue_12m, direct.revenue_12m, atol=0.005)
    np.testing.assert_allclose(stored.clv, direct.clv, rtol=1e-9)

    recent = dates[-6:]
    pooled = pooled_transition_matrix(store.table("segment_assignments"), scheme="value_tiers", dates=recent)
    mine = pooled_table(store, "value_tiers", recent)
    pd.testing.assert_frame_equal(mine.counts(), pooled.counts())
    assert mine.pairs == pooled.pairs == 5

    feats = store.table("customer_features")
    snapshot = feats.snapshot_date.max().execute()
    a = store.table("segment_assignments")
    a = a.filter((a.scheme == "rfm") & (a.snapshot_date == snapshot)).select("customer_id", "segment", "segment_rank")
    direct_p = profile_segments(feats.filter(feats.snapshot_date == snapshot).drop("snapshot_date"), a)
    stored_p = profile_table(store, "rfm")
    assert list(stored_p.table.segment) == list(direct_p.table.segment)
    assert list(stored_p.table["size"]) == list(direct_p.table["size"])
    # rule segments keep their rule names; no cluster-style suggestion is stored for them
    assert list(stored_p.table.name) == list(stored_p.table.segment)
    assert stored_p.table.suggested_name.isna().all()
    pd.testing.assert_frame_equal(stored_p.means, direct_p.means[stored_p.means.columns], check_names=False)
    pd.testing.assert_frame_equal(stored_p.std_diff, direct_p.std_diff[stored_p.std_diff.columns], check_names=False)

    checks = audit(store, as_of=dt.datetime.now(dt.UTC).date()).to_pandas()
    stored_a = audit_table(store)
    assert list(stored_a["check"]) == list(checks["check"])
    assert list(stored_a["count"]) == list(checks["count"])


def test_rule_profiles_from_the_means_shapes_equal_the_general_means(project, monkeypatch):
    """The run's profiles of every rule-based scheme (``rule_profiles``) take their exact
    means in the form the features' values need (``mean_shapes``: no NaN test, no large
    amounts' text sums nor counts where no value needs them); on the demo's features every
    stored number is the same as with the general form, bit for bit."""
    import segflow.summaries._profiles as profiles
    from segflow.pipeline import resolve_schemes
    from segflow.segments._means import ANY_VALUES

    schemes = [s.name for s in resolve_schemes(project.settings) if s.kind != "cluster"]
    used = []
    real = profiles.mean_shapes
    monkeypatch.setattr(profiles, "mean_shapes", lambda *a: used.append(real(*a)) or used[-1])
    _, lean = profiles.rule_profiles(project.store, schemes)
    shapes = used[0].values()
    assert not any(s.odd for s in shapes) and not all(s.large for s in shapes)
    assert not all(s.nulls for s in shapes)  # the lean forms are in use
    monkeypatch.setattr(profiles, "mean_shapes", lambda t, cols, rows: dict.fromkeys(cols, ANY_VALUES))
    _, general = profiles.rule_profiles(project.store, schemes)
    assert len(lean) == len(schemes) > 2 and list(lean) == list(general)
    for scheme, (segments, long) in lean.items():
        pd.testing.assert_frame_equal(segments, general[scheme][0], check_exact=True)
        pd.testing.assert_frame_equal(long, general[scheme][1], check_exact=True)


def test_a_run_with_nothing_to_compute_keeps_the_aggregates(demo_project, tmp_path):
    """A second ``run`` with no new data computes nothing: the aggregates stay current (the
    report keeps reading them, instead of falling back to customer-level tables), unchanged;
    only the run log records the run (``snapshots_computed: 0``)."""
    import shutil

    from segflow.project import Project
    from segflow.summaries import summaries_run

    shutil.copytree(demo_project, tmp_path / "p")
    query = "SELECT * EXCLUDE (run_id) FROM summary_segments ORDER BY ALL"
    with Project.open(tmp_path / "p") as p:
        before, stored = _frame(p, query), summaries_run(p.store)
        assert stored is not None
        for _ in range(2):
            summary = p.run()
            assert summary.snapshots_computed == [] and summary.assignments_written == 0
            assert summaries_run(p.store) == stored  # still current, and untouched
        pd.testing.assert_frame_equal(_frame(p, query), before)
        # a later run that does not say it computed nothing makes them stale
        with p.store.run("run", {}):
            pass
        assert summaries_run(p.store) is None


def test_project_api_reads_the_stored_aggregates_and_the_change_rows(project):
    """``Project.snapshot_dates`` (from the change rows' ranges, not the expanded view) and
    ``Project.segment_sizes`` (from the stored aggregates when current) give what the
    per-snapshot view and the customer-level computation give."""
    from segflow.report._queries import segment_sizes

    view = _frame(project, "SELECT scheme, snapshot_date FROM segment_assignments GROUP BY ALL")
    for scheme in project.schemes():
        expected = sorted(pd.to_datetime(view.snapshot_date[view.scheme == scheme]).dt.date)
        assert project.snapshot_dates(scheme) == expected
    assert project.snapshot_dates() == sorted(set(pd.to_datetime(view.snapshot_date).dt.date))
    from segflow.store._spells import assigned_schemes

    assert assigned_schemes(project.store.raw) == sorted(set(view.scheme))
    for scheme in ("rfm", "lifecycle"):
        snapshot = project.snapshot_dates(scheme)[-2]
        got = project.segment_sizes(scheme, snapshot)
        direct = segment_sizes(project.store, scheme, snapshot)
        assert list(got.columns) == list(direct.columns)
        assert list(got.segment) == list(direct.segment)
        assert list(got.customers) == list(direct.customers)
        np.testing.assert_allclose(got.revenue_12m, direct.revenue_12m, atol=0.005)


def test_transitions_and_migrate_read_the_stored_cells_of_a_stored_pair(project, demo_project, monkeypatch):
    """``Project.transitions`` and ``segflow migrate`` take a stored pair's matrix from the
    run's cells (the computation is not called) and give what the computation gives, with
    the asked interval and level; another pair is computed."""
    import json

    from typer.testing import CliRunner

    import segflow.migration as migration
    from segflow.cli import app

    a, tx = project.store.table("segment_assignments"), project.store.table("transactions")
    dates = project.snapshot_dates("lifecycle")
    direct = {(f, t): migration.transition_matrix(a, scheme="lifecycle", from_date=f, to_date=t,
                                                  transactions=tx, interval="goodman", level=0.9)
              for f, t in [(dates[-2], dates[-1]), (dates[4], dates[-1]), (dates[2], dates[5])]}
    computed = []
    real = migration.transition_matrix

    def spy(*args, **kwargs):
        computed.append((kwargs["from_date"], kwargs["to_date"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(migration, "transition_matrix", spy)
    for (f, t), want in direct.items():
        got = project.transitions("lifecycle", f.isoformat(), t, interval="goodman", level=0.9)
        assert got.segments == want.segments and (got.interval, got.level) == ("goodman", 0.9)
        pd.testing.assert_frame_equal(got.counts(), want.counts())
        cols = ["share", "share_lower", "share_upper"]
        np.testing.assert_allclose(got.to_pandas()[cols], want.to_pandas()[cols], atol=1e-12)
        np.testing.assert_allclose(got.revenue().fillna(0).to_numpy(),
                                   want.revenue().fillna(0).to_numpy(), atol=0.005)
    assert computed == [(dates[2], dates[5])]  # not a stored pair: neither consecutive nor to the latest
    out = CliRunner().invoke(app, ["migrate", "--scheme", "lifecycle", "--json", "--interval", "goodman",
                                   "--level", "0.9", "-p", str(demo_project)])
    assert out.exit_code == 0, out.output
    assert computed == [(dates[2], dates[5])]
    got = pd.DataFrame(json.loads(out.stdout)["data"])
    want = direct[(dates[-2], dates[-1])].to_pandas()
    assert list(got.customers) == list(want.customers)
    np.testing.assert_allclose(got.share_upper, want.share_upper, atol=1e-12)
    with pytest.raises(Exception, match="no snapshot at 2024-01-15; the nearest"):
        project.transitions("lifecycle", "2024-01-15")
