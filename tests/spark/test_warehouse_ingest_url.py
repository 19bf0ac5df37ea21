"""``segflow ingest`` on Spark (``local[2]``) of a folder of Parquet part files at a URL: the
rows are numbered by Spark's read order (the rows before each partition, counted first), and
the quarantine's raw rows, made after the classification from the source rows picked again
by their number, must be the very rows that broke each rule, across many small splits.

Every row carries a ``tag`` naming it; each rule below is broken by exactly one row, so a
raw row picked by a wrong number shows as a wrong tag.

The module's projects share one warehouse folder (a database each), so that its ``local[2]``
session and Python workers serve all three Spark ingests (a warehouse of each project's own
started a new session, and new workers importing segflow's ingest code, for each); the
session is stopped after the module, as each test stopped it before.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests._engines import require_spark
from typer.testing import CliRunner

pytestmark = [pytest.mark.spark, pytest.mark.slow]

PARTS = [  # tag, order_id, customer, order_date, amount
    [("t01", "O1", "C1", "2024-04-01 10:00:00", "10"),
     ("t02", "O2", "C1", "2024-04-02 10:00:00", "abc"),
     ("t03", "O3", "C2", "2024-04-03 10:00:00", "30"),
     ("t04", "O3", "C2", "2024-04-03 10:00:00", "31"),  # O3 again, other values: conflict
     ("t05", "O5", "C999", "2024-04-05 10:00:00", "50")],
    [("t06", "O6", "C2", "yesterday", "60"),
     ("t07", "O7", "C1", "2024-04-07 10:00:00", "70"),
     ("t08", "O8", "C2", "2024-04-08 10:00:00", "80"),
     ("t09", "O9", "C1", "2099-01-01 00:00:00", "90"),
     ("t10", "O10", "C2", "2024-04-10 10:00:00", "100")],
]
COLUMNS = ["tag", "order_id", "customer", "order_date", "amount"]
#: Worked out from the rows: the rule each quarantined row breaks.
WANT_QUARANTINE = {"t02": "non_numeric_amount", "t04": "conflicting_id",
                   "t05": "unknown_customer", "t06": "unparseable_date", "t09": "future_date"}
WANT_ACCEPTED = {"O1", "O3", "O7", "O8", "O10"}
TOML = """
[project]
name = "url"

[[sources]]
name = "crm"
table = "customers"
path = "data/customers.parquet"
[sources.columns]
customer_id = "id"

[[sources]]
name = "orders"
table = "transactions"
path = "{url}"
date_formats = ["%Y-%m-%d %H:%M:%S"]
max_date = "2025-01-01"
[sources.columns]
transaction_id = "order_id"
customer_id = "customer"
ts = "order_date"
amount = "amount"

