"""Hostile-user faults of the values: negative zeros (every zero stored as +0.0, none a
return) and ``%z`` date formats (``Z`` read as UTC; a value the formats miss but ISO 8601
reads says so in its quarantine reason)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

from sources_project import NOW
from sources_project import ORDERS_HEADER as HEADER
from sources_project import ingest_quietly as _ingest
from sources_project import orders_project as _project
from sources_project import stored_rows as _stored

from segflow.config import Settings
from segflow.sources import ingest
from segflow.store import Store


def test_every_zero_amount_is_stored_as_positive_zero(tmp_path: Path) -> None:
    """`-0.00` first, then `0` and `0.0` (and `-0,00` in a decimal-comma file): DuckDB's
    storage keeps a block's equal values together, so a -0.0 stored first came back as the
    sign of every zero after a checkpoint. Every zero is +0.0, and none is a return."""
    point = HEADER + b"A7,C7,2024-01-08,-0.00\nA8,C8,2024-01-09,0\nA9,C9,2024-01-10,0.0\n" \
        b"A10,C1,2024-01-11,-0e5\nA11,C1,2024-01-12,-2.5\n"
    comma = (b"order_id;customer;date;amount\nB1;C7;2024-01-08;-0,00\nB2;C8;2024-01-09;0\n"
             b"B3;C9;2024-01-10;+0,0\nB4;C1;2024-01-11;1.234,50\n")
    cases = [({"orders.csv": point}, ""),
             ({"orders.csv": comma}, 'options = { delimiter = ";", decimal = ",", thousands = "." }')]
    expected = [
        [("A10", 1.0, False), ("A11", -1.0, True), ("A7", 1.0, False), ("A8", 1.0, False),
         ("A9", 1.0, False)],
        [("B1", 1.0, False), ("B2", 1.0, False), ("B3", 1.0, False), ("B4", 1.0, False)]]
    for i, ((files, extra), want) in enumerate(zip(cases, expected, strict=True)):
        root = _project(tmp_path / str(i), files, extra=extra)
        with Store(root / "s.duckdb") as store:
            _ingest(root, store)
            store.raw.execute("CHECKPOINT")
        with Store(root / "s.duckdb", read_only=True) as store:
            got = store.raw.execute("SELECT transaction_id, amount, is_return FROM transactions "
                                    "ORDER BY transaction_id").fetchall()
        assert [(t, math.copysign(1.0, a), r) for t, a, r in got] == want
        assert [a for _, a, _ in got if a] in ([-2.5], [1234.5])


def test_percent_z_reads_zulu_and_an_iso_value_it_misses_says_so(tmp_path: Path) -> None:
    """`%z` takes `Z` (UTC) and `+02:00`, as Python's strptime; a value the formats do not
    read but ISO 8601 does is quarantined with the advice `date_formats = []`; one that is
    not ISO 8601 gets no such advice."""
    data = (HEADER + b"Z1,C1,2024-06-01T23:30:00Z,1\nZ2,C1,2024-06-01T23:30:00+02:00,1\n"
            b"Z3,C1,2024-06-01T23:30:00z,1\nZ4,C1,2024-06-01T23:30:00.5Z,1\n"
            b"Z5,C1,2024-06-01T23:30:00 UTC,1\nZ6,C1,01.06.2024,1\n")
    extra = 'date_formats = ["%Y-%m-%dT%H:%M:%S%z"]\nmax_date = 2025-01-01'
    root = _project(tmp_path, {"orders.csv": data}, extra=extra)
    store = Store(":memory:")
    _ingest(root, store)
    assert _stored(store, "SELECT transaction_id, strftime(ts, '%Y-%m-%d %H:%M:%S.%g') FROM "
                          "transactions ORDER BY 1") == [
        ("Z1", "2024-06-01 23:30:00.000"), ("Z2", "2024-06-01 21:30:00.000"),
        ("Z3", "2024-06-01 23:30:00.000"), ("Z4", "2024-06-01 23:30:00.500")]  # %S takes .5
    got = dict(_stored(store, "SELECT row_number, reason FROM quarantine "
                              "WHERE rule = 'unparseable_date'"))
    assert sorted(got) == [5, 6]
    iso = ("; it is valid ISO 8601: date_formats = [] reads ISO 8601 (Z, offsets, fractions "
           "of a second)")
    assert got[5] == ("'2024-06-01T23:30:00 UTC' does not match the accepted formats "
                      f"(%Y-%m-%dT%H:%M:%S%z){iso}")
    assert got[6] == "'01.06.2024' does not match the accepted formats (%Y-%m-%dT%H:%M:%S%z)"


def test_anonymous_lines_are_counted_not_warned_while_formulas_are(tmp_path: Path) -> None:
    """docs/data.md: an anonymous transaction (kept, flagged `anonymous`) is counted in
    `rows_anonymous` and gets no warning; a flagged formula gets one naming file, row and
    column. Both are in ingest_flags."""
    data = (HEADER + b"A1,,2024-01-02,3\nA2,C1,2024-01-03,4\nA3,NA,2024-01-04,5\n"
            b"A4,=cmd(),2024-01-05,6\n")
    root = _project(tmp_path, {"orders.csv": data})
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = ingest(store, Settings.load(root), root, now=NOW)
    row = report.to_pandas().iloc[0]
    assert (row.rows_accepted, row.rows_anonymous, row.rows_flagged) == (4, 2, 1)
    assert report.warnings == ["file orders.csv, row 4, column 'customer': text starts like a "
                               "spreadsheet formula (=, @, tab, CR, or +/- before a non-number); "
                               "kept as text (1 such values)"]
    assert _stored(store, "SELECT rule, count(*) FROM ingest_flags GROUP BY rule ORDER BY 1") \
        == [("anonymous", 2), ("formula_in_text", 1)]
