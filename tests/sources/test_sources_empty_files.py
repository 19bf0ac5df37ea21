"""A file without data rows in a folder source (a month without orders, exported as a header
alone or as 0 bytes) loads as 0 rows with a warning naming it, and is recorded in the load
log, so the folder keeps loading; a header of another layout is still a one-line error."""

from __future__ import annotations

import warnings

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sources_project import NOW
from typer.testing import CliRunner

from segflow.cli import app
from segflow.config import Settings
from segflow.errors import InputError
from segflow.sources import ingest
from segflow.store import Store

TOML = """
[[sources]]
name = "orders"
table = "transactions"
path = "exports"
{extra}
[sources.columns]
transaction_id = "id"
customer_id = "cust"
ts = "ts"
amount = "amount"
"""
HEADER = "id,cust,ts,amount\n"
JAN = HEADER + "1,a,2024-01-05,10\n2,b,2024-01-09,20\n3,a,2024-01-30,5\n"
HEADER_ONLY = "file exports/{} has a header but no data rows; loaded as 0 rows"
ZERO_BYTES = "file exports/{} is empty (0 bytes: no header to check); loaded as 0 rows"


def _project(tmp_path, files: dict[str, bytes | str], extra: str = ""):
    (tmp_path / "segflow.toml").write_text(TOML.format(extra=extra))
    (tmp_path / "exports").mkdir(exist_ok=True)
    for name, data in files.items():
        target = tmp_path / "exports" / name
        target.write_bytes(data.encode() if isinstance(data, str) else data)
    return tmp_path


def _ingest(project, store):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = ingest(store, Settings.load(project), project, now=NOW)
    return report, [str(w.message) for w in caught]


def _loads(store) -> list[tuple]:
    return [tuple(r.values()) for r in store.sql(
        "SELECT source_file, rows_read, rows_accepted, rows_quarantined, rows_duplicate, "
        "rows_stale, status FROM loads ORDER BY source_file").to_pylist()]


def test_empty_months_in_a_folder_load_as_0_rows_with_a_warning(tmp_path):
    project = _project(tmp_path, {
        "2024-01.csv": JAN, "2024-02.csv": HEADER, "2024-03.csv": b"",
        "2024-04.csv": HEADER,  # the same bytes as February: still a month of its own
        "2024-05.csv": HEADER.rstrip("\n")})  # no line end after the header
    store = Store(":memory:")
    report, messages = _ingest(project, store)
    frame = report.to_pandas().set_index("source_file")
    assert frame.status.to_dict() == {
        "exports/2024-01.csv": "loaded", "exports/2024-02.csv": "empty",
        "exports/2024-03.csv": "empty", "exports/2024-04.csv": "empty",
        "exports/2024-05.csv": "empty"}
    assert report.reconciles
    assert frame.rows_read.tolist() == [3, 0, 0, 0, 0]
    want = [HEADER_ONLY.format("2024-02.csv"), ZERO_BYTES.format("2024-03.csv"),
            HEADER_ONLY.format("2024-04.csv"), HEADER_ONLY.format("2024-05.csv")]
    assert [m for m in messages if "0 rows" in m] == want  # Python warnings, in file order
    assert [w for w in report.warnings if "0 rows" in w] == want  # the report (CLI notes)
    assert _loads(store) == [("exports/2024-01.csv", 3, 3, 0, 0, 0, "ok"),
                             *((f"exports/2024-0{m}.csv", 0, 0, 0, 0, 0, "ok") for m in range(2, 6))]
    assert store.sql("SELECT count(*) AS n FROM transactions")["n"][0].as_py() == 3
    # the next ingest: every file unchanged, no warning
    again, messages = _ingest(project, store)
    assert set(again.to_pandas().status) == {"unchanged"} and not messages
    # February delivered again, with its orders: they load
    (project / "exports" / "2024-02.csv").write_text(HEADER + "4,c,2024-02-02,7\n")
    feb, _ = _ingest(project, store)
    row = feb.to_pandas().set_index("source_file").loc["exports/2024-02.csv"]
    assert (row.status, row.rows_read, row.rows_accepted, row.rows_stale) == ("loaded", 1, 1, 0)
    assert store.sql("SELECT count(*) AS n FROM transactions")["n"][0].as_py() == 4


def test_a_header_only_file_of_another_layout_is_refused_alone_or_stops_when_alone(tmp_path):
    # refused alone as any file of a folder lacking a mapped column (session 61: it stopped
    # the ingest); the folder's only file: the mapping fits no file, and the ingest stops
    project = _project(tmp_path, {"2024-01.csv": JAN, "2024-02.csv": "id,client,ts,amount\n"})
    store = Store(":memory:")
    report, messages = _ingest(project, store)
    assert report.to_pandas().status.tolist() == ["rejected", "loaded"]
    assert [m.split(":")[0] for m in messages if "not loaded" in m] == [
        "file exports/2024-02.csv, header, column 'cust'"]
    assert [r[0::6] for r in _loads(store)] == [("exports/2024-01.csv", "ok"),
                                               ("exports/2024-02.csv", "rejected")]
    (tmp_path / "alone").mkdir()
    alone = _project(tmp_path / "alone", {"2024-02.csv": "id,client,ts,amount\n"})
    store = Store(":memory:")
    with pytest.raises(InputError) as info:
        _ingest(alone, store)
    assert (info.value.file, info.value.row, info.value.column) == (
        "exports/2024-02.csv", 0, "cust")
    assert str(info.value).startswith("file exports/2024-02.csv, header, column 'cust': ")
    assert _loads(store) == []  # the pre-flight checks every file before any load


