"""A binary file among the files of a folder source is refused alone (docs/data.md, *Text or
binary*): one warning naming it, status `rejected` in the report and the load log, the other
files loaded; `binary_files = "fail"` stops the ingest before anything is written."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import pytest
from sources_project import NOW
from sources_project import ORDERS_HEADER as HEADER
from sources_project import orders_project as _project
from sources_project import stored_rows as _stored

from segflow.config import Settings
from segflow.errors import InputError
from segflow.refresh._refresh import pending_inputs
from segflow.sources import ingest
from segflow.store import Store

FILES = {"data/a.csv": HEADER + b"T1,C1,2024-01-02,3.50\nT2,C2,2024-01-03,4.50\n",
         "data/b.csv": HEADER + b"T3,C1,2024-02-01,5.00\n",
         "data/logo.csv": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4}  # an image named .csv
#: The end of the warning of a file of the folder source 'orders' refused alone.
REFUSED = ("; not loaded, the other files of source 'orders' are (binary_files = \"fail\" "
           "stops the ingest instead)")


def _ingest(root: Path, store: Store):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = ingest(store, Settings.load(root), root, now=NOW)
    return report, [str(w.message) for w in caught]


def _stops(root: Path, message: str) -> Store:
    """The ingest of ``root`` raises an InputError matching ``message`` and records no load
    (returns the store it ran on)."""
    store = Store(":memory:")
    with pytest.raises(InputError, match=message):
        _ingest(root, store)
    assert _stored(store, "SELECT count(*) FROM loads") == [(0,)]
    return store


def test_a_binary_file_in_a_folder_is_refused_alone(tmp_path: Path) -> None:
    root = _project(tmp_path, FILES, path="data")
    store = Store(":memory:")
    report, said = _ingest(root, store)
    status = dict(zip(report.to_pandas().source_file, report.to_pandas().status, strict=True))
    assert status == {"data/a.csv": "loaded", "data/b.csv": "loaded", "data/logo.csv": "rejected"}
    assert _stored(store, "SELECT transaction_id FROM transactions ORDER BY 1") == [
        ("T1",), ("T2",), ("T3",)]
    line = ("file data/logo.csv: the file holds binary data (a PNG image), not delimited text; "
            "is it really a CSV?; not loaded, the other files of source 'orders' are "
            '(binary_files = "fail" stops the ingest instead)')
    assert [m for m in said if "logo" in m] == [line]
    assert report.warnings == [line]
    log = "SELECT source_file, status, rows_read FROM loads ORDER BY source_file"
    assert _stored(store, log) == [("data/a.csv", "ok", 2), ("data/b.csv", "ok", 1),
                                   ("data/logo.csv", "rejected", 0)]
    # again: refused again with the same line, no second row in the log, not new to refresh
    report, said = _ingest(root, store)
    assert report.to_pandas().status.tolist() == ["rejected", "unchanged", "unchanged"]
    assert [m for m in said if "logo" in m] == [line]
    assert _stored(store, "SELECT count(*) FROM loads WHERE status = 'rejected'") == [(1,)]
    assert pending_inputs(store, Settings.load(root), root) == []
    # new bytes in the file: new to refresh
    (root / "data/logo.csv").write_bytes(FILES["data/logo.csv"] + b"\x00\x01")
    assert pending_inputs(store, Settings.load(root), root) == ["data/logo.csv"]


def test_binary_files_fail_stops_the_ingest(tmp_path: Path) -> None:
    root = _project(tmp_path, FILES, path="data", extra='binary_files = "fail"')
    store = _stops(root, r"^file data/logo.csv: the file holds binary data \(a PNG image\)")
    assert _stored(store, "SELECT count(*) FROM transactions") == [(0,)]


@pytest.mark.parametrize("rule", ["reject", "fail"])
def test_sources_check_steps_over_a_binary_first_file_as_the_ingest_does(tmp_path: Path,
                                                                        rule: str) -> None:
    # `sources check` read only the folder's first file: a binary one stopped it, while the
    # ingest refuses that file alone and loads the others
    from segflow.sources import check_source

    files = {"data/0logo.csv": FILES["data/logo.csv"], "data/a.csv": FILES["data/a.csv"]}
    root = _project(tmp_path, files, path="data", extra=f'binary_files = "{rule}"')
    source = Settings.load(root).sources[0]
    if rule == "fail":
        with pytest.raises(InputError, match=r"^file data/0logo.csv: the file holds binary data"):
            check_source(source, root, now=NOW)
        return
    with pytest.warns(UserWarning, match=r"^data/0logo.csv: the file holds binary data \(a PNG "
                                         r"image\).*checking the next file$"):
        report = check_source(source, root, now=NOW)
    assert report.file == "data/a.csv"
    assert report.counts == {"rows_read": 2, "rows_accepted": 2, "rows_quarantined": 0,
                             "rows_duplicate": 0}


def _parquet(rows: list[tuple[str, str, str, str]]) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    names = HEADER.decode().strip().split(",")
    pq.write_table(pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)}), buf)
    return buf.getvalue()


def test_a_corrupt_parquet_or_jsonl_file_in_a_folder_is_refused_alone(tmp_path: Path) -> None:
    # a Parquet file cut short (no footer), a CSV named .jsonl and an image named .jsonl
    # stopped the whole ingest ("cannot read as Parquet", "no JSON objects found")
    good = _parquet([("T4", "C2", "2024-03-01", "6.00")])
    files = {"data/a.csv": FILES["data/a.csv"], "data/b.parquet": good,
             "data/c.parquet": good[: len(good) // 2],
             "data/d.jsonl": b'{"order_id": "T5", "customer": "C1", "date": "2024-03-02", '
                             b'"amount": "7.00"}\n',
             "data/e.jsonl": FILES["data/a.csv"], "data/f.jsonl": FILES["data/logo.csv"]}
    root = _project(tmp_path, files, path="data")
    store = Store(":memory:")
    report, said = _ingest(root, store)
    assert _stored(store, "SELECT source_file, status, rows_read FROM loads ORDER BY 1") == [
        ("data/a.csv", "ok", 2), ("data/b.parquet", "ok", 1), ("data/c.parquet", "rejected", 0),
        ("data/d.jsonl", "ok", 1), ("data/e.jsonl", "rejected", 0),
        ("data/f.jsonl", "rejected", 0)]
    assert _stored(store, "SELECT transaction_id FROM transactions ORDER BY 1") == [
        ("T1",), ("T2",), ("T4",), ("T5",)]
    refused = [m for m in said if "not loaded" in m]
    assert refused[1:] == [
        f"file data/e.jsonl: no JSON objects found; expected one object per line{REFUSED}",
        f"file data/f.jsonl: the file holds binary data (a PNG image), not JSON lines{REFUSED}"]
    assert refused[0].startswith("file data/c.parquet: cannot read as Parquet: ")
    assert refused[0].endswith(REFUSED) and "\n" not in refused[0]
    assert report.warnings == said[:3]
    # binary_files = "fail": the first such file stops the ingest before anything is written
    root = _project(tmp_path / "fail", files, path="data", extra='binary_files = "fail"')
    _stops(root, r"^file data/c.parquet: cannot read as Parquet: ")


def test_a_parquet_file_of_another_schema_in_a_folder_is_refused_alone(tmp_path: Path) -> None:
    # a month exported without the amount column, and one whose customer column holds
    # structures, stopped the whole ingest ("mapped column 'amount' ... is not in the source")
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    def written(table: pa.Table) -> bytes:
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue()

    files = {"data/a.parquet": _parquet([("T1", "C1", "2024-01-02", "3.50")]),
             "data/b.parquet": written(pa.table({"order_id": ["T2"], "customer": ["C1"],
                                                 "date": ["2024-02-01"]})),
             "data/c.parquet": written(pa.table({"order_id": ["T3"], "customer": [{"id": "C1"}],
                                                 "date": ["2024-03-01"], "amount": [1.0]})),
             # another type only (a number amount, a DATE column): read by the value rules
             "data/d.parquet": written(pa.table({"order_id": ["T4"], "customer": ["C2"],
                                                 "date": pa.array([19783], pa.date32()),
                                                 "amount": [6.25]}))}
    root = _project(tmp_path, files, path="data")
    store = Store(":memory:")
    report, said = _ingest(root, store)
    assert _stored(store, "SELECT source_file, status, rows_read FROM loads ORDER BY 1") == [
        ("data/a.parquet", "ok", 1), ("data/b.parquet", "rejected", 0),
        ("data/c.parquet", "rejected", 0), ("data/d.parquet", "ok", 1)]
    assert _stored(store, "SELECT transaction_id, ts, amount FROM transactions ORDER BY 1") == [
        ("T1", dt.datetime(2024, 1, 2), 3.5), ("T4", dt.datetime(2024, 3, 1), 6.25)]
    assert [m for m in said if "not loaded" in m] == [
        "file data/b.parquet, header, column 'amount': mapped column 'amount' (for canonical "
        f"'amount') is not in the source; its columns are: order_id, customer, date{REFUSED}",
        "file data/c.parquet, row 1, column 'customer': column 'customer' holds lists or "
        f"structures, not single values; map a column of plain values (or an expression "
        f"extracting one){REFUSED}"]
    assert report.to_pandas().set_index("source_file").status.to_dict() == {
        "data/a.parquet": "loaded", "data/b.parquet": "rejected", "data/c.parquet": "rejected",
        "data/d.parquet": "loaded"}
    # `sources check` steps over such a first file as over a binary one
    from segflow.sources import check_source

    first = _project(tmp_path / "check", {"data/0b.parquet": files["data/b.parquet"],
                                          "data/a.parquet": files["data/a.parquet"]}, path="data")
    with pytest.warns(UserWarning, match=r"^data/0b.parquet: mapped column 'amount' .*checking "
                                         r"the next file$"):
        assert check_source(Settings.load(first).sources[0], first, now=NOW).file == "data/a.parquet"
    root = _project(tmp_path / "fail", files, path="data", extra='binary_files = "fail"')
    _stops(root, r"^file data/b.parquet, header, column 'amount': "
                 r"mapped column 'amount' \(for canonical 'amount'\) "
                 r"is not in the source; its columns are: order_id, "
                 r"customer, date$")


def test_a_csv_file_lacking_a_mapped_column_is_refused_alone_unless_no_file_fits(
        tmp_path: Path) -> None:
    # a month exported without the amount column, and one with the customer column renamed:
    # each stopped the whole ingest; refused alone now, as a Parquet file of another schema is
    files = {"data/a.csv": FILES["data/a.csv"],
             "data/b.csv": b"order_id,customer,date\nT3,C1,2024-02-01\n",
             "data/c.csv": b"order_id,client,date,amount\nT4,C1,2024-03-01,2.00\n"}
    root = _project(tmp_path, files, path="data")
    store = Store(":memory:")
    report, said = _ingest(root, store)
    assert report.to_pandas().set_index("source_file").status.to_dict() == {
        "data/a.csv": "loaded", "data/b.csv": "rejected", "data/c.csv": "rejected"}
    assert _stored(store, "SELECT transaction_id FROM transactions ORDER BY 1") == [
        ("T1",), ("T2",)]
    assert _stored(store, "SELECT source_file, status, rows_read FROM loads ORDER BY 1") == [
        ("data/a.csv", "ok", files["data/a.csv"].count(b"\n") - 1), ("data/b.csv", "rejected", 0),
        ("data/c.csv", "rejected", 0)]
    assert [m for m in said if "not loaded" in m] == [
        "file data/b.csv, header, column 'amount': mapped column 'amount' (for canonical "
        f"'amount') is not in the source; its columns are: order_id, customer, date{REFUSED}",
        "file data/c.csv, header, column 'customer': mapped column 'customer' (for canonical "
        f"'customer_id') is not in the source; its columns are: order_id, client, date, "
        f"amount{REFUSED}"]
    # no file of the folder has the mapped columns: a mistake of the mapping, which stops the
    # ingest before anything is written (refusing each file would load nothing, rc 0)
    root = _project(tmp_path / "none", {k: files[k] for k in ("data/b.csv", "data/c.csv")},
                    path="data")
    _stops(root, r"^file data/b.csv, header, column 'amount': mapped "
                 r"column 'amount' .*; no file of source 'orders' has "
                 r"the mapped columns: check the mapping$")
    # a binary file does not count as fitting: still the mapping's error
    binary = {"data/b.csv": files["data/b.csv"], "data/logo.csv": FILES["data/logo.csv"]}
    root = _project(tmp_path / "binary", binary, path="data")
    _stops(root, r"no file of source 'orders' has the mapped columns")


def test_a_folder_whose_files_are_all_binary_stops_the_ingest(tmp_path: Path) -> None:
    # every file refused as binary data loaded nothing with warnings and exit code 0: the
    # path or the format is wrong (a folder of images), so the ingest stops before writing
    images = {"data/logo.csv": FILES["data/logo.csv"],
              "data/photo.csv": b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4}  # a JPEG
    root = _project(tmp_path, images, path="data")
    _stops(root, r"^file data/logo.csv: the file holds binary data \(a "
                 r"PNG image\), not delimited text.*; no file of source "
                 r"'orders' can be read as its format: check its path "
                 r"and format$")


def test_a_new_file_of_a_source_that_loaded_before_is_refused_alone(tmp_path: Path) -> None:
    # a drop folder: the loaded files moved away, the month's only new file binary (or
    # lacking a column): refused alone, the stored rows kept (a source that loaded files is
    # no wrong path or mapping); a source that never loaded one stops (the test above)
    root = _project(tmp_path, {"data/a.csv": FILES["data/a.csv"]}, path="data")
    store = Store(":memory:")
    _ingest(root, store)
    (root / "data/a.csv").unlink()
    (root / "data/logo.csv").write_bytes(FILES["data/logo.csv"])
    report, said = _ingest(root, store)
    assert report.to_pandas().status.tolist() == ["rejected"]
    assert [m for m in said if "logo" in m] == [
        "file data/logo.csv: the file holds binary data (a PNG image), not delimited text; "
        "is it really a CSV?" + REFUSED]
    (root / "data/logo.csv").unlink()
    (root / "data/b.csv").write_bytes(b"order_id,customer,date\nT3,C1,2024-02-01\n")
    report, said = _ingest(root, store)
    assert report.to_pandas().status.tolist() == ["rejected"]
    assert _stored(store, "SELECT transaction_id FROM transactions ORDER BY 1") == [
        ("T1",), ("T2",)]
    assert _stored(store, "SELECT source_file, status FROM loads ORDER BY 1") == [
        ("data/a.csv", "ok"), ("data/b.csv", "rejected"), ("data/logo.csv", "rejected")]

