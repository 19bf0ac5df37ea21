"""``assign(..., by="snapshot_date")`` on the long features table equals assigning every
snapshot alone (issue 10): every built-in kind, frozen cut-offs, ntile scores, a rules scheme
naming RFM scores, nested schemes and a cluster scheme, on the demo data; and the RFM-scored
schemes with ``[rfm] window_days`` (buyers whose orders are all before the window)."""

from __future__ import annotations

import datetime as dt
import warnings

import ibis
import pandas as pd
import pytest

from segflow.config import RuleSettings, SchemeSettings
from segflow.features import REQUIRED_TABLES, customer_features, snapshot_features
from segflow.segments import assign, builtin_schemes, freeze_cutoffs

DATES = [dt.date(2024, 9, 1), dt.date(2025, 6, 1), dt.date(2026, 1, 1)]


def _schemes() -> list[SchemeSettings]:
    rules = [RuleSettings(segment="best", when="r_score >= 4 and fm_score >= 4"),
             RuleSettings(segment="spenders", when="monetary_12m >= 200")]
    return [
        *builtin_schemes(),
        SchemeSettings(name="rfm3_ntile", kind="rfm", bins=3, score_method="ntile"),
        SchemeSettings(name="tiers_ntile", kind="value_tiers", score_method="ntile"),
        SchemeSettings(name="rfm_ref", kind="rfm", cutoffs="reference",
                       reference_snapshot=DATES[1]),
        SchemeSettings(name="tiers_ref", kind="value_tiers", cutoffs="reference",
                       reference_snapshot=DATES[1]),
        SchemeSettings(name="scored_rules", kind="rules", rules=rules, default="rest",
                       ordered=True),
        SchemeSettings(name="tiers_in_lifecycle", kind="value_tiers", within="lifecycle",
                       tiers=[10, 50]),
        SchemeSettings(name="rfm_in_tiers", kind="rfm", bins=3, within="value_tiers"),
        SchemeSettings(name="clusters", kind="cluster", k=3,
                       features=["recency_days", "frequency", "monetary"]),
    ]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from segflow.datasets import demo_project_toml, generate_demo
    from segflow.project import Project

    folder = tmp_path_factory.mktemp("demo_by")
    ds = generate_demo(folder / "data", customers=500, months=24, seed=3, formats=("parquet",))
    toml = demo_project_toml(folder / "data", file_format="parquet", max_date=ds.end)
    project = Project.init(folder / "proj", toml_text=toml)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the demo data carries injected defects on purpose
        project.ingest()
    tables = {n: project.store.table(n) for n in REQUIRED_TABLES}
    yield project.store, tables
    project.close()


def _frame(table) -> pd.DataFrame:
    df = table.to_pandas()
    df["snapshot_date"] = pd.to_datetime(df["snapshot_date"]).dt.date
    df["segment_rank"] = df["segment_rank"].astype("Int64")
    return df.sort_values(["snapshot_date", "customer_id"]).reset_index(drop=True)


def test_assign_by_snapshot_equals_assign_per_snapshot(demo):
    store, tables = demo
    schemes = freeze_cutoffs(_schemes(), tables)
    long = snapshot_features(tables, DATES).cache()
    n_rows = long.count().execute()
    # the cluster model is fitted (on the earliest snapshot) and stored by the long call, then
    # re-applied by the per-snapshot calls
    together = {s.name: _frame(assign(s, long, store=store, schemes=schemes, by="snapshot_date"))
                for s in schemes}
    fitted = store.raw.execute("SELECT snapshot_date FROM cluster_models WHERE scheme = "
                               "'clusters'").fetchone()[0]
    assert fitted == DATES[0]
    for day in DATES:
        features = customer_features(tables, day).cache()
        for s in schemes:
            alone = assign(s, features, store=store, schemes=schemes).to_pandas()
            alone.insert(0, "snapshot_date", day)
            alone["segment_rank"] = alone["segment_rank"].astype("Int64")
            alone = alone.sort_values("customer_id").reset_index(drop=True)
            got = together[s.name]
            got = got[got["snapshot_date"] == day].reset_index(drop=True)
            pd.testing.assert_frame_equal(got, alone, check_dtype=False, obj=f"{s.name} {day}")
        features.release()
    for s in schemes:
        assert len(together[s.name]) == n_rows, s.name
        # a real test: segments differ between snapshots and schemes have several segments
        assert together[s.name]["segment"].nunique() >= 2, s.name
    long.release()


def test_rfm_with_a_window_by_snapshot_equals_per_snapshot(demo):
    """With window_days the one-pass long table scored by snapshot equals each snapshot's
    definition, and buyers whose orders are all before the window (F = M = 1) are present."""
    store, tables = demo
    window = 90
    names = {"rfm", "rfm3_ntile", "rfm_ref", "scored_rules", "rfm_in_tiers"}
    schemes = [s for s in _schemes() if s.name in names or s.name == "value_tiers"]
    schemes = freeze_cutoffs(schemes, tables, window_days=window)
    long = snapshot_features(tables, DATES, window_days=window).cache()
    together = {s.name: _frame(assign(s, long, store=store, schemes=schemes, by="snapshot_date"))
                for s in schemes if s.name in names}  # every snapshot at once, compared below
    for day in DATES:
        features = customer_features(tables, day, window_days=window).cache()
        df = features.to_pandas()
        outside = df[df["recency_days"].notna() & (df["frequency"] == 0)]
        assert len(outside) > 0.2 * df["recency_days"].notna().sum(), day  # > 1/bins of buyers
        for s in schemes:
            if s.name not in names:
                continue
            alone = _frame(assign(s, features, store=store, schemes=schemes)
                           .mutate(snapshot_date=ibis.literal(day)))
            got = together[s.name]
            got = got[got["snapshot_date"] == day].reset_index(drop=True)
            pd.testing.assert_frame_equal(got[alone.columns], alone, check_dtype=False,
                                          obj=f"{s.name} {day}")
        segments = assign(schemes[0], features).to_pandas().set_index("customer_id")["segment"]
        # every buyer outside the window has FM 1 on the grid: Lost, About to sleep, or (r 4-5)
        # New / Promising; and a recent one-order buyer can be New again
        assert set(segments.loc[outside["customer_id"]]) <= {"Lost", "About to sleep",
                                                               "Promising", "New"}, day
        assert (segments == "New").any() and (segments == "Promising").any(), day
        features.release()
    long.release()
