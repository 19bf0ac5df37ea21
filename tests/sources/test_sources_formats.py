"""The same data from CSV, Parquet, JSON lines, Excel, a DuckDB file and Postgres gives
identical canonical tables; reader options (delimiter, decimal comma, time zone) work."""

from __future__ import annotations

import warnings
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sources_project import NOW

from segflow.config import Settings
from segflow.sources import ingest
from segflow.store import Store

ROWS = pd.DataFrame({
    "order_id": ["A1", "A2", "A3", "A4", "A5", "A6", "A2"],
    "customer": ["c1", "c2", None, "c1", "c3", "c2", "c2"],
    "ts": pd.to_datetime(["2024-01-02 10:00:00", "2024-01-03 11:30:00", "2024-01-05 00:00:00",
                          "2024-02-01 09:15:00", "2030-01-01 00:00:00", "2024-03-01 12:00:00",
                          "2024-01-03 11:30:00"]),
    "amount": [10.5, 20.25, 5.0, -10.5, 3.0, 0.0, 20.25],
    "qty": [1, 2, 1, -1, 1, 1, 2],
    "category": ["books", "music", "books", "books", "toys", "toys", "music"],
})
MAPPING = """
[sources.columns]
transaction_id = "order_id"
customer_id = "customer"
ts = "ts"
amount = "amount"
quantity = "qty"
category = "category"
"""
# A5 future, 2nd A2 duplicate; A6 ($0) is kept: zero_amount is an opt-in rule
EXPECTED_IDS = ["A1", "A2", "A3", "A4", "A6"]


def _toml(fmt: str, path: str, options: str = "") -> str:
    out = f'[[sources]]\nname = "orders"\ntable = "transactions"\nformat = "{fmt}"\n'
    if path:
        out += f'path = "{path}"\n'
    if options:
        out += f"options = {options}\n"
    return out + MAPPING


def _ingest(project: Path, toml: str) -> Store:
    (project / "segflow.toml").write_text(toml)
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = ingest(store, Settings.load(project), project, now=NOW)
    frame = report.to_pandas()
    assert frame.rows_read.tolist() == [7]
    assert frame.rows_accepted.tolist() == [5] and frame.rows_duplicate.tolist() == [1]
    return store


def _canonical(store: Store) -> pd.DataFrame:
    return store.sql("SELECT * EXCLUDE (source_file, load_id) FROM transactions "
                     "ORDER BY transaction_id").to_pandas()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    root = tmp_path_factory.mktemp("csv")
    frame = ROWS.assign(ts=ROWS.ts.dt.strftime("%Y-%m-%d %H:%M:%S"))
    frame.to_csv(root / "orders.csv", index=False)
    got = _canonical(_ingest(root, _toml("csv", "orders.csv")))
    assert got.transaction_id.tolist() == EXPECTED_IDS
    assert got.amount.tolist() == [10.5, 20.25, 5.0, -10.5, 0.0]
    assert got.is_return.tolist() == [False, False, False, True, False]
    assert got.customer_id.isna().tolist() == [False, False, True, False, False]
    assert str(got.ts[1]) == "2024-01-03 11:30:00"
    return got


def test_parquet(tmp_path, reference):
    pq.write_table(pa.Table.from_pandas(ROWS, preserve_index=False), tmp_path / "orders.parquet")
    pd.testing.assert_frame_equal(_canonical(_ingest(tmp_path, _toml("parquet", "orders.parquet"))),
                                  reference, check_dtype=False)


def test_parquet_with_time_zone_and_float_ids(tmp_path, reference):
    frame = ROWS.assign(ts=ROWS.ts.dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin"))
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "orders.parquet")
    got = _canonical(_ingest(tmp_path, _toml("parquet", "orders.parquet")))
    pd.testing.assert_frame_equal(got, reference, check_dtype=False)  # stored as UTC


def test_jsonl(tmp_path, reference):
    frame = ROWS.assign(ts=ROWS.ts.dt.strftime("%Y-%m-%dT%H:%M:%S"))
    frame.to_json(tmp_path / "orders.jsonl", orient="records", lines=True)
    pd.testing.assert_frame_equal(_canonical(_ingest(tmp_path, _toml("jsonl", "orders.jsonl"))),
                                  reference, check_dtype=False)


def test_xlsx(tmp_path, reference):
    ROWS.to_excel(tmp_path / "orders.xlsx", index=False, engine="openpyxl")
    pd.testing.assert_frame_equal(_canonical(_ingest(tmp_path, _toml("xlsx", "orders.xlsx"))),
                                  reference, check_dtype=False)


