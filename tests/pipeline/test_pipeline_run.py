"""The pipeline end to end on a fixture store: assignments, idempotence, report."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pyarrow as pa
import pytest


def test_run_writes_assignments_for_every_snapshot_and_scheme(ran_project):
    fixture_project, summary = ran_project
    assert summary.snapshot_dates == [dt.date(2024, m, 1) for m in range(2, 8)]
    assert summary.schemes == ["rfm", "lifecycle", "tiers", "rules"]
    counts = fixture_project.store.raw.execute(
        "SELECT scheme, snapshot_date, count(*), count(DISTINCT customer_id) "
        "FROM segment_assignments GROUP BY ALL ORDER BY ALL"
    ).df()
    assert len(counts) == 4 * 6
    # one row per customer per scheme and snapshot
    assert (counts.iloc[:, 2] == counts.iloc[:, 3]).all()
    # the base at each snapshot = customers created or buying before it (the same for every scheme)
    tx = fixture_project.store.table("transactions").execute()
    cu = fixture_project.store.table("customers").execute()
    for snapshot in summary.snapshot_dates:
        s = pd.Timestamp(snapshot)
        known = set(tx.loc[tx.ts < s, "customer_id"]) | set(cu.loc[cu.created_at < s, "customer_id"])
        got = counts[(counts.snapshot_date == snapshot)].iloc[:, 2]
        assert (got == len(known)).all(), (snapshot, got.tolist(), len(known))
    assert summary.assignments_written == int(counts.iloc[:, 2].sum())


def test_rerun_replaces_rather_than_appends(ran_project):
    fixture_project, first = ran_project
    raw = fixture_project.store.raw
    stored = ("SELECT * EXCLUDE (run_id) FROM segment_spells ORDER BY ALL",
              "SELECT * EXCLUDE (run_id, computed_at) FROM segment_snapshots ORDER BY ALL",
              "SELECT * EXCLUDE (run_id) FROM segment_assignments ORDER BY ALL",
              "SELECT * EXCLUDE (snapshot_date) FROM customer_features ORDER BY customer_id")
    before = [raw.execute(q).fetchall() for q in stored]
    second = fixture_project.run()  # nothing new: computes nothing, still completes
    third = fixture_project.run(full=True)  # recomputes every snapshot, replacing them
    n = raw.execute("SELECT count(*) FROM segment_assignments").fetchone()[0]
    assert n == first.assignments_written == third.assignments_written
    # ... with identical results: the same spells, snapshots, assignments and features
    assert [raw.execute(q).fetchall() for q in stored] == before and len(before[0]) > 0
    assert second.assignments_written == 0 and second.snapshots_computed == []
    assert third.snapshots_computed == first.snapshots_computed == first.snapshot_dates
    runs = fixture_project.store.raw.execute("SELECT status FROM runs WHERE command = 'run'").fetchall()
    assert runs == [("ok",), ("ok",), ("ok",)]


def test_rule_scheme_matches_an_independent_computation(ran_project):
    fixture_project, _ = ran_project
    snapshot = dt.date(2024, 5, 1)
    got = fixture_project.store.raw.execute(
        "SELECT customer_id, segment FROM segment_assignments WHERE scheme = 'rules' AND snapshot_date = ?",
        [snapshot],
    ).df().set_index("customer_id")["segment"]
    tx = fixture_project.store.table("transactions").execute()
    tx = tx[tx.ts < pd.Timestamp(snapshot)]
    assert set(got.index) >= set(tx.customer_id)
    # independent: monetary = net spend before the snapshot; rule order: big spender first
    monetary = tx.groupby("customer_id").amount.sum()
    for cid, segment in got.items():
        if cid in monetary.index and monetary[cid] >= 300:
            assert segment == "big spender", cid


def test_report_is_self_contained_and_has_the_sankey(ran_project, tmp_path):
    fixture_project, _ = ran_project
    path = fixture_project.report(tmp_path / "report.html")
    text = path.read_text()
    assert "sankey" in text
    assert "Migration" in text and "Segments" in text
    # plotly.js is inlined once, as text compiled after the page has loaded (its bundle holds
    # URL strings of features we never use, e.g. map tiles); outside it, nothing may load
    # from the network.
    assert "<script src=" not in text
    assert text.count('id="plotly-js"') == 1
    bundle = re.search(r'<script type="text/plain" id="plotly-js">(.*?)</script>', text, flags=re.S)
    assert bundle and len(bundle.group(1)) > 1_000_000
    page = text.replace(bundle.group(1), "")
    assert not re.search(r"""(src|href)\s*=\s*["']?https?://""", page)
    assert "cdn." not in page



