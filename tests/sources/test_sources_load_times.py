"""A load's ``started_at`` and ``finished_at`` on DuckDB: when the load began and when its row
was recorded, after its rows were read and counted; not the ingest's ``now`` (the rules'
reference time, which before session 58 was recorded as ``finished_at``, before the start).
The Spark ingest's: tests/spark/test_warehouse_ingest_redeliver.py."""

from __future__ import annotations

import datetime as dt

from sources_project import NOW, ORDERS_HEADER, ingest_quietly, orders_project

from segflow.store import Store


def _clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def test_a_load_finishes_after_its_rows_were_read(tmp_path, monkeypatch):
    from segflow.sources import _load

    root = orders_project(tmp_path / "p", {
        "in/a.csv": ORDERS_HEADER + b"O1,C1,2024-01-02,10\nO2,C1,2024-01-03,20\n",
        "in/b.csv": ORDERS_HEADER}, path="in/*.csv")  # b.csv: a header, no rows
    counted: list[dt.datetime] = []  # when the rows of a load had been read and counted
    count = _load._count

    def counting(*args, **kwargs):
        count(*args, **kwargs)
        counted.append(_clock())

    monkeypatch.setattr(_load, "_count", counting)
    before = _clock()
    with Store(tmp_path / "store.duckdb") as store:
        ingest_quietly(root, store)  # now=NOW: 2024-06-01, long before this test runs
        loads = {r["source_file"]: r for r in store.sql(
            "SELECT source_file, status, rows_read, started_at, finished_at FROM loads").to_pylist()}
    after = _clock()
    assert {f: (r["status"], r["rows_read"]) for f, r in loads.items()} == \
        {"in/a.csv": ("ok", 2), "in/b.csv": ("ok", 0)}
    assert len(counted) == 1  # the load with rows
    a, b = loads["in/a.csv"], loads["in/b.csv"]
    assert before <= a["started_at"] <= counted[0] <= a["finished_at"] <= after
    assert a["finished_at"] <= b["started_at"] <= b["finished_at"] <= after  # one after the other
    assert NOW < before  # the ingest's now is not a load's time
