"""Files without data rows on Spark (``local[1]``) as on DuckDB: a header-only CSV, a CSV of
0 bytes and a Parquet file without rows load as 0 rows, status ``empty``, with the same
warning and the same row in ``loads``; a header of another layout is the same one-line
error; in a folder read as one load (a URL), each file without rows is named.

The projects of the module use the warehouse of the suite's ``local[1]`` session (a database
each; tests/conftest.py ``spark_warehouse``): the session, and its Python workers (which
import segflow's ingest code), then serve every test, where a warehouse of each project's
own made each test start a new session and new workers (about 2.5 CPU-s each). The files
without rows and the folder URLs are sources of one project (:func:`empty_ingest`): one
Spark ingest for their two tests (a Spark ingest costs seconds whatever its rows)."""

from __future__ import annotations

import json
import warnings

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests._engines import require_spark
from typer.testing import CliRunner

pytestmark = [pytest.mark.spark, pytest.mark.slow]

CRM = """
[project]
name = "empty"

[[sources]]
name = "crm"
table = "customers"
path = "data/customers.csv"
[sources.columns]
customer_id = "id"
"""
ORDERS = """
[[sources]]
name = "{name}"
table = "transactions"
path = "{path}"
format = "{fmt}"
[sources.columns]
transaction_id = "order_id"
customer_id = "customer"
ts = "order_date"
amount = "amount"
"""
ENGINE = """
[engine]
kind = "spark"
master = "local[1]"
warehouse = "{warehouse}"
database = "{database}"
"""
HEADER = "order_id,customer,order_date,amount\n"
#: transaction lines without ids: a basket of two equal lines, then three other orders
LINES_TOML = """
[[sources]]
name = "lines"
table = "transactions"
path = "data/lines"
[sources.columns]
customer_id = "customer"
ts = "date"
amount = "amount"
"""
LINES_HEADER = "customer,date,amount\n"
LINES = ("C1,2024-01-02,3.50\nC1,2024-01-02,3.50\nC2,2024-01-02,4.00\nC2,2024-01-05,1.00\n"
         "C1,2024-01-09,2.00\n")
COLUMNS = ["load_id", "source_file", "rows_read", "rows_accepted", "rows_quarantined",
           "rows_duplicate", "rows_stale", "status"]


@pytest.fixture(scope="module")
def warehouse(spark_warehouse) -> str:
    """The warehouse folder of the module's projects: that of the suite's ``local[1]``
    session (tests/conftest.py), which they then reuse."""
    return spark_warehouse


def _project(root, path: str, fmt: str, warehouse: str, database: str, *,
             orders: dict[str, tuple[str, str]] | None = None):
    """A project of the customers and one orders source (``path``, ``fmt``), or the orders
    sources ``orders`` (name: path, format) into one table."""
    from segflow.project import Project

    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "customers.csv").write_text("id\nC1\nC2\n")
    sources = orders or {"orders": (path, fmt)}
    toml = CRM + "".join(ORDERS.format(name=n, path=p, fmt=f) for n, (p, f) in sources.items())
    Project.init(root, toml_text=toml + ENGINE.format(warehouse=warehouse, database=database)).close()
    return root


def _spark_ingest(root) -> tuple[int, dict]:
    from segflow.cli import app

    result = CliRunner().invoke(app, ["ingest", "-p", str(root), "--json"])
    return result.exit_code, (json.loads(result.stdout) if result.exit_code == 0 else result)


def _loads_of(rows) -> list[tuple]:
    return sorted(tuple(r[c] for c in COLUMNS[1:]) for r in rows)


#: The three kinds of file without data rows (format, what the warning says of the file),
#: one orders source each in one project: one ingest per engine for the three (a Spark
#: ingest costs seconds whatever its rows: three projects took twice the time).
EMPTY = {"header_only_csv": ("csv", "has a header but no data rows"),
         "zero_byte_csv": ("csv", "is empty (0 bytes: no header to check)"),
         "parquet_without_rows": ("parquet", "has a header but no data rows")}


#: Two folders read as one load each (a URL), a source each: the first file of ``with_rows``
#: has two rows, that of ``header_only`` none; then a file with a header only, a file of 0
#: bytes (which Spark's file listing leaves out).
FOLDER_ROWS = "O1,C1,2024-01-05 10:00:00,10\nO2,C2,2024-01-06 10:00:00,20\n"


