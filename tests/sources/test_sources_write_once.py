"""The write-once ingest (one narrow judging pass, one insert) stores exactly what the
two-copy path (validated copy of the file, then the insert) stores: canonical tables,
quarantine, duplicates, flags, loads and the report, on the demo data with its defects, for a
first load and for a forced re-load with corrected orders (late corrections, rows already
loaded, rows already quarantined)."""

from __future__ import annotations

import datetime as dt
import shutil
import warnings
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from segflow.config import Settings
from segflow.sources import _ingest, ingest
from segflow.store import CANONICAL_TABLES, Store

datasets = pytest.importorskip("segflow.datasets")

TABLES = [*CANONICAL_TABLES, "quarantine", "ingest_duplicates", "ingest_flags", "loads"]
LEFT_OUT = {"load_id", "started_at", "finished_at", "ingested_at"}  # differ between any two loads
CORRECTED = 5  # orders whose amount the second delivery changes
_END = dt.datetime(2025, 1, 1)  # the demo data covers 2024


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("once")
    datasets.generate_demo(root / "data", customers=300, months=6, seed=11)
    return root / "data"


def _correct_orders(path: Path) -> set[str]:
    """Add 1 to the amount of the first CORRECTED plain orders of the file; their ids."""
    con = duckdb.connect()
    rel = f"read_parquet('{path}')" if path.suffix == ".parquet" else f"read_csv('{path}', all_varchar=true)"
    ids = [r[0] for r in con.execute(
        f"""SELECT order_id FROM {rel} WHERE order_id LIKE 'O%' AND TRY_CAST(amount AS DOUBLE) > 1
            GROUP BY order_id HAVING count(*) = 1 ORDER BY order_id LIMIT {CORRECTED}""").fetchall()]
    fixed = f"""SELECT * REPLACE (CASE WHEN order_id IN ({', '.join(f"'{i}'" for i in ids)})
        THEN CAST(CAST(amount AS DOUBLE) + 1 AS {'DOUBLE' if path.suffix == '.parquet' else 'VARCHAR'})
        ELSE amount END AS amount) FROM {rel}"""
    tmp = path.with_name("fixed" + path.suffix)
    fmt = "PARQUET" if path.suffix == ".parquet" else "CSV, HEADER"
    con.execute(f"COPY ({fixed}) TO '{tmp}' (FORMAT {fmt})")
    con.close()
    tmp.replace(path)
    return set(ids)


def _load_twice(data: Path, root: Path, file_format: str) -> tuple[dict[str, pd.DataFrame], list]:
    shutil.copytree(data, root / "data")
    (root / "segflow.toml").write_text(datasets.demo_project_toml("data", file_format=file_format),
                                       encoding="utf-8")
    store, reports = Store(":memory:"), []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reports.append(ingest(store, Settings.load(root), root, now=_END))
        # the second delivery: the same files under new names (a file read again under its
        # old name takes the two-copy path), the orders corrected
        text = (root / "segflow.toml").read_text(encoding="utf-8")
        for t in CANONICAL_TABLES:
            shutil.copy(root / "data" / f"{t}.{file_format}", root / "data" / f"{t}_2.{file_format}")
            text = text.replace(f"{t}.{file_format}", f"{t}_2.{file_format}")
        (root / "segflow.toml").write_text(text, encoding="utf-8")
        _correct_orders(root / "data" / f"transactions_2.{file_format}")
        reports.append(ingest(store, Settings.load(root), root, now=_END, force=True))
    tables = {}
    for t in TABLES:
        frame = store.sql(f"SELECT * FROM {t}").to_pandas()
        frame = frame.drop(columns=[c for c in frame.columns if c in LEFT_OUT])
        tables[t] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    counts = [r.to_pandas().drop(columns="load_id") for r in reports]
    return tables, counts



