"""A stray NUL byte early in a CSV is read like one later in the file, in ingest, `sources
check` and the file commands (a hostile-user fault: it refused the whole ingest as binary);
real binary data and UTF-16 without a byte-order mark are still refused, naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sources_project import ORDERS_HEADER as HEADER
from sources_project import ingest_quietly as _ingest
from sources_project import orders_project as _project
from sources_project import stored_rows as _stored
from typer.testing import CliRunner

from segflow.cli import app
from segflow.errors import InputError
from segflow.store import Store

runner = CliRunner()
def _rows(n: int) -> list[bytes]:
    return [f"T{i},C{i % 7},2024-01-{1 + i % 28:02d},{i}.50".encode() for i in range(n)]


def test_a_nul_byte_early_in_a_csv_is_read_as_one_late_in_it(tmp_path: Path) -> None:
    """One NUL byte after a customer id on line 4 (inside the first 8 KiB, where the file
    was refused as binary) or on line 301: both files load whole, the id trimmed to C2
    (docs/data.md: `A<NUL>` is `A`); `sources check` agrees."""
    rows = _rows(400)
    early, late = list(rows), list(rows)
    early[2] = early[2].replace(b"C2,", b"C2\x00,")
    late[299] = late[299].replace(b"C5,", b"C5\x00,")
    for name, lines, row, cid in (("early", early, 3, "C2"), ("late", late, 300, "C5")):
        root = _project(tmp_path / name, {"orders.csv": HEADER + b"\n".join(lines) + b"\n"})
        store = Store(":memory:")
        _ingest(root, store)
        assert _stored(store, "SELECT count(*), count(DISTINCT customer_id) FROM transactions") \
            == [(400, 7)], name
        assert _stored(store, "SELECT count(*) FROM quarantine") == [(0,)], name
        assert _stored(store, f"SELECT customer_id, amount FROM transactions WHERE source_row = {row}") \
            == [(cid, row - 1 + 0.5)], name
        check = runner.invoke(app, ["sources", "check", "orders", "--project", str(root),
                                    "--rows", "5", "--json"])
        assert check.exit_code == 0, check.output
        assert json.loads(check.stdout)["counts"]["rows_accepted"] == 5


def test_a_folder_with_a_stray_nul_loads_every_file(tmp_path: Path) -> None:
    """A folder source: the file with a NUL byte no longer stops the others."""
    files = {"data/a.csv": HEADER + b"\n".join(_rows(3)) + b"\n",
             "data/b.csv": HEADER + b"T9,C1\x00,2024-02-01,4.00\n"}
    root = _project(tmp_path, files, path="data")
    store = Store(":memory:")
    _ingest(root, store)
    assert _stored(store, "SELECT transaction_id, customer_id FROM transactions "
                          "ORDER BY transaction_id") == [
        ("T0", "C0"), ("T1", "C1"), ("T2", "C2"), ("T9", "C1")]


UTF16_TEXT = "order_id,customer,date,amount\nT1,C1,2024-01-02,3.50\nT2,C2,2024-01-03,4.50\n"


@pytest.mark.parametrize(("data", "message"), [
    (UTF16_TEXT.encode("utf-16-le"), "UTF-16 text without a byte-order mark; set "
                                     "options.encoding = 'utf-16-le'"),
    (UTF16_TEXT.encode("utf-16-be"), "UTF-16 text without a byte-order mark; set "
                                     "options.encoding = 'utf-16-be'"),
    (b"PAR1" + bytes(200), "binary data (a Parquet file), not delimited text"),
    (b"PK\x03\x04" + UTF16_TEXT.encode(), "binary data (a zip archive (an .xlsx workbook?))"),
    (HEADER + bytes(range(256)) * 2, "binary data (NUL or other control bytes)"),
], ids=["utf16le", "utf16be", "parquet", "zip", "controls"])
def test_real_binary_and_utf16_without_bom_are_still_refused(tmp_path: Path, data: bytes,
                                                             message: str) -> None:
    root = _project(tmp_path, {"orders.csv": data})
    with pytest.raises(InputError) as info:
        _ingest(root, Store(":memory:"))
    assert str(info.value).startswith(f"file orders.csv: the file {'looks like' if 'UTF' in message else 'holds'}")
    assert message in str(info.value)


def test_the_file_commands_read_a_stray_nul_and_refuse_binary_alike(tmp_path: Path) -> None:
    """`segment cluster --input` and `clv fit -t` read through ``read_user_csv``: its text
    rule is ingest's (a tiny file with one NUL is text; control bytes galore are not)."""
    import ibis

    from segflow.cli._files import read_user_csv

    path = tmp_path / "c.csv"
    path.write_bytes(b"customer_id,spend\nA\x00,1.5\nB,2\n")  # 1 NUL in 26 bytes
    frame = read_user_csv(ibis.duckdb.connect(), path).execute()
    assert list(zip(frame.customer_id, frame.spend, strict=True)) == [("A", 1.5), ("B", 2.0)]
    path.write_bytes(b"customer_id,spend\n" + bytes(range(32)) * 4)
    with pytest.raises(InputError, match="not a UTF-8 CSV file: it is binary data"):
        read_user_csv(ibis.duckdb.connect(), path)


@pytest.mark.parametrize("header", [b"order_id,customer,date,amount\x00\n",
                                    b"order_id,customer\x00,date,amount\n"],
                         ids=["last", "inner"])