def test_unidentifiable_clv_is_a_note_not_a_failure(ran_project):
    # random purchases with no dropout: BG/NBD runs to a boundary; the run still lands
    _, summary = ran_project
    assert summary.scores_written == 0
    assert any("no CLV scores" in note for note in summary.notes)
    assert summary.assignments_written > 0


def test_clv_stage_on_cdnow_matches_the_published_bgnbd(cdnow_dir, tmp_path):
    """The run's CLV stage at snapshot 1997-10-01 (calibration = every day before it) gives
    the P(alive) of the published BG/NBD fit (Fader, Hardie & Lee 2005: r=0.243,
    alpha=4.414, a=0.793, b=2.426, weekly unit), computed here in closed form."""
    import numpy as np

    from segflow.datasets import load_cdnow
    from segflow.project import Project

    cdnow = load_cdnow(cdnow_dir / "CDNOW_sample.txt")
    project = Project.init(
        tmp_path / "cdnow",
        toml_text='[periods]\ngranularity = "dates"\ndates = [1997-10-01]\n'
        '[[schemes]]\nname = "rfm"\nkind = "rfm"\n',
    )
    project.store.append("transactions", pa.table({
        "transaction_id": [str(i) for i in range(len(cdnow))],
        "customer_id": cdnow["customer_id"].astype(str),
        "ts": pd.to_datetime(cdnow["date"]).astype("datetime64[us]"),
        "amount": cdnow["amount"].astype(float),
    }))
    summary = project.run()
    assert summary.scores_written > 0, summary.notes
    got = project.store.raw.execute(
        "SELECT customer_id, value FROM customer_scores WHERE score = 'p_alive'"
    ).df().set_index("customer_id")["value"]

    cal = cdnow[pd.to_datetime(cdnow["date"]) < pd.Timestamp("1997-10-01")]
    days = cal.groupby("customer_id")["date"].agg(["min", "max", "nunique"])
    x = days["nunique"] - 1
    t_x = (pd.to_datetime(days["max"]) - pd.to_datetime(days["min"])).dt.days / 7
    T = (pd.Timestamp("1997-09-30") - pd.to_datetime(days["min"])).dt.days / 7
    r, alpha, a, b = 0.243, 4.414, 0.793, 2.426
    ratio = np.where(x > 0, a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0)
    expected = pd.Series(1 / (1 + ratio), index=days.index)
    assert len(got) == 2357
    diff = (got.reindex(expected.index) - expected).abs()
    assert diff.max() < 5e-3, diff.sort_values().tail()

    # the report's value by segment adds up to the customer scores
    from segflow.report._queries import value_by_segment

    value = value_by_segment(project.store, "rfm", dt.date(1997, 10, 1))
    clv = project.store.raw.execute("SELECT sum(value) FROM customer_scores WHERE score = 'clv'").fetchone()[0]
    assert value["clv"].sum() == pytest.approx(clv)
    assert value["customers"].sum() == 2357
    project.close()



def test_feature_groups_the_schemes_need_give_the_same_assignments(fixture_project):
    from segflow.engine import connect
    from segflow.pipeline import (
        canonical_tables,
        required_feature_columns,
        required_feature_groups,
        resolve_schemes,
    )

    schemes = resolve_schemes(fixture_project.settings)
    tables = canonical_tables(connect(fixture_project.store))
    # rfm, lifecycle (its seasonal bucket), value tiers and the rules read only these groups
    assert required_feature_groups(tables, schemes, settings=fixture_project.settings) == {
        "rfm", "seasonality"}
    # a cluster scheme reads the features it is fitted on: by default four of the rfm group
    # and avg_order_value (pattern); a survey answer or a scheme nested in it: every group
    from segflow.config import SchemeSettings

    clusters = SchemeSettings(name="clusters", kind="cluster", k=3)
    assert required_feature_groups(tables, [*schemes, clusters], settings=fixture_project.settings) == {
        "rfm", "seasonality", "pattern"}
    named = clusters.model_copy(update={"features": ["visits_90d", "frequency"]})
    assert required_feature_groups(tables, [*schemes, named], settings=fixture_project.settings) == {
        "rfm", "seasonality", "web"}
    groups = required_feature_groups(tables, [*schemes, named], settings=fixture_project.settings)
    columns = required_feature_columns(tables, [*schemes, named], groups, settings=fixture_project.settings)
    assert "visits_90d" in columns and "product_views_90d" not in columns  # an optional family kept
    odd = clusters.model_copy(update={"features": ["q_satisfaction"]})
    assert required_feature_groups(tables, [*schemes, odd], settings=fixture_project.settings) is None
    # (that a run reading every group gives the same assignments: the next test)


