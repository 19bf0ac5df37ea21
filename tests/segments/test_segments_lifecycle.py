"""Lifecycle buckets, value tiers, browse-no-buy and nested schemes, assigned on DuckDB,
against plain pandas/Python statements of their documented definitions."""

from __future__ import annotations

import math

import ibis
import numpy as np
import pandas as pd
import pytest
from tests.features._fixture import S, make_tables, to_store

from segflow.config import SchemeSettings
from segflow.errors import SegflowError
from segflow.features import REQUIRED_TABLES, customer_features
from segflow.segments import LIFECYCLE_ORDER, assign, builtin_schemes, tier_names
from segflow.store import Store


@pytest.fixture(scope="module")
def store():
    st = Store(":memory:")
    to_store(st, make_tables())
    yield st
    st.close()


@pytest.fixture(scope="module")
def features(store):
    tables = {name: store.table(name) for name in REQUIRED_TABLES}
    table = customer_features(tables, S).cache()
    yield table
    table.release()


@pytest.fixture(scope="module")
def fdf(features) -> pd.DataFrame:
    return features.to_pandas().set_index("customer_id")


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _lifecycle(row) -> str:
    if _missing(row.recency_days):
        return "prospects"
    if row.recency_days > 365:
        return "inactive"
    prev, prev_spend = row.frequency_prev_12m, row.monetary_prev_12m
    if prev >= 2 and (row.frequency_12m <= 0.5 * prev or row.monetary_12m <= 0.5 * prev_spend):
        return "under-performers"
    if row.same_season_flag:
        return "seasonal"
    if row.orders_total == 1:
        return "one-time"
    if row.orders_total == 2:
        return "two-time"
    if row.frequency_12m >= 2:
        return "loyalists"
    return "steady"


def _assigned(scheme: SchemeSettings, features, **kw) -> pd.DataFrame:
    out = assign(scheme, features, **kw).to_pandas()
    assert out.customer_id.is_unique
    return out.set_index("customer_id").sort_index()


def test_lifecycle_matches_definitions(features, fdf):
    got = _assigned(SchemeSettings(name="lc", kind="lifecycle"), features)
    want = fdf.apply(_lifecycle, axis=1).sort_index()
    assert got.segment.to_dict() == want.to_dict()
    assert (got.segment_rank == got.segment.map(lambda s: LIFECYCLE_ORDER.index(s) + 1)).all()
    # the fixture has customers in most buckets, so the test is not vacuous
    assert {"prospects", "inactive", "seasonal", "one-time", "loyalists"} <= set(got.segment)
    assert got.loc["c37", "segment"] == "seasonal" and got.loc["c36", "segment"] == "one-time"


def _tiers_ref(values: pd.Series, tiers=(1, 5, 10, 25, 50), by_id: bool = False) -> pd.Series:
    """Tier of each customer; position = customers with the same or a higher value (the
    default rule), or the row number by value, ties by id (``by_id``, the ntile rule)."""
    names = tier_names(tiers)
    out = pd.Series("no spend", index=values.index, dtype=object)
    spend = values.round(2)
    spend = spend[spend.fillna(0) > 0]
    order = sorted(spend.index, key=lambda cid: (-spend[cid], cid))
    n = len(order)
    for pos, cid in enumerate(order, start=1):
        i = pos if by_id else int((spend >= spend[cid]).sum())
        tier = next((names[k] for k, q in enumerate(tiers) if 100 * i <= q * n), names[-2])
        out[cid] = tier
    return out


def test_value_tiers_match_definition(features, fdf):
    got = _assigned(SchemeSettings(name="vt", kind="value_tiers"), features)
    want = _tiers_ref(fdf.monetary_12m).sort_index()
    assert got.segment.to_dict() == want.to_dict()
    spenders = (fdf.monetary_12m > 0).sum()
    counts = got.segment.value_counts()
    assert counts.get("top 50%", 0) + counts.get("top 25%", 0) + counts.get("top 10%", 0) \
        + counts.get("top 5%", 0) + counts.get("top 1%", 0) == spenders // 2


def test_value_tiers_on_a_larger_table_have_exact_shares():
    rng = np.random.default_rng(1)
    n = 1000
    df = pd.DataFrame({"customer_id": [f"x{i:04d}" for i in range(n)],
                       "monetary_12m": np.round(rng.gamma(1.5, 100, n), 0) + 1})
    df.loc[:99, "monetary_12m"] = 0.0  # 100 without spend: 900 spenders
    by_id = SchemeSettings(name="vt", kind="value_tiers", score_method="ntile")
    counts = _assigned(by_id, ibis.memtable(df)).segment.value_counts().to_dict()
    assert counts == {"top 1%": 9, "top 5%": 36, "top 10%": 45, "top 25%": 135, "top 50%": 225,
                      "bottom 50%": 450, "no spend": 100}
    # the default keeps ties (whole dollars here) together: each top tier holds at most its
    # share of the 900 spenders, cumulatively
    got = _assigned(SchemeSettings(name="vt", kind="value_tiers"), ibis.memtable(df))
    want = _tiers_ref(df.set_index("customer_id").monetary_12m).sort_index()
    assert got.segment.to_dict() == want.to_dict()
    counts = got.segment.value_counts()
    for k, q in enumerate((1, 5, 10, 25, 50)):
        held = sum(counts.get(f"top {p}%", 0) for p in (1, 5, 10, 25, 50)[: k + 1])
        assert held <= q * 9


