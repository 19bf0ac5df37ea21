"""The report's net revenue counts anonymous lines, as docs/data.md says (issue 12, item 4)."""

from __future__ import annotations

import datetime as dt
import html
import math

import pyarrow as pa
import pytest
from tests.pipeline._fixture import PROJECT_TOML, fixture_tables

from segflow.project import Project
from segflow.report._context import ReportContext
from segflow.report._queries import revenue_totals
from segflow.report._report import overview_section


@pytest.fixture()
def project_with_anonymous(tmp_path):
    project = Project.init(tmp_path / "proj", toml_text=PROJECT_TOML)
    tables = fixture_tables()
    tx = tables["transactions"]
    anonymous = pa.table({
        "transaction_id": ["A1", "A2", "A3"],
        "customer_id": pa.array([None, None, None], pa.string()),
        "ts": pa.array([dt.datetime(2024, 2, 1), dt.datetime(2024, 3, 5), dt.datetime(2024, 7, 2)],
                       pa.timestamp("us")),
        "amount": [1000.25, -40.0, 2500.5],
        "quantity": [1.0, -1.0, 3.0],
        "category": ["books", "books", "games"],
        "channel": ["store", "store", "store"],
        "is_return": [False, True, False],
    }).cast(tx.schema)
    for name, table in tables.items():
        project.store.append(name, table)
    project.store.append("transactions", anonymous)
    yield project, tx, anonymous
    project.close()


def test_revenue_totals_include_anonymous_lines(project_with_anonymous):
    project, tx, anonymous = project_with_anonymous
    identified = math.fsum(tx.column("amount").to_pylist())
    anon = math.fsum(anonymous.column("amount").to_pylist())  # 3460.75
    tot = revenue_totals(project.store)
    assert tot["net_revenue"] == pytest.approx(identified + anon, abs=1e-6)
    assert tot["anonymous_revenue"] == pytest.approx(3460.75, abs=1e-9)
    assert tot["identified_revenue"] == pytest.approx(identified, abs=1e-6)
    assert tot["transactions"] == tx.num_rows + 3
    assert tot["anonymous_transactions"] == 3
    assert tot["customers"] == len(set(tx.column("customer_id").to_pylist()))
    assert tot["last"] == dt.date(2024, 7, 2)  # an anonymous line is the latest


def test_overview_shows_the_total_and_labels_the_anonymous_part(project_with_anonymous):
    project, tx, _ = project_with_anonymous
    text = html.unescape("".join(overview_section(ReportContext(project)).blocks))
    total = math.fsum(tx.column("amount").to_pylist()) + 3460.75
    assert total < 1e6  # shown in full, not in millions
    assert f'Net revenue, all time</span><b>{total:,.0f} USD</b>' in text
    assert "returns netted; 3,461 USD of it from 3 lines without a customer id" in text


def test_revenue_totals_are_exact_whatever_the_threads(tmp_path):
    """The headline totals are the exact decimal sums (as the stored aggregates'): a float
    sum of 0.1 + 0.2 + ... depends on the order the threads add in, and 100,000 lines of
    cents summed as doubles miss the decimal total in the last digits."""
    from decimal import Decimal

    from segflow.store import Store

    store = Store(tmp_path / "s.duckdb")
    n = 100_000
    amounts = [round(0.01 * (i % 997) + 0.1, 2) for i in range(n)]
    ids = pa.array([None if i % 7 == 0 else f"C{i % 1000}" for i in range(n)], pa.string())
    rows = pa.table({"transaction_id": [f"T{i}" for i in range(n)], "customer_id": ids,
                     "ts": pa.array([dt.datetime(2024, 1, 1) + dt.timedelta(minutes=i)
                                     for i in range(n)], pa.timestamp("us")),
                     "amount": amounts})
    store.raw.register("rows", rows)
    store.raw.execute("INSERT INTO transactions BY NAME SELECT * FROM rows")
    exact = sum(Decimal(repr(a)) for a in amounts)
    anon = sum(Decimal(repr(a)) for i, a in enumerate(amounts) if i % 7 == 0)
    assert float(sum(amounts)) != float(exact)  # a float sum misses it
    got = []
    for threads in (1, 2, 4):
        store.raw.execute(f"SET threads = {threads}")
        got.append(revenue_totals(store))
    for tot in got:
        assert tot["net_revenue"] == float(exact)
        assert tot["anonymous_revenue"] == float(anon)
        assert tot["identified_revenue"] == float(exact - anon)
    store.close()