def test_duckdb_file(tmp_path, reference):
    con = duckdb.connect(str(tmp_path / "shop.duckdb"))
    con.register("rows", ROWS)
    con.execute("CREATE TABLE orders AS SELECT * FROM rows")
    con.close()
    toml = _toml("duckdb", "shop.duckdb", '{ table = "orders" }')
    pd.testing.assert_frame_equal(_canonical(_ingest(tmp_path, toml)), reference, check_dtype=False)


def test_semicolon_decimal_comma_thousands_and_time_zone(tmp_path, reference):
    frame = ROWS.assign(
        ts=(ROWS.ts.dt.tz_localize("UTC").dt.tz_convert("America/New_York")
            .dt.strftime("%d/%m/%Y %H:%M:%S")),
        amount=[f"{v:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".") for v in ROWS.amount],
    )
    frame.to_csv(tmp_path / "orders.csv", index=False, sep=";", encoding="latin-1")
    toml = _toml("csv", "orders.csv", '{ delimiter = ";", decimal = ",", thousands = "." }')
    toml = toml.replace('format = "csv"', 'format = "csv"\ntimezone = "America/New_York"\n'
                        'date_formats = ["%d/%m/%Y %H:%M:%S"]')
    pd.testing.assert_frame_equal(_canonical(_ingest(tmp_path, toml)), reference, check_dtype=False)


# -- Postgres -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def postgres():
    from tests._postgres import postgres_server

    with postgres_server() as url:
        yield url


@pytest.mark.postgres
def test_postgres_table(tmp_path, reference, postgres):
    import psycopg

    with psycopg.connect(postgres.replace("postgres://", "postgresql://"), autocommit=True) as con:
        con.execute("DROP TABLE IF EXISTS orders")
        con.execute("CREATE TABLE orders (order_id text, customer text, ts timestamp, "
                    "amount double precision, qty integer, category text, line serial)")
        with con.cursor().copy("COPY orders (order_id, customer, ts, amount, qty, category) "
                               "FROM STDIN") as copy:
            for row in ROWS.itertuples(index=False):
                copy.write_row([None if pd.isna(v) else v for v in row])
    toml = _toml("postgres", "", f'{{ connection = "{postgres}", table = "orders", order_by = "line" }}')
    got = _canonical(_ingest(tmp_path, toml))
    pd.testing.assert_frame_equal(got, reference, check_dtype=False)


@pytest.mark.postgres
def test_postgres_reads_are_not_judged_as_deliveries_of_a_file(tmp_path, postgres):
    """A database source is read whole at every ingest, often by a query of recent rows:
    rows of an earlier read that a new read lacks are neither counted as stale nor removed
    (redelivery applies to files)."""
    import psycopg

    url = postgres.replace("postgres://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("DROP TABLE IF EXISTS recent")
        con.execute("CREATE TABLE recent (order_id text, customer text, ts timestamp, "
                    "amount double precision)")
        con.execute("INSERT INTO recent VALUES ('O1', 'C1', '2024-01-02', 10), "
                    "('O2', 'C2', '2024-01-03', 20)")
    toml = ('[[sources]]\nname = "orders"\ntable = "transactions"\nformat = "postgres"\n'
            'redelivery = "replace"\n'
            f'options = {{ connection = "{postgres}", query = "SELECT * FROM recent", '
            'order_by = "order_id" }\n[sources.columns]\ntransaction_id = "order_id"\n'
            'customer_id = "customer"\nts = "ts"\namount = "amount"\n')
    (tmp_path / "segflow.toml").write_text(toml)
    store = Store(":memory:")
    for rows in ("('O3', 'C1', '2024-02-02', 30)", None):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = ingest(store, Settings.load(tmp_path), tmp_path, now=NOW)
        assert not any("delivered again" in str(w.message) for w in caught)
        assert report.to_pandas().rows_stale.tolist() == [0]
        with psycopg.connect(url, autocommit=True) as con:  # the next read: recent rows only
            con.execute("DELETE FROM recent")
            if rows:
                con.execute(f"INSERT INTO recent VALUES {rows}")
    ids = store.sql("SELECT transaction_id FROM transactions ORDER BY 1")["transaction_id"]
    assert ids.to_pylist() == ["O1", "O2", "O3"]


def test_utf16_csv(tmp_path, reference):
    frame = ROWS.assign(ts=ROWS.ts.dt.strftime("%Y-%m-%d %H:%M:%S"))
    frame.to_csv(tmp_path / "orders.csv", index=False, encoding="utf-16")
    toml = _toml("csv", "orders.csv", '{ encoding = "utf-16" }')
    pd.testing.assert_frame_equal(_canonical(_ingest(tmp_path, toml)), reference, check_dtype=False)