def test_value_tiers_ntile_option_keeps_the_id_rule():
    # ten identical spenders: the tie rule keeps them in one tier; ntile splits them by id
    df = pd.DataFrame({"customer_id": [f"y{i}" for i in range(12)],
                       "monetary_12m": [50.0] * 10 + [500.0, 0.0]})
    tiers = [10, 50]
    got = _assigned(SchemeSettings(name="vt", kind="value_tiers", tiers=tiers),
                    ibis.memtable(df))
    values = df.set_index("customer_id").monetary_12m
    assert got.segment.to_dict() == _tiers_ref(values, tiers=tiers).sort_index().to_dict()
    assert set(got.segment[[f"y{i}" for i in range(10)]]) == {"bottom 50%"}
    assert got.loc["y10", "segment"] == "top 10%"  # 1 of 11 spenders: 100 * 1 <= 10 * 11
    ntile = _assigned(SchemeSettings(name="vt", kind="value_tiers", tiers=tiers,
                                     score_method="ntile"), ibis.memtable(df))
    assert ntile.segment.to_dict() == _tiers_ref(values, tiers, by_id=True).sort_index().to_dict()
    assert ntile.loc["y0", "segment"] == "top 50%" and ntile.loc["y9", "segment"] == "bottom 50%"


def test_browse_no_buy(features, fdf):
    got = _assigned(SchemeSettings(name="b", kind="browse_no_buy"), features)

    def ref(row) -> str:
        if row.visits_90d >= 3 and not _missing(row.browse_to_buy_90d) \
                and row.browse_to_buy_90d < 0.1:
            return "browse, rarely buy"
        if row.visits_90d >= 3:
            return "browse and buy"
        if row.visits_90d >= 1:
            return "occasional visitors"
        return "no recent visits"

    assert got.segment.to_dict() == fdf.apply(ref, axis=1).sort_index().to_dict()
    assert got.segment_rank.isna().all()


def test_nested_lifecycle_by_value_tier(features, fdf):
    scheme = SchemeSettings(name="lc_value", kind="value_tiers", within="lifecycle",
                            tiers=[10, 50])
    got = _assigned(scheme, features)
    stage = fdf.apply(_lifecycle, axis=1)
    want = {}
    for name, members in fdf.groupby(stage):
        tiers = _tiers_ref(members.monetary_12m, tiers=(10, 50))
        for cid, tier in tiers.items():
            want[cid] = f"{name} / {tier}"
    assert got.segment.to_dict() == dict(sorted(want.items()))
    names = tier_names([10, 50])
    for _, row in got.iterrows():
        parent, child = row.segment.split(" / ")
        assert row.segment_rank == LIFECYCLE_ORDER.index(parent) * len(names) \
            + names.index(child) + 1


def test_nested_rfm_scores_within_parent(features):
    scheme = SchemeSettings(name="x", kind="rfm", within="browse_no_buy")
    got = _assigned(scheme, features)
    assert got.segment.str.contains(" / ").all() and got.segment_rank.isna().all()


def test_nesting_errors(features):
    with pytest.raises(SegflowError, match="names no scheme"):
        assign(SchemeSettings(name="a", kind="rfm", within="nope"), features)
    a = SchemeSettings(name="a", kind="rfm", within="b")
    b = SchemeSettings(name="b", kind="lifecycle", within="a")
    with pytest.raises(SegflowError, match="loops back"):
        assign(a, features, schemes=[a, b])


def test_builtin_schemes_assign_everyone_once(features, fdf):
    names = [s.name for s in builtin_schemes()]
    assert names == ["rfm", "lifecycle", "value_tiers", "browse_no_buy", "product_breadth"]
    for scheme in builtin_schemes():
        got = _assigned(scheme, features)
        assert list(got.index) == sorted(fdf.index), scheme.name
        assert got.segment.notna().all(), scheme.name
        assert list(assign(scheme, features).columns) == ["customer_id", "segment", "segment_rank"]


def test_assign_from_store_round_trip(store, features):
    """Assignments written to the store (as change rows) read back unchanged from the view
    segment_assignments."""
    import datetime as dt

    import pyarrow as pa

    out = assign(SchemeSettings(name="lifecycle", kind="lifecycle"), features).to_pyarrow()
    n = out.num_rows
    rows = out.append_column("scheme", pa.array(["lifecycle"] * n)).append_column(
        "snapshot_date", pa.array([dt.date(2024, 7, 1)] * n, pa.date32()))
    assert store.append("segment_assignments", rows) == n
    back = store.sql("SELECT customer_id, segment, segment_rank FROM segment_assignments "
                     "ORDER BY customer_id")
    assert back.to_pylist() == out.sort_by("customer_id").select(
        ["customer_id", "segment", "segment_rank"]).to_pylist()


def test_bad_tiers_are_a_config_error(tmp_path):
    from segflow.config import Settings
    from segflow.errors import ConfigError

    (tmp_path / "segflow.toml").write_text(
        '[[schemes]]\nname = "v"\nkind = "value_tiers"\ntiers = [50, 10]\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="tiers"):
        Settings.load(tmp_path)
