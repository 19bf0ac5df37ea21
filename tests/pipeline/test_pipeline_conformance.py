"""One pipeline, two engines: ``Project.run(engine="spark")`` computes on Spark from the
project's warehouse (the path the CLI takes) and gives DuckDB's assignments and transitions."""

from __future__ import annotations

import pytest
from tests._engines import require_spark

pytestmark = [pytest.mark.spark, pytest.mark.slow]

COLUMNS = ["scheme", "snapshot_date", "customer_id", "segment", "segment_rank"]


def _assignments(project):
    return project.store.raw.execute(
        f"SELECT {', '.join(COLUMNS)} FROM segment_assignments ORDER BY ALL").df()


def test_duckdb_and_spark_give_identical_assignments_and_transitions(fixture_project):
    require_spark()
    from segflow.migration import transition_matrix
    from segflow.warehouse import push_to_warehouse

    fixture_project.run(engine="duckdb")
    on_duckdb = _assignments(fixture_project)
    m_duckdb = fixture_project.transitions("rfm").to_pandas()

    # the fixture's tables were written straight into the DuckDB store (no sources to
    # ingest): `warehouse push`, the migration tool, copies them into the warehouse
    warehouse = fixture_project.warehouse
    pushed = push_to_warehouse(fixture_project.store, warehouse)
    assert pushed["transactions"] == fixture_project.store.table("transactions").count().execute()
    summary = fixture_project.run(engine="spark")
    assert summary.engine == "spark" and summary.run_id in warehouse.committed_runs()
    got = warehouse.table("segment_assignments").to_pandas()[COLUMNS]
    got = got.sort_values(COLUMNS, ignore_index=True)
    got["snapshot_date"] = got["snapshot_date"].astype(on_duckdb["snapshot_date"].dtype)

    assert len(on_duckdb) > 0
    assert on_duckdb.equals(got.astype(on_duckdb.dtypes.to_dict())), \
        on_duckdb.compare(got).head(20)
    # the run wrote nothing into the DuckDB store
    assert _assignments(fixture_project).equals(on_duckdb)

    # the transition matrix computed by Spark from the warehouse's tables
    dates = fixture_project.snapshot_dates("rfm")
    m_spark = transition_matrix(
        warehouse.table("segment_assignments"), scheme="rfm", from_date=dates[-2],
        to_date=dates[-1], transactions=warehouse.table("transactions"),
    ).to_pandas()
    # money to the cent: a parallel float sum may differ in its last bit between engines
    for m in (m_duckdb, m_spark):
        m["revenue"] = m["revenue"].round(2)
    assert m_duckdb.equals(m_spark), m_duckdb.compare(m_spark).head(20)
