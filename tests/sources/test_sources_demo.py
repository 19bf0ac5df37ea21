"""Ingest the generated demo data: every injected defect is accounted for, nothing else is."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import pandas as pd
import pytest

from segflow.config import Settings
from segflow.sources import ingest
from segflow.store import Store

datasets = pytest.importorskip("segflow.datasets")

#: (defect, column) -> what ingest must have done with the row ("dup:<kind>", "flag:<rule>"
#: or a quarantine rule). Columns not listed accept any column.
EXPECTED = {
    ("exact_duplicate", None): {"dup:in_load"},
    ("near_duplicate", "email"): {"dup:in_load"},  # whitespace only: equal once trimmed
    ("near_duplicate", "customer_id"): {"dup:in_load"},
    ("near_duplicate", "amount"): {"conflicting_id"},  # same order id, amount off by 0.01
    ("invalid_value", "gender"): {"flag:invalid_value"},
    ("missing_value", "customer_id"): {"flag:anonymous"},
    ("missing_value", "amount"): {"missing_amount"},
    ("missing_value", "answer"): {"missing_answer"},
    # a $0 line is a purchase occasion (zero_amount is an opt-in rule); a negative amount
    # with a positive quantity and no return flag breaks return_sign
    ("non_positive_amount", "amount"): {"accepted", "return_sign"},
    ("future_date", None): {"future_date"},
    ("unknown_customer", None): {"unknown_customer"},
    ("unparseable_date", None): {"unparseable_date"},
}
END = dt.datetime(2025, 1, 1)  # the data covers 2024; the generator's future dates lie after


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, Store, object]:
    root = tmp_path_factory.mktemp("demo")
    datasets.generate_demo(root / "data", customers=1200, months=12, seed=11)
    (root / "segflow.toml").write_text(datasets.demo_project_toml("data"), encoding="utf-8")
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = ingest(store, Settings.load(root), root, now=END)
    return root, store, report


def _outcomes(store: Store, root: Path) -> pd.DataFrame:
    defects = root / "data" / "truth" / "defects.csv"
    store.raw.execute(
        f"CREATE OR REPLACE TEMP TABLE d AS SELECT * FROM read_csv('{defects}', all_varchar=true)")
    return store.sql("""
        SELECT d.file, CAST(d.row_number AS BIGINT) AS row_number, d."column" AS col, d.defect,
               d.detail,
               coalesce(q.rule, 'dup:' || g.kind, 'flag:' || f.rule, 'accepted') AS outcome,
               g.duplicate_of_row
        FROM d
        LEFT JOIN quarantine q ON q.source_file = 'data/' || d.file
             AND q.row_number = CAST(d.row_number AS BIGINT)
        LEFT JOIN ingest_duplicates g ON g.source_file = 'data/' || d.file
             AND g.row_number = CAST(d.row_number AS BIGINT)
        LEFT JOIN (SELECT source_file, row_number, min(rule) AS rule FROM ingest_flags GROUP BY ALL) f
             ON f.source_file = 'data/' || d.file AND f.row_number = CAST(d.row_number AS BIGINT)
        WHERE d.file LIKE '%.csv'""").to_pandas()


def test_every_defect_has_the_right_outcome(demo):
    root, store, _ = demo
    out = _outcomes(store, root)
    assert len(out) > 100
    for row in out.itertuples():
        col = None if pd.isna(row.col) or row.col == "" else row.col
        allowed = EXPECTED.get((row.defect, col)) or EXPECTED[(row.defect, None)]
        assert row.outcome in allowed, (row.file, row.row_number, row.defect, col, row.outcome)
    dups = out[out.defect == "exact_duplicate"]
    copy_of = dups.detail.str.extract(r"copy of row (\d+)")[0].astype(int)
    assert (dups.duplicate_of_row.astype(int) == copy_of).all()


def test_nothing_but_defects_is_rejected(demo):
    """Clean rows are all accepted: the quarantined and duplicate rows are exactly the
    injected defects (no collateral rejections)."""
    root, store, report = demo
    out = _outcomes(store, root)
    rejected = out[~out.outcome.str.startswith(("flag:", "accepted"))]
    frame = report.to_pandas()
    assert report.reconciles
    assert int(frame.rows_quarantined.sum() + frame.rows_duplicate.sum()) == len(rejected)


def test_counts_reconcile_with_file_lengths(demo):
    root, store, report = demo
    frame = report.to_pandas().set_index("source_file")
    for name in ("customers", "transactions", "events", "campaign_exposures", "survey_responses"):
        lines = (root / "data" / f"{name}.csv").read_bytes().count(b"\n") - 1  # header
        assert frame.loc[f"data/{name}.csv", "rows_read"] == lines
        row = frame.loc[f"data/{name}.csv"]
        assert row.rows_read == row.rows_accepted + row.rows_quarantined + row.rows_duplicate


def test_csv_and_parquet_give_the_same_canonical_tables(demo):
    root, store, _ = demo
    toml = datasets.demo_project_toml("data").replace(".csv\"", ".parquet\"").replace(
        'format = "csv"', 'format = "parquet"')
    pq_root = root / "pq"
    pq_root.mkdir(exist_ok=True)
    (pq_root / "data").mkdir(exist_ok=True)
    for f in (root / "data").glob("*.parquet"):
        (pq_root / "data" / f.name).write_bytes(f.read_bytes())
    (pq_root / "segflow.toml").write_text(toml, encoding="utf-8")
    pq_store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest(pq_store, Settings.load(pq_root), pq_root, now=END)
    # The CSV carries extra unparseable-date rows (CSV-only defects): compare the rest.
    csv_only = store.sql("""SELECT CAST(row_number AS BIGINT) AS r FROM read_csv(
        '""" + str(root / "data" / "truth" / "defects.csv") + """', all_varchar=true)
        WHERE file = 'transactions.csv' AND defect = 'unparseable_date'""").column(0).to_pylist()
    assert csv_only
    for table, key in [("customers", "customer_id"), ("transactions", "transaction_id"),
                       ("events", "customer_id, ts, event_type, session_id, item"),
                       ("campaign_exposures", "campaign_id, customer_id, ts, exposure_type"),
                       ("survey_responses", "customer_id, ts, question")]:
        drop = "source_file, load_id"
        a = store.sql(f"SELECT * EXCLUDE ({drop}) FROM {table} ORDER BY {key}, source_row").to_pandas()
        b = pq_store.sql(f"SELECT * EXCLUDE ({drop}) FROM {table} ORDER BY {key}, source_row").to_pandas()
        if table == "transactions":  # same rows, same order: drop the CSV-only defects
            b = b[~b.source_row.isin(csv_only)].reset_index(drop=True)
        assert len(a) == len(b) > 0, table
        pd.testing.assert_frame_equal(a, b,
                                      check_dtype=False, obj=table)
