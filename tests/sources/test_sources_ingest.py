"""Ingest of real-world shaped fixtures: every row accounted for, values checked by hand."""

from __future__ import annotations

import csv
import io
import warnings

import pandas as pd
import pytest
from sources_project import FIXTURES, NOW

from segflow.config import Settings
from segflow.sources import ingest
from segflow.store import Store


def _ingest(project, store=None):
    store = store or Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = ingest(store, Settings.load(project), project, now=NOW)
    return store, report


def _quarantine(store, source):
    return store.sql(
        "SELECT row_number, rule, column_name FROM quarantine WHERE source = ? ORDER BY row_number",
        [source],
    ).to_pandas()


def test_reconciliation_counts_per_file(project):
    store, report = _ingest(project)
    frame = report.to_pandas().set_index("source")
    assert report.reconciles
    # customers.csv: 8 rows: 5 accepted, 2 quarantined (no id, month 13), 1 exact duplicate
    assert frame.loc["crm", ["rows_read", "rows_accepted", "rows_quarantined", "rows_duplicate"]].tolist() == [8, 5, 2, 1]
    # order lines: 14 lines, 5 accepted lines (4 orders), 8 quarantined, 1 duplicate line
    assert frame.loc["shop", ["rows_read", "rows_accepted", "rows_quarantined", "rows_duplicate"]].tolist() == [14, 5, 8, 1]
    assert frame.loc["shop", "rows_anonymous"] == 1
    assert frame.loc["web", ["rows_read", "rows_accepted", "rows_quarantined", "rows_duplicate"]].tolist() == [5, 3, 2, 0]
    # the loads table holds the same numbers, and they add up exactly
    loads = store.sql("SELECT * FROM loads").to_pandas()
    assert (loads.rows_read == loads.rows_accepted + loads.rows_quarantined + loads.rows_duplicate).all()
    assert loads.rows_read.sum() == 27
    # quarantine rows per load equal rows_quarantined
    per_load = store.sql("SELECT load_id, count(*) AS n FROM quarantine GROUP BY 1").to_pandas()
    merged = loads.merge(per_load, on="load_id")
    assert (merged.n == merged.rows_quarantined).all()


def test_each_rejected_row_has_the_right_rule(project):
    store, _ = _ingest(project)
    shop = _quarantine(store, "shop")
    assert dict(zip(shop.row_number, shop.rule, strict=True)) == {
        3: "excluded_line",  # POST line
        8: "non_numeric_amount",  # quantity 'abc'
        9: "unparseable_date",  # 31.02.2023
        10: "unknown_customer",  # C999
        11: "zero_amount",
        12: "future_date",  # 2099
        13: "non_numeric_amount",  # '4.25' in a decimal-comma file is not silently 425 or 4.25
        14: "malformed_row",  # a fifth ';' field
    }
    assert shop.set_index("row_number").loc[9, "column_name"] == "InvoiceDate"
    crm = _quarantine(store, "crm")
    assert dict(zip(crm.row_number, crm.rule, strict=True)) == {4: "missing_customer_id", 5: "unparseable_date"}
    web = _quarantine(store, "web")
    assert dict(zip(web.row_number, web.rule, strict=True)) == {3: "ambiguous_date", 5: "unparseable_date"}


def test_raw_row_is_kept_verbatim(project):
    store, _ = _ingest(project)
    raw = store.sql(
        "SELECT raw_row FROM quarantine WHERE source = 'shop' AND row_number = 8").column(0)[0].as_py()
    assert '"Quantity":"abc"' in raw and '"Country":"Café Land"' in raw  # Latin-1 decoded
    malformed = store.sql(
        "SELECT raw_row FROM quarantine WHERE rule = 'malformed_row'").column(0)[0].as_py()
    assert malformed.startswith("536375;22752;SET;1;7,65")


def test_orders_roll_up_and_returns_net(project):
    store, _ = _ingest(project)
    got = store.sql(
        "SELECT transaction_id, customer_id, ts, amount, quantity, is_return, source_row "
        "FROM transactions ORDER BY transaction_id").to_pandas()
    # independent computation from the raw file with the csv module and pandas
    text = (FIXTURES / "order_lines_latin1.csv").read_bytes().decode("latin-1")
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=";")]
    lines = pd.DataFrame(rows[1:14], columns=rows[0])
    keep = lines.iloc[[0, 1, 3, 5, 6]]  # rows 1, 2, 4, 6, 7 (row 5 duplicates row 4)
    keep = keep.assign(
        amount=keep.Quantity.astype(float) * keep.UnitPrice.str.replace(",", ".").astype(float),
        quantity=keep.Quantity.astype(float),
    )
    expected = keep.groupby("InvoiceNo").agg(amount=("amount", "sum"), quantity=("quantity", "sum"))
    assert got.transaction_id.tolist() == sorted(expected.index)
    assert got.amount.round(6).tolist() == expected.amount.round(6).tolist()
    assert got.quantity.tolist() == expected.quantity.tolist()
    by_id = got.set_index("transaction_id")
    assert by_id.loc["536365", "amount"] == pytest.approx(6 * 2.55 + 6 * 3.39)
    assert by_id.loc["C536368", "is_return"] and by_id.loc["C536368", "amount"] == pytest.approx(-5.1)
    assert not by_id.loc["536365", "is_return"]
    assert pd.isna(by_id.loc["536367", "customer_id"])  # anonymous, kept for revenue
    assert str(by_id.loc["536366", "ts"]) == "2023-12-01 08:28:00"  # second date format
    assert str(by_id.loc["536365", "ts"]) == "2023-12-01 08:26:00"  # first date format
    assert by_id.loc["536366", "source_row"] == 4


