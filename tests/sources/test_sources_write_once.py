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
