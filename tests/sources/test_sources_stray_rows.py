"""Hostile-user rows that are no data: a header repeated inside a file (exports concatenated
with their headers) and totals lines at the end of spreadsheet exports. Both were accepted
(a customer ``id`` with the e-mail ``email``; an anonymous order ``Total`` worth the file's
sum, or a best customer called ``Total``); both are quarantined, with a reason naming the
row and, for a totals line, the column, and the reconciliation still adds up to the rows
Python's csv module reads."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sources_project import ORDERS_HEADER as HEADER
from sources_project import ingest_quietly as _ingest
from sources_project import orders_project as _project
from sources_project import stored_rows as _stored

from segflow.store import Store


def _data_rows(data: bytes) -> int:
    """Data records of a CSV by Python's csv module (the header not counted)."""
    return len(list(csv.reader(io.StringIO(data.decode(), newline="")))) - 1


def _quarantine(store: Store) -> list[tuple]:
    return _stored(store, "SELECT row_number, rule, column_name, reason FROM quarantine "
                          "ORDER BY row_number")


def test_a_repeated_header_and_totals_lines_are_quarantined(tmp_path: Path) -> None:
    """Two exports concatenated (the header again at row 3), then the totals lines a
    spreadsheet adds: `Total` with a date (it was accepted as an anonymous order of 21),
    `grand total:` and a `Sum` in the customer column of a line. Only A1, A2 and A3 are
    orders; the file's sum stays 10 + 11 + 12."""
    data = (HEADER + b"A1,c1,2024-01-02,10\nA2,c2,2024-01-03,11\n" + HEADER
            + b"A3,c3,2024-01-04,12\nTotal,,2024-01-31,33\n grand total: ,,2024-01-31,33\n"
            b"A9,Sum,2024-01-31,33\n")
    root = _project(tmp_path, {"orders.csv": data})
    store = Store(":memory:")
    _ingest(root, store)
    assert _stored(store, "SELECT transaction_id, customer_id, amount, source_row FROM "
                          "transactions ORDER BY source_row") == [
        ("A1", "c1", 10.0, 1), ("A2", "c2", 11.0, 2), ("A3", "c3", 12.0, 4)]
    totals = ": a totals line, not data (set totals_labels = [] if it is a real value)"
    assert _quarantine(store) == [
        (3, "repeated_header", None,
         "the row repeats the header (files concatenated with their headers?)"),
        (5, "totals_row", "order_id", "'Total' in column order_id" + totals),
        (6, "totals_row", "order_id", "'grand total:' in column order_id" + totals),
        (7, "totals_row", "customer", "'Sum' in column customer" + totals)]
    read, accepted, quarantined = _stored(
        store, "SELECT rows_read, rows_accepted, rows_quarantined FROM loads")[0]
    assert read == _data_rows(data) == accepted + quarantined == 7


def test_customers_and_unmapped_first_column_and_opt_out(tmp_path: Path) -> None:
    """A customers file (only the id mapped, nothing else to fail) with its header again
    and a `Total` line; order lines without ids whose totals label is in the unmapped first
    column; and `totals_labels = []`, which keeps an order really numbered `Total`."""
    customers = b"id,email\nC1,a@x.com\nid,email\nC2,b@x.com\nTotal,\n"
    root = tmp_path / "c"
    root.mkdir()
    (root / "segflow.toml").write_text(
        '[[sources]]\nname = "crm"\ntable = "customers"\npath = "c.csv"\n'
        '[sources.columns]\ncustomer_id = "id"\n')
    (root / "c.csv").write_bytes(customers)
    store = Store(":memory:")
    _ingest(root, store)
    assert _stored(store, "SELECT customer_id, email FROM customers ORDER BY 1") == [
        ("C1", "a@x.com"), ("C2", "b@x.com")]
    assert [(r, rule, col) for r, rule, col, _ in _quarantine(store)] == [
        (2, "repeated_header", None), (4, "totals_row", "id")]

    lines = b"store,customer,date,amount\nS1,c1,2024-01-02,10\nS1,c2,2024-01-03,11\nTOTAL,,2024-01-31,21\n"
    root = _project(tmp_path / "l", {"orders.csv": lines})
    (root / "segflow.toml").write_text((root / "segflow.toml").read_text().replace(
        'transaction_id = "order_id"\n', ""))
    store = Store(":memory:")
    _ingest(root, store)
    assert _stored(store, "SELECT sum(amount), count(*) FROM transactions") == [(21.0, 2)]
    assert [(r, rule, col) for r, rule, col, _ in _quarantine(store)] == [
        (3, "totals_row", "store")]

    root = _project(tmp_path / "o", {"orders.csv": HEADER + b"Total,c1,2024-01-02,10\n"},
                    extra="totals_labels = []")
    store = Store(":memory:")
    _ingest(root, store)
    assert _stored(store, "SELECT transaction_id, amount FROM transactions") == [("Total", 10.0)]


def test_ids_in_scientific_notation_are_quarantined_and_leading_zeros_kept(tmp_path: Path) -> None:
    """A spreadsheet showing a 12-digit id as `1.23E+11` (`1,23E+11` in a decimal-comma
    locale) has rounded it: two different orders became one id (the second was a
    `conflicting_id` of the first, or a duplicate). Such ids are `invalid_id` with the
    reason; `00123` and `123` stay two ids, and `12E+05` (not Excel's form: two digits
    before the exponent) and `1.5E-3` are kept as the text they are."""
    data = (b"order_id;customer;date;amount\n1.23E+11;00123;2024-01-02;10\n"
            b"1.23E+11;123;2024-01-03;11\n4.56e+11;0042;2024-01-04;12\nA4; 1,23E+11 ;2024-01-05;1\n"
            b"A5;12E+05;2024-01-05;2\nA6;1.5E-3;2024-01-05;3\n")
    root = _project(tmp_path, {"orders.csv": data}, extra='options = { delimiter = ";" }')
    store = Store(":memory:")
    _ingest(root, store)
    assert _stored(store, "SELECT transaction_id, customer_id FROM transactions ORDER BY 1") == [
        ("A5", "12E+05"), ("A6", "1.5E-3")]
    lost = ("' is in scientific notation: a spreadsheet rounded it, so the id the source "
            "wrote is lost (format the column as text before exporting)")
    assert _quarantine(store) == [
        (1, "invalid_id", "order_id", "identifier '1.23E+11" + lost),
        (2, "invalid_id", "order_id", "identifier '1.23E+11" + lost),
        (3, "invalid_id", "order_id", "identifier '4.56e+11" + lost),
        (4, "invalid_id", "customer", "identifier '1,23E+11" + lost)]


def test_excels_separator_hint_line_is_refused_naming_it(tmp_path: Path) -> None:
    """`sep=;` above the header (Excel writes it into CSVs meant for a locale's separator)
    was taken for the header (`mapped column 'order_id' ... its columns are: sep=`); the
    error now names the line and what to do, and nothing is stored."""
    import pytest

    from segflow.errors import InputError

    data = b"\xef\xbb\xbfsep=;\r\norder_id;customer;date;amount\r\nA1;c1;2024-01-02;10\r\n"
    root = _project(tmp_path, {"orders.csv": data})
    store = Store(":memory:")
    with pytest.raises(InputError) as err:
        _ingest(root, store)
    assert str(err.value) == ("file orders.csv, header: line 1 is Excel's separator hint "
                              "'sep=;', not a header: delete that line (and set "
                              "options.delimiter = ';')")
    assert _stored(store, "SELECT count(*) FROM loads") == [(0,)]