def test_the_full_run_stores_the_latest_features_of_the_definition(ran_project):
    # a run of every snapshot reading some groups only takes the latest snapshot's full
    # features (table customer_features, read by the profiles) from its one pass's feature
    # state (segflow.features._state.state_features), not from all history again: they equal
    # the readable definition, and the same run reading every group (its pass's last
    # snapshot), which also gives the same assignments
    from tests.features.test_feature_state import assert_same

    from segflow.engine import connect
    from segflow.features import customer_features
    from segflow.pipeline import canonical_tables, run_pipeline

    project, summary = ran_project  # a first run: every snapshot computed
    store, settings = project.store, project.settings
    query = "SELECT * EXCLUDE (snapshot_date) FROM customer_features ORDER BY customer_id"
    assert summary.snapshots_computed == summary.snapshot_dates
    needed = store.raw.execute(query).df()
    latest = summary.snapshot_dates[-1]
    assert store.raw.execute("SELECT DISTINCT snapshot_date FROM customer_features"
                             ).fetchall() == [(latest,)]
    want = customer_features(canonical_tables(connect(store)), latest).to_pandas()
    assert len(needed) == len(want) > 50 and needed.frequency.sum() > 100
    assert_same(needed, want)
    assignments = "SELECT * EXCLUDE (run_id) FROM segment_assignments ORDER BY ALL"
    before = store.raw.execute(assignments).df()
    run_pipeline(store, settings, full=True, all_features=True)
    # (ipt_cv: here from the state's squared gaps, there by the per-snapshot function)
    assert_same(store.raw.execute(query).df(), needed)
    every = store.raw.execute(assignments).df()
    assert len(every) == len(before) > 0 and every.equals(before)
    # schemes that also read web and breadth columns (the one pass computes these at every
    # snapshot, the latest features again from the state and the per-snapshot parts): the same
    from segflow.config import SchemeSettings
    from segflow.pipeline import required_feature_columns, required_feature_groups, resolve_schemes

    named = SchemeSettings(name="clusters", kind="cluster", k=3,
                           features=["visits_90d", "categories_total", "frequency"])
    wider = settings.model_copy(update={"schemes": [*resolve_schemes(settings), named]})
    tables = canonical_tables(connect(store))
    groups = required_feature_groups(tables, wider.schemes, settings=wider)
    assert {"visits_90d", "categories_total", "categories_12m"} <= set(
        required_feature_columns(tables, wider.schemes, groups, settings=wider))
    run_pipeline(store, wider, full=True)
    assert_same(store.raw.execute(query).df(), needed)


def test_a_run_failing_after_its_state_is_written_stores_nothing(fixture_project, monkeypatch):
    # the feature state is written in the run's one transaction: a failure after it rolls
    # the state back with the spells and customer_features
    import segflow.pipeline as pipeline
    from segflow.features._stored_state import write_state

    seen = []

    def write_then_fail(store, state, snapshot, window_days, *, con=None):  # noqa: ANN001
        write_state(store, state, snapshot, window_days, con=con)
        seen.append(con.execute("SELECT count(*) FROM feature_state").fetchone()[0])
        raise RuntimeError("killed after the state")

    monkeypatch.setattr(pipeline, "write_state", write_then_fail)
    with pytest.raises(RuntimeError, match="killed after the state"):
        fixture_project.run()
    raw = fixture_project.store.raw
    counts = "SELECT (SELECT count(*) FROM feature_state), (SELECT count(*) FROM segment_spells)"
    made = "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'customer_features'"
    assert seen[0] > 0 and raw.execute(counts).fetchone() == (0, 0)
    assert raw.execute(made).fetchone() == (0,)
    monkeypatch.undo()
    summary = fixture_project.run()
    stored = raw.execute("SELECT DISTINCT snapshot_date FROM feature_state").fetchall()
    assert stored == [(summary.snapshot_dates[-1],)]
    assert raw.execute(counts).fetchone()[0] == seen[0] and raw.execute(made).fetchone() == (1,)