def test_other_formats_without_rows(tmp_path):
    """A Parquet file and an Excel sheet with the columns and no rows, a JSON-lines file of
    0 bytes: 0 rows and a warning; a Parquet file of 0 bytes is no Parquet file."""
    table = pa.table({c: pa.array([], pa.string()) for c in ("id", "cust", "ts", "amount")})
    pq.write_table(table, tmp_path / "empty.parquet")
    sheet = tmp_path / "empty.xlsx"
    pd.DataFrame(columns=["id", "cust", "ts", "amount"]).to_excel(sheet, index=False)
    project = _project(tmp_path, {"2024-01.csv": JAN,
                                  "2024-02.parquet": (tmp_path / "empty.parquet").read_bytes(),
                                  "2024-03.xlsx": sheet.read_bytes(), "2024-04.jsonl": b""})
    report, messages = _ingest(project, Store(":memory:"))
    assert [m for m in messages if "0 rows" in m] == [
        HEADER_ONLY.format("2024-02.parquet"), HEADER_ONLY.format("2024-03.xlsx"),
        ZERO_BYTES.format("2024-04.jsonl")]
    assert report.to_pandas().status.tolist() == ["loaded", "empty", "empty", "empty"]
    # a Parquet file of 0 bytes is no Parquet file: refused alone in the folder (it stopped
    # the ingest before session 61), an error as a single-file source
    (project / "exports" / "2024-05.parquet").write_bytes(b"")
    report, messages = _ingest(project, Store(":memory:"))
    assert report.to_pandas().status.tolist() == ["rejected", "loaded", "empty", "empty", "empty"]
    assert [m for m in messages if "not loaded" in m] == [
        "file exports/2024-05.parquet: the file is empty (0 bytes); not loaded, the other files "
        "of source 'orders' are (binary_files = \"fail\" stops the ingest instead)"]
    alone = tmp_path / "alone"
    alone.mkdir()
    _project(alone, {})
    (alone / "segflow.toml").write_text((alone / "segflow.toml").read_text().replace(
        '"exports"', '"exports/2024-05.parquet"'))
    (alone / "exports" / "2024-05.parquet").write_bytes(b"")
    with pytest.raises(InputError, match=r"^file exports/2024-05\.parquet: the file is empty "
                                         r"\(0 bytes\)$"):
        _ingest(alone, Store(":memory:"))


def test_cli_ingest_and_refresh_warn_alike_about_the_empty_file(tmp_path, monkeypatch):
    """`segflow ingest` said 'note: file ... has a header but no data rows' where `segflow
    refresh` said 'warning: ...' for the same file: both say 'warning:' now (a fact about the
    data, as docs/operations.md writes it; 'note:' is advice). The refresh stops after its
    ingest (its run of the pipeline is replaced by a failure: the line is printed as the
    ingest warns, and the whole run takes 10 s). Its project has a folder source without
    `format`, which `segflow ingest` reads and refresh refused ('cannot tell the format')."""
    import segflow.pipeline
    import segflow.project  # noqa: F401  (imported by the refresh below, it would bind `stop`)
    from segflow.errors import SegflowError

    files = {"2024-01.csv": JAN, "2024-02.csv": HEADER}
    (tmp_path / "ingest").mkdir()
    (tmp_path / "refresh").mkdir()
    project = _project(tmp_path / "ingest", files)
    result = CliRunner().invoke(app, ["ingest", "-p", str(project)])
    assert result.exit_code == 0, result.output
    want = "warning: " + HEADER_ONLY.format("2024-02.csv")
    assert [ln for ln in result.stderr.splitlines() if "0 rows" in ln] == [want]

    def stop(*_args, **_kwargs):
        raise SegflowError("stopped after the ingest")

    monkeypatch.setattr(segflow.pipeline, "run_pipeline", stop)
    project = _project(tmp_path / "refresh", files)
    result = CliRunner().invoke(app, ["refresh", "-p", str(project)])
    assert result.stderr.splitlines()[-1] == (
        "error: refresh failed, the store is unchanged: stopped after the ingest")
    assert [ln for ln in result.stderr.splitlines() if "0 rows" in ln] == [want]


def test_sources_check_dry_runs_the_first_file_with_bytes(tmp_path):
    from segflow.sources import check_source

    project = _project(tmp_path, {"2023-12.csv": b"", "2024-01.csv": JAN})
    report = check_source(Settings.load(project).sources[0], project)
    assert report.file == "exports/2024-01.csv" and report.counts["rows_read"] == 3


def test_a_file_caught_empty_while_it_is_written_is_not_recorded_as_empty(tmp_path):
    """A file written in place is 0 bytes for an instant after it is truncated; a load
    without rows is quicker than that, so it waits until the file is a second old and
    checks that it was not written to meanwhile."""
    import os
    import threading
    import time

    project = _project(tmp_path, {"2024-01.csv": b""})
    target = project / "exports" / "2024-01.csv"
    started = time.perf_counter()  # the wait is counted from the file's time, set next
    os.utime(target)  # just truncated, as a writer does
    writer = threading.Timer(0.3, lambda: target.write_text(JAN))
    store = Store(":memory:")
    writer.start()
    with pytest.raises(InputError, match=r"^file exports/2024-01\.csv: the file changed while "
                                         r"it was being loaded"):
        _ingest(project, store)
    writer.join()
    assert time.perf_counter() - started >= 0.9  # it waited for the file to settle
    assert _loads(store) == []
    report, _ = _ingest(project, store)  # the next ingest loads the whole file
    assert report.to_pandas().rows_accepted.tolist() == [3]
