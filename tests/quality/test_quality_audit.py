"""The audit's counts against an independent pandas/numpy computation on a seeded base."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from segflow.quality import audit
from segflow.store import Store

AS_OF = dt.date(2024, 7, 1)


@pytest.fixture(scope="module")
def base() -> tuple[Store, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    n_cust, n_tx = 60, 900
    customers = pd.DataFrame({
        "customer_id": [f"C{i:03d}" for i in range(n_cust)],
        "created_at": pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 700, n_cust), "D"),
        "email": [None if i % 9 == 0 else f"c{i}@x.org" for i in range(n_cust)],
        "gender": [None if i % 4 == 0 else "female" for i in range(n_cust)],
    })
    days = rng.integers(0, 540, n_tx)
    days = np.where((days > 300) & (days < 312), 299, days)  # an 11-day gap
    ts = pd.Timestamp("2023-01-01") + pd.to_timedelta(days, "D") + pd.to_timedelta(
        rng.integers(0, 86_400, n_tx), "s")
    amount = np.round(rng.lognormal(3, 0.5, n_tx), 2)
    amount[:5] = [5000, 7000, 0.5, 9000, 3.0]  # outliers
    tx = pd.DataFrame({
        "transaction_id": [f"T{i:04d}" for i in range(n_tx)],
        "customer_id": [f"C{int(c):03d}" for c in rng.integers(0, n_cust + 3, n_tx)],  # 3 unknown
        "ts": ts, "amount": amount, "quantity": 1.0, "unit_price": amount, "is_return": False,
    })
    tx.loc[10:12, "ts"] = pd.Timestamp("2025-01-01")  # future
    tx.loc[20, "customer_id"] = None
    tx.loc[30, "unit_price"] = tx.loc[30, "amount"] + 5  # inconsistent
    # same-day repeat: copy row 40 under a new id, 2 hours later
    rep = tx.loc[[40]].assign(transaction_id="T9999", ts=tx.loc[40, "ts"] + pd.Timedelta(hours=2))
    rep["ts"] = rep.ts.where(rep.ts.dt.date == tx.loc[40, "ts"].date(), tx.loc[40, "ts"])
    tx = pd.concat([tx, rep], ignore_index=True)
    store = Store(":memory:")
    store.append("customers", pa.Table.from_pandas(customers, preserve_index=False))
    store.append("transactions", pa.Table.from_pandas(tx, preserve_index=False))
    return store, customers, tx


def _check(report, name, table):
    frame = report.to_pandas()
    row = frame[(frame.check == name) & (frame.table == table)]
    assert len(row) == 1, (name, table)
    return row.iloc[0]


def test_outliers_match_robust_z(base):
    store, _, tx = base
    x = tx.amount[(tx.amount > 0) & ~tx.is_return].to_numpy()
    med = np.median(x)
    mad = np.median(np.abs(x - med))
    expected = int((np.abs(0.6745 * (x - med) / mad) > 3.5).sum())
    got = _check(audit(store, as_of=AS_OF), "amount_outliers", "transactions")
    assert got["count"] == expected and expected >= 3
    assert "amount=9000.0" in got.examples  # the largest first


def test_dates_gaps_integrity(base):
    store, customers, tx = base
    report = audit(store, as_of=AS_OF)
    cut = pd.Timestamp(AS_OF)
    assert _check(report, "future_dates", "transactions")["count"] == int((tx.ts >= cut).sum()) == 3
    days = pd.Series(sorted(tx.ts[tx.ts < cut].dt.normalize().unique()))
    span = (days.iloc[-1] - days.iloc[0]).days + 1
    gaps = _check(report, "history_gaps", "transactions")
    assert gaps["count"] == span - len(days) and gaps["total"] == span
    assert gaps.severity == "warning"  # the 11-day hole
    assert gaps.examples.startswith(f"{int((days.diff().dt.days - 1).max())} days")
    known = set(customers.customer_id)
    orphans = tx.customer_id.notna() & ~tx.customer_id.isin(known)
    assert _check(report, "unknown_customers", "transactions")["count"] == int(orphans.sum()) > 0
    assert _check(report, "anonymous_transactions", "transactions")["count"] == 1


def test_completeness_repeats_consistency_stale(base):
    store, customers, tx = base
    report = audit(store, as_of=AS_OF)
    assert _check(report, "completeness:email", "customers")["count"] == int(customers.email.isna().sum())
    assert _check(report, "completeness:gender", "customers").severity == "warning"  # 25% > 20%
    assert _check(report, "not_provided:phone", "customers")["count"] == len(customers)
    g = tx.dropna(subset=["customer_id"]).groupby(
        [tx.customer_id, tx.ts.dt.date, tx.amount]).size()
    assert _check(report, "same_day_repeats", "transactions")["count"] == int((g - 1).clip(lower=0).sum()) >= 1
    off = (tx.amount - tx.quantity * tx.unit_price).abs() > 0.01 + 0.005 * tx.amount.abs()
    assert _check(report, "spend_consistency", "transactions")["count"] == int(off.sum()) == 1
    end = tx.ts[tx.ts < pd.Timestamp(AS_OF)].max().normalize()  # the data's end, not AS_OF
    assert report.data_end == end.date() < AS_OF
    cut = end + pd.Timedelta(days=1)
    since = cut - pd.Timedelta(days=365)
    active = set(tx.customer_id[(tx.ts >= since) & (tx.ts < cut)].dropna())
    old = customers[customers.created_at < since]
    stale = (~old.customer_id.isin(active)).sum()
    assert _check(report, "stale_customers", "customers")["count"] == int(stale)


def test_report_contract(base):
    store, _, _ = base
    report = audit(store, as_of=AS_OF)
    d = report.to_dict()
    assert d["count"] == len(d["data"]) == len(report.to_pandas())
    assert 0 <= report.score <= 100
    assert {c["severity"] for c in d["data"]} <= {"ok", "info", "warning", "error"}
    assert report.figure().data
    assert "AuditReport(score=" in repr(report)
    assert audit(Store(":memory:"), as_of=AS_OF).score == 0.0  # empty base


def test_flags_from_ingest_are_reported(tmp_path):
    import warnings

    from segflow.config import Settings
    from segflow.sources import ingest

    (tmp_path / "c.csv").write_text('customer_id,gender,city\nA,M,"=cmd|x"\nB,Q,Paris\nC,F,Rome\n')
    (tmp_path / "segflow.toml").write_text(
        '[[sources]]\nname = "crm"\ntable = "customers"\npath = "c.csv"\n'
        '[sources.value_maps.gender]\nM = "male"\nF = "female"\n')
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest(store, Settings.load(tmp_path), tmp_path)
    frame = audit(store, as_of=AS_OF).to_pandas().set_index("check")
    assert frame.loc["flagged:formula_in_text", "count"] == 1
    assert "row_number=1, column_name=city" in frame.loc["flagged:formula_in_text", "examples"]
    assert frame.loc["flagged:invalid_value", "count"] == 1
    assert "value=Q" in frame.loc["flagged:invalid_value", "examples"]
    assert frame.loc["flagged:invalid_value", "total"] == 3


def _historic_base() -> tuple[Store, pd.DataFrame, pd.DataFrame]:
    """An export of 2010-12-01 .. 2011-12-09 (like the Online Retail data), audited years later."""
    rng = np.random.default_rng(3)
    n_cust, n_tx = 80, 1500
    customers = pd.DataFrame({
        "customer_id": [f"K{i:03d}" for i in range(n_cust)],
        "created_at": pd.Timestamp("2009-06-01") + pd.to_timedelta(rng.integers(0, 700, n_cust), "D"),
    })
    customers.loc[0, "created_at"] = pd.Timestamp("1900-01-01")  # a default date
    ts = pd.Series(pd.Timestamp("2010-12-01 08:00")
                   + pd.to_timedelta(rng.integers(0, 373 * 86_400, n_tx), "s"))
    ts[0] = pd.Timestamp("2011-12-09 12:50")  # the data's end
    tx = pd.DataFrame({
        "transaction_id": [f"T{i:05d}" for i in range(n_tx)],
        "customer_id": [f"K{int(c):03d}" for c in rng.integers(0, n_cust, n_tx)],
        "ts": ts, "amount": np.round(rng.lognormal(3, 0.4, n_tx), 2), "is_return": False,
    })
    # a third of the customers bought only in the first week (December 2010)
    quiet = tx.customer_id.isin([f"K{i:03d}" for i in range(1, n_cust, 3)])
    tx = tx[~quiet | (tx.ts < pd.Timestamp("2010-12-08"))].reset_index(drop=True)
    store = Store(":memory:")
    store.append("customers", pa.Table.from_pandas(customers, preserve_index=False))
    store.append("transactions", pa.Table.from_pandas(tx, preserve_index=False))
    return store, customers, tx


@pytest.mark.parametrize("as_of", [dt.date(2026, 11, 30), None])
def test_stale_and_old_dates_are_relative_to_the_data_end(as_of):
    store, customers, tx = _historic_base()
    report = audit(store, as_of=as_of)
    assert report.data_end == dt.date(2011, 12, 9) and report.to_dict()["data_end"] == "2011-12-09"
    # independent count: customers created before the 365 days up to 2011-12-09 and inactive in them
    cut = pd.Timestamp("2011-12-10")
    since = cut - pd.Timedelta(days=365)
    active = set(tx.customer_id[(tx.ts >= since) & (tx.ts < cut)])
    old_enough = customers[customers.created_at < since]
    want = int((~old_enough.customer_id.isin(active)).sum())
    stale = _check(report, "stale_customers", "customers")
    assert stale["count"] == want
    assert 0 < want < len(customers) // 2  # relative to today every customer would be stale
    assert "up to the data's end 2011-12-09" in stale.advice
    # old dates: only the 1900 default is more than 20 years before 2011-12 (not 2009-2010 rows)
    old = _check(report, "old_dates", "customers")
    assert old["count"] == int((customers.created_at < pd.Timestamp("1991-12-01")).sum()) == 1
    assert _check(report, "old_dates", "transactions")["count"] == 0
    assert "data's end 2011-12-09" in old.advice


def test_counts_of_an_empty_table_are_zero_whatever_the_engine_answers() -> None:
    """A filtered count over no rows is 0 on DuckDB but NULL on Spark (NaN once in pandas):
    the audit's table statistics read both as 0 (a Spark audit of an empty table raised
    "cannot convert float NaN to integer")."""
    import datetime as dt

    import ibis
    import numpy as np

    from segflow.quality._audit import _count, _table_stats
    from segflow.store import CANONICAL_TABLES

    assert [_count(v) for v in (None, float("nan"), np.int64(7), 3.0)] == [0, 0, 7, 3]
    con = ibis.duckdb.connect()
    schema = ibis.schema(dict(CANONICAL_TABLES["events"]))
    empty = con.create_table("events", schema=schema)
    stats = _table_stats("events", empty, dt.datetime(2024, 1, 1))
    assert stats["n"] == 0 and stats["future"] == 0
    assert set(stats["filled"].values()) == {0}


def test_outlier_examples_break_ties_by_transaction_id():
    """Eight outliers of the same amount among 40 ordinary sales, stored in descending id
    order: the examples are the largest amounts (the 9,000) and, among equal amounts, the
    smallest ids, T00-T04 here, on every engine (the engines' order of ties differs: the
    Spark audit showed other rows of a tie than DuckDB's)."""
    n = 48
    amount = [9000.0] * 8 + [20.0 + (i % 7) for i in range(n - 8)]
    tx = pd.DataFrame({
        "transaction_id": [f"T{i:02d}" for i in range(n)], "customer_id": "C1",
        "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(range(n), "h"), "amount": amount,
        "is_return": False,
    }).iloc[::-1]
    store = Store(":memory:")
    store.append("transactions", pa.Table.from_pandas(tx, preserve_index=False))
    got = _check(audit(store, as_of=AS_OF), "amount_outliers", "transactions")
    assert got["count"] == 8
    assert got.examples == "; ".join(f"transaction_id=T{i:02d}, amount=9000.0" for i in range(5))


def test_attribute_history_is_not_missing_data():
    """An empty valid_to is the current version and an empty valid_from a version valid
    from created_at: neither is counted as missing. What is counted: rows, named as versions,
    and undated versions of a customer with more than one (ambiguous)."""
    ts = pd.Timestamp
    customers = pd.DataFrame({
        "customer_id": ["A", "A", "B", "B", "B", "C", "D", "D"],
        "created_at": [ts("2023-01-01")] * 8,
        "region": ["London", "Paris", "Leeds", None, "York", "Rome", "Oslo", "Bergen"],
        # A, B: dated history; C: one undated version; D: two undated versions (ambiguous)
        "valid_from": [None, ts("2024-03-10"), None, ts("2023-06-01"), ts("2024-01-01"), None,
                       None, None],
        "valid_to": [ts("2024-03-10"), None, ts("2023-06-01"), ts("2024-01-01"), None, None,
                     None, None],
    })
    store = Store(":memory:")
    store.append("customers", pa.Table.from_pandas(customers, preserve_index=False))
    frame = audit(store, as_of=AS_OF).to_pandas()
    checks = set(frame.check)
    assert "completeness:valid_to" not in checks and "not_provided:valid_to" not in checks
    # independent: undated rows of customers with more than one undated row
    undated = customers[customers.valid_from.isna()].groupby("customer_id").size()
    assert undated[undated > 1].sum() == 2  # D's two rows
    row = _check_audit(frame, "completeness:valid_from")
    assert (row["count"], row.severity) == (2, "warning")
    assert row.advice.startswith("2 customer rows (attribute versions) of 1 customers have no "
                                 "valid_from while another version")
    region = _check_audit(frame, "completeness:region")
    assert region["count"] == int(customers.region.isna().sum()) == 1
    assert region.advice == ("12.5% of customer rows (attribute versions) have no region; "
                             "segments using it will miss them")
    # one undated version per customer (the first) is no finding
    store = Store(":memory:")
    store.append("customers", pa.Table.from_pandas(customers[customers.customer_id != "D"],
                                                   preserve_index=False))
    frame = audit(store, as_of=AS_OF).to_pandas()
    assert not frame.check.str.contains("valid_").any()


def _check_audit(frame, name):
    row = frame[(frame.check == name) & (frame.table == "customers")]
    assert len(row) == 1, name
    return row.iloc[0]
