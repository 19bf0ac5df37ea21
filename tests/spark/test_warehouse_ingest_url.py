"""``segflow ingest`` on Spark (``local[2]``) of a folder of Parquet part files at a URL: the
rows are numbered by Spark's read order (the rows before each partition, counted first), and
the quarantine's raw rows, made after the classification from the source rows picked again
by their number, must be the very rows that broke each rule, across many small splits.

Every row carries a ``tag`` naming it; each rule below is broken by exactly one row, so a
raw row picked by a wrong number shows as a wrong tag.

A local folder source (each file a load) is ingested, then files are added to it: only they
load, compared with the rows already in the warehouse, as the DuckDB ingest loads them (a file delivered again: tests/spark/test_warehouse_ingest_redeliver.py).

The module's projects share one warehouse folder (a database each), so that its ``local[2]``
session and Python workers serve all its Spark ingests (a warehouse of each project's own
started a new session, and new workers importing segflow's ingest code, for each); the
session is stopped after the module, as each test stopped it before. The folder URL and the
files named with odd characters are sources of one project (:func:`split_ingest`): one Spark
ingest for their two tests.
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


#: The customers' file and a CSV source of the same project, named with a space, a hash and
#: percent signs (test_local_file_names_with_spaces_hash_and_percent_are_read): ids N1, N2.
ODD_CRM = "da ta/cus tomers #1 %20.parquet"
ODD_CSV = "da ta/or ders %41.csv"
NAMES = f"""
[[sources]]
name = "names"
table = "transactions"
path = "{ODD_CSV}"
format = "csv"
date_formats = ["%Y-%m-%d %H:%M:%S"]
max_date = "2025-01-01"
[sources.columns]
transaction_id = "order_id"
customer_id = "customer"
ts = "order_date"
amount = "amount"
"""


@pytest.fixture(scope="module")
def split_ingest(tmp_path_factory, warehouse):
    """The project of the folder URL of :data:`PARTS` (tiny splits), its customers' file and
    a second orders source named with odd characters (:data:`ODD_CRM`, :data:`ODD_CSV`),
    after its first ingest: (its folder, the ingest's loads by source). One Spark ingest for
    the two tests below (each took one of its own: seconds of the driver's CPU each)."""
    require_spark()
    from segflow.cli import app
    from segflow.project import Project

    root = tmp_path_factory.mktemp("url-splits")
    data = root / "data"
    (data / "orders").mkdir(parents=True)
    (root / "da ta").mkdir()
    pq.write_table(pa.table({"id": ["C1", "C2"]}), root / ODD_CRM)
    (root / ODD_CSV).write_text("order_id,customer,order_date,amount\n"
                                "N1,C1,2024-04-01 10:00:00,10\n"
                                "N2,C2,2024-04-02 10:00:00,abc\n")
    for i, rows in enumerate(PARTS):  # two rows a row group: several splits a file
        pq.write_table(pa.table(dict(zip(COLUMNS, map(list, zip(*rows, strict=True)), strict=True))),
                       data / "orders" / f"part-{i}.parquet", row_group_size=2)
    url = (data / "orders").resolve().as_uri()
    toml = TOML.format(url=url, warehouse=warehouse, database="url_splits").replace(
        'path = "data/customers.parquet"', f'path = "{ODD_CRM}"')
    Project.init(root, toml_text=toml.replace("\n[engine]", NAMES + "\n[engine]", 1)).close()
    result = CliRunner().invoke(app, ["ingest", "-p", str(root), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return root, {r["source"]: r for r in json.loads(result.output)["data"]}


def test_a_folder_url_numbers_rows_and_quarantines_their_raw_rows(split_ingest):
    require_spark()
    from segflow.cli import app
    from segflow.config import Settings
    from segflow.store._spark import SparkStore

    tmp_path, loads = split_ingest
    data = tmp_path / "data"
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
    accepted = store.table("transactions").to_pandas().query("source == 'orders'")
    assert set(accepted.transaction_id) == WANT_ACCEPTED
    numbers = [*accepted.source_row, *quarantine.row_number]
    assert sorted(numbers) == list(range(1, 11))
    row_of = dict(zip(accepted.transaction_id, accepted.source_row, strict=True))
    row_of |= {raw["tag"]: n for raw, n in zip(raws, quarantine.row_number, strict=True)}
    assert row_of["O1"] < row_of["t02"] < row_of["O3"] < row_of["t04"] < row_of["t05"]
    assert row_of["t06"] < row_of["O7"] < row_of["O8"] < row_of["t09"] < row_of["O10"]
    # a part file added: the URL is read whole again (as a database table on DuckDB), and
    # only the new row loads; the rest are duplicates (stored, or quarantined before: the
    # raw row of each of the five bad rows, its conflicting O3 too). Spark's default splits
    # this time (the tiny ones cost 20 s more at load 6 here)
    toml = (tmp_path / "segflow.toml").read_text()
    (tmp_path / "segflow.toml").write_text(toml.replace('= "600"', '= "134217728"', 1)
                                           .replace('= "600"', '= "4194304"', 1))
    pq.write_table(pa.table(dict(zip(COLUMNS, [["t11"], ["O11"], ["C1"],
                                               ["2024-04-11 10:00:00"], ["110"]], strict=True))),
                   data / "orders" / "part-2.parquet")
    result = CliRunner().invoke(app, ["ingest", "-p", str(tmp_path), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    loads = {r["source"]: r for r in json.loads(result.output)["data"]}
    assert loads["crm"]["status"] == loads["names"]["status"] == "unchanged"
    assert [loads["orders"][k] for k in ("rows_read", "rows_accepted", "rows_quarantined",
                                         "rows_duplicate", "rows_stale")] == [11, 1, 0, 10, 0]
    store.committed_runs(fresh=True)
    stored = store.table("transactions").to_pandas().query("source == 'orders'")
    assert set(stored.transaction_id) == WANT_ACCEPTED | {"O11"}
    assert len(store.table("quarantine").to_pandas().query("source == 'orders'")) == 5


#: A local folder source, delivered in two steps (worked out by hand; DuckDB must agree).
#: Its files load in path order: a month's CSV file, then its Parquet file.
FOLDER = {
    "2024-01.csv": [("t01", "O1", "C1", "2024-04-01 10:00:00", "10"),
                    ("t02", "O2", "C1", "2024-04-02 10:00:00", "abc"),  # non-numeric amount
                    ("t03", "O3", "C2", "2024-04-03 10:00:00", "30"),
                    ("t04", "O3", "C2", "2024-04-03 10:00:00", "31"),  # O3 again: conflict
                    ("t06", "O6", "C2", "yesterday", "60"),  # unparseable date
                    ("t12", "O12", "C1")],  # 3 fields of 5: malformed
    "2024-02.csv": [("t12", "O12", "C1"),  # malformed, quarantined already
                    ("t13", "O13", "C2", "2024-04-13 10:00:00", "130"),
                    ("t07", "O7", "C1", "2024-04-07 10:00:00", "70")],
    "2024-02.parquet": [("t01", "O1", "C1", "2024-04-01 10:00:00", "10"),  # loaded (01)
                        ("t02", "O2", "C1", "2024-04-02 10:00:00", "abc"),  # quarantined (01)
                        ("t13", "O13", "C2", "2024-04-13 10:00:00", "130"),  # loaded (02.csv)
                        ("t08", "O8", "C2", "2024-04-08 10:00:00", "80"),
                        ("t09", "O9", "C1", "2099-01-01 00:00:00", "90"),  # future date
                        ("t10", "O10", "C2", "2024-04-10 10:00:00", "100"),
                        ("t06", "O6", "C2", "yesterday", "60")],  # quarantined (01)
}
WANT_FOLDER = {  # file: read, accepted, quarantined, duplicate
    "2024-01.csv": (6, 2, 4, 0),
    "2024-02.csv": (3, 2, 0, 1),
    "2024-02.parquet": (7, 2, 1, 4),
}
WANT_FOLDER_ACCEPTED = {"O1", "O3", "O13", "O7", "O8", "O10"}
FOLDER_TOML = """
[project]
name = "folder"

[[sources]]
name = "orders"
table = "transactions"
path = "data/orders"
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
database = "url_folder"
[engine.conf]  # Spark's defaults (the module's session had tiny splits)
"spark.sql.files.maxPartitionBytes" = "134217728"
"spark.sql.files.openCostInBytes" = "4194304"
"""


def _deliver(folder, name: str) -> int:
    """Write the file ``name`` of :data:`FOLDER` into ``folder``; its data rows, counted
    apart from segflow (CSV: lines after the header; Parquet: its row count)."""
    rows = FOLDER[name]
    if name.endswith(".csv"):
        (folder / name).write_text("\n".join(",".join(r) for r in [COLUMNS, *rows]) + "\n")
        return (folder / name).read_text().count("\n") - 1
    pq.write_table(pa.table(dict(zip(COLUMNS, map(list, zip(*rows, strict=True)), strict=True))),
                   folder / name)
    return pq.read_metadata(folder / name).num_rows


def _frame(frame, key: list[str]):
    """Rows of a table without the ids of a load or run, sorted, missing values as None."""
    out = frame.drop(columns=[c for c in ("load_id", "run_id", "ingested_at") if c in frame])
    for col in out.columns:
        if str(out[col].dtype).startswith("datetime"):
            out[col] = out[col].astype("datetime64[us]")
    out = out.sort_values(key, ignore_index=True).astype(object)
    return out.where(out.notna(), None)


def test_a_file_added_to_a_local_folder_loads_only_its_rows_as_on_duckdb(tmp_path, warehouse):
    """A local folder source on Spark, a file loaded, then two files added: only they are
    read (each a load, the second compared with the first's rows too), and their rows
    already in the warehouse are duplicates (equal to a stored row: already loaded; a bad
    row or a malformed CSV line quarantined before: already quarantined), with the DuckDB
    ingest's counts per file and the same rows. A row correcting a stored one (a late
    correction) is told from a stored one."""
    require_spark()
    import pandas as pd

    from segflow.cli import app
    from segflow.config import Settings
    from segflow.project import Project
    from segflow.store._spark import SparkStore

    folder = tmp_path / "data" / "orders"
    folder.mkdir(parents=True)
    Project.init(tmp_path, toml_text=FOLDER_TOML.format(warehouse=warehouse)).close()

    def ingest(*args: str) -> dict[str, tuple[int, ...]]:
        result = CliRunner().invoke(app, ["ingest", "-p", str(tmp_path), "--json", *args])
        assert result.exit_code == 0, result.output
        return {r["source_file"].removeprefix("data/orders/"): tuple(r[k] for k in (
            "rows_read", "rows_accepted", "rows_quarantined", "rows_duplicate"))
            for r in json.loads(result.output)["data"]}

    records = _deliver(folder, "2024-01.csv")
    first = {"2024-01.csv": WANT_FOLDER["2024-01.csv"]}
    duck = ingest("--engine", "duckdb")
    assert ingest() == duck == first
    assert records == first["2024-01.csv"][0]
    records = _deliver(folder, "2024-02.csv") + _deliver(folder, "2024-02.parquet")
    second = {"2024-01.csv": (0, 0, 0, 0), "2024-02.csv": WANT_FOLDER["2024-02.csv"],
              "2024-02.parquet": WANT_FOLDER["2024-02.parquet"]}
    duck = ingest("--engine", "duckdb")
    assert ingest() == duck == second
    # every row of the new files read once: accepted, quarantined or a duplicate
    assert records == sum(n[0] for n in second.values()) \
        == sum(sum(n[1:]) for n in second.values())

    store = SparkStore.open(Settings.load(tmp_path).engine, tmp_path)
    assert len(store.committed_runs()) == 2
    with Project.open(tmp_path) as duck:
        for table, key in {"transactions": ["source_file", "source_row"],
                           "quarantine": ["source_file", "row_number"],
                           "ingest_duplicates": ["source_file", "row_number"]}.items():
            d = _frame(duck.store.raw.execute(f"SELECT * FROM {table}").df(), key)
            s = _frame(store.table(table).to_pandas()[list(d.columns)], key)
            pd.testing.assert_frame_equal(s, d, check_dtype=False, obj=table)
            if table == "ingest_duplicates":
                assert set(s.kind) == {"already_loaded", "already_quarantined"}
            if table == "transactions":
                assert set(s.transaction_id) == WANT_FOLDER_ACCEPTED

    # a late correction (O3 with another amount) is found by the comparison with the stored
    # rows (shown on the stored rows themselves, not by a third ingest: the suite's time;
    # a correction loaded: tests/spark/test_warehouse_ingest_redeliver.py)
    from pyspark.sql import functions as F

    from segflow.store import CANONICAL_TABLES
    from segflow.warehouse._stored import mark_stored

    source, cols = Settings.load(tmp_path).sources[0], list(CANONICAL_TABLES["transactions"])
    mapped = {"transaction_id", "customer_id", "ts", "amount"}
    again = store.dataframe("transactions").where("transaction_id IN ('O1', 'O3')").select(
        F.col("source_row").alias("_row"), F.lit(None).cast("string").alias("_rule"),
        *[(F.col(c) + F.when(F.col("transaction_id") == "O3", 3).otherwise(0) if c == "amount"
           else F.col(c)).alias(f"v_{c}") for c in cols])
    marked = mark_stored(store, "none", source, again, cols, mapped, True)
    assert dict(marked.select("v_transaction_id", "_store").collect()) \
        == {"O1": "loaded", "O3": "replace"}


def test_lines_without_ids_read_again_are_refused_in_one_line():
    from segflow.config import SourceSettings
    from segflow.errors import InputError
    from segflow.warehouse._stored import refuse_lines

    lines = SourceSettings(name="lines", table="transactions", path="o/*.csv")
    cols = ["customer_id", "ts", "amount"]
    refuse_lines(SourceSettings(name="lines", table="transactions", path="o/*.csv",
                                duplicate_key=["customer_id", "ts"]), cols,
                 set(cols), "o/1.csv")  # a duplicate_key: rows compared on it
    refuse_lines(lines, cols, {*cols, "transaction_id"}, "o/1.csv")  # a key
    with pytest.raises(InputError, match=r"^file o/1\.csv: source 'lines': it was loaded "
                       "before and its transaction lines have no id") as e:
        refuse_lines(lines, cols, set(cols), "o/1.csv")
    assert "\n" not in str(e.value) and "warehouse push" in str(e.value)


def test_local_file_names_with_spaces_hash_and_percent_are_read(split_ingest):
    """A local file is given to Spark as ``file://`` + its path as it is: Spark takes a URL's
    path literally, so the percent-encoded form (``a%20b.csv``) named no file. The files
    :data:`ODD_CRM` and :data:`ODD_CSV` of the module's project (:func:`split_ingest`)."""
    _, loads = split_ingest
    assert loads["crm"]["source_file"] == ODD_CRM
    assert loads["names"]["source_file"] == ODD_CSV
    assert [loads["crm"][k] for k in ("rows_read", "rows_accepted")] == [2, 2]
    assert [loads["names"][k] for k in ("rows_read", "rows_accepted", "rows_quarantined")] \
        == [2, 1, 1]