@pytest.fixture(scope="module")
def empty_ingest(tmp_path_factory, warehouse) -> dict:
    """One project of the files without rows (:data:`EMPTY`, a source each) ingested on
    DuckDB, then with the two folder URLs of :data:`FOLDER_ROWS` as two more sources (which
    only the Spark ingest reads) on Spark: one Spark ingest for the two tests below (each
    took one of its own, seconds of the driver's CPU each). Returns the DuckDB report, its
    warnings, its ``loads`` rows, the Spark report and ``loads`` rows, and the folders."""
    require_spark()
    from segflow.config import Settings
    from segflow.project import Project
    from segflow.store._spark import SparkStore

    root = tmp_path_factory.mktemp("empty")
    _project(root, "", "", warehouse, "empty_files",
             orders={case: (f"data/{case}.{fmt}", fmt) for case, (fmt, _) in EMPTY.items()})
    (root / "data" / "header_only_csv.csv").write_text(HEADER)
    (root / "data" / "zero_byte_csv.csv").write_bytes(b"")
    pq.write_table(pa.table({c: pa.array([], pa.string()) for c in HEADER.split(",")}
                            | {"amount": pa.array([], pa.string())}),
                   root / "data" / "parquet_without_rows.parquet")
    with Project.open(root) as project, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        duck = project.ingest(engine="duckdb")
        duck_loads = project.store.sql(f"SELECT {', '.join(COLUMNS)} FROM loads").to_pylist()
    folders = {}
    for first in ("with_rows", "header_only"):
        folder = folders[first] = root / "data" / first
        folder.mkdir(parents=True)
        (folder / "2024-01.csv").write_text(HEADER + (FOLDER_ROWS if first == "with_rows" else ""))
        (folder / "2024-02.csv").write_text(HEADER)
        (folder / "2024-03.csv").write_bytes(b"")
    toml = (root / "segflow.toml").read_text()
    urls = "".join(ORDERS.format(name=f, path=d.resolve().as_uri(), fmt="csv")
                   for f, d in folders.items())
    (root / "segflow.toml").write_text(toml.replace("\n[engine]", urls + "\n[engine]", 1))
    code, spark = _spark_ingest(root)
    assert code == 0, spark
    store = SparkStore.open(Settings.load(root).engine, root)
    spark_loads = store.dataframe("loads").toPandas()[["source", *COLUMNS]]
    return {"duck": duck, "duck_warnings": [str(w.message) for w in caught],
            "duck_loads": duck_loads, "spark": spark, "spark_loads": spark_loads,
            "folders": folders}


def test_files_without_rows_load_as_on_duckdb(empty_ingest):
    """The files of :data:`EMPTY` (the sources of the module's project the DuckDB ingest
    read too: all but the two folder URLs)."""
    duck, spark = empty_ingest["duck"], empty_ingest["spark"]
    urls = set(empty_ingest["folders"])
    wants = sorted(f"file data/{case}.{fmt} {says}; loaded as 0 rows"
                   for case, (fmt, says) in EMPTY.items())
    assert set(wants) <= set(empty_ingest["duck_warnings"])
    for report in (duck.to_dict(), spark):
        rows = {r["source"]: r for r in report["data"]}
        for case in EMPTY:
            assert (rows[case]["status"], rows[case]["rows_read"]) == ("empty", 0), case
        assert rows["crm"]["rows_accepted"] == 2

    def rows_of(data: list[dict]) -> list[dict]:
        return sorted(({k: v for k, v in r.items() if k != "load_id"} for r in data
                       if r["source"] not in urls), key=lambda r: r["source"])

    assert rows_of(spark["data"]) == rows_of(duck.to_dict()["data"])
    assert sorted(w for w in spark["warnings"] if not w.startswith("file file:")) \
        == sorted(duck.warnings) == wants
    got = empty_ingest["spark_loads"]
    got = got[~got.source.isin(urls)][COLUMNS].to_dict(orient="records")
    assert _loads_of(got) == _loads_of(empty_ingest["duck_loads"]) == sorted(
        [("data/customers.csv", 2, 2, 0, 0, 0, "ok")]
        + [(f"data/{case}.{fmt}", 0, 0, 0, 0, 0, "ok") for case, (fmt, _) in EMPTY.items()])


def test_a_header_only_file_of_another_layout_is_the_same_error(tmp_path, warehouse):
    require_spark()
    from segflow.project import Project

    root = _project(tmp_path, "data/orders.csv", "csv", warehouse, "empty_layout")
    (root / "data" / "orders.csv").write_text("order_id,client,order_date,amount\n")
    with Project.open(root) as project, pytest.raises(Exception) as duck:
        project.ingest(engine="duckdb")
    code, result = _spark_ingest(root)
    assert code == 1
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert errors == [f"error: {duck.value}"]
    assert str(duck.value).startswith("file data/orders.csv, header, column 'customer': ")


