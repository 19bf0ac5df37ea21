"""A file delivered again under its name on Spark (``local[1]``) as on DuckDB: the same
counts per load and rule, the same warnings, and the same canonical, quarantine, duplicate,
flag and load rows after each ingest.

The orders (a CSV file, ``redelivery = "keep"``, the default) are delivered, then delivered
again changed: a row removed (stale: it stays), a row changed (a late correction: it
replaces the stored row), a quarantined row fixed (loaded; its old record stays: its raw
row is not the new one), a row added, a bad row moved to another line (already
quarantined), a row that passes now (``max_date`` moved on: loaded, its quarantine record
released) and an exact copy of a row. That second ingest runs with ``--force``, so the
unchanged customers (a Parquet file, ``redelivery = "replace"``) are read again too: their
earlier rows are taken back and the file loads as new. Every count below was worked out by
hand from the rows (and DuckDB must agree). Two ingests per engine: a Spark ingest of two
small loads costs 30-40 s on ``local[1]`` (the suite's time).

Also checked on the same rows (session 58): the DuckDB store pushed to a warehouse of its
own after each ingest equals it (the rows DuckDB deleted taken back there), the catalog's
views hold the committed rows (retracted ones left out), and each load, on both engines,
finished after its rows were read and written.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests._engines import require_spark
from tests.spark._compare import same_rows
from typer.testing import CliRunner

pytestmark = [pytest.mark.spark, pytest.mark.slow]

TOML = """
[project]
name = "redeliver"

[[sources]]
name = "crm"
table = "customers"
path = "data/customers.parquet"
redelivery = "replace"
[sources.columns]
customer_id = "id"

[[sources]]
name = "orders"
table = "transactions"
path = "data/orders.csv"
date_formats = ["%Y-%m-%d %H:%M:%S"]
max_date = "{max_date}"
[sources.columns]
transaction_id = "order_id"
customer_id = "customer"
ts = "order_date"
amount = "amount"

