"""Ids (and text) are trimmed of ASCII control characters and spaces at both ends, in every
file, so ``A``, tab ``A``, ``A`` newline and `` A `` are one customer, in customers and in
transactions alike; characters inside an id are kept."""

from __future__ import annotations

import csv
import io
import warnings

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from sources_project import NOW

from segflow.config import Settings
from segflow.sources import ingest, resolve_identities
from segflow.sources._ids import id_value, trim_text
from segflow.store import Store

#: what docs/data.md says is trimmed: U+0000-U+0020 and the Unicode space separators
_ENDS = "".join(map(chr, range(0x21))) + "\u00a0\u1680" + "".join(
    map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"


def _reference(value: str) -> str | None:
    """The trimmed text, computed in Python (independent of the SQL)."""
    return value.strip(_ENDS) or None


VALUES = ["A", "\tA", "A\t", " A ", "A\n", "\r\nA", "\x0bA\x0c", "A\x00", "\x00\x1fA\x1e ",
          "A\tB", "A\x00B", "\t", "\x00", " \t\r\n", "\u3000\tA\u00a0", "\t\u2003A", "A\x7f",
          "\u00e9\t", "\t\u00e9t\u00e9\n", "A\r\n", "", "!", "~"]


@pytest.mark.parametrize("sql", [trim_text, lambda c: id_value(c, "VARCHAR")],
                         ids=["trim_text", "id_value"])
def test_trim_matches_the_documented_characters(sql):
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(VALUES)))
    got = [r[0] for r in con.execute(f"SELECT {sql('v')} FROM t ORDER BY i").fetchall()]
    assert got == [_reference(v) for v in VALUES]
    assert got[:9] == ["A"] * 9 and got[9:11] == ["A\tB", "A\x00B"] and got[16] == "A\x7f"


TOML = """
[[sources]]
name = "crm"
table = "customers"
path = "customers.csv"
[sources.columns]
customer_id = "id"
email = "email"

[[sources]]
name = "shop"
table = "transactions"
path = "orders.csv"
[sources.columns]
transaction_id = "order_id"
customer_id = "customer"
ts = "date"
amount = "amount"
"""

#: customers.csv: one line a record (DuckDB's fast reader)
CUSTOMERS = ["A", " \tC\x0b", "D\tE", "B", "\x0c"]
#: orders.csv: quoted line breaks and a NUL byte after the first 8 KiB (the careful reader)
ORDERS = ["A", "\tA", "A\t", " A ", "A\n", "\r\nA", "\x0bA\x0c", "C", "D\tE", "NA\t", "\t",
          *["B"] * 400, "A\x00"]


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def test_ids_differing_only_by_white_space_or_controls_are_one_id(tmp_path):
    (tmp_path / "segflow.toml").write_text(TOML)
    (tmp_path / "customers.csv").write_text(
        _csv(["id", "email"], [[c, f"c{i}@x.org"] for i, c in enumerate(CUSTOMERS)]), newline="")
    orders = _csv(["order_id", "customer", "date", "amount"],
                  [[f"T{i}", c, "2024-01-05", "10"] for i, c in enumerate(ORDERS, start=1)])
    assert orders.index("\x00") > 8192 and "\n\n" not in orders
    (tmp_path / "orders.csv").write_text(orders, newline="")
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = ingest(store, Settings.load(tmp_path), tmp_path, now=NOW).to_pandas()

    # customers: ids trimmed; a control-only id is missing (quarantined with the reason)
    got = store.sql("SELECT source_row, customer_id FROM customers ORDER BY 1").to_pandas()
    want = [(i, _reference(c)) for i, c in enumerate(CUSTOMERS, start=1) if _reference(c)]
    assert list(got.itertuples(index=False, name=None)) == want
    assert [c for _, c in want] == ["A", "C", "D\tE", "B"]
    bad = store.sql("SELECT source, row_number, rule, column_name, reason FROM quarantine "
                    "ORDER BY 1, 2").to_pandas()
    assert list(bad.itertuples(index=False, name=None)) == [
        ("crm", 5, "missing_customer_id", "id",
         "customer_id is empty or a missing-value token of null_values, such as NA "
         "(source column id)")]

    # transactions: the same ids, so every one joins the customers table (no unknown_customer);
    # 'NA' + tab is the missing-value token NA, a tab alone is empty: both anonymous
    # (source_row is the physical line: the quoted line breaks shift it)
    got = store.sql("SELECT transaction_id, customer_id FROM transactions "
                    "ORDER BY source_row").to_pandas()
    token = {"NA"}
    want = [(f"T{i}", None if _reference(c) in token else _reference(c))
            for i, c in enumerate(ORDERS, start=1)]
    assert [(t, None if c is None or c != c else c)
            for t, c in got.itertuples(index=False, name=None)] == want
    ids = store.sql("SELECT customer_id, count(*) AS n FROM transactions GROUP BY 1").to_pandas()
    counts = {(None if c is None or c != c else c): n for c, n in ids.itertuples(index=False)}
    assert counts == {"A": 8, "C": 1, "D\tE": 1, "B": 400, None: 2}

    # every row of each file is accepted or quarantined
    rows = dict(zip(report.source, zip(report.rows_read, report.rows_accepted,
                                       report.rows_quarantined, strict=True), strict=True))
    assert rows == {"crm": (len(CUSTOMERS), 4, 1), "shop": (len(ORDERS), len(ORDERS), 0)}


def test_id_map_ids_are_trimmed_like_stored_ids():
    store = Store(":memory:")
    store.append("customers", pa.table({"customer_id": ["A", "B"], "source": ["crm", "crm"]}))
    report = resolve_identities(store, id_map=pd.DataFrame(
        {"customer_id": ["\tB\x00", " \t"], "other_id": ["A\r\n", "A"]}))
    assert list(report.to_pandas().itertuples(index=False, name=None)) == [("B", "A")]
    assert report.by_rule == {"id_map": 1}
