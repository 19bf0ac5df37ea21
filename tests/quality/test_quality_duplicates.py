"""The audit's ``duplicate_rows`` check (grouped by a hash of each row first, then exactly on
the rows whose hash repeats) against pandas' ``duplicated()`` of the same rows, on DuckDB and
on Spark ``local[1]``.

A real hash cannot be made to collide on purpose, so the rows are the near misses a wrong
check would merge: for every canonical column, a copy of a base row that differs in that
column only (another value, and NULL); NULL against an empty string; and identical rows that
differ only in their lineage (source row, file, load), which the check must count.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest

from segflow.quality import audit
from segflow.store import CANONICAL_TABLES, Store

AS_OF = dt.date(2024, 7, 1)
TX = {"transaction_id": "T1", "customer_id": "C1", "ts": pd.Timestamp("2024-03-01 10:00"),
      "amount": 12.5, "quantity": 1.0, "unit_price": 12.5, "category": "books",
      "channel": "web", "promo_code": "", "is_return": False, "product_id": "P1"}
CU = {"customer_id": "C1", "created_at": pd.Timestamp("2023-01-01"), "email": "a@x.org",
      "phone": "", "age_band": "25-34", "gender": "female", "income_band": "mid",
      "region": "north", "city": "York", "signup_channel": "web",
      "valid_from": pd.Timestamp("2023-01-01"), "valid_to": None}
OTHER = {str: "zz", float: 99.0, bool: True, pd.Timestamp: pd.Timestamp("2024-03-02 10:00")}


def _near_misses(base: dict) -> list[dict]:
    """``base`` three times (two identical copies), then per column a copy with another
    value and a copy with NULL (each twice when the NULL copy is of an empty string: NULL
    and '' must stay apart), and a copy with the column's NULL against ''."""
    rows = [dict(base), dict(base), dict(base)]
    for col, value in base.items():
        if value is None:
            rows += [{**base, col: "2024-01-01"}]
            continue
        other = OTHER[str] if isinstance(value, str) else OTHER[type(value)]
        rows += [{**base, col: other}, {**base, col: None}, {**base, col: None}]
        if isinstance(value, str):  # NULL and '' in the same column: two groups
            rows += [{**base, col: ""}, {**base, col: ""}] if value else [{**base, col: "x"}]
    return rows


def _frame(rows: list[dict], table: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(CANONICAL_TABLES[table]))
    # lineage differs on every row: identical rows from different loads count as duplicates
    return frame.assign(source="s", source_file=[f"f{i % 2}.csv" for i in range(len(frame))],
                        source_row=range(1, len(frame) + 1),
                        load_id=[f"L{i % 3}" for i in range(len(frame))])


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return {"transactions": _frame(_near_misses(TX), "transactions"),
            "customers": _frame(_near_misses(CU), "customers")}


def _store(tables: dict[str, pd.DataFrame]) -> Store:
    store = Store(":memory:")
    for name, frame in tables.items():
        store.append(name, pa.Table.from_pandas(frame, preserve_index=False))
    return store


def _expected(frame: pd.DataFrame, table: str) -> int:
    """Identical rows beyond the first of each group, by pandas (NaN equals NaN there, as
    NULL equals NULL in a GROUP BY; None and '' differ)."""
    return int(frame[list(CANONICAL_TABLES[table])].duplicated().sum())


def _counts(report) -> dict[str, int]:
    frame = report.to_pandas()
    frame = frame[frame.check == "duplicate_rows"]
    return dict(zip(frame.table, frame["count"], strict=True))


def test_the_hashed_duplicate_check_counts_what_pandas_counts(tables):
    store = _store(tables)
    got = _counts(audit(store, as_of=AS_OF))
    want = {name: _expected(frame, name) for name, frame in tables.items()}
    # worked out by hand too: base 3 times (2 extra); each column's NULL copy twice (1 extra
    # each); each non-empty text column's '' copy twice (1 extra each)
    tx_text = sum(isinstance(v, str) and v != "" for v in TX.values())
    cu_text = sum(isinstance(v, str) and v != "" for v in CU.values())
    assert want == {"transactions": 2 + len(TX) + tx_text,
                    "customers": 2 + sum(v is not None for v in CU.values()) + cu_text}
    assert got == want
    store.close()


def test_the_examples_name_the_keys_of_the_duplicated_groups(tables):
    store = _store(tables)
    frame = audit(store, as_of=AS_OF).to_pandas().set_index(["check", "table"])
    for name, key in (("transactions", "transaction_id"), ("customers", "customer_id")):
        rows = tables[name][list(CANONICAL_TABLES[name])]
        groups = rows[rows.duplicated(keep=False)].drop_duplicates()
        keys = groups[key].sort_values(na_position="last").head(5)
        want = "; ".join(f"{key}={v}" for v in keys)
        assert len(groups) > 5 and frame.loc[("duplicate_rows", name), "examples"] == want
    store.close()


@pytest.mark.spark
@pytest.mark.slow
def test_the_same_counts_on_spark(tables):
    from tests._engines import require_spark

    require_spark()
    from segflow.engine import connect
    from segflow.quality._audit import _duplicates

    store = _store(tables)
    engine = connect(store, "spark")
    try:
        for name, frame in tables.items():
            check = _duplicates(name, engine.table(name), len(frame))
            want = _duplicates(name, store.table(name), len(frame))
            assert check.count == _expected(frame, name) == want.count, name
            assert check.examples == want.examples, name
    finally:
        engine.close()
        store.close()