@pytest.mark.parametrize("file_format", ["parquet"])
def test_write_once_stores_what_the_two_copy_path_stores(data, tmp_path, monkeypatch,
                                                         file_format) -> None:
    once, once_counts = _load_twice(data, tmp_path / "once", file_format)
    monkeypatch.setattr(_ingest, "write_once", lambda source, again: False)
    two, two_counts = _load_twice(data, tmp_path / "two", file_format)
    for t in TABLES:
        pd.testing.assert_frame_equal(once[t], two[t], obj=t)
    for a, b in zip(once_counts, two_counts, strict=True):
        pd.testing.assert_frame_equal(a, b)
    first, again = once_counts
    orders = again.set_index("table").loc["transactions"]
    assert orders.rows_replaced == CORRECTED  # the corrected orders replace the stored ones
    # every other row of the second delivery is a duplicate: stored or quarantined before
    assert again.rows_accepted.sum() == CORRECTED and again.rows_quarantined.sum() == 0
    assert again.rows_duplicate.sum() == first.rows_read.sum() - CORRECTED
    assert first.rows_quarantined.sum() > 0 and first.rows_duplicate.sum() > 0
    assert len(once["ingest_flags"]) > 0 and len(once["quarantine"]) == first.rows_quarantined.sum()


_TYPED_TOML = """
[[sources]]
name = "orders"
table = "transactions"
path = "orders.parquet"
{extra}
[sources.columns]
transaction_id = "order_id"
customer_id = "customer"
ts = "order_date"
amount = "amount"
quantity = "quantity"
"""


def _typed_orders(root: Path, extra: str) -> None:
    """Six orders with typed (Parquet) date, amount and quantity columns: empty, NaN and
    infinite values among them."""
    root.mkdir()
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT * FROM (VALUES
        ('O1', 'C1', TIMESTAMP '2024-01-01 10:00:00', 10.0::DOUBLE, 1::BIGINT),
        ('O2', 'C1', NULL, 5.0, 1),
        ('O3', 'C1', TIMESTAMP '2024-01-02 10:00:00', NULL, 1),
        ('O4', 'C1', TIMESTAMP '2024-01-03 10:00:00', 'nan'::DOUBLE, 1),
        ('O5', 'C1', TIMESTAMP '2024-01-04 10:00:00', 'inf'::DOUBLE, 1),
        ('O6', 'C1', TIMESTAMP '2024-01-05 10:00:00', 7.5, NULL))
        t(order_id, customer, order_date, amount, quantity)) TO '{root / "orders.parquet"}'
        (FORMAT PARQUET)""")
    con.close()
    (root / "segflow.toml").write_text(_TYPED_TOML.format(extra=extra), encoding="utf-8")


def _typed_result(root: Path) -> tuple[list, list]:
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest(store, Settings.load(root), root, now=_END)
    stored = store.raw.execute("""SELECT transaction_id, ts, amount, quantity FROM transactions
        ORDER BY transaction_id""").fetchall()
    quarantined = store.raw.execute("""SELECT row_number, rule, column_name, reason
        FROM quarantine ORDER BY row_number""").fetchall()
    store.close()
    return stored, quarantined


@pytest.mark.parametrize("once", [True, False])
def test_typed_columns_judged_without_their_text(tmp_path, monkeypatch, once) -> None:
    """The judging pass reads typed dates and numbers without casting them to text: empty
    ones are missing, NaN and infinity are no numbers (the reason shows the value's text), as
    in the two-copy path; with max_field_chars below the length of a date's text the date
    is too long (then it is tested as text)."""
    if not once:
        monkeypatch.setattr(_ingest, "write_once", lambda source, again: False)
    _typed_orders(tmp_path / "p", "")
    stored, quarantined = _typed_result(tmp_path / "p")
    assert stored == [("O1", dt.datetime(2024, 1, 1, 10), 10.0, 1.0),
                      ("O6", dt.datetime(2024, 1, 5, 10), 7.5, None)]
    assert quarantined == [
        (2, "missing_date", "order_date", "ts is empty or a missing-value token of null_values, such as NA (source column order_date)"),
        (3, "missing_amount", "amount", "amount is empty or a missing-value token of null_values, such as NA (source column amount)"),
        (4, "non_numeric_amount", "amount", "'nan' is not a number"),
        (5, "non_numeric_amount", "amount", "'inf' is not a number"),
    ]
    _typed_orders(tmp_path / "short", "max_field_chars = 12")
    stored, quarantined = _typed_result(tmp_path / "short")
    # '2024-01-01 10:00:00' has 19 characters; O2 has no date (its amount '5' fits)
    assert stored == []
    assert [(r[0], r[1], r[2]) for r in quarantined] == [
        (1, "field_too_long", "order_date"), (2, "missing_date", "order_date"),
        (3, "field_too_long", "order_date"), (4, "field_too_long", "order_date"),
        (5, "field_too_long", "order_date"), (6, "field_too_long", "order_date")]
    assert quarantined[0][3] == "a value of 19 characters is longer than max_field_chars = 12"
