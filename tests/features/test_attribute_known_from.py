"""An attribute version dated before its record was created (``valid_from < created_at``)
describes the customer from ``created_at`` (docs/features.md, "The customer base and
attribute history"): the attributes at ``s`` are the same on the data cut at ``s``; ingest
accepts each such row and notes it (``ingest_flags``, rule ``valid_from_before_created``)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest

from segflow.config import Settings
from segflow.features import REQUIRED_TABLES, customer_features, snapshot_features
from segflow.quality import audit
from segflow.sources import ingest
from segflow.store import Store

RECORDS = [  # customer, created_at, valid_from, valid_to, region
    # a guest who bought in January, registered on 1 March: the CRM back-dated the version
    ("g", "2024-03-01", "2024-01-01", None, "North"),
    # moved on 10 March; the change was entered on 20 March
    ("m", "2023-01-10", None, "2024-03-10", "London"),
    ("m", "2024-03-20", "2024-03-10", None, "Paris"),
    ("s", "2023-02-01", "2023-02-01", None, "Wales"),
]
SNAPSHOTS = (dt.date(2024, 2, 1), dt.date(2024, 3, 15), dt.date(2024, 4, 1))


def _tables(cut: dt.date | None = None) -> dict:
    """The records and one purchase of ``g`` (15 January); with ``cut``: as exported at it
    (rows created or starting on or after it removed, a later end not known yet)."""
    c = pd.DataFrame(RECORDS, columns=["customer_id", "created_at", "valid_from", "valid_to",
                                       "region"])
    for col in ("created_at", "valid_from", "valid_to"):
        c[col] = pd.to_datetime(c[col])
    tx = pd.DataFrame({"transaction_id": ["t1"], "customer_id": ["g"],
                       "ts": pd.to_datetime(["2024-01-15 10:00"]), "amount": [20.0],
                       "is_return": [False]})
    if cut is not None:
        at = pd.Timestamp(cut)
        c = c[(c["created_at"] < at) & ~(c["valid_from"] >= at)]
        c = c.assign(valid_to=c["valid_to"].where(c["valid_to"] < at))
        tx = tx[tx["ts"] < at]
    store = Store(":memory:")
    store.append("customers", pa.Table.from_pandas(c, preserve_index=False))
    store.append("transactions", pa.Table.from_pandas(tx, preserve_index=False))
    return {n: store.table(n) for n in REQUIRED_TABLES}


def _regions(tables: dict, s: dt.date) -> dict:
    f = customer_features(tables, s, groups=["rfm", "attribute"]).to_pandas()
    return {r.customer_id: (r.region if isinstance(r.region, str) else None)
            for r in f.itertuples()}


def test_a_version_is_known_from_the_later_of_valid_from_and_created_at():
    tables = _tables()
    regions = {s: _regions(tables, s) for s in SNAPSHOTS}
    # independent: the rule written out per snapshot
    assert regions[SNAPSHOTS[0]] == {"g": None, "m": "London", "s": "Wales"}
    assert regions[SNAPSHOTS[1]] == {"g": "North", "m": None, "s": "Wales"}
    assert regions[SNAPSHOTS[2]] == {"g": "North", "m": "Paris", "s": "Wales"}
    long = snapshot_features(tables, SNAPSHOTS, groups=["rfm", "attribute"]).to_pandas()
    for s in SNAPSHOTS:  # the one-pass table reads the same rule
        one = long[long["snapshot_date"] == pd.Timestamp(s)]
        assert {r.customer_id: (r.region if isinstance(r.region, str) else None)
                for r in one.itertuples()} == regions[s]


@pytest.mark.parametrize("s", SNAPSHOTS)
def test_attributes_at_s_do_not_depend_on_rows_recorded_later(s):
    assert _regions(_tables(), s) == _regions(_tables(s), s)


def test_ingest_accepts_and_notes_each_back_dated_version(tmp_path):
    lines = ["id,created,from,to,region"]
    for cid, created, start, end, region in RECORDS:
        lines.append(",".join([cid, created, start or "", end or "", region]))
    (tmp_path / "crm.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "segflow.toml").write_text("""
[[sources]]
name = "crm"
table = "customers"
path = "crm.csv"
[sources.columns]
customer_id = "id"
created_at = "created"
valid_from = "from"
valid_to = "to"
region = "region"
""", encoding="utf-8")
    store = Store(":memory:")
    report = ingest(store, Settings.load(tmp_path), tmp_path, now=dt.datetime(2025, 1, 1))
    assert report.to_pandas()[["rows_accepted", "rows_flagged"]].values.tolist() == [[4, 2]]
    flags = store.sql("SELECT row_number, rule, column_name, value FROM ingest_flags "
                      "ORDER BY row_number").to_pandas()
    # rows 1 (g) and 3 (m's Paris version): valid_from before created_at; row 4 is equal
    assert flags.values.tolist() == [
        [1, "valid_from_before_created", "from", "2024-01-01 00:00:00"],
        [3, "valid_from_before_created", "from", "2024-03-10 00:00:00"]]
    assert [w for w in report.warnings if "created_at" in w] == [
        "file crm.csv, row 1, column 'from': valid_from is before the record's created_at; "
        "kept, its attributes describe the customer from created_at (when the record was made) "
        "(2 such values)"]
    checks = {c.check: c for c in audit(store, as_of=dt.date(2025, 1, 1)).checks}
    flagged = checks["flagged:valid_from_before_created"]
    assert (flagged.table, flagged.count, flagged.total) == ("customers", 2, 4)
    assert "describe the customer from created_at" in flagged.advice
