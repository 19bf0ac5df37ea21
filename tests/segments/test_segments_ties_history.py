"""Segments that mean what they say (issue 11): identical customers share a segment, RFM bins
from the project file, lifecycle from each customer's own history, rule-scheme checks, and the
same segments whatever DuckDB's thread count."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from segflow.config import SchemeSettings, Settings
from segflow.features import REQUIRED_TABLES, customer_features
from segflow.segments import (
    SchemeCheckWarning,
    assign,
    check_scheme,
    freeze_cutoffs,
    rfm_scores,
    rule_coverage,
    segment_names,
    segment_sizes,
)
from segflow.store import Store


def _store(rows: list[tuple[str, str, str, float]]) -> Store:
    """A store with transactions (order id, customer, day, amount); customers from them."""
    store = Store(":memory:")
    tx = pd.DataFrame(rows, columns=["transaction_id", "customer_id", "ts", "amount"])
    tx["ts"] = pd.to_datetime(tx["ts"])
    tx["is_return"] = False
    store.raw.register("_tx", tx)
    store.raw.execute(
        "INSERT INTO transactions (transaction_id, customer_id, ts, amount, is_return) "
        "SELECT transaction_id, customer_id, ts, amount, is_return FROM _tx"
    )
    store.raw.execute(
        "INSERT INTO customers (customer_id, created_at) "
        "SELECT customer_id, min(ts) FROM _tx GROUP BY customer_id"
    )
    store.raw.unregister("_tx")
    return store


def _features(store: Store, day: dt.date):
    return customer_features({n: store.table(n) for n in REQUIRED_TABLES}, day)


def _segments(scheme: SchemeSettings, features) -> pd.Series:
    return assign(scheme, features).to_pandas().set_index("customer_id")["segment"]


# -- identical customers ----------------------------------------------------------------
@pytest.fixture(scope="module")
def ties_store():
    rng = np.random.default_rng(4)
    rows = [(f"o{i}", f"t{i:03d}", "2024-03-15", 50.0) for i in range(60)]
    days = pd.date_range("2024-01-01", "2024-06-30")
    for i in range(40):  # 40 others buying 1-5 times at random days and amounts
        for k in range(int(rng.integers(1, 6))):
            day = days[int(rng.integers(0, len(days)))].date().isoformat()
            rows.append((f"x{i}_{k}", f"u{i:03d}", day, float(rng.integers(20, 900))))
    store = _store(rows)
    yield store
    store.close()


def test_identical_customers_share_one_segment_and_never_migrate(ties_store):
    rfm = SchemeSettings(name="rfm", kind="rfm")
    twins = [f"t{i:03d}" for i in range(60)]
    seen = []
    for day in (dt.date(2024, 5, 1), dt.date(2024, 6, 1), dt.date(2024, 7, 1)):
        features = _features(ties_store, day)
        scores = rfm_scores(features).to_pandas().set_index("customer_id").loc[twins]
        assert scores[["r_score", "f_score", "m_score"]].nunique().tolist() == [1, 1, 1]
        seg = _segments(rfm, features).loc[twins]
        assert seg.nunique() == 1, (day, seg.value_counts().to_dict())
        # one order of $50 with 60 % of buyers on the same value: the lowest score of the tie
        assert scores.f_score.iloc[0] == 1
        seen.append(seg.iloc[0])
    assert seen[1] == seen[2]  # nothing happened to them from June to July: no move
    # the old id-ordered rule spreads the same customers over several segments
    old = _segments(SchemeSettings(name="rfm", kind="rfm", score_method="ntile"),
                    _features(ties_store, dt.date(2024, 5, 1))).loc[twins]
    assert old.nunique() > 1


def test_project_bins_reach_every_rfm_scheme(ties_store):
    from segflow.pipeline import resolve_schemes

    settings = Settings.model_validate({"rfm": {"bins": 3}})
    schemes = resolve_schemes(settings)
    rfm = next(s for s in schemes if s.kind == "rfm")
    assert rfm.bins == 3
    features = _features(ties_store, dt.date(2024, 7, 1))
    out = assign(rfm, features).to_pandas()
    scores = rfm_scores(features, bins=3).to_pandas().set_index("customer_id")
    assert set(scores.r_score.dropna()) == {1, 2, 3}
    champions = set(out[out.segment == "Champions"].customer_id)
    # bins = 3 places scores 1, 2, 3 at 1, 3, 5 of the grid: Champions = top R and FM >= 4
    grid = {1: 1, 2: 3, 3: 5}
    want = {
        cid for cid, row in scores.dropna(subset=["r_score"]).iterrows()
        if grid[int(row.r_score)] >= 4
        and (grid[int(row.f_score)] + grid[int(row.m_score)]) // 2 >= 4
    }
    assert champions == want and champions
    # a scheme's own bins win over the project's
    own = SchemeSettings(name="r4", kind="rfm", bins=4)
    assert resolve_schemes(Settings.model_validate(
        {"rfm": {"bins": 3}, "schemes": [own.model_dump()]}))[0].bins == 4


# -- lifecycle from the customer's own history --------------------------------------------
S = dt.date(2025, 1, 1)


def _orders(cid: str, start: str, end: str, n: int, amount: float) -> list:
    days = pd.date_range(start, end, periods=n)
    return [(f"{cid}-{start}-{k}", cid, d.date().isoformat(), amount) for k, d in enumerate(days)]


@pytest.fixture(scope="module")
def history_store():
    rows = []
    # fell from 24 orders a year to 2: the old rule called this a loyalist
    rows += _orders("decliner", "2023-01-05", "2023-12-20", 24, 40.0)
    rows += _orders("decliner", "2024-03-01", "2024-09-01", 2, 40.0)
    # one order a year for four years, always in a different quarter: steady, not declining
    rows += [("s1", "steady", "2021-02-10", 60.0), ("s2", "steady", "2022-05-10", 60.0),
             ("s3", "steady", "2023-08-10", 60.0), ("s4", "steady", "2024-11-10", 60.0)]
    # buys monthly, every year
    rows += _orders("loyal", "2023-01-10", "2024-12-10", 24, 30.0)
    # same orders as last year but a tenth of the spend: declining on spend
    rows += _orders("cheaper", "2023-01-15", "2023-12-15", 6, 100.0)
    rows += _orders("cheaper", "2024-01-15", "2024-12-15", 6, 10.0)
    rows += [("g1", "gone", "2023-06-01", 80.0)]
    store = _store(rows)
    yield store
    store.close()


def test_decliner_is_an_under_performer_and_the_steady_buyer_is_not(history_store):
    features = _features(history_store, S)
    seg = _segments(SchemeSettings(name="lc", kind="lifecycle"), features)
    f = features.to_pandas().set_index("customer_id")
    assert f.loc["decliner", ["frequency_prev_12m", "frequency_12m"]].tolist() == [24, 2]
    assert seg["decliner"] == "under-performers"
    assert seg["steady"] == "steady"
    assert seg["loyal"] == "loyalists"
    assert seg["cheaper"] == "under-performers"  # 60 vs 600: at most half the spend
    assert seg["gone"] == "inactive"


def test_lifecycle_thresholds_are_settings(history_store):
    features = _features(history_store, S)
    # a decline to 2/24 = 8 % is not below 5 %: the decliner is a loyalist again
    lax = _segments(SchemeSettings(name="lc", kind="lifecycle", decline_ratio=0.05), features)
    assert lax["decliner"] == "loyalists" and lax["cheaper"] == "loyalists"
    # an active window of 30 days: the steady buyer (last order 52 days ago) is inactive
    short = _segments(SchemeSettings(name="lc", kind="lifecycle", active_days=30), features)
    assert short["steady"] == "inactive" and short["loyal"] == "loyalists"
    # more prior orders needed than the spend decliner had: no longer judged on decline
    strict = _segments(SchemeSettings(name="lc", kind="lifecycle", min_prior_orders=7), features)
    assert strict["cheaper"] == "loyalists" and strict["decliner"] == "under-performers"
    loyal3 = _segments(SchemeSettings(name="lc", kind="lifecycle", loyal_orders_12m=30), features)
    assert loyal3["loyal"] == "steady"


# -- rule-scheme checks -----------------------------------------------------------------
SHADOWED = SchemeSettings(
    name="my_rfm", kind="rules", default="Others", ordered=True,
    rules=[{"segment": "Loyal", "when": "r_score >= 3 and f_score >= 3 and m_score >= 3"},
           {"segment": "Champions", "when": "r_score >= 4 and f_score >= 4 and m_score >= 4"},
           {"segment": "Nobody", "when": "monetary > 1e9"}],
)


def test_shadowed_rule_is_reported_and_listed_with_zero(ties_store):
    features = _features(ties_store, dt.date(2024, 7, 1)).cache()
    cover = rule_coverage(SHADOWED, features)
    scored = rfm_scores(features).to_pandas()
    loyal = ((scored.r_score >= 3) & (scored.f_score >= 3) & (scored.m_score >= 3)).sum()
    champ = ((scored.r_score >= 4) & (scored.f_score >= 4) & (scored.m_score >= 4)).sum()
    assert champ > 0
    assert cover[0] == {"rule": 1, "segment": "Loyal", "matches": loyal, "assigned": loyal,
                        "taken_by": {}}
    assert cover[1] == {"rule": 2, "segment": "Champions", "matches": champ, "assigned": 0,
                        "taken_by": {"Loyal": champ}}
    assert cover[2]["matches"] == 0
    assignments = assign(SHADOWED, features)
    with pytest.warns(SchemeCheckWarning) as caught:
        messages = check_scheme(SHADOWED, features, assignments, snapshot=dt.date(2024, 7, 1))
    assert any("rule 2 ('Champions') names no customer: earlier rules take all "
               f"{champ} customers it matches: 'Loyal' ({champ})" in m for m in messages)
    assert any("rule 3 ('Nobody')" in m and "matches nobody" in m for m in messages)
    assert len([w for w in caught if issubclass(w.category, SchemeCheckWarning)]) == len(messages)
    sizes = segment_sizes(assignments, features, scheme="my_rfm",
                          segments=segment_names(SHADOWED)).to_pandas().set_index("segment")
    assert sizes.loc["Champions", "customers"] == 0 and sizes.loc["Champions", "segment_rank"] == 2
    assert sizes.loc["Nobody", "customers"] == 0
    assert sizes.customers.sum() == 100
    features.release()


def test_small_segments_warn_for_every_kind(ties_store):
    features = _features(ties_store, dt.date(2024, 7, 1)).cache()  # read by many queries
    for kind in ("rfm", "lifecycle", "value_tiers"):
        scheme = SchemeSettings(name=kind, kind=kind, min_segment_share=0.2)
        assignments = assign(scheme, features)
        sizes = assignments.to_pandas().segment.value_counts()
        small = sizes[sizes < 0.2 * sizes.sum()]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            messages = check_scheme(scheme, features, assignments)
        # RFM also gets the tie note: the 60 identical customers make 'Lost' a majority
        ties = [m for m in messages if "RFM scores cannot be split" in m]
        assert len(ties) == (kind == "rfm")
        messages = [m for m in messages if m not in ties]
        if small.empty:
            assert messages == []
            continue
        assert len(messages) == 1 and f"{len(small)} of {len(sizes)} segments" in messages[0]
        assert [w.category for w in caught if issubclass(w.category, SchemeCheckWarning)] == [
            SchemeCheckWarning] * (1 + len(ties))
    quiet = SchemeSettings(name="q", kind="rfm", min_segment_share=0.0)
    assigned = assign(quiet, features)
    lost = int((assigned.to_pandas().segment == "Lost").sum())
    buyers = int(features.to_pandas().recency_days.notna().sum())
    assert 2 * lost > buyers and lost >= 60
    (note,) = check_scheme(quiet, features, assigned, warn=False)
    assert note.startswith("scheme 'q': RFM scores cannot be split into 5 as asked: ")
    assert f"; {lost} of the {buyers} buyers ({lost / buyers:.0%}) are in one segment, 'Lost'; " in note
    features.release()


def test_one_segment_for_every_buyer_says_why():
    """20 identical buyers (two $50 orders two weeks before the snapshot) tie on recency,
    frequency and spend: by the tie rule all score 1 and are "Lost". The scheme tells nobody
    apart; a note says so and names the tie rule (before: nothing was said)."""
    rows = [(f"{o}{i}", f"c{i:02d}", day, 50.0) for i in range(20)
            for o, day in (("a", "2024-01-15"), ("b", "2024-02-15"))]
    store = _store(rows)
    try:
        features = _features(store, dt.date(2024, 3, 1))
        rfm = SchemeSettings(name="rfm", kind="rfm")
        assignments = assign(rfm, features)
        assert set(assignments.to_pandas().segment) == {"Lost"}
        messages = check_scheme(rfm, features, assignments, snapshot=dt.date(2024, 3, 1), warn=False)
        assert messages[-1] == ("scheme 'rfm' at 2024-03-01: all 20 customers with a purchase are in one "
                                "segment, 'Lost'; their recency, frequency and spend tie, and a value held by "
                                "more than 1/bins of the customers takes the lowest score (docs/segments.md, "
                                "'Heavy ties')")
        tiers = SchemeSettings(name="tiers", kind="value_tiers", min_segment_share=0.0)
        one = check_scheme(tiers, features, assign(tiers, features), warn=False)
        assert len(one) == 1 and one[0].startswith("scheme 'tiers': all 20 customers are in one segment, ")
    finally:
        store.close()


# -- frozen cut-offs at a reference snapshot ----------------------------------------------
def test_reference_cutoffs_freeze_the_scores(ties_store):
    tables = {n: ties_store.table(n) for n in REQUIRED_TABLES}
    ref = dt.date(2024, 5, 1)
    frozen = freeze_cutoffs(
        [SchemeSettings(name="rf", kind="rfm", cutoffs="reference", reference_snapshot=ref),
         SchemeSettings(name="vt", kind="value_tiers", cutoffs="reference",
                        reference_snapshot=ref)],
        tables,
    )
    assert set(frozen[0].cut_points) == {"recency_days", "frequency", "monetary"}
    assert len(frozen[1].cut_points["value"]) == 5
    at_ref = _features(ties_store, ref)
    for scheme, kind in zip(frozen, ("rfm", "value_tiers"), strict=True):
        per_snapshot = _segments(SchemeSettings(name="p", kind=kind), at_ref)
        assert _segments(scheme, at_ref).sort_index().equals(per_snapshot.sort_index())
    with pytest.raises(Exception, match="reference_snapshot"):
        SchemeSettings(name="x", kind="rfm", cutoffs="reference")


# -- determinism across thread counts -----------------------------------------------------
def test_same_segments_on_any_thread_count():
    # 4,000 customers with 15 lines each from four cent amounts: many customers have the same
    # spend, and its double sum differs in the last bits with the order of a parallel
    # aggregation (about 2,800 customers' monetary differ bitwise between 1 and 4 threads).
    # Measured: the old rule (ntile on unrounded sums, ties by id) gave 44 different m_scores.
    rng = np.random.default_rng(10)
    n_lines = 60_000
    tx = pa.table({
        "transaction_id": [f"o{i}" for i in range(n_lines)],
        "customer_id": [f"c{c:04d}" for c in np.repeat(np.arange(4000), 15)],
        "ts": pd.to_datetime("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, n_lines),
                                                             unit="D"),
        "amount": rng.choice([10, 20, 70, 333], n_lines) / 100.0,
        "is_return": np.zeros(n_lines, bool),
    })
    store = Store(":memory:")
    store.raw.register("_tx", tx)
    store.raw.execute("INSERT INTO transactions (transaction_id, customer_id, ts, amount, "
                      "is_return) SELECT * FROM _tx")
    store.raw.unregister("_tx")
    schemes = [SchemeSettings(name="rfm", kind="rfm"),
               SchemeSettings(name="rfm_ntile", kind="rfm", score_method="ntile"),
               SchemeSettings(name="vt", kind="value_tiers")]
    tables = {n: store.table(n) for n in REQUIRED_TABLES}
    # and with [rfm] window_days = 90: about 1 in 8 buyers has no order in the window (F and M
    # scored among the others, their own F = M = 1)
    for window in (None, 90):
        runs = []
        for threads in (1, 4):
            store.raw.execute(f"SET threads TO {threads}")
            features = customer_features(tables, dt.date(2025, 1, 1), window_days=window).cache()
            runs.append({s.name: _segments(s, features).sort_index() for s in schemes})
            if window:
                outside = features.filter(features.frequency == 0).count().execute()
                assert outside > 300, outside
            features.release()
        for other in runs[1:]:
            for name in ("rfm", "rfm_ntile", "vt"):
                assert other[name].equals(runs[0][name]), (window, name)
        assert runs[0]["rfm"].nunique() > 5
    store.close()


@pytest.mark.slow
def test_run_with_a_frozen_scheme_and_rfm_bins(tmp_path, ties_store):
    from segflow.project import Project

    toml = (
        '[project]\nname = "frozen"\n[rfm]\nbins = 3\n'
        '[[schemes]]\nname = "rfm"\nkind = "rfm"\n'
        '[[schemes]]\nname = "rfm_frozen"\nkind = "rfm"\ncutoffs = "reference"\n'
        'reference_snapshot = 2024-04-01\n'
    )
    project = Project.init(tmp_path / "p", toml_text=toml)
    rows = ties_store.raw.execute("SELECT * FROM transactions").fetch_arrow_table()
    project.store.append("transactions", rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SchemeCheckWarning)
        summary = project.run()
    got = project.store.raw.execute(
        "SELECT scheme, snapshot_date, customer_id, segment FROM segment_assignments"
    ).df()
    project.close()
    assert summary.schemes == ["rfm", "rfm_frozen"]
    # snapshots before 2024-04-01 are scored with its cut points: the run says so
    ahead = [n for n in summary.notes if "look-ahead" in n]
    assert len(ahead) == 1 and "'rfm_frozen'" in ahead[0] and "2024-04-01" in ahead[0]
    earlier = sum(1 for d in summary.snapshot_dates if d < dt.date(2024, 4, 1))
    assert earlier > 0 and f"the {earlier} earlier snapshot(s)" in ahead[0]
    wide = got.pivot_table(index=["snapshot_date", "customer_id"], columns="scheme",
                           values="segment", aggfunc="first")
    at_ref = wide.loc[pd.Timestamp("2024-04-01")]
    assert (at_ref["rfm"] == at_ref["rfm_frozen"]).all()  # same cut points at the reference
    # later snapshots: the frozen scheme equals scoring against the reference cut points
    tables = {n: ties_store.table(n) for n in REQUIRED_TABLES}
    scheme = freeze_cutoffs([SchemeSettings(name="f", kind="rfm", bins=3, cutoffs="reference",
                                            reference_snapshot=dt.date(2024, 4, 1))], tables)[0]
    later = _segments(scheme, _features(ties_store, dt.date(2024, 7, 1))).sort_index()
    stored = wide.loc[pd.Timestamp("2024-07-01")]["rfm_frozen"].sort_index()
    assert stored.equals(later.rename("rfm_frozen").rename_axis("customer_id"))


def test_reference_notes_name_the_snapshots_scored_by_later_cut_points():
    from segflow.segments import reference_notes

    days = [dt.date(2024, m, 1) for m in range(1, 7)]
    ref = [SchemeSettings(name="late", kind="rfm", cutoffs="reference",
                          reference_snapshot=dt.date(2024, 4, 1)),
           SchemeSettings(name="first", kind="rfm", cutoffs="reference",
                          reference_snapshot=dt.date(2024, 1, 1)),
           SchemeSettings(name="plain", kind="rfm")]
    with pytest.warns(SchemeCheckWarning, match="'late'.*3 earlier snapshot"):
        notes = reference_notes(ref, days)
    assert len(notes) == 1 and "2024-01-01" in notes[0]
    assert reference_notes(ref, days[3:], warn=False) == []  # none before the reference
