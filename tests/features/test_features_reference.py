"""Every feature of customer_features against an independent pandas computation."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pytest
from tests.features._fixture import (
    S,
    assert_same_features,
    make_tables,
    reference_features,
    to_store,
)

from segflow.features import FEATURES, REQUIRED_TABLES, customer_features, feature_registry
from segflow.store import Store


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return make_tables()


@pytest.fixture(scope="module")
def tables(frames):
    store = Store(":memory:")
    to_store(store, frames)
    yield {name: store.table(name) for name in REQUIRED_TABLES}
    store.close()


def _compute(tables, snapshot: dt.date, window_days: int | None) -> pd.DataFrame:
    out = customer_features(tables, snapshot, window_days=window_days).to_pandas()
    assert out["customer_id"].is_unique
    return out.set_index("customer_id").sort_index()


@pytest.mark.parametrize("window_days", [None, 180])
def test_every_feature_matches_pandas(tables, frames, window_days):
    got = _compute(tables, S, window_days)
    want = reference_features(frames, S, window_days)
    assert_same_features(got, want)


def test_every_feature_matches_pandas_at_an_earlier_snapshot(tables, frames):
    snapshot = dt.date(2023, 1, 15)
    assert_same_features(_compute(tables, snapshot, None), reference_features(frames, snapshot))


def test_columns_are_the_registry_in_order(tables):
    survey = ("lifestyle", "other", "price_sensitivity", "satisfaction_1_10", "survey_frequency")
    assert customer_features(tables, S).columns == (*FEATURES, *sorted(survey))
    registry = feature_registry(tables)
    assert tuple(registry) == customer_features(tables, S).columns
    assert registry["satisfaction_1_10"].kind == "numeric"
    assert registry["satisfaction_1_10"].unit == "number"
    assert registry["lifestyle"].kind == "categorical"
    assert registry["survey_frequency"].definition == (
        "Latest answer before s to the survey question 'frequency'.")


def test_window_boundaries(tables, frames):
    """c01 holds hand-placed orders: at s (excluded), exactly 365 days before s (inside the
    12 months), one second earlier (outside), the last second before s (recency 1)."""
    got = _compute(tables, S, None).loc["c01"]
    tx = frames["transactions"]
    mine = tx[(tx.customer_id == "c01") & ~tx.is_return.fillna(False).astype(bool)
              & (tx.amount > 0)]
    s = pd.Timestamp(S)
    in12 = mine[(mine.ts >= s - pd.Timedelta(days=365)) & (mine.ts < s)]
    assert got["frequency_12m"] == in12["transaction_id"].nunique()
    assert (mine.ts == s).any() and (mine.ts == s - pd.Timedelta(days=365)).any()
    assert got["recency_days"] == 1  # the order at s - 1 second
    # the order exactly at s is not counted anywhere
    before = mine[mine.ts < s]
    assert got["orders_total"] == before["transaction_id"].nunique()


def test_single_purchase_returns_only_and_seasonal_customers(tables):
    got = _compute(tables, S, None)
    one = got.loc["c36"]
    assert (one["frequency"], one["monetary"], one["recency_days"]) == (1, 42.0, 10)
    assert one["avg_order_value"] == 42.0 and one["basket_size"] == 2.0
    assert pd.isna(one["ipt_mean_days"]) and pd.isna(one["ipt_cv"])
    ret = got.loc["c35"]
    assert ret["frequency"] == 0 and ret["monetary"] == -25.0
    assert pd.isna(ret["recency_days"]) and pd.isna(ret["return_rate"])
    seasonal = got.loc["c37"]
    assert seasonal["peak_quarter"] == 4 and seasonal["same_season_flag"]
    assert seasonal["peak_quarter_share"] == pytest.approx(6 / 7)


def test_customers_known_at_the_snapshot(tables, frames):
    got = _compute(tables, S, None)
    assert "c38" not in got.index  # signs up exactly at s, no purchase before
    assert "c39" in got.index  # signs up one second before s
    assert "u0" in got.index and pd.isna(got.loc["u0", "region"])  # unknown id with orders
    assert got.loc["c06", "region"] != "Duplicate-later"  # the earliest customer row wins


def test_bad_arguments_are_clear_errors(tables):
    from segflow.errors import InputError

    with pytest.raises(InputError, match="window_days"):
        customer_features(tables, S, window_days=0)
    with pytest.raises(InputError, match="events"):
        customer_features({k: v for k, v in tables.items() if k != "events"}, S)
    with pytest.raises(InputError, match="not a date"):
        customer_features(tables, "2024-99-01")  # type: ignore[arg-type]


def test_campaign_responses_are_present(tables):
    got = _compute(tables, S, None)
    rates = got["campaign_response_rate_12m"].dropna()
    assert len(rates) > 10 and (rates > 0).any() and (rates == 0).any()


def test_feature_groups_give_the_same_values(tables):
    full = _compute(tables, S, None)
    rfm = customer_features(tables, S, groups={"rfm"}).to_pandas().set_index("customer_id")
    expected = [n for n, f in FEATURES.items() if f.group == "rfm"]
    assert list(rfm.columns) == expected
    pd.testing.assert_frame_equal(rfm.sort_index(), full[expected], check_dtype=False)
    web = customer_features(tables, S, groups=["web", "survey"]).columns
    assert "visits_90d" in web and "lifestyle" in web and "ipt_cv" not in web


def test_unknown_feature_group_is_an_error(tables):
    from segflow.errors import InputError

    with pytest.raises(InputError, match="unknown feature groups"):
        customer_features(tables, S, groups={"rfm", "astrology"})


def _numbered(frames: dict[str, pd.DataFrame]) -> tuple[dict, dict]:
    """The fixture with whole-number customer ids (``c07`` -> 7, ``u1`` -> 1001) and
    transaction ids (each distinct id a number from 10**12 up): as integer columns, and as
    the same numbers in text."""
    def customer(value):  # noqa: ANN001, ANN202
        return value if not isinstance(value, str) else int(value[1:]) + 1000 * (value[0] == "u")

    ints, texts = {}, {}
    for name, frame in frames.items():
        frame = frame.drop(columns=[c for c in ("email", "phone") if c in frame])  # all null
        frame = frame.assign(customer_id=frame["customer_id"].map(customer).astype("Int64"))
        if "transaction_id" in frame:
            codes, _ = pd.factorize(frame["transaction_id"])  # -1 for a missing id
            numbers = pd.Series(codes + 10**12, index=frame.index, dtype="Int64")
            frame = frame.assign(transaction_id=numbers.mask(codes < 0))
        ints[name] = frame
        texts[name] = frame.assign(**{c: frame[c].astype("string").astype(object)
                                      for c in ("customer_id", "transaction_id") if c in frame})
    return ints, texts


def test_integer_ids_give_the_features_of_their_text(frames):
    """Tables from pandas with integer ids (in some tables or all) join as the store's text
    ids do: the features of integer ids equal the reference features of the same ids as text
    (before, mixing them raised an Ibis type error); whole-number decimal ids read as their
    digits; empty float or true/false id columns pass, ones with values are a clear error."""
    from segflow.errors import InputError
    from segflow.features import snapshot_features

    ints, texts = _numbered(frames)
    want = reference_features(texts, S)
    for mixed in (set(ints), {"campaign_exposures"}, {"transactions", "events"}):
        tables = {k: ibis.memtable(ints[k] if k in mixed else texts[k]) for k in ints}
        got = customer_features(tables, S).to_pandas()
        assert got["customer_id"].map(type).eq(str).all()
        assert_same_features(got.set_index("customer_id").sort_index(), want)
        both = snapshot_features(tables, [dt.date(2023, 1, 15), S]).to_pandas()
        at_s = both[pd.to_datetime(both.snapshot_date) == pd.Timestamp(S)].drop(columns="snapshot_date")
        assert_same_features(at_s.set_index("customer_id").sort_index(), want)
    # whole-number decimals (ids past int64) are exact: read as their digits
    dec = {k: ibis.memtable(v).mutate(customer_id=ibis._.customer_id.cast("decimal(20, 0)"))
           for k, v in ints.items()}
    got = customer_features(dec, S).to_pandas()
    assert_same_features(got.set_index("customer_id").sort_index(), want)
    # an empty optional column read by pandas is float NaN, an id column too: accepted
    empty = {k: v.copy() for k, v in texts.items()}
    empty["customers"]["email"] = np.nan
    empty["transactions"]["product_id"] = np.nan
    empty["events"]["session_id"] = pd.array([None] * len(empty["events"]), dtype="boolean")
    got = customer_features({k: ibis.memtable(v) for k, v in empty.items()}, S).to_pandas()
    assert got.products_total.isna().all() and len(got) == len(want)
    floats = dict(tables, events=ibis.memtable(ints["events"].astype({"customer_id": float})))
    with pytest.raises(InputError, match=r"events\.customer_id is a float64 column with values"):
        customer_features(floats, S)
    flags = dict(tables, events=ibis.memtable(ints["events"].assign(
        customer_id=ints["events"].customer_id.notna())))
    with pytest.raises(InputError, match=r"events\.customer_id is a boolean column with values"):
        customer_features(flags, S)


def test_float_codes_read_as_the_ingest_stores_them(frames):
    """A code column of floats (how pandas, polars or Spark hand over a numeric code with gaps)
    gives the text the ingest stores for it (tests/sources/test_sources_float_ids.py): a whole
    number its digits (``5.0`` -> ``'5'``, not ``'5.0'``), NaN and null missing (not the code
    ``'nan'``), any other value its text."""
    import pyarrow as pa

    customers = frames["customers"].drop(columns=["email", "phone"]).head(6)
    codes = [5.0, float("nan"), 2.5, None, -3.0, 1e20]
    arrow = pa.Table.from_pandas(customers, preserve_index=False).set_column(
        list(customers.columns).index("region"), "region", pa.array(codes, pa.float64()))
    assert pa.compute.is_nan(arrow["region"]).to_pylist()[1]  # a true NaN, not a null
    tables = {k: ibis.memtable(v) for k, v in frames.items() if k != "customers"}
    tables["customers"] = ibis.memtable(arrow)
    got = customer_features(tables, S, groups=["attribute"]).to_pandas().set_index("customer_id")
    regions = got.loc[list(customers.customer_id), "region"]
    assert [None if pd.isna(v) else v for v in regions] == ["5", None, "2.5", None, "-3", "1e+20"]