def test_a_run_failing_after_its_segments_are_committed_is_computed_again(ran_project,
                                                                          monkeypatch):
    # segments are committed before the scores and aggregates: a run failing in between
    # leaves its snapshots to the next run, and the old aggregates are not served meanwhile
    import segflow.models._run_scores as run_scores
    from segflow.summaries import summaries_run

    fixture_project, first = ran_project
    store = fixture_project.store
    assert summaries_run(store) == first.run_id
    fixture_project.settings.schemes[0].version = "2"  # its snapshots are computed again

    def fail(*args, **kwargs):  # noqa: ANN002, ANN003
        raise RuntimeError("killed after the segments")

    monkeypatch.setattr(run_scores, "score_clv", fail)
    with pytest.raises(RuntimeError, match="killed after the segments"):
        fixture_project.run()
    assert summaries_run(store) is None
    monkeypatch.undo()
    again = fixture_project.run()
    assert again.snapshots_computed == again.snapshot_dates
    assert summaries_run(store) == again.run_id
    # the stored sizes are those of the stored segments, at every snapshot
    scheme = fixture_project.settings.schemes[0].name
    stored = store.raw.execute(
        "SELECT snapshot_date, segment, customers FROM summary_segments WHERE scheme = ? "
        "ORDER BY ALL", [scheme]).fetchall()
    counted = store.raw.execute(
        "SELECT snapshot_date, segment, count(*) FROM segment_assignments WHERE scheme = ? "
        "GROUP BY ALL ORDER BY ALL", [scheme]).fetchall()
    assert len(stored) > 0 and stored == counted
    versions = store.raw.execute(
        "SELECT DISTINCT scheme_version FROM segment_snapshots WHERE scheme = ?", [scheme]
    ).fetchall()
    assert versions == [("2",)]


def test_the_engine_chunk_setting_splits_the_pass_and_changes_no_assignment(fixture_project,
                                                                             monkeypatch):
    # the run's features-and-assignments step (no CLV, no writes), with and without the setting
    import segflow.features._snapshots as snapshots
    from segflow.engine import connect
    from segflow.pipeline import (
        _features_and_assignments,
        canonical_tables,
        required_feature_groups,
        resolve_schemes,
        resolve_snapshot_dates,
    )

    settings = fixture_project.settings
    tables = canonical_tables(connect(fixture_project.store))
    schemes = resolve_schemes(settings)
    dates = resolve_snapshot_dates(fixture_project.store, settings)
    groups = required_feature_groups(tables, schemes, settings=settings)
    calls: list[int] = []
    chunk = snapshots._chunk

    def counted(*args, **kwargs):
        calls.append(1)
        return chunk(*args, **kwargs)

    def assignments(settings) -> pd.DataFrame:
        calls.clear()
        features, by_scheme, _, _ = _features_and_assignments(
            tables, fixture_project.store, schemes, dates, groups=groups, settings=settings,
            latest=None)
        frame = pd.concat([a.execute().assign(scheme=name) for name, a in by_scheme.items()])
        features.release()
        return frame.sort_values(["scheme", "snapshot_date", "customer_id"], ignore_index=True)

    monkeypatch.setattr(snapshots, "_chunk", counted)
    whole = assignments(settings)
    assert len(calls) == 1  # the fixture's 60 customers fit in one chunk of the default size
    split = settings.model_copy(deep=True)
    split.engine.chunk_customers = 25  # chunks of 25, 25 and 10 customers
    chunked = assignments(split)
    assert len(calls) == 3
    # four schemes x six snapshots, one row per customer in each, all 60 customers seen
    assert whole.groupby(["scheme", "snapshot_date"]).ngroups == 4 * 6
    assert not whole.duplicated(["scheme", "snapshot_date", "customer_id"]).any()
    assert whole["customer_id"].nunique() == 60
    pd.testing.assert_frame_equal(chunked, whole)


def test_new_definitions_in_the_code_compute_stored_snapshots_again(ran_project, monkeypatch):
    """A segflow whose definitions changed (DEFINITIONS_VERSION) computes every stored
    snapshot again: old assignments were made under the old rounding or attribute rule."""
    from segflow import _plan
    from segflow.pipeline import resolve_schemes, resolve_snapshot_dates

    project, first = ran_project
    schemes = resolve_schemes(project.settings)
    dates = resolve_snapshot_dates(project.store, project.settings)

    def todo() -> dict:
        return _plan.snapshots_to_compute(project.store, schemes, dates, settings=project.settings)

    assert all(days == [] for days in todo().values())
    monkeypatch.setattr(_plan, "DEFINITIONS_VERSION", _plan.DEFINITIONS_VERSION + 1)
    assert all(days == sorted(dates) for days in todo().values())
    assert project.run().snapshots_computed == first.snapshot_dates