def test_customers_mapping_value_maps_and_bom(project):
    store, report = _ingest(project)
    got = store.sql("SELECT customer_id, created_at, gender, email FROM customers ORDER BY 1").to_pandas()
    assert got.customer_id.tolist() == ["C001", "C002", "C003", "C005", "C006"]  # BOM stripped
    assert got.gender.tolist() == ["female", "male", "female", "other", "female"]
    assert str(got.created_at[0]) == "2023-01-05 00:00:00"
    assert got.email[4] == "ann@example.com"  # trimmed
    # the formula is kept as text and reported with file, row and column
    assert any("customers.csv, row 7, column 'region'" in w for w in report.warnings)


def test_mixed_day_month_formats(project):
    store, _ = _ingest(project)
    got = store.sql("SELECT customer_id, ts, event_type FROM events ORDER BY source_row").to_pandas()
    assert [str(t.date()) for t in got.ts] == ["2024-01-13", "2024-01-13", "2024-04-04"]


def test_date_order_resolves_ambiguity(project):
    toml = (project / "segflow.toml").read_text().replace(
        'date_formats = ["%d/%m/%Y", "%m/%d/%Y"]',
        'date_formats = ["%m/%d/%Y", "%d/%m/%Y"]\ndate_order = "dayfirst"')
    (project / "segflow.toml").write_text(toml)
    store, report = _ingest(project)
    got = store.sql("SELECT ts FROM events WHERE source_row = 3").column(0)[0].as_py()
    assert str(got.date()) == "2024-04-03"  # 03/04/2024 read day first, though listed second
    assert report.to_pandas().set_index("source").loc["web", "rows_quarantined"] == 1


def test_rerun_adds_nothing(project):
    store, _ = _ingest(project)
    before = {t: store.sql(f"SELECT count(*) FROM {t}").column(0)[0].as_py()
              for t in ("customers", "transactions", "events", "quarantine")}
    _, report = _ingest(project, store)
    assert set(report.to_pandas().status) == {"unchanged"}
    after = {t: store.sql(f"SELECT count(*) FROM {t}").column(0)[0].as_py() for t in before}
    assert before == after


def test_appended_month_adds_only_new_rows_and_corrections_replace(project):
    store, _ = _ingest(project)
    path = project / "order_lines_latin1.csv"
    text = path.read_bytes().decode("latin-1")
    text = text.replace("536366;22633;HAND WARMER UNION JACK;6;1,85;2023-12-01 08:28;C002",
                        "536366;22633;HAND WARMER UNION JACK;6;1,95;2023-12-01 08:28;C002")
    text += "536400;22633;HAND WARMER;2;1,85;02.01.2024 10:00;C003;France\n"
    path.write_bytes(text.encode("latin-1"))
    _, report = _ingest(project, store)
    shop = report.to_pandas().set_index("source").loc["shop"]
    assert shop.rows_read == 15
    # the corrected order 536366 (its second line is an exact duplicate) and the new order
    assert shop.rows_accepted == 2
    assert shop.rows_replaced == 1
    # everything else was loaded or quarantined before: counted as duplicates, not re-stored
    assert shop.rows_quarantined == 0 and shop.rows_duplicate == 13
    assert shop.rows_read == shop.rows_accepted + shop.rows_quarantined + shop.rows_duplicate
    tx = store.sql("SELECT transaction_id, amount FROM transactions ORDER BY 1").to_pandas()
    assert tx.transaction_id.tolist() == ["536365", "536366", "536367", "536400", "C536368"]
    assert tx.set_index("transaction_id").loc["536366", "amount"] == pytest.approx(6 * 1.95)
    # quarantined rows are not quarantined twice
    assert store.sql("SELECT count(*) FROM quarantine WHERE source = 'shop'").column(0)[0].as_py() == 8


def test_report_contract(project):
    import json

    _, report = _ingest(project)
    assert report.to_arrow().num_rows == 3
    payload = json.loads(report.to_json())
    assert payload["count"] == 3 and payload["totals"]["rows_read"] == 27 and payload["reconciles"]
    fig = report.figure()
    assert [t.name for t in fig.data] == ["accepted", "quarantined", "duplicate"]
    assert list(fig.data[0].y) == [5, 5, 3]
    assert repr(report) == "IngestReport(3 loads, read=27, accepted=13, quarantined=12, duplicate=2)"