[engine]
kind = "spark"
master = "local[2]"
warehouse = "{warehouse}"
database = "{database}"
[engine.conf]
# splits of about 600 bytes: each part file is read by several tasks (some without rows)
"spark.sql.files.maxPartitionBytes" = "600"
"spark.sql.files.openCostInBytes" = "600"
"""


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """The warehouse folder of the module's projects; the session stopped afterwards (its
    tiny splits are not for later tests)."""
    yield str(tmp_path_factory.mktemp("url-warehouse"))
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()


def test_a_folder_url_numbers_rows_and_quarantines_their_raw_rows(tmp_path, warehouse):
    require_spark()
    from segflow.cli import app
    from segflow.config import Settings
    from segflow.project import Project
    from segflow.store._spark import SparkStore

    data = tmp_path / "data"
    (data / "orders").mkdir(parents=True)
    pq.write_table(pa.table({"id": ["C1", "C2"]}), data / "customers.parquet")
    for i, rows in enumerate(PARTS):  # two rows a row group: several splits a file
        pq.write_table(pa.table(dict(zip(COLUMNS, map(list, zip(*rows, strict=True)), strict=True))),
                       data / "orders" / f"part-{i}.parquet", row_group_size=2)
    url = (data / "orders").resolve().as_uri()
    Project.init(tmp_path, toml_text=TOML.format(url=url, warehouse=warehouse,
                                                database="url_splits")).close()
    result = CliRunner().invoke(app, ["ingest", "-p", str(tmp_path), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    loads = {r["source"]: r for r in json.loads(result.output)["data"]}
    assert [loads["orders"][k] for k in ("rows_read", "rows_accepted", "rows_quarantined",
                                         "rows_duplicate")] == [10, 5, 5, 0]

    store = SparkStore.open(Settings.load(tmp_path).engine, tmp_path)
    quarantine = store.table("quarantine").to_pandas()
    quarantine = quarantine[quarantine.source == "orders"]
    raws = [json.loads(r) for r in quarantine.raw_row]
    # each quarantined row's raw row is the source row that broke its rule, whole
    by_tag = {r[0]: dict(zip(COLUMNS, r, strict=True)) for part in PARTS for r in part}
    assert {raw["tag"]: rule for raw, rule in zip(raws, quarantine.rule, strict=True)} \
        == WANT_QUARANTINE
    assert all(raw == by_tag[raw["tag"]] for raw in raws)
    # one numbering for the accepted and the quarantined rows: 1..10, each number once;
    # the rows of one file keep their order (O3's second version comes after the first)
    accepted = store.table("transactions").to_pandas()
    assert set(accepted.transaction_id) == WANT_ACCEPTED
    numbers = [*accepted.source_row, *quarantine.row_number]
    assert sorted(numbers) == list(range(1, 11))
    row_of = dict(zip(accepted.transaction_id, accepted.source_row, strict=True))
    row_of |= {raw["tag"]: n for raw, n in zip(raws, quarantine.row_number, strict=True)}
    assert row_of["O1"] < row_of["t02"] < row_of["O3"] < row_of["t04"] < row_of["t05"]
    assert row_of["t06"] < row_of["O7"] < row_of["O8"] < row_of["t09"] < row_of["O10"]


def test_a_local_folder_of_several_files_stops_before_any_load_with_the_way_round(tmp_path,
                                                                                  warehouse):
    """A local folder of two files is two loads, and the second would be compared with the
    first's rows (not done on Spark yet): the ingest stops at once, in one line naming the
    source, its files and the folder URL that reads them as one load; nothing is committed."""
    require_spark()
    from segflow.cli import app
    from segflow.config import Settings
    from segflow.store._spark import SparkStore

    data = tmp_path / "data"
    (data / "orders").mkdir(parents=True)
    pq.write_table(pa.table({"id": ["C1", "C2"]}), data / "customers.parquet")
    for i, rows in enumerate(PARTS):
        pq.write_table(pa.table(dict(zip(COLUMNS, map(list, zip(*rows, strict=True)), strict=True))),
                       data / "orders" / f"part-{i}.parquet")
    from segflow.project import Project

    Project.init(tmp_path, toml_text=TOML.format(url="data/orders", warehouse=warehouse,
                                                database="url_folder")).close()
    result = CliRunner().invoke(app, ["ingest", "-p", str(tmp_path)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "error" in line]  # not the bar
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert "{" not in lines[0], lines[0]
    assert "source 'orders' has 2 files to load (data/orders/part-0.parquet, " \
           "data/orders/part-1.parquet)" in " ".join(result.output.split())
    assert 'path = "file:///absolute/folder"' in result.output
    store = SparkStore.open(Settings.load(tmp_path).engine, tmp_path)
    assert not store.committed_runs()


def test_one_load_per_source_names_the_files_of_each_source():
    from segflow.config import SourceSettings
    from segflow.errors import InputError
    from segflow.warehouse._ingest import _Input, one_load_per_source

    crm = SourceSettings(name="crm", table="customers", path="c.parquet")
    orders = SourceSettings(name="orders", table="transactions", path="o/*.csv")
    one = [(crm, _Input("c.parquet", "file:///c.parquet", "parquet")),
           (orders, _Input("o/1.csv", "file:///o/1.csv", "csv"))]
    one_load_per_source(one)  # one file a source: no error
    one_load_per_source([])
    many = one + [(orders, _Input(f"o/{i}.csv", f"file:///o/{i}.csv", "csv")) for i in range(2, 6)]
    with pytest.raises(InputError, match=r"source 'orders' has 5 files to load "
                                         r"\(o/1\.csv, o/2\.csv, o/3\.csv and 2 more\)"):
        one_load_per_source(many)


def test_local_file_names_with_spaces_hash_and_percent_are_read(tmp_path, warehouse):
    """A local file is given to Spark as ``file://`` + its path as it is: Spark takes a URL's
    path literally, so the percent-encoded form (``a%20b.csv``) named no file."""
    require_spark()
    from segflow.cli import app
    from segflow.project import Project

    data = tmp_path / "da ta"
    data.mkdir()
    pq.write_table(pa.table({"id": ["C1", "C2"]}), data / "cus tomers #1 %20.parquet")
    (data / "or ders %41.csv").write_text("order_id,customer,order_date,amount\n"
                                          "O1,C1,2024-04-01 10:00:00,10\n"
                                          "O2,C2,2024-04-02 10:00:00,abc\n")
    toml = (TOML.format(url="da ta/or ders %41.csv", warehouse=warehouse, database="url_names")
            .replace('path = "data/customers.parquet"', 'path = "da ta/cus tomers #1 %20.parquet"')
            .replace('date_formats', 'format = "csv"\ndate_formats'))
    Project.init(tmp_path, toml_text=toml).close()
    result = CliRunner().invoke(app, ["ingest", "-p", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    loads = {r["source"]: r for r in json.loads(result.output)["data"]}
    assert loads["crm"]["source_file"] == "da ta/cus tomers #1 %20.parquet"
    assert [loads["crm"][k] for k in ("rows_read", "rows_accepted")] == [2, 2]
    assert [loads["orders"][k] for k in ("rows_read", "rows_accepted", "rows_quarantined")] \
        == [2, 1, 1]
