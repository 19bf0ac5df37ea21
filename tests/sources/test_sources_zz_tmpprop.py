"""Property: random corruptions of a valid file always reconcile, and no row is lost."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sources_project import NOW

from segflow.config import Settings
from segflow.errors import InputError
from segflow.sources import ingest
from segflow.store import Store

TOML = """
[[sources]]
name = "orders"
table = "transactions"
path = "orders.csv"
date_formats = ["%Y-%m-%d %H:%M:%S", "%d/%m/%Y"]
options = { delimiter = "," }
[sources.columns]
transaction_id = "order_id"
customer_id = "customer"
ts = "date"
amount = "amount"
quantity = "qty"
category = "category"
"""
HEADER = "order_id,customer,date,amount,qty,category"
VALID = [f"O{i:03d},C{i % 7},2024-0{1 + i % 9}-1{i % 10} 10:00:00,{(i * 7.5) % 40 + 1:.2f},"
         f"{1 + i % 3},cat{i % 4}" for i in range(30)]

FIELD = st.one_of(
    st.sampled_from(["", " ", "abc", "-5", "0", "1e309", "NaN", "31/02/2024", "2099-01-01 00:00:00",
                     "13/13/2024", "=SUM(A1)", "C999", '"quoted, comma"', "1,5", "x" * 300]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\r\n"),
            max_size=12),
)


@st.composite
def corrupted(draw) -> tuple[list[str], bool]:
    rows = list(VALID)
    quotes = False
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["field", "drop", "extra", "dup", "blank_id", "swap"]))
        i = draw(st.integers(0, len(rows) - 1))
        cells = rows[i].split(",")
        if kind == "field":
            j = draw(st.integers(0, len(cells) - 1))
            value = draw(FIELD)
            quotes |= '"' in value
            cells[j] = value
        elif kind == "drop" and len(cells) > 1:
            cells.pop(draw(st.integers(0, len(cells) - 1)))
        elif kind == "extra":
            cells.append("surplus")
        elif kind == "dup":
            rows.insert(i + 1, rows[i])
            continue
        elif kind == "blank_id":
            cells[draw(st.sampled_from([0, 1]))] = ""
        elif kind == "swap" and len(rows) > 1:
            k = draw(st.integers(0, len(rows) - 1))
            rows[i], rows[k] = rows[k], rows[i]
            continue
        rows[i] = ",".join(cells)
    return rows, quotes


def _count(store: Store, sql: str) -> int:
    return store.sql(sql).column(0)[0].as_py()


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrupted())
def test_random_corruptions_reconcile(case):
    rows, quotes = case
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "segflow.toml").write_text(TOML)
        (project / "orders.csv").write_text(HEADER + "\n" + "\n".join(rows) + "\n")
        store = Store(":memory:")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = ingest(store, Settings.load(project), project, now=NOW)
        except InputError:
            assert _count(store, "SELECT count(*) FROM loads") == 0  # nothing half-written
            return
        (load,) = report.loads
        assert report.reconciles
        assert load.rows_accepted == _count(store, "SELECT count(*) FROM transactions")
        assert load.rows_quarantined == _count(store, "SELECT count(*) FROM quarantine")
        assert load.rows_duplicate == _count(store, "SELECT count(*) FROM ingest_duplicates")
        numbers = store.sql("""SELECT source_row AS r FROM transactions
            UNION ALL SELECT row_number FROM quarantine
            UNION ALL SELECT row_number FROM ingest_duplicates""").column(0).to_pylist()
        assert len(numbers) == load.rows_read
        if not quotes:  # one record per line: every data line is accounted for exactly once
            assert sorted(numbers) == list(range(1, len(rows) + 1))
