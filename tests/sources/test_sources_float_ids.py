"""Float ids (Parquet): whole numbers below 2^53 are ids; anything a double cannot hold
exactly, or that is not a whole number, is quarantined as ``invalid_id`` with its reason."""

from __future__ import annotations

import json
import warnings

import pyarrow as pa
import pyarrow.parquet as pq
from sources_project import NOW

from segflow.config import Settings
from segflow.sources import ingest
from segflow.store import Store

TOML = """
[[sources]]
name = "crm"
table = "customers"
path = "customers.parquet"
[sources.columns]
customer_id = "id"
"""

#: id as the double the file holds -> the canonical id, or None (quarantined)
CASES = [
    (1.0, "1"),
    (-7.0, "-7"),
    (2.0**53 - 1, "9007199254740991"),  # the largest id below 2^53: exact
    (2.0**53, None),  # also what 2^53 + 1 becomes in a double: ambiguous
    (1e20, None),
    (2.5, None),
    (float("nan"), None),
    (float("inf"), None),
]


def test_float_ids_below_2_53_are_ids_and_the_rest_is_quarantined(tmp_path):
    (tmp_path / "segflow.toml").write_text(TOML)
    ids = [v for v, _ in CASES]
    pq.write_table(pa.table({"id": pa.array(ids, pa.float64()), "n": list(range(1, len(ids) + 1))}),
                   tmp_path / "customers.parquet")
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest(store, Settings.load(tmp_path), tmp_path, now=NOW)
    accepted = store.sql("SELECT source_row, customer_id FROM customers ORDER BY 1").to_pandas()
    want = [(row, out) for row, (_, out) in enumerate(CASES, start=1) if out is not None]
    assert list(accepted.itertuples(index=False, name=None)) == want
    quarantined = store.sql("SELECT row_number, rule, column_name, reason FROM quarantine "
                            "ORDER BY 1").to_pandas()
    assert list(quarantined.row_number) == [r for r, (_, out) in enumerate(CASES, 1) if out is None]
    assert set(quarantined.rule) == {"invalid_id"}
    assert set(quarantined.column_name) == {"id"}
    assert all("a float id must be a whole number below 2^53" in r for r in quarantined.reason)
    # 2^53 + 1 written as a double is 2^53: refused, not taken for the id 9007199254740992
    assert 2.0**53 + 1 == 2.0**53


XLSX_TOML = """
[[sources]]
name = "orders"
table = "transactions"
path = "orders.xlsx"
[sources.columns]
transaction_id = "order_id"
customer_id = "customer"
ts = "date"
amount = "amount"
"""

#: (order_id cell, customer cell): a Python int or float is written as an Excel number cell,
#: a str as a text cell
XLSX_CELLS = [
    ("T1", 12345678901234567890),  # a number cell holds a double: 1.2345678901234567e+19
    ("T2", 9007199254740993),  # 2^53 + 1 as a double is 2^53
    ("T3", 2**63 + 5),
    ("T4", 123.0),
    ("T5", 1.5),
    ("T6", -7),
    ("T7", 2**53 - 1),
    ("T8", "00123"),  # text cells keep their characters
    ("T9", "12345678901234567890"),
    ("T10", "1.5"),
    ("T11", " 42 "),
    (55.0, "C1"),  # number cells in the transaction id column follow the same rule
    (2.5, "C2"),
    (2.0**60, "C3"),
    ("T15", None),  # an empty cell: anonymous
]


def _excel_id(cell: object) -> str | None:
    """The id the docs promise for a cell (independent of segflow): a text cell trimmed; a
    number cell, a double, kept only as a whole number below 2^53; None: quarantined."""
    if isinstance(cell, str):
        return cell.strip()
    value = float(cell)
    return str(int(value)) if value.is_integer() and abs(value) < 2.0**53 else None


def test_excel_number_cells_follow_the_float_id_rule_and_text_cells_stay_exact(tmp_path):
    import openpyxl

    (tmp_path / "segflow.toml").write_text(XLSX_TOML)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["order_id", "customer", "date", "amount"])
    for order, customer in XLSX_CELLS:
        ws.append([order, customer, "2024-01-05 10:00:00", 10.5])
    wb.save(tmp_path / "orders.xlsx")
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = ingest(store, Settings.load(tmp_path), tmp_path, now=NOW).to_pandas()

    want_ok, want_bad = [], []
    for row, (order, customer) in enumerate(XLSX_CELLS, start=1):
        oid = _excel_id(order)
        cid = None if customer is None else _excel_id(customer)
        if oid is None:
            want_bad.append((row, "invalid_id", "order_id"))
        elif customer is not None and cid is None:
            want_bad.append((row, "invalid_id", "customer"))
        else:
            want_ok.append((row, oid, cid))
    accepted = store.sql("SELECT source_row, transaction_id, customer_id FROM transactions "
                         "ORDER BY 1").to_pandas()
    assert [(r, t, None if c is None or c != c else c)
            for r, t, c in accepted.itertuples(index=False, name=None)] == want_ok
    assert want_ok[:4] == [(4, "T4", "123"), (6, "T6", "-7"), (7, "T7", "9007199254740991"),
                           (8, "T8", "00123")]
    quarantined = store.sql("SELECT row_number, rule, column_name, reason FROM quarantine "
                            "ORDER BY 1").to_pandas()
    assert [(r, u, c) for r, u, c, _ in quarantined.itertuples(index=False, name=None)] == want_bad
    assert [r for r, _, _ in want_bad] == [1, 2, 3, 5, 13, 14]
    assert all("a float id must be a whole number below 2^53" in r for r in quarantined.reason)
    raws = store.sql("SELECT raw_row FROM quarantine ORDER BY row_number").to_pandas().raw_row
    assert [list(json.loads(r)) for r in raws] == [["order_id", "customer", "date", "amount"]] * 6
    # every row of the sheet is accepted or quarantined
    assert report.rows_read.tolist() == [len(XLSX_CELLS)]
    assert report.rows_accepted.tolist() == [len(want_ok)]
    assert report.rows_quarantined.tolist() == [len(want_bad)]
    assert len(want_ok) + len(want_bad) == len(XLSX_CELLS)
    amounts = store.sql("SELECT DISTINCT amount FROM transactions").to_pandas().amount.tolist()
    assert amounts == [10.5]


CODES_TOML = TOML + 'region = "region"\nage_band = "band"\n'


def test_float_codes_are_their_digits_and_nan_is_missing(tmp_path):
    """A code column of floats (Parquet from pandas, polars or Spark): a whole number is stored
    as its digits, a fraction as its text, and NaN, the missing value of a float column, as
    NULL: not the code ``'nan'``, which a rule or a segment would take for a region."""
    (tmp_path / "segflow.toml").write_text(CODES_TOML)
    regions = [5.0, float("nan"), 2.5, None, -3.0, 1e20]
    pq.write_table(pa.table({"id": [f"C{i}" for i in range(1, 7)],
                             "region": pa.array(regions, pa.float64()),
                             "band": pa.array([1, 2, None, 4, 5, 6], pa.float32())}),
                   tmp_path / "customers.parquet")
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest(store, Settings.load(tmp_path), tmp_path, now=NOW)
    rows = store.sql("SELECT customer_id, region, age_band FROM customers ORDER BY source_row")
    assert [tuple(r.values()) for r in rows.to_pylist()] == [
        ("C1", "5", "1"), ("C2", None, "2"), ("C3", "2.5", None), ("C4", None, "4"),
        ("C5", "-3", "5"), ("C6", "1e+20", "6")]
    assert store.sql("SELECT count(*) AS n FROM quarantine").column("n")[0].as_py() == 0
