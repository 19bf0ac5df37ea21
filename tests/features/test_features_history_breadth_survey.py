"""Attribute history, product breadth and survey answers as of each snapshot, on a small
hand-made data set whose right answers are written out below; and the schemes and the CRM
export that read them (a customer moving London -> Paris, a buyer broadening)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest

from segflow.config import RuleSettings, SchemeSettings
from segflow.exports import segment_list
from segflow.features import REQUIRED_TABLES, customer_features
from segflow.segments import assign, product_breadth_scheme, psychographic_example_scheme
from segflow.store import Store

SNAPSHOTS = [dt.date(2024, 2, 1), dt.date(2024, 4, 1), dt.date(2024, 7, 1), dt.date(2024, 9, 1)]


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


@pytest.fixture(scope="module")
def store() -> Store:
    st = Store(":memory:")
    customers = pd.DataFrame([
        # mover: London until 2024-04-01 00:00 (exclusive), Paris from then on
        dict(customer_id="mover", created_at=_ts("2023-06-01"), region="London", city="London",
             valid_from=pd.NaT, valid_to=_ts("2024-04-01")),
        dict(customer_id="mover", created_at=_ts("2023-06-01"), region="Paris", city="Paris",
             valid_from=_ts("2024-04-01"), valid_to=pd.NaT),
        dict(customer_id="stay", created_at=_ts("2023-06-01"), region="Wales", city="Cardiff",
             valid_from=pd.NaT, valid_to=pd.NaT),
        # a record that ended without a successor: no attributes after it ends
        dict(customer_id="gone", created_at=_ts("2023-06-01"), region="Wales", city="Cardiff",
             valid_from=pd.NaT, valid_to=_ts("2024-05-15")),
    ])
    st.append("customers", pa.Table.from_pandas(customers, preserve_index=False))
    tx = pd.DataFrame([
        # broad: P1 twice, then P2, P3 (books) and P4, P5 (toys)
        ("o1", "broad", "2024-01-10", 20.0, "P1", "books"),
        ("o2", "broad", "2024-03-01", 20.0, "P1", "books"),
        ("o3", "broad", "2024-05-01", 30.0, "P2", "books"),
        ("o4", "broad", "2024-06-01", 30.0, "P3", "books"),
        ("o5", "broad", "2024-08-01", 15.0, "P4", "toys"),
        ("o5", "broad", "2024-08-01", 15.0, "P5", "toys"),
        ("r1", "broad", "2024-08-05", -15.0, "P9", "garden"),  # a return: not a product bought
        ("o6", "stay", "2024-01-20", 10.0, None, "books"),  # no product id
        ("o7", "mover", "2024-01-05", 0.0, "P7", "books"),  # a free item is a purchase
    ], columns=["transaction_id", "customer_id", "ts", "amount", "product_id", "category"])
    tx["ts"] = pd.to_datetime(tx["ts"])
    tx["is_return"] = tx["amount"] < 0
    st.append("transactions", pa.Table.from_pandas(tx, preserve_index=False))
    survey = pd.DataFrame([
        ("mover", "2024-01-15", "price_sensitivity", "high"),
        ("mover", "2024-05-20", "Price Sensitivity", "low"),  # same question, other spelling
        ("mover", "2024-01-15", "NPS", "3"),
        ("mover", "2024-06-10", "NPS", " 9"),
        ("stay", "2024-03-03", "price_sensitivity", "medium"),
        ("stay", "2024-03-03", "hobby", "sailing"),
    ], columns=["customer_id", "ts", "question", "answer"])
    survey["ts"] = pd.to_datetime(survey["ts"])
    st.append("survey_responses", pa.Table.from_pandas(survey, preserve_index=False))
    return st


def _features(store: Store, day: dt.date) -> pd.DataFrame:
    tables = {n: store.table(n) for n in REQUIRED_TABLES}
    return customer_features(tables, day).to_pandas().set_index("customer_id")


def _value(frame: pd.DataFrame, cid: str, col: str) -> object:
    v = frame.loc[cid, col]
    return None if pd.isna(v) else v


def test_attributes_are_those_valid_at_each_snapshot(store):
    got = {d: _features(store, d) for d in SNAPSHOTS}
    # a change dated exactly s belongs to the next snapshot, like a transaction at s
    assert [_value(got[d], "mover", "region") for d in SNAPSHOTS] == [
        "London", "London", "Paris", "Paris"]
    assert [_value(got[d], "stay", "region") for d in SNAPSHOTS] == ["Wales"] * 4
    assert [_value(got[d], "gone", "region") for d in SNAPSHOTS] == [
        "Wales", "Wales", None, None]
    assert all(got[d].loc["mover", "signup_date"] == pd.Timestamp("2023-06-01") for d in SNAPSHOTS)
    # the day after the move: Paris
    assert _value(_features(store, dt.date(2024, 4, 2)), "mover", "city") == "Paris"


def test_product_breadth_grows_and_counts_only_purchases(store):
    got = {d: _features(store, d) for d in SNAPSHOTS}
    cols = ["products_total", "products_12m", "categories_total", "categories_12m"]
    assert [got[d].loc["broad", cols].tolist() for d in SNAPSHOTS] == [
        [1, 1, 1, 1], [1, 1, 1, 1], [3, 3, 1, 1], [5, 5, 2, 2]]
    assert _value(got[SNAPSHOTS[-1]], "stay", "products_total") is None  # no product ids
    assert got[SNAPSHOTS[-1]].loc["stay", "categories_total"] == 1
    assert got[SNAPSHOTS[-1]].loc["mover", "products_total"] == 1  # the $0 item
    assert _value(got[SNAPSHOTS[-1]], "gone", "products_total") is None  # never bought
    # 12 months later the old purchases fall out of the 12-month counts only
    late = _features(store, dt.date(2025, 5, 2))
    assert late.loc["broad", cols].tolist() == [5, 3, 2, 2]  # P3, P4, P5; books, toys


def test_breadth_scheme_migrates_as_the_customer_broadens(store):
    scheme = product_breadth_scheme()
    path = []
    for d in SNAPSHOTS:
        seg = assign(scheme, customer_features(
            {n: store.table(n) for n in REQUIRED_TABLES}, d)).to_pandas()
        path.append(seg.set_index("customer_id").loc["broad", "segment"])
    assert path == ["Single product", "Single product", "Few products (2-4)",
                    "Many products (5+)"]


def test_every_survey_question_is_a_feature_as_of_the_snapshot(store):
    got = {d: _features(store, d) for d in SNAPSHOTS}
    assert {"price_sensitivity", "nps", "hobby"} <= set(got[SNAPSHOTS[0]].columns)
    assert got[SNAPSHOTS[0]]["nps"].dtype.kind == "f"  # numbers only: a numeric feature
    assert [_value(got[d], "mover", "price_sensitivity") for d in SNAPSHOTS] == [
        "high", "high", "low", "low"]
    assert [_value(got[d], "mover", "nps") for d in SNAPSHOTS] == [3.0, 3.0, 9.0, 9.0]
    assert [_value(got[d], "stay", "hobby") for d in SNAPSHOTS] == [
        None, "sailing", "sailing", "sailing"]
    # the psychographic example scheme reads the answer valid at each snapshot
    seg = [assign(psychographic_example_scheme(), customer_features(
        {n: store.table(n) for n in REQUIRED_TABLES}, d)).to_pandas().set_index("customer_id")
        for d in SNAPSHOTS]
    assert [s.loc["mover", "segment"] for s in seg] == [
        "Price-sensitive", "Price-sensitive", "Quality-seeking", "Quality-seeking"]
    assert [s.loc["stay", "segment"] for s in seg] == [
        "Not surveyed", "Balanced", "Balanced", "Balanced"]


def test_crm_export_shows_the_geographic_move(store):
    scheme = SchemeSettings(name="geo", kind="rules", default="Elsewhere", rules=[
        RuleSettings(segment="London", when="region = 'London'"),
        RuleSettings(segment="Paris", when="region = 'Paris'"),
    ])
    tables = {n: store.table(n) for n in REQUIRED_TABLES}
    rows = []
    for d in SNAPSHOTS:
        a = assign(scheme, customer_features(tables, d)).to_pandas()
        rows.append(a.assign(scheme="geo", scheme_version="1", snapshot_date=d, run_id="t"))
    frame = pd.concat(rows)[["scheme", "scheme_version", "snapshot_date", "customer_id",
                             "segment", "segment_rank", "run_id"]]
    mem = Store(":memory:")
    mem.append("segment_assignments", pa.Table.from_pandas(frame, preserve_index=False))
    before = segment_list(mem.table("segment_assignments"), "geo", SNAPSHOTS[1]).to_pandas()
    assert before.set_index("customer_id").loc["mover", "segment"] == "London"
    out = segment_list(mem.table("segment_assignments"), "geo", SNAPSHOTS[2]).to_pandas()
    mover = out.set_index("customer_id").loc["mover"]
    assert (mover.segment, mover.previous_segment) == ("Paris", "London")
    assert mover.last_change_date == pd.Timestamp(SNAPSHOTS[2]) and mover.periods_in_segment == 1
    later = segment_list(mem.table("segment_assignments"), "geo").to_pandas()
    assert later.set_index("customer_id").loc["mover", "periods_in_segment"] == 2
    assert pd.isna(later.set_index("customer_id").loc["stay", "previous_segment"])


def test_a_record_made_after_the_snapshot_gives_no_attributes_before_it():
    """A guest who bought in January and registered on 1 March (a record without
    valid_from): no region at the 1 February snapshot, in the readable definition and in the
    one pass (which read the record at every snapshot before); Scotland from April."""
    from segflow.features import snapshot_features

    st = Store(":memory:")
    customers = pd.DataFrame([
        dict(customer_id="guest", created_at=_ts("2024-03-01"), region="Scotland", city="Leith",
             valid_from=pd.NaT, valid_to=pd.NaT),
        dict(customer_id="old", created_at=_ts("2023-01-01"), region="Wales", city="Cardiff",
             valid_from=pd.NaT, valid_to=pd.NaT),
        dict(customer_id="undated", created_at=pd.NaT, region="Kent", city="Dover",
             valid_from=pd.NaT, valid_to=pd.NaT),
        # back-filled history: valid_from before the record was made holds from created_at
        # (the later of both: nothing could read the record before it was made)
        dict(customer_id="backfilled", created_at=_ts("2024-06-01"), region="Devon",
             city="Exeter", valid_from=_ts("2023-01-01"), valid_to=pd.NaT),
    ])
    st.append("customers", pa.Table.from_pandas(customers, preserve_index=False))
    tx = pd.DataFrame([("o1", "guest", "2024-01-10", 20.0), ("o2", "undated", "2024-01-11", 5.0),
                       ("o3", "backfilled", "2024-01-12", 7.0)],
                      columns=["transaction_id", "customer_id", "ts", "amount"])
    tx["ts"] = pd.to_datetime(tx["ts"])
    tx["is_return"] = False
    st.append("transactions", pa.Table.from_pandas(tx, preserve_index=False))
    days = [dt.date(2024, 2, 1), dt.date(2024, 3, 1), dt.date(2024, 3, 2), dt.date(2024, 7, 1)]
    expected = {"guest": [None, None, "Scotland", "Scotland"], "old": ["Wales"] * 4,
                "undated": ["Kent"] * 4, "backfilled": [None, None, None, "Devon"]}
    readable = {d: _features(st, d) for d in days}
    for cid, regions in expected.items():
        assert [_value(readable[d], cid, "region") for d in days] == regions, cid
    assert _value(readable[days[0]], "guest", "signup_date") is None
    tables = {n: st.table(n) for n in REQUIRED_TABLES}
    one_pass = snapshot_features(tables, days).to_pandas()
    for cid, regions in expected.items():
        rows = one_pass[one_pass["customer_id"] == cid].sort_values("snapshot_date")
        assert [None if pd.isna(v) else v for v in rows["region"]] == regions, cid