[engine]
kind = "spark"
master = "local[1]"
warehouse = "{warehouse}"
database = "redeliver"
"""
HEADER = "order_id,customer,order_date,amount"
FIRST = ["O1,C1,2024-04-01 10:00:00,10",
         "O2,C1,2024-04-02 10:00:00,abc",  # non-numeric amount
         "O3,C2,2024-04-03 10:00:00,30",
         "O4,C2,2024-04-04 10:00:00,40",
         "O5,C2,2024-04-05 10:00:00,50",  # on max_date (2024-04-05): future
         "O6,C2,yesterday,60"]  # unparseable date
SECOND = ["O1,C1,2024-04-01 10:00:00,10",  # as stored: already loaded
          "O2,C1,2024-04-02 10:00:00,20",  # fixed: loaded
          "O3,C2,2024-04-03 10:00:00,33",  # changed: replaces the stored O3
          "O6,C2,yesterday,60",  # still bad, now row 4: already quarantined
          "O5,C2,2024-04-05 10:00:00,50",  # max_date now 2025: loaded, released
          "O7,C1,2024-04-07 10:00:00,70",  # added
          "O1,C1,2024-04-01 10:00:00,10"]  # a copy of row 1 in the file
# O4 is gone: stale, it stays in the store
#: (source, file) -> read, accepted, quarantined, duplicate, replaced, released, stale;
#: the customers' second load: the same two rows again, the earlier ones removed
WANT = [
    {"crm": (2, 2, 0, 0, 0, 0, 0), "orders": (6, 3, 3, 0, 0, 0, 0)},
    {"crm": (2, 2, 0, 0, 0, 0, 0), "orders": (7, 4, 0, 3, 1, 1, 1)},
]
WANT_RULES = [{("orders", "non_numeric_amount"): 1, ("orders", "future_date"): 1,
               ("orders", "unparseable_date"): 1}, {}]
#: The orders stored at the end: (id, amount, row in its file)
WANT_ORDERS = {("O1", 10.0, 1), ("O2", 20.0, 2), ("O3", 33.0, 3), ("O4", 40.0, 4),
               ("O5", 50.0, 5), ("O7", 70.0, 6)}
COUNTS = ["rows_read", "rows_accepted", "rows_quarantined", "rows_duplicate", "rows_replaced",
          "rows_released", "rows_stale"]
KEYS = {"customers": ["source_row"], "transactions": ["source_row", "transaction_id"],
        "quarantine": ["source_file", "row_number"],
        "ingest_duplicates": ["source_file", "row_number", "kind", "duplicate_of_row"],
        "loads": ["source", "status", "rows_read", "rows_accepted", "rows_duplicate"]}


def _deliver(data, orders: list[str]) -> None:
    (data / "orders.csv").write_text("\n".join([HEADER, *orders]) + "\n")
    if not (data / "customers.parquet").exists():
        pq.write_table(pa.table({"id": ["C1", "C2"]}), data / "customers.parquet")


def _ingest(folder, *args: str) -> dict:
    from segflow.cli import app

    result = CliRunner().invoke(app, ["ingest", "-p", str(folder), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _witness(monkeypatch, owner, name: str, seen: list[dt.datetime]) -> None:
    """After each call of ``owner.name`` (a load's rows read, checked and written or
    counted), the clock in ``seen``."""
    function = getattr(owner, name)

    def timed(*args, **kwargs):
        out = function(*args, **kwargs)
        seen.append(_clock())
        return out

    monkeypatch.setattr(owner, name, timed)


def _timed_in_order(loads: pd.DataFrame, seen: list[dt.datetime]) -> None:
    """Each load (one after the other) started before its rows were done (``seen``, in
    order) and finished after."""
    loads = loads.drop_duplicates("load_id").sort_values("started_at")
    assert len(loads) == len(seen)
    for start, end, done in zip(loads.started_at, loads.finished_at, seen, strict=True):
        assert pd.Timestamp(start) <= pd.Timestamp(done) <= pd.Timestamp(end)


def test_a_redelivered_file_loads_on_spark_as_on_duckdb(tmp_path_factory, monkeypatch,
                                                       spark_warehouse):
    require_spark()
    from segflow.config import Settings
    from segflow.engine import warehouse_url
    from segflow.project import Project
    from segflow.sources import _load
    from segflow.store._spark import SparkStore
    from segflow.warehouse import _ingest as spark_ingest
    from segflow.warehouse import push_to_warehouse

    folder = tmp_path_factory.mktemp("redeliver")
    data = folder / "data"
    data.mkdir()
    warehouse = spark_warehouse  # the session's (tests/conftest.py): no session of its own
    toml = TOML.replace("{warehouse}", warehouse)
    Project.init(folder, toml_text=toml.replace("{max_date}", "2024-04-05")).close()
    store = pushed = None
    done = {"duckdb": [], "spark": []}  # when each load's rows were counted (DuckDB), written
    _witness(monkeypatch, _load, "_count", done["duckdb"])
    _witness(monkeypatch, spark_ingest, "_write", done["spark"])
    for i, (orders, args) in enumerate([(FIRST, ()), (SECOND, ("--force",))]):
        _deliver(data, orders)
        if i:  # the rules change: O5 is no longer in the future
            (folder / "segflow.toml").write_text(toml.replace("{max_date}", "2025-01-01"))
        duck = _ingest(folder, "--engine", "duckdb", *args)
        spark = _ingest(folder, *args)
        for out in (duck, spark):  # the hand counts on both engines
            assert {r["source"]: tuple(r[c] for c in COUNTS) for r in out["data"]} == WANT[i]
            assert {(r["source"], r["rule"]): r["rows"] for r in out["rules"]} == WANT_RULES[i]
        assert sorted(spark["warnings"]) == sorted(duck["warnings"])
        store = store or SparkStore.open(Settings.load(folder).engine, folder)
        store.committed_runs(fresh=True)  # the ingest's run, committed by its own store
        pushed = pushed or SparkStore(store.session, warehouse_url(str(folder / "pushed")),
                                      "redeliver_pushed")
        with Project.open(folder) as project:
            # the DuckDB store pushed: what DuckDB deleted is taken back there (O3's old
            # row, the crm's first load, O5's quarantine record; the crm load row replaced)
            got = push_to_warehouse(project.store, pushed)
            assert got.get("retracted", 0) == (4 if i else 0)
            pushed.committed_runs(fresh=True)
            for table, key in KEYS.items():
                d = project.store.raw.execute(f'SELECT * FROM "{table}"').df()
                for copy, where in ((store, "Spark"), (pushed, "pushed")):
                    s = copy.table(table).to_pandas()
                    same_rows(f"{table} after ingest {i + 1} ({where})", d, s, key)
            duck_loads = project.store.raw.execute("SELECT * FROM loads").df()
    assert len(store.committed_runs(fresh=True)) == 2
    # each load finished after its rows were read and written, on both engines
    _timed_in_order(duck_loads, done["duckdb"])
    _timed_in_order(store.table("loads").to_pandas(), done["spark"])
    assert sorted(pushed.table("loads").to_pandas().load_id) == sorted(duck_loads.load_id)
    # the stored orders, and what the warnings said, worked out by hand
    rows = store.table("transactions").to_pandas()
    assert set(zip(rows.transaction_id, rows.amount, rows.source_row, strict=True)) \
        == WANT_ORDERS
    quarantine = store.table("quarantine").to_pandas()
    assert sorted(zip(quarantine.row_number, quarantine.rule, strict=True)) \
        == [(2, "non_numeric_amount"), (6, "unparseable_date")]  # O2's old record stays
    assert "O5" not in {json.loads(r)["order_id"] for r in quarantine.raw_row}  # released
    assert any("1 rows stored from its earlier delivery are not in it (no row of it has "
               "their transaction_id)" in w for w in spark["warnings"])
    assert any("the 2 rows its earlier delivery stored were removed" in w
               for w in spark["warnings"])
    assert any("1 rows quarantined by an earlier load pass the rules now" in w
               for w in spark["warnings"])
    loads = store.table("loads").to_pandas()
    assert sorted(loads[loads.source == "crm"].status) == ["ok", "replaced"]
    # the row at row 1 is the very row stored there: not logged as a duplicate again
    dups = store.table("ingest_duplicates").to_pandas()
    assert sorted(zip(dups.row_number, dups.kind, strict=True)) \
        == [(4, "already_quarantined"), (7, "in_load")]

    # the catalog's views for users' SQL: the committed state, retracted rows left out
    assert {"transactions", "quarantine", "loads", "retracted"} <= set(
        store.register_catalog_tables())

    def sql(query: str) -> list:
        return store.session.sql(query.replace("db.", "redeliver.")).collect()

    assert {(r.transaction_id, r.amount, r.source_row)
            for r in sql("SELECT * FROM db.transactions")} == WANT_ORDERS
    assert sql("SELECT count(*) AS n FROM db.transactions_by_run")[0].n == 7  # O3's old row
    assert sorted((r.row_number, r.rule) for r in sql("SELECT * FROM db.quarantine")) \
        == [(2, "non_numeric_amount"), (6, "unparseable_date")]
    assert sorted(r.status for r in sql("SELECT * FROM db.loads WHERE source = 'crm'")) \
        == ["ok", "replaced"]
    assert sql("SELECT count(*) AS n FROM db.customers")[0].n == 2
    # a table replaced by each run: the latest run's rows (the audit of the second ingest)
    audit = sql("SELECT DISTINCT run_id FROM db.summary_audit")
    assert [r.run_id for r in audit] == store.committed_runs()[-1:]
