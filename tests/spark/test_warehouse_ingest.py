"""``segflow ingest`` on Spark (the two-worker cluster) against the DuckDB ingest of the same
messy files: the same reconciliation per load, the same quarantine reasons, and the same
canonical, quarantine, duplicate and flag rows.

The customers are a CSV file, the orders Parquet with text columns, so that the rules have
something to reject: empty and unparseable values, ambiguous and future dates, exact
duplicates, one id with two versions, unknown and missing customers, a credit note with a
positive amount, an unmapped value, missing-value tokens; and, in the CSV, a blank line, a
quoted field over two lines and a line with a field missing (a malformed row). Every
expected count below was worked out by hand from the rows (and DuckDB must agree, so the
reference is not the code under test alone).
"""

from __future__ import annotations

import csv
import io
import json
import warnings

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

pytestmark = [pytest.mark.spark, pytest.mark.slow]

DATABASE = "messy"

CUSTOMERS = {  # id, signup, sex
    "id": ["C1", "C2", "C3", "C4", "C5", "C5", "C6", "", "C7", "C7"],
    "signup": ["2024-01-05 10:00:00", "2024-01-06 11:00:00", "2024-02-01 09:30:00",
               "2024-02-03 12:00:00", "2024-03-01 08:00:00", "2024-03-01 08:00:00",
               "31/02/2024", "2024-03-02 10:00:00", "2024-03-05 10:00:00",
               "2024-03-06 10:00:00"],
    "sex": ["F", "M", "Q", "F", "M", "M", "F", "F", "N/A", "M"],
}
#: The customers as CSV: the rows above (a ``note`` column, empty), then a blank line, C8
#: whose note spans two lines (one record: row 12, on lines 13-14) and C9 with three fields
#: of four (row 14: malformed, quarantined with its text).
CUSTOMERS_CSV = "id,signup,sex,note\n" + "".join(
    f"{i},{d},{s},\n" for i, d, s in zip(*CUSTOMERS.values(), strict=True)
) + '\nC8,2024-03-07 10:00:00,F,"two\nlines"\nC9,2024-03-08 10:00:00,F\n'
ORDERS = {  # order_id, customer, order_date, amount, quantity
    "order_id": ["O1", "O2", "O3", "O3", "O4", "O4", "", "O5", "O6", "O7", "O8", "O9",
                 "R10", "O11", "O12", "O13"],
    "customer": ["C1", "C1", "C2", "C2", "C3", "C3", "C4", "C999", "", "C2", "C3", "C4",
                 "C1", "C2", "C1", "C7"],
    "order_date": ["2024-04-01 10:00:00", "2024-04-02 10:00:00", "2024-04-03 10:00:00",
                   "2024-04-03 10:00:00", "2024-04-04 10:00:00", "2024-04-05 10:00:00",
                   "2024-04-06 10:00:00", "2024-04-07 10:00:00", "2024-04-08 10:00:00",
                   "yesterday", "03/04/2024 10:00", "2099-01-01 00:00:00",
                   "2024-04-09 10:00:00", "2024-04-10 10:00:00", "2024-04-11 10:00:00",
                   "N/A"],
    "amount": ["10.5", "20", "30", "30", "40", "41", "50", "60", "70", "80", "90", "100",
               "15", "abc", "-5", "12"],
    "quantity": ["1", "2", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1", "1", "2",
                 "1"],
}
TOML = """
[project]
name = "messy"

[[sources]]
name = "crm"
table = "customers"
path = "data/customers.csv"
null_values = ["N/A"]
date_formats = ["%Y-%m-%d %H:%M:%S"]
unmapped_values = "null"
[sources.columns]
customer_id = "id"
created_at = "signup"
gender = "sex"
[sources.value_maps.gender]
F = "female"
M = "male"

[[sources]]
name = "orders"
table = "transactions"
path = "data/orders.parquet"
null_values = ["N/A"]
date_formats = ["%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M"]
credit_note_prefix = "R"
max_date = "2025-01-01"
[sources.columns]
transaction_id = "order_id"
customer_id = "customer"
ts = "order_date"
amount = "amount"
quantity = "quantity"
"""
#: Worked out from the rows above.
WANT_RULES = {
    ("crm", "unparseable_date"): 1,  # C6: 31/02/2024
    ("crm", "missing_customer_id"): 1,  # the empty id
    ("crm", "conflicting_id"): 1,  # C7's second version
    ("crm", "malformed_row"): 1,  # C9: three fields of four
    ("orders", "conflicting_id"): 1,  # O4's second version
    ("orders", "missing_transaction_id"): 1,
    ("orders", "unknown_customer"): 1,  # C999
    ("orders", "unparseable_date"): 1,  # yesterday
    ("orders", "ambiguous_date"): 1,  # 03/04/2024 reads as 3 April and 4 March
    ("orders", "future_date"): 1,  # 2099: on or after max_date
    ("orders", "return_sign"): 2,  # R10 positive; O12 amount -5, quantity 2
    ("orders", "non_numeric_amount"): 1,  # abc
    ("orders", "missing_date"): 1,  # O13: N/A is a missing value
}
WANT_LOADS = {  # source: read, accepted, quarantined, duplicate
    "crm": (12, 7, 4, 1),  # C5 twice: one duplicate; C8 accepted, C9 malformed
    "orders": (16, 5, 10, 1),  # O3 twice; accepted O1, O2, O3, O4 and O6 (anonymous, kept)
}


