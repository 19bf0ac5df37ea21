"""Excel-safe text (docs/data.md, *Excel-safe text*): a cell written ``="00123"`` (how
exports keep leading zeros for Excel) is read as ``00123`` in every mapped text column (ids,
numbers and dates read from text), noted in ``ingest_flags`` as ``excel_text`` and in the
audit; other formula-looking text is kept as written and flagged ``formula_in_text``."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

from sources_project import NOW
from sources_project import orders_project as _project
from sources_project import stored_rows as _stored

from segflow.config import Settings
from segflow.quality import audit
from segflow.quality._audit import check_title
from segflow.sources import ingest
from segflow.store import Store

#: Row 1: every column Excel-safe; row 2: padded inside and outside the quotes; rows 3 and 9:
#: formulas that are not one quoted text (kept); row 4: a doubled quote inside the text
#: (Excel's escape: a"b); row 5: ="" (empty: anonymous); row 6: a rounded id inside the
#: quotes (still invalid_id, its raw row as written); row 7: a missing-value token inside
#: the quotes (missing: anonymous); row 8: spaces after '=' (Excel reads = "0089" as 0089).
#: The header's names are Excel-safe text too.
ORDERS = (b'="order_id",= "customer",date,amount\n'
          b'="T1",="00123",="2024-01-02",="3.50"\n'
          b'T2, =" 007 " ,2024-01-03,4.50\n'
          b'T3,="0"&B2,2024-01-03,1\n'
          b'T4,"=""a""""b""",2024-01-03,1\n'
          b'T5,="",2024-01-03,1\n'
          b'T6,="1.23E+11",2024-01-03,1\n'
          b'T7,="NA",2024-01-03,1\n'
          b'T8,=  "0089",2024-01-03,1\n'
          b'T9,"=""a""b""",2024-01-03,1\n')


def test_excel_safe_text_is_read_as_the_text_between_its_quotes(tmp_path: Path) -> None:
    root = _project(tmp_path, {"orders.csv": ORDERS})
    store = Store(":memory:")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        report = ingest(store, Settings.load(root), root, now=NOW)
    assert _stored(store, "SELECT transaction_id, customer_id, ts, amount FROM transactions "
                          "ORDER BY 1") == [
        ("T1", "00123", dt.datetime(2024, 1, 2), 3.5), ("T2", "007", dt.datetime(2024, 1, 3), 4.5),
        ("T3", '="0"&B2', dt.datetime(2024, 1, 3), 1.0),
        ("T4", 'a"b', dt.datetime(2024, 1, 3), 1.0), ("T5", None, dt.datetime(2024, 1, 3), 1.0),
        ("T7", None, dt.datetime(2024, 1, 3), 1.0), ("T8", "0089", dt.datetime(2024, 1, 3), 1.0),
        ("T9", '="a"b"', dt.datetime(2024, 1, 3), 1.0)]
    assert _stored(store, "SELECT row_number, rule, column_name, value FROM ingest_flags "
                          "WHERE rule <> 'anonymous' ORDER BY 1, 3") == [
        (1, "excel_text", "amount", "3.50"), (1, "excel_text", "customer", "00123"),
        (1, "excel_text", "date", "2024-01-02"), (1, "excel_text", "order_id", "T1"),
        (2, "excel_text", "customer", "007"),
        (3, "formula_in_text", "customer", '="0"&B2'), (4, "excel_text", "customer", 'a"b'),
        (5, "excel_text", "customer", ""), (7, "excel_text", "customer", "NA"),
        (8, "excel_text", "customer", "0089"), (9, "formula_in_text", "customer", '="a"b"')]
    # rows_flagged counts rows (row 1's four values are one row), values_flagged the values
    assert report.to_pandas().loc[0, ["rows_read", "rows_accepted", "rows_quarantined",
                                      "rows_anonymous", "rows_flagged", "values_flagged"]
                                  ].tolist() == [9, 8, 1, 2, 8, 11]
    assert report.totals()["rows_flagged"] == 8 and report.totals()["values_flagged"] == 11
    said = [w for w in report.warnings if "Excel-safe" in w]  # row 1: one of its 4 columns
    assert len(said) == 1 and said[0].startswith("file orders.csv, row 1, column '")
    assert said[0].endswith(": Excel-safe text (=\"...\", written to keep leading zeros) read "
                            "as the text between its quotes (9 such values)")
    (rule, reason, raw), = _stored(store, "SELECT rule, reason, raw_row FROM quarantine")
    assert rule == "invalid_id" and reason.startswith("identifier '1.23E+11' is in scientific")
    assert '"customer":"=\\"1.23E+11\\""' in raw  # the row as written
    checks = audit(store, as_of=NOW.date()).to_pandas().set_index("check")
    assert checks.loc["flagged:excel_text", "count"] == 9
    assert "00123" in checks.loc["flagged:excel_text", "examples"]
    assert check_title("flagged:excel_text").startswith(
        "Kept but flagged: a cell written as Excel-safe text")


def test_the_exclude_rule_reads_excel_safe_text(tmp_path: Path) -> None:
    """The ``exclude`` rule tests a row's values as written (its column need not be mapped):
    ``="POST"`` was no ``POST``, so an Excel-safe export's postage line was stored as a
    purchase. It reads the text inside as every other rule does."""
    data = (b"order_id,customer,date,amount,code\n"
            b'T1,C1,2024-01-02,3.5,POST\nT2,C1,2024-01-02,4.5,="POST"\nT3,C1,2024-01-02,5.5, =" POST " \n'
            b'T4,C1,2024-01-02,6.5,="ITEM"\nT5,C1,2024-01-02,7.5,="AMAZONFEE 3"\n')
    root = _project(tmp_path, {"orders.csv": data}, extra='exclude = { code = ["POST", "AMAZONFEE%"] }')
    store = Store(":memory:")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        ingest(store, Settings.load(root), root, now=NOW)
    assert _stored(store, "SELECT transaction_id FROM transactions") == [("T4",)]
    assert _stored(store, "SELECT row_number, rule FROM quarantine ORDER BY 1") == [
        (1, "excluded_line"), (2, "excluded_line"), (3, "excluded_line"), (5, "excluded_line")]