def test_a_folder_url_names_each_file_without_rows(empty_ingest):
    """One load of a folder: each file without rows gets its warning (0 bytes, which
    Spark's file listing leaves out, too); with no row in any file the load is ``empty``.
    The two folder URLs of the module's project (:func:`empty_ingest`), one source each:
    the first file of ``with_rows`` has two rows, that of ``header_only`` none."""
    report, folders = empty_ingest["spark"], empty_ingest["folders"]
    loads = {r["source"]: r for r in report["data"]}
    warned = []
    for first, folder in folders.items():
        n = 2 if first == "with_rows" else 0
        assert (loads[first]["status"], loads[first]["rows_read"], loads[first]["rows_accepted"]) \
            == ("loaded" if n else "empty", n, n), first
        local = f"file:{folder.resolve()}"  # as Spark names local files
        header_only = ["2024-02.csv"] if n else ["2024-01.csv", "2024-02.csv"]
        warned += sorted(  # the sources in the project's order, each one's files in order
            [f"file {local}/{f} has a header but no data rows; loaded as 0 rows"
             for f in header_only]
            + [f"file {local}/2024-03.csv is empty (0 bytes: no header to check); "
               "loaded as 0 rows"])
    # the folders' warnings (the other sources' name their files by their paths)
    assert [w for w in report["warnings"] if w.startswith("file file:")] == warned