def _write_files(folder) -> None:
    data = folder / "data"
    data.mkdir()
    (data / "customers.csv").write_text(CUSTOMERS_CSV)
    pq.write_table(pa.table(ORDERS), data / "orders.parquet")


def _cli(*args: str) -> str:
    from segflow.cli import app

    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _rows(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    out = frame.drop(columns=[c for c in ("load_id", "run_id", "ingested_at") if c in frame])
    for col in out.columns:
        if str(out[col].dtype).startswith("datetime"):
            out[col] = pd.to_datetime(out[col]).astype("datetime64[us]")
    out = out.sort_values(key, ignore_index=True).astype(object)
    return out.where(out.notna(), None)  # one missing value: None (Arrow strings give NaN)


def test_ingest_on_the_cluster_equals_the_duckdb_ingest(tmp_path, cluster, cluster_session):
    from segflow.project import Project
    from segflow.store._spark import SparkStore
    from segflow.warehouse import push_to_warehouse

    _write_files(tmp_path)
    warehouse = cluster_session.conf.get("spark.sql.warehouse.dir")
    conf = "\n".join(f'"{k}" = "{v}"' for k, v in cluster.session_conf().items())
    engine = (f'\n[engine]\nkind = "spark"\nmaster = "{cluster.master_url}"\n'
              f'warehouse = "{warehouse}"\ndatabase = "{DATABASE}"\n[engine.conf]\n{conf}\n')
    project = Project.init(tmp_path, toml_text=TOML + engine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        duck = project.ingest(engine="duckdb")
    out = json.loads(_cli("ingest", "-p", str(tmp_path), "--json"))
    spark = pd.DataFrame(out["data"])
    # the reconciliation: the hand-worked counts, on both engines
    want = pd.DataFrame([(s, *n) for s, n in WANT_LOADS.items()], columns=[
        "source", "rows_read", "rows_accepted", "rows_quarantined", "rows_duplicate"])
    for frame in (duck.to_pandas(), spark):
        got = frame[want.columns].sort_values("source", ignore_index=True)
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
    # the CSV's records counted apart from segflow (Python's csv module; a blank line is no
    # record): every one of them is accepted, quarantined or a duplicate on both engines
    records = sum(1 for r in csv.reader(io.StringIO(CUSTOMERS_CSV)) if r) - 1
    assert records == WANT_LOADS["crm"][0] == sum(WANT_LOADS["crm"][1:])
    rules = {(r["source"], r["rule"]): r["rows"] for r in out["rules"]}
    assert rules == WANT_RULES
    assert {(r.source, r.rule): r.rows for r in duck.rules().itertuples()} == WANT_RULES
    flags_cols = ["rows_anonymous", "rows_flagged", "rows_replaced", "rows_released"]
    pd.testing.assert_frame_equal(
        spark.sort_values("source", ignore_index=True)[flags_cols],
        duck.to_pandas().sort_values("source", ignore_index=True)[flags_cols], check_dtype=False)
    # the flags' warnings (rows per rule, the first row and its column): the same text
    assert any("not in the value map" in w for w in duck.warnings)  # gender Q: kept, emptied
    assert sorted(out["warnings"]) == sorted(duck.warnings)

    # the rows themselves: canonical tables, quarantine (raw rows and reasons), duplicates
    store = SparkStore(cluster_session, warehouse, DATABASE)
    assert len(store.committed_runs()) == 1  # one ingest, one run
    keys = {"customers": ["source", "source_row"], "transactions": ["source", "source_row"],
            "quarantine": ["source", "row_number"], "ingest_duplicates": ["source", "row_number"],
            "ingest_flags": ["source", "row_number", "rule"]}
    for table, key in keys.items():
        d = _rows(project.store.raw.execute(f'SELECT * FROM "{table}"').df(), key)
        s = _rows(store.table(table).to_pandas()[list(d.columns) + ["load_id"]], key)
        assert len(d) > 0, table
        pd.testing.assert_frame_equal(s, d, check_dtype=False, obj=table)

    # an unchanged file is not read again (its hash is in the load log): a second run
    again = json.loads(_cli("ingest", "-p", str(tmp_path), "--json"))
    assert {r["status"] for r in again["data"]} == {"unchanged"}
    # `warehouse push` (now a migration tool) copies the same rows from the DuckDB store
    pushed = push_to_warehouse(project.store, SparkStore(cluster_session, warehouse, "pushed"))
    for table in ("customers", "transactions", "quarantine", "ingest_duplicates", "ingest_flags",
                  "loads"):
        assert pushed[table] == store.dataframe(table).count() > 0, table
    project.close()
