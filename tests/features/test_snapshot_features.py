"""snapshot_features (one pass over history) equals customer_features snapshot by snapshot.

The readable definition is ``customer_features(tables, s)`` at one snapshot (itself tested
against an independent pandas computation in test_features_reference.py); the one-pass table
must hold exactly its rows at every snapshot: same customers, counts, dates and money exactly
(both sum money as exact decimals), other floats to 1e-9. Data: a hand-built fixture whose rows sit on the edges a
period computation can get wrong, the random fixture of the reference test, and the demo
generator's data (slow).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from tests.features._fixture import make_tables, to_store

from segflow.errors import InputError
from segflow.features import (
    FEATURE_GROUPS,
    FEATURES,
    REQUIRED_TABLES,
    customer_features,
    snapshot_features,
)
from segflow.store import Store

D = pd.Timedelta(days=1)
MONEY = {n for n, f in FEATURES.items() if f.unit == "currency"}


#: The definition's full rows at one snapshot, by (tables, snapshot, window): the tests of
#: single groups compare with the columns of these rather than compute the definition again
_DEFINITION: dict[tuple, tuple[dict, pd.DataFrame]] = {}


def _definition(tables, s, window_days, groups) -> pd.DataFrame:  # noqa: ANN001
    """``customer_features(tables, s, window_days=window_days, groups=groups)``'s rows. The
    full rows (``groups=None``) are computed once and kept for the module; for some groups,
    once those are kept, the columns that call's expression names (not executed) are taken
    from them."""
    key = (id(tables), s, window_days)  # the cache holds ``tables``: its id is not reused
    if groups is None and key not in _DEFINITION:
        full = customer_features(tables, s, window_days=window_days).to_pandas()
        _DEFINITION[key] = (tables, full)
    if key not in _DEFINITION:
        return customer_features(tables, s, window_days=window_days, groups=groups).to_pandas()
    full = _DEFINITION[key][1]
    if groups is None:
        return full.copy()
    names = customer_features(tables, s, window_days=window_days, groups=groups).columns
    return full[list(names)].copy()


def assert_same_table(tables, dates, *, window_days=None, groups=None) -> pd.DataFrame:
    """The one-pass table against the per-snapshot definition; returns the one-pass rows."""
    got = snapshot_features(tables, dates, window_days=window_days, groups=groups).to_pandas()
    parts = []
    for s in sorted(set(dates)):
        part = _definition(tables, s, window_days, groups)
        parts.append(part.assign(snapshot_date=pd.Timestamp(s)))
    want = pd.concat(parts, ignore_index=True)
    want = want[["snapshot_date", *[c for c in want.columns if c != "snapshot_date"]]]
    assert list(got.columns) == list(want.columns)
    key = ["snapshot_date", "customer_id"]
    got["snapshot_date"] = pd.to_datetime(got["snapshot_date"])
    got = got.sort_values(key, ignore_index=True)
    want = want.sort_values(key, ignore_index=True)
    assert not got.duplicated(key).any()
    assert got[key].equals(want[key]), "the (snapshot, customer) rows differ"
    assert_same_columns(got, want, got.columns[2:])
    return got


def assert_same_columns(got: pd.DataFrame, want: pd.DataFrame, names) -> None:  # noqa: ANN001
    """Columns ``names`` of two tables with the same rows in the same order are equal: money
    exactly, other floats to 1e-9, everything else exactly (nulls equal)."""
    for name in names:
        g, w = got[name], want[name]
        if name in MONEY:
            # Both sum money exactly (decimals of six places) and take one float of the same
            # sums: equal, not close (tests/features/test_huge_money.py)
            np.testing.assert_array_equal(g.astype(float), w.astype(float), err_msg=name)
        elif g.dtype.kind == "f" or w.dtype.kind == "f":
            np.testing.assert_allclose(g.astype(float), w.astype(float), rtol=1e-9, atol=1e-12,
                                       equal_nan=True, err_msg=name)
        else:
            gv = [None if pd.isna(v) else v for v in g]
            wv = [None if pd.isna(v) else v for v in w]
            assert gv == wv, name


# -- a hand-built fixture: every edge in a few rows --------------------------------------
S = [dt.date(2023, 7, 1), dt.date(2024, 1, 1), dt.date(2024, 4, 1), dt.date(2024, 7, 1),
     dt.date(2024, 7, 2), dt.date(2024, 10, 1)]
S4 = pd.Timestamp(S[3])  # 2024-07-01: most edges are placed around it
LAST = pd.Timestamp(S[-1])


def _tx(cust, ts, amount, tid=None, *, qty=1.0, ret=False, promo=None, cat="books",
        chan="web", product="P1"):
    return dict(transaction_id=tid, customer_id=cust, ts=pd.Timestamp(ts), amount=amount,
                quantity=qty, unit_price=None, category=cat, channel=chan, promo_code=promo,
                is_return=ret, product_id=product)


def edge_tables() -> dict[str, pd.DataFrame]:
    t = [
        # window edges at S4: exactly 365 days before (inside 12m, leaves at S4 + 1 day),
        # 366 days before (outside), 730 days (start of the previous 12 months)
        _tx("a", S4 - 365 * D, 10.0, "A1"),
        _tx("a", S4 - 366 * D, 20.0, "A2"),
        _tx("a", S4 - 730 * D, 30.0, "A3"),
        _tx("a", S4 - 731 * D, 40.0, "A4"),
        _tx("a", S4, 50.0, "A5"),  # exactly at a snapshot's 00:00: the next snapshot's
        _tx("a", S4 - pd.Timedelta(seconds=1), 60.0, "A6"),
        # 90/91 days (the window_days=90 test) and an exit: nothing for more than 12 months
        _tx("b", S4 - 90 * D, 5.0, "B1"),
        _tx("b", S4 - 91 * D, 7.0, "B2"),
        _tx("x", pd.Timestamp("2022-03-05 10:00"), 99.0, "X1", promo="P"),
        _tx("x", pd.Timestamp("2022-11-20 10:00"), 12.5, "X2"),
        # returns: flagged, negative without the flag, a return larger than the purchases
        _tx("r", pd.Timestamp("2023-12-30 12:00"), 40.0, "R1", qty=2.0),
        _tx("r", pd.Timestamp("2024-01-03 12:00"), -15.0, "R1-ret", qty=-1.0),
        _tx("r", pd.Timestamp("2024-02-03 12:00"), 15.0, "R2-ret", ret=True, qty=None),
        _tx("r", pd.Timestamp("2024-08-03 12:00"), -200.0, "R3-ret", ret=True),
        # $0 orders and lines without an order id (same ts: one order; other ts: another)
        _tx("z", pd.Timestamp("2024-02-10 09:00"), 0.0, "Z1"),
        _tx("z", pd.Timestamp("2024-02-11 09:00"), 0.0, None, qty=None),
        _tx("z", pd.Timestamp("2024-02-11 09:00"), 8.0, None, qty=None),
        _tx("z", pd.Timestamp("2024-03-11 09:00"), 3.0, None, promo=" "),
        # one order over three periods: $0 first, paid later, promo on the last line
        _tx("o", pd.Timestamp("2023-12-31 23:00"), 0.0, "O1", qty=None),
        _tx("o", pd.Timestamp("2024-02-01 08:00"), 25.0, "O1"),
        _tx("o", pd.Timestamp("2024-06-30 08:00"), 5.0, "O1", promo="SPRING"),
        # first seen on the last day before the last snapshot (no customer row)
        _tx("late", LAST - pd.Timedelta(minutes=5), 70.0, "L1"),
        # a seasonal buyer (Q4 every year, one spring order)
        *[_tx("q", pd.Timestamp(y, 11, d, 12), 30.0, f"Q{y}{d}") for y in (2021, 2022, 2023)
          for d in (2, 20)],
        _tx("q", pd.Timestamp(2023, 4, 2), 15.0, "QS"),
        _tx("q", pd.Timestamp(2024, 5, 2), 15.0, "QS2"),
        _tx("q", pd.Timestamp(2024, 6, 2), 15.0, "QS3"),
    ]
    customers = pd.DataFrame([
        dict(customer_id=c, created_at=pd.Timestamp(ts) if ts else pd.NaT, email=None,
             phone=None, age_band="25-34", gender="f", income_band="<25k", region=reg,
             city="A", signup_channel="web", valid_from=vf, valid_to=vt)
        for c, ts, reg, vf, vt in [
            ("a", "2021-01-01", "North", None, None),
            ("b", "2023-12-01", "North", None, S4),  # moves on exactly S4
            ("b", "2023-12-01", "South", S4, None),
            ("x", None, "West", None, None),
            ("r", "2023-10-10", "East", None, None),
            ("z", "2024-02-10 10:00", "East", None, None),
            ("o", "2023-12-31", "East", None, None),
            ("q", "2021-06-01", "North", None, None),
            ("new", str(LAST.date() - dt.timedelta(days=1)), "North", None, None),
            ("future", str(LAST.date()), "North", None, None),  # signs up at the last s
        ]
    ])
    for col in ("valid_from", "valid_to"):
        customers[col] = pd.to_datetime(customers[col])
    ev = []
    for cust, ts, kind, sess in [
        ("b", S4 - 90 * D, "product_view", "s1"), ("b", S4 - 91 * D, "cart_add", "s1"),
        ("b", S4 - 91 * D, "purchase", "s2"), ("b", S4 - 20 * D, "cart_add", "s3"),
        ("b", S4 - 5 * D, "purchase", "s3"), ("b", S4 - 100 * D, "cart_add", "s4"),
        ("b", S4 - 10 * D, "purchase", "s4"), ("b", S4, "visit", "s5"),
        ("a", S4 - 3 * D, "visit", None), ("a", S4 - 3 * D + pd.Timedelta(hours=2), "cart_add", None),
        ("a", S4 - 200 * D, "PRODUCT_VIEW", None), ("web_only", S4 - 1 * D, "visit", "w1"),
    ]:
        ev.append(dict(customer_id=cust, ts=pd.Timestamp(ts), event_type=kind, item=None,
                       category=None, session_id=sess))
    exposures = pd.DataFrame([
        dict(campaign_id=c, customer_id=cust, ts=pd.Timestamp(ts), arm=arm, exposure_type=kind)
        for c, cust, ts, arm, kind in [
            ("C1", "a", "2023-06-20", "treatment", "send"),
            ("C1", "a", "2023-06-21", "treatment", "open"),
            ("C2", "a", "2024-06-01", "treatment", "send"),
            ("C2", "b", "2024-06-01", "control", "send"),
            ("C3", "q", "2023-10-30", "treatment", "click"),
        ]
    ])
    survey = pd.DataFrame([
        dict(customer_id="a", ts=pd.Timestamp("2024-01-05"), question="lifestyle", answer="family"),
        dict(customer_id="a", ts=pd.Timestamp("2024-08-05"), question="lifestyle", answer="single"),
    ])
    return {"customers": customers, "transactions": pd.DataFrame(t), "events": pd.DataFrame(ev),
            "campaign_exposures": exposures, "survey_responses": survey}


@pytest.fixture(scope="module")
def edge():
    store = Store(":memory:")
    to_store(store, edge_tables())
    yield {name: store.table(name) for name in REQUIRED_TABLES}
    store.close()


@pytest.mark.parametrize(
    "window_days", [None, 90, pytest.param(365, marks=pytest.mark.slow)]
)
def test_one_pass_equals_each_snapshot_on_the_edges(edge, window_days):
    got = assert_same_table(edge, S, window_days=window_days)
    at = got.set_index(["snapshot_date", "customer_id"])
    s4, s5 = pd.Timestamp(S[3]), pd.Timestamp(S[4])
    # the edges really are in the data (so the comparison above covers them)
    assert at.loc[(s4, "a"), "frequency_12m"] == 2  # A1 (365 days) and A6
    assert at.loc[(s5, "a"), "frequency_12m"] == 2  # A1 left, A5 (at S4 00:00) entered
    assert at.loc[(s4, "a"), "frequency_prev_12m"] == 2  # A2 and A3
    assert at.loc[(s4, "b"), "visits_90d"] == 3
    # a change dated exactly S4 belongs to the next snapshot, like a transaction at S4
    assert at.loc[(s4, "b"), "region"] == "North" and at.loc[(s5, "b"), "region"] == "South"
    assert at.loc[(pd.Timestamp(S[-1]), "r"), "monetary_12m"] == pytest.approx(40 - 15 - 15 - 200)
    assert "late" in at.loc[pd.Timestamp(S[-1])].index and "future" not in got.customer_id.values
    assert at.loc[(pd.Timestamp(S[-1]), "x"), "frequency_12m"] == 0  # exited
    assert bool(at.loc[(pd.Timestamp(S[1]), "q"), "same_season_flag"])


def test_duplicate_and_unsorted_dates_give_one_row_per_snapshot(edge):
    a = snapshot_features(edge, [S[3], S[0], S[3]], groups={"rfm"}).to_pandas()
    b = snapshot_features(edge, [S[0], S[3]], groups={"rfm"}).to_pandas()
    key = ["snapshot_date", "customer_id"]
    pd.testing.assert_frame_equal(a.sort_values(key, ignore_index=True),
                                  b.sort_values(key, ignore_index=True))


@pytest.mark.slow
def test_one_snapshot_and_single_groups(edge):
    assert_same_table(edge, [S[3]], window_days=90)
    for group in FEATURE_GROUPS:
        assert_same_table(edge, S[1:4], groups={group})


def test_bad_arguments_are_input_errors(edge):
    with pytest.raises(InputError, match="at least one snapshot"):
        snapshot_features(edge, [])
    with pytest.raises(InputError, match="window_days"):
        snapshot_features(edge, S, window_days=0)
    with pytest.raises(InputError, match="unknown feature groups"):
        snapshot_features(edge, S, groups={"nope"})


# -- the random fixture of the reference test --------------------------------------------
@pytest.fixture(scope="module")
def random_tables():
    store = Store(":memory:")
    to_store(store, make_tables())
    yield {name: store.table(name) for name in REQUIRED_TABLES}
    store.close()


@pytest.mark.slow
@pytest.mark.parametrize("window_days", [None, 180])
def test_one_pass_equals_each_snapshot_on_the_random_fixture(random_tables, window_days):
    dates = [dt.date(2021, 9, 1), dt.date(2022, 9, 1), dt.date(2023, 7, 1), dt.date(2024, 3, 1),
             dt.date(2024, 6, 1), dt.date(2024, 7, 1)]
    assert_same_table(random_tables, dates, window_days=window_days)


@pytest.mark.slow
def test_one_pass_equals_each_snapshot_monthly_on_the_random_fixture(random_tables):
    dates = [(pd.Timestamp("2021-03-01") + pd.DateOffset(months=i)).date() for i in range(44)]
    assert_same_table(random_tables, dates, window_days=180,
                      groups={"rfm", "seasonality", "web", "attribute"})


# -- the demo generator ------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    import warnings

    from segflow.datasets import demo_project_toml, generate_demo
    from segflow.project import Project

    folder = tmp_path_factory.mktemp("demo")
    ds = generate_demo(folder / "data", customers=400, months=24, seed=5, formats=("parquet",))
    toml = demo_project_toml(folder / "data", file_format="parquet", max_date=ds.end)
    project = Project.init(folder / "proj", toml_text=toml)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the demo data carries injected defects on purpose
        project.ingest()
    yield ds, {n: project.store.table(n) for n in REQUIRED_TABLES}
    project.close()


@pytest.mark.slow
@pytest.mark.parametrize("window_days", [None])  # windows: the edges and the random fixture
def test_one_pass_equals_each_snapshot_on_the_demo_data(demo, window_days):
    ds, tables = demo
    dates = [(pd.Timestamp(ds.start) + pd.DateOffset(months=m)).date() for m in range(1, 25, 3)]
    got = assert_same_table(tables, dates, window_days=window_days)
    assert got.customer_id.nunique() > 300 and got.visits_90d.sum() > 0


# -- the same expressions on Spark -------------------------------------------------------
@pytest.mark.spark
@pytest.mark.slow
def test_spark_one_pass_equals_duckdb_one_pass():
    from tests._engines import require_spark

    require_spark()
    from tests.features.test_huge_money import assert_money, huge_tables

    from segflow.engine import connect
    from segflow.features._snapshots import snapshot_features_and_state
    from segflow.features._state import state_features

    store = Store(":memory:")
    # the edges plus three customers with huge amounts (lines of 9.3e12 and 5e13, sums past
    # 9.22e12) and cents: Spark sums money as decimal(38, 6) too
    to_store(store, huge_tables())
    engine = connect(store, "spark")
    key = ["snapshot_date", "customer_id"]
    # 54 rows through a plan of ~250 shuffles: the tests' sessions have one partition per
    # shuffle and no adaptive execution (tests/conftest.py SPARK_TEST_CONF)
    # with the feature state at the last snapshot, from which the Spark run derives that
    # snapshot's full features (segflow.warehouse._run, as the DuckDB run)
    try:
        tables = {n: engine.table(n) for n in REQUIRED_TABLES}
        features, state = snapshot_features_and_state(tables, S, window_days=90)
        on_spark = features.to_pandas()
        latest = state_features(tables, state, S[-1], window_days=90).to_pandas()
    finally:
        engine.close()
    duck = {n: store.table(n) for n in REQUIRED_TABLES}
    want = snapshot_features(duck, S, window_days=90)
    want = want.to_pandas().sort_values(key, ignore_index=True)
    got = on_spark.sort_values(key, ignore_index=True)
    reference = customer_features(duck, S[-1], window_days=90).to_pandas()
    store.close()
    latest = latest.sort_values("customer_id", ignore_index=True)
    reference = reference.sort_values("customer_id", ignore_index=True)
    assert list(latest.columns) == list(reference.columns) and len(latest) == 12
    assert latest.customer_id.tolist() == reference.customer_id.tolist()
    assert_same_columns(latest, reference, latest.columns[1:])
    assert_money(latest.set_index("customer_id"), S[-1], 90)
    # 54 (snapshot, customer) rows: 4, 8, 10, 10, 10 and 12 customers at the six snapshots
    # of the fixture (the DuckDB tests check each against customer_features)
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want) == 54
    assert want.groupby("snapshot_date").size().tolist() == [4, 8, 10, 10, 10, 12]
    for s in S:
        at = got[pd.to_datetime(got.snapshot_date) == pd.Timestamp(s)]
        assert_money(at.set_index("customer_id"), s, 90)
    for name in got.columns:
        g, w = got[name], want[name]
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g.astype(float), w, rtol=1e-9, equal_nan=True,
                                       err_msg=name)
        else:
            assert [None if pd.isna(v) else v for v in g] == [
                None if pd.isna(v) else v for v in w
            ], name


def test_customer_chunks_and_column_subsets_give_the_same_rows(edge):
    """Chunks of 2 customers (several materialised parts) give the rows of one chunk, and
    asking for a few columns gives those columns of the full table."""
    key = ["snapshot_date", "customer_id"]
    whole = snapshot_features(edge, S, window_days=90).to_pandas().sort_values(key, ignore_index=True)
    chunked = snapshot_features(edge, S, window_days=90, chunk_customers=6).to_pandas()
    assert whole.customer_id.nunique() > 6
    pd.testing.assert_frame_equal(chunked.sort_values(key, ignore_index=True), whole)
    # each subset leaves out other parts of the breadth and web deltas
    for few in (["customer_id", "frequency", "products_total", "promo_share", "visits_90d"],
                ["customer_id", "categories_12m", "cart_abandonment_rate_90d",
                 "browse_to_buy_90d"]):
        part = snapshot_features(edge, S, window_days=90, columns=few).to_pandas()
        assert list(part.columns) == ["snapshot_date", *[c for c in whole.columns if c in few]]
        pd.testing.assert_frame_equal(part.sort_values(key, ignore_index=True),
                                      whole[part.columns])
    with pytest.raises(InputError, match="chunk_customers"):
        snapshot_features(edge, S, chunk_customers=0)