def test_a_nul_at_the_end_of_a_header_name_is_trimmed(tmp_path: Path, header: bytes) -> None:
    """`amount<NUL>` in the header is `amount` (docs/data.md, *Trimming*): ingest, `sources
    check` and the file commands read it (they failed with DuckDB's "unterminated quoted
    identifier")."""
    import ibis

    from segflow.cli._files import read_user_csv

    data = header + b"\n".join(_rows(3)) + b"\n"
    root = _project(tmp_path, {"orders.csv": data})
    store = Store(":memory:")
    _ingest(root, store)
    assert _stored(store, "SELECT transaction_id, customer_id, amount FROM transactions "
                          "ORDER BY transaction_id") == [("T0", "C0", 0.5), ("T1", "C1", 1.5),
                                                         ("T2", "C2", 2.5)]
    check = runner.invoke(app, ["sources", "check", "orders", "--project", str(root),
                                "--rows", "3", "--json"])
    assert check.exit_code == 0, check.output
    frame = read_user_csv(ibis.duckdb.connect(), root / "orders.csv").execute()
    assert list(frame.columns) == ["order_id", "customer", "date", "amount"]
    assert list(frame.amount) == [0.5, 1.5, 2.5]


def test_a_nul_inside_a_header_name_is_refused_naming_it(tmp_path: Path) -> None:
    """`cust<NUL>omer` cannot be a column name (DuckDB's SQL cannot quote a NUL): a one-line
    error naming the file, the header and the column, in ingest and the file commands."""
    import ibis

    from segflow.cli._files import read_user_csv

    root = _project(tmp_path, {"orders.csv": b"order_id,cust\x00omer,date,amount\nT1,C1,"
                                             b"2024-01-02,3.50\n"})
    expected = ("file orders.csv, header, column 'cust<NUL>omer': header field 2 holds a NUL "
                "byte inside the column name; remove it")
    with pytest.raises(InputError) as info:
        _ingest(root, Store(":memory:"))
    assert str(info.value) == expected
    with pytest.raises(InputError) as info:
        read_user_csv(ibis.duckdb.connect(), root / "orders.csv")
    assert str(info.value) == expected.replace("file orders.csv", f"file {root / 'orders.csv'}")


def test_a_nul_inside_an_id_quarantines_the_row(tmp_path: Path) -> None:
    """docs/data.md, *Trimming*: NULs at an id's ends are trimmed (`C1<NUL>` is `C1`), but
    one inside it (`C0<NUL>00`) would store another customer than `C000`: the row is
    quarantined as `invalid_id`, naming file, row and column."""
    data = (HEADER + b"T1,C000,2024-01-02,1.50\nT2,C0\x0000,2024-01-03,2.50\n"
            b"T3,C1\x00,2024-01-04,3.50\nT\x004,C1,2024-01-05,4.50\n")
    root = _project(tmp_path, {"orders.csv": data})
    store = Store(":memory:")
    _ingest(root, store)
    assert _stored(store, "SELECT transaction_id, customer_id FROM transactions ORDER BY 1") == [
        ("T1", "C000"), ("T3", "C1")]
    assert _stored(store, "SELECT source_file, row_number, rule, column_name, reason "
                          "FROM quarantine ORDER BY row_number") == [
        ("orders.csv", 2, "invalid_id", "customer",
         "identifier 'C0<NUL>00' holds a NUL byte inside it (character 3): stored, it would be "
         "another id than the one without it; fix the export"),
        ("orders.csv", 4, "invalid_id", "order_id",
         "identifier 'T<NUL>4' holds a NUL byte inside it (character 2): stored, it would be "
         "another id than the one without it; fix the export")]


def test_windows_1252_bytes_read_as_latin_1_are_quarantined_with_the_advice(tmp_path: Path) -> None:
    """A windows-1252 export read with `encoding = "latin-1"` (docs suggest both): latin-1
    reads the bytes 0x80-0x9F (the euro sign, curly quotes, dashes) as C1 control characters
    and a customer `c’s` was stored as `c\\x92s`. Those lines are quarantined with the advice
    to set windows-1252; with it, the same file stores `c’s` and `Müller`. The rows
    quarantined plus accepted are the file's records."""
    data = (HEADER + "A1,Müller,2024-01-02,10\nA2,c’s,2024-01-03,11\nA3,c3,2024-01-04,12 €\n"
            .encode("cp1252"))
    root = _project(tmp_path / "l", {"orders.csv": data}, extra='options = { encoding = "latin-1" }')
    store = Store(":memory:")
    _ingest(root, store)
    assert _stored(store, "SELECT transaction_id, customer_id FROM transactions") == [("A1", "Müller")]
    advice = ("bytes 0x80-0x9F, control characters in latin-1 and no text: most likely the euro "
              "sign, dashes or quotes of windows-1252 (set options.encoding = 'windows-1252')")
    assert _stored(store, "SELECT row_number, rule, reason FROM quarantine ORDER BY 1") == [
        (2, "malformed_row", advice), (3, "malformed_row", advice)]
    root = _project(tmp_path / "w", {"orders.csv": data}, extra='options = { encoding = "windows-1252" }')
    store = Store(":memory:")
    _ingest(root, store)
    assert _stored(store, "SELECT customer_id FROM transactions ORDER BY source_row") == [
        ("Müller",), ("c’s",)]
    assert _stored(store, "SELECT row_number, rule FROM quarantine") == [(3, "non_numeric_amount")]