def test_a_file_of_a_folder_that_is_no_file_of_its_format_is_refused_alone(tmp_path, warehouse):
    """A binary file named .csv, a Parquet file cut short, one of 0 bytes, and a Parquet and a
    CSV file without a mapped column in a folder source: refused alone on Spark as on DuckDB (status ``rejected``, one warning
    naming each, a ``loads`` row once per content), the other files loaded; Excel-safe text
    (``="00123"``, ``= "C2"``, a header name) in the CSV is read as the text inside on both
    engines (the same rows and ``excel_text`` flags; rows_flagged counts rows); transaction
    lines without ids repeating a block (in a file, from another file) are flagged
    ``repeated_lines`` with the same warnings on both engines."""
    require_spark()
    import io

    from segflow.config import Settings
    from segflow.project import Project
    from segflow.store._spark import SparkStore

    root = _project(tmp_path, "data/orders", "csv", warehouse, "empty_rejected")
    toml = root / "segflow.toml"
    toml.write_text(toml.read_text().replace('format = "csv"\n', ""))  # CSV and Parquet
    (root / "data" / "customers.csv").write_text("id\nC1\nC2\n00123\n")
    # lines without ids (a source of their own): a month twice in a.csv, again in b.csv
    toml.write_text(toml.read_text() + LINES_TOML)
    (root / "data" / "lines").mkdir()
    (root / "data" / "lines" / "a.csv").write_text(LINES_HEADER + LINES + LINES)
    (root / "data" / "lines" / "b.csv").write_bytes((LINES_HEADER + LINES).replace("\n", "\r\n").encode())
    folder = root / "data" / "orders"
    folder.mkdir()
    # Excel-safe text in a header name and with a space after '=' too
    (folder / "a.csv").write_text(HEADER.replace("customer", '="customer"')
                                  + 'O1,="00123",="2024-01-05 10:00:00",="10.50"\n'
                                  'O2,= "C2",2024-01-06 10:00:00,20\n')
    buf = io.BytesIO()
    pq.write_table(pa.table({"order_id": ["O3"], "customer": ["C1"],
                             "order_date": ["2024-01-07 10:00:00"], "amount": ["30"]}), buf)
    (folder / "c.parquet").write_bytes(buf.getvalue()[:200])  # cut short: no footer
    buf = io.BytesIO()  # another schema: no amount column
    pq.write_table(pa.table({"order_id": ["O4"], "customer": ["C1"],
                             "order_date": ["2024-01-08 10:00:00"]}), buf)
    (folder / "d.parquet").write_bytes(buf.getvalue())
    (folder / "logo.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    # a CSV without the amount column and a Parquet file of 0 bytes (session 61: both stopped
    # the ingest, on either engine)
    (folder / "e.csv").write_text("order_id,customer,order_date\nO5,C1,2024-01-09 10:00:00\n")
    (folder / "f.parquet").write_bytes(b"")
    with Project.open(root) as project, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        duck = project.ingest(engine="duckdb").to_dict()
        sql = ("SELECT source, source_file, status, rows_read, rows_accepted FROM loads",
               "SELECT coalesce(transaction_id, ''), customer_id, amount FROM transactions",
               "SELECT source_file, row_number, rule, column_name, value FROM ingest_flags")
        duck_rows = [sorted(project.store.raw.execute(s).fetchall()) for s in sql]
    code, spark = _spark_ingest(root)
    assert code == 0, spark

    def rows_of(data: list[dict]) -> list[dict]:
        return sorted(({k: v for k, v in r.items() if k != "load_id"} for r in data),
                      key=lambda r: (r["source"], r["source_file"]))

    assert rows_of(spark["data"]) == rows_of(duck["data"])
    status = {r["source_file"]: r["status"] for r in spark["data"]}
    assert status == {"data/customers.csv": "loaded", "data/orders/a.csv": "loaded",
                      "data/orders/c.parquet": "rejected", "data/orders/d.parquet": "rejected",
                      "data/orders/e.csv": "rejected", "data/orders/f.parquet": "rejected",
                      "data/orders/logo.csv": "rejected", "data/lines/a.csv": "loaded",
                      "data/lines/b.csv": "loaded"}
    flagged = {r["source_file"]: (r["rows_flagged"], r["values_flagged"]) for r in spark["data"]}
    assert flagged["data/orders/a.csv"] == (2, 4)  # rows, values (row 1: three values)
    assert flagged["data/lines/a.csv"] == (5, 5) and flagged["data/lines/b.csv"] == (5, 5)
    assert spark["warnings"] == duck["warnings"]
    repeats = [w for w in spark["warnings"] if "line for line" in w or "stored already" in w]
    assert [w.split(" (")[0] for w in repeats] == [
        "file data/lines/a.csv: rows 6 to 10 repeat rows 1 to 5 line for line",
        "file data/lines/b.csv: all 5 lines of 3 days"]
    said = [w for w in spark["warnings"] if "not loaded" in w]
    assert [w.split(":")[0] for w in said] == ["file data/orders/c.parquet",
                                               "file data/orders/d.parquet, header, column 'amount'",
                                               "file data/orders/e.csv, header, column 'amount'",
                                               "file data/orders/f.parquet",
                                               "file data/orders/logo.csv"]
    assert said[3].startswith("file data/orders/f.parquet: the file is empty (0 bytes); not loaded")
    assert said[0].split(": ", 1)[1].startswith("cannot read as Parquet: ")
    assert said[1].split(": ", 1)[1].startswith("mapped column 'amount' (for canonical "
                                                "'amount') is not in the source")
    assert said[4].startswith("file data/orders/logo.csv: the file holds binary data (a PNG "
                              "image), not delimited text; is it really a CSV?; not loaded, the "
                              "other files of source 'orders' are (binary_files = \"fail\" "
                              "stops the ingest instead)")
    store = SparkStore.open(Settings.load(root).engine, root)
    from pyspark.sql import functions as F

    tid = F.coalesce("transaction_id", F.lit("")).alias("transaction_id")
    spark_rows = [sorted(tuple(r) for r in store.dataframe(t).select(*cols).collect())
                  for t, cols in [("loads", ["source", "source_file", "status", "rows_read",
                                             "rows_accepted"]),
                                  ("transactions", [tid, "customer_id", "amount"]),
                                  ("ingest_flags", ["source_file", "row_number", "rule",
                                                    "column_name", "value"])]]
    assert spark_rows == duck_rows
    assert [r for r in duck_rows[1] if r[0]] == [("O1", "00123", 10.5), ("O2", "C2", 20.0)]
    assert [r[1:] for r in duck_rows[2] if r[0] == "data/orders/a.csv"] == [
        (1, "excel_text", "amount", "10.50"), (1, "excel_text", "customer", "00123"),
        (1, "excel_text", "order_date", "2024-01-05 10:00:00"), (2, "excel_text", "customer", "C2")]
    assert [r[:3] + r[4:] for r in duck_rows[2] if r[0] != "data/orders/a.csv"] == [
        *[("data/lines/a.csv", i, "repeated_lines", f"repeats row {i - 5}") for i in range(6, 11)],
        *[("data/lines/b.csv", i, "repeated_lines", "stored from data/lines/a.csv")
          for i in range(1, 6)]]
    # again: refused again, no second row in the load log
    code, again = _spark_ingest(root)
    assert code == 0, again
    assert sorted(r["status"] for r in again["data"]) == [
        *["rejected"] * 5, "unchanged", "unchanged", "unchanged", "unchanged"]
    log = store.dataframe("loads").groupBy("status").count().collect()
    assert sorted(tuple(r) for r in log) == [("ok", 4), ("rejected", 5)]
