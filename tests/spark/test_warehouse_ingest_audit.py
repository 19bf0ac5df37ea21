"""``segflow ingest`` on Spark (``local[1]``) loads the demo files as the DuckDB ingest does
(the same counts per load and rule, the same canonical and quarantine rows) and stores the
data audit in the warehouse, as the DuckDB ingest stores it in its store (issue 10, "ingest
stores its audit"): after both engines ingest the same demo files, the two
``summary_audit`` tables are equal value by value; the warehouse's audit is current, so a Spark run keeps it; an ingest of unchanged
files leaves it as it is. The duplicate-rows counts are also checked against pandas'
``duplicated()`` of the warehouse's canonical rows (an independent count). The Spark ingest's
audit runs few Spark jobs (each costs scheduling whatever the data; in the suite's settings,
no adaptive execution: 32 on this demo before session 32, 8 after; docs/benchmarks.md,
"Session 32 (helper sparkaudit)").
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from tests._engines import require_spark
from tests.spark._jobs import count_spark_jobs

import segflow.quality as quality

pytestmark = [pytest.mark.spark, pytest.mark.slow]

#: The columns of a stored audit that hold its values (``created_at``, ``run_id``: when and
#: by which run it was stored, which differ between the engines).
VALUES = ["as_of", "check", "table", "severity", "count", "total", "share", "examples",
          "advice", "data_end", "score"]
#: The most Spark jobs the Spark ingest's audit may run on this demo in the suite's settings
#: (tests/conftest.py: no adaptive execution): 8 in session 32 (one per query), 32 before.
AUDIT_JOBS_MAX = 12
#: The project's [engine]: the warehouse of the suite's ``local[1]`` session (tests/conftest.py
#: ``spark_warehouse``; another would start a session of its own).
ENGINE = '\n[engine]\nkind = "spark"\nmaster = "local[1]"\nwarehouse = "{}"\ndatabase = "audit"\n'


def _values(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[VALUES].copy()
    for col in ("as_of", "data_end"):
        out[col] = pd.to_datetime(out[col]).dt.date
    out["examples"] = out["examples"].fillna("")
    out["advice"] = out["advice"].fillna("")
    return out.sort_values(["check", "table"], ignore_index=True).astype(object)


def _duck(project, query: str) -> pd.DataFrame:
    return project.store.raw.execute(query).df()


def _assert_same_ingest(project, store, ingested: dict) -> dict[str, pd.DataFrame]:
    """The Spark ingest (its report as a dict) against the DuckDB ingest of the same demo
    files: the same counts per load and rule, the same canonical and quarantine rows.
    Returns the warehouse's tables read (each read is a Spark job: read once)."""
    cols = ["source", "source_file", "rows_read", "rows_accepted", "rows_quarantined",
            "rows_duplicate"]
    got = pd.DataFrame(ingested["data"])[cols].sort_values("source_file", ignore_index=True)
    want = _duck(project, f"SELECT {', '.join(cols)} FROM loads ORDER BY source_file")
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert want["rows_quarantined"].sum() > 0 and want["rows_duplicate"].sum() > 0
    rules = _duck(project, "SELECT source, rule, count(*) AS n FROM quarantine GROUP BY ALL")
    assert {(r["source"], r["rule"]): r["rows"] for r in ingested["rules"]} == \
        {(r.source, r.rule): r.n for r in rules.itertuples()}
    read = {}
    for table, key in (("customers", "customer_id"), ("transactions", "transaction_id"),
                       ("events", "source_row"), ("quarantine", "row_number")):
        w = _duck(project, f'SELECT * EXCLUDE (load_id) FROM "{table}"')
        read[table] = store.table(table).to_pandas()
        g = read[table][w.columns.tolist()]
        w, g = (f.sort_values(["source", key], ignore_index=True).astype(object) for f in (w, g))
        w, g = (f.where(f.notna(), None) for f in (w, g))
        if "ingested_at" in w:
            w, g = w.drop(columns="ingested_at"), g.drop(columns="ingested_at")
        pd.testing.assert_frame_equal(g, w, check_dtype=False, obj=table)
    return read


def test_the_spark_ingest_stores_the_duckdb_ingests_audit(tmp_path, monkeypatch, spark_warehouse):
    require_spark()
    from segflow.datasets import demo_project_toml, generate_demo
    from segflow.project import Project
    from segflow.store import CANONICAL_TABLES
    from segflow.summaries import audit_is_current

    ds = generate_demo(tmp_path / "data", customers=80, months=4, seed=11, formats=("parquet",))
    toml = demo_project_toml(tmp_path / "data", file_format="parquet", max_date=ds.end)
    project = Project.init(tmp_path / "proj", toml_text=toml + ENGINE.format(spark_warehouse))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the demo data carries injected defects on purpose
            project.ingest(engine="duckdb")
            counted: list[int] = []
            count_spark_jobs(monkeypatch, quality, "audit", counted)
            ingested = project.ingest(engine="spark")
        print(f"the Spark ingest's audit: {counted} Spark jobs")
        assert len(counted) == 1 and 0 < counted[0] <= AUDIT_JOBS_MAX, counted
        store = project.warehouse
        # the rows themselves: loads, rule counts, canonical and quarantine rows as DuckDB's
        read = _assert_same_ingest(project, store, ingested.to_dict())
        duck = project.store.raw.execute("SELECT * FROM summary_audit").df()
        stored = store.dataframe("summary_audit").toPandas()
        assert len(duck) > 10 and (duck["count"] > 0).sum() >= 3
        pd.testing.assert_frame_equal(_values(stored), _values(duck), check_dtype=False)
        # stored by the ingest's own run, after its last load: a Spark run keeps it
        runs = store.committed_runs()
        assert len(runs) == 1 and set(stored["run_id"]) == {runs[0]}
        assert audit_is_current(store)
        # identical rows counted apart from segflow: pandas on the warehouse's canonical rows
        dups = stored[stored["check"] == "duplicate_rows"].set_index("table")["count"]
        for name, cols in CANONICAL_TABLES.items():
            rows = (read[name] if name in read else store.table(name).to_pandas())[list(cols)]
            if len(rows):
                assert dups[name] == int(rows.duplicated().sum()), name
        # an ingest of the unchanged files loads nothing and keeps the stored audit
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            again = project.ingest(engine="spark")
        assert {r.status for r in again.loads} == {"unchanged"}
        kept = store.dataframe("summary_audit").toPandas()
        assert set(kept["run_id"]) == {runs[0]}
        assert list(kept["created_at"]) == list(stored["created_at"])
    finally:
        project.close()
