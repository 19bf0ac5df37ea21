"""Every recorded defect is really in the file, and every defect in the file is recorded.

The files are re-read with pandas and defects are detected independently of the generator:
each detector below looks only at the written rows.
"""

from __future__ import annotations

import pandas as pd
import pytest

TABLES = ("customers", "transactions", "events", "campaign_exposures", "survey_responses")
DATE_COL = {"customers": "created_at", "transactions": "order_date", "events": "ts",
            "campaign_exposures": "ts", "survey_responses": "ts"}


@pytest.fixture(scope="module")
def truth(demo_dir) -> pd.DataFrame:
    d = pd.read_csv(demo_dir / "truth" / "defects.csv", keep_default_na=False)
    d["pos"] = d["row_number"] - 1
    return d


def _read(demo_dir, table: str, fmt: str) -> pd.DataFrame:
    if fmt == "csv":
        return pd.read_csv(demo_dir / f"{table}.csv", dtype=str, keep_default_na=False)
    return pd.read_parquet(demo_dir / f"{table}.parquet")


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(str).where(frame.notna(), "")


def _ts(frame: pd.DataFrame, col: str, fmt: str) -> pd.Series:
    if fmt == "parquet":
        return frame[col]
    iso = pd.to_datetime(frame[col], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    return iso.fillna(pd.to_datetime(frame[col], format="%d/%m/%Y %H:%M", errors="coerce"))


def _detect(demo_dir, demo, table: str, fmt: str) -> pd.DataFrame:
    """Independent detection: (pos, column, defect) of every defective row of one file."""
    frame = _read(demo_dir, table, fmt)
    text = _as_text(frame)
    found: list[tuple[int, str, str]] = []
    dup = text.duplicated(keep="first")
    found += [(i, "", "exact_duplicate") for i in frame.index[dup]]
    known = set(_read(demo_dir, "customers", "parquet")["customer_id"])
    if "customer_id" in frame and table != "customers":
        cid = text["customer_id"]
        stripped = cid.str.strip()
        found += [(i, "customer_id", "missing_value") for i in frame.index[cid == ""]]
        near = (cid != stripped) & (cid != "")
        found += [(i, "customer_id", "near_duplicate") for i in frame.index[near]]
        unknown = (cid != "") & ~near & ~cid.isin(known)
        found += [(i, "customer_id", "unknown_customer") for i in frame.index[unknown]]
    col = DATE_COL[table]
    ts = _ts(frame, col, fmt)
    end = pd.Timestamp(demo.end)
    found += [(i, col, "future_date") for i in frame.index[ts >= end]]
    # a mistyped century: future whenever the files are loaded (1-365 days after the end
    # alone were in the past a year later, and ingest without max_date accepted them)
    assert (ts[ts >= end] > end + pd.Timedelta(days=36_525)).all()
    if fmt == "csv":
        found += [(i, col, "unparseable_date") for i in frame.index[ts.isna()]]
    if table == "transactions":
        amount = pd.to_numeric(text["amount"].replace("", None))
        found += [(i, "amount", "missing_value") for i in frame.index[amount.isna()]]
        order = text["order_id"].str.startswith("O")
        found += [(i, "amount", "non_positive_amount") for i in frame.index[order & (amount <= 0)]]
        # near duplicate: same order id as the previous row, amount one cent away
        same = text["order_id"].eq(text["order_id"].shift()) & ~dup & ~near
        cent = (amount - amount.shift()).abs().round(2).eq(0.01)
        found += [(i, "amount", "near_duplicate") for i in frame.index[same & cent]]
    if table == "customers":
        bad = ~text["gender"].isin(["F", "M", "X"])
        found += [(i, "gender", "invalid_value") for i in frame.index[bad]]
        same = text["customer_id"].eq(text["customer_id"].shift()) & ~dup
        found += [(i, "email", "near_duplicate") for i in frame.index[same]]
    if table == "survey_responses":
        found += [(i, "answer", "missing_value") for i in frame.index[text["answer"] == ""]]
    return pd.DataFrame(found, columns=["pos", "column", "defect"])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("table", TABLES)
def test_recorded_defects_match_the_rows_written(demo_dir, demo, truth, table, fmt):
    recorded = truth.loc[truth["file"] == f"{table}.{fmt}", ["pos", "column", "defect"]]
    found = _detect(demo_dir, demo, table, fmt)
    key = ["pos", "column", "defect"]
    rec = set(map(tuple, recorded[key].to_numpy().tolist()))
    det = set(map(tuple, found[key].to_numpy().tolist()))
    assert rec == det, (sorted(rec - det)[:5], sorted(det - rec)[:5])
    assert len(rec) == len(recorded)  # no row listed twice


def test_duplicates_follow_their_original(demo_dir, truth):
    dups = truth[truth["defect"].str.endswith("duplicate")]
    assert (dups["detail"] == "copy of row " + (dups["row_number"] - 1).astype(str)).all()


def test_near_duplicate_differs_only_in_its_column(demo_dir, truth):
    tx = _as_text(_read(demo_dir, "transactions", "csv"))
    near = truth[(truth["file"] == "transactions.csv") & (truth["defect"] == "near_duplicate")]
    assert len(near) > 10
    for pos, col in zip(near["pos"], near["column"], strict=True):
        a, b = tx.iloc[pos], tx.iloc[pos - 1]
        differs = [c for c in tx.columns if a[c] != b[c]]
        assert differs == [col]
        if col == "customer_id":
            assert a[col].strip() == b[col]


def test_defect_rates_are_small(demo, truth):
    tx = truth[truth["file"] == "transactions.csv"]
    share = len(tx) / demo.rows["transactions"]
    assert 0.005 <= share <= 0.012
    kinds = set(tx["defect"])
    assert kinds == {"exact_duplicate", "near_duplicate", "missing_value", "non_positive_amount",
                     "future_date", "unknown_customer", "unparseable_date"}
    for table in TABLES:
        rows = truth[truth["file"] == f"{table}.csv"]
        assert 0 < len(rows) <= 0.012 * demo.rows[table], table
    counted = truth[truth["file"].str.endswith(".csv")].groupby(
        truth["file"].str.removesuffix(".csv") + "/" + truth["defect"]).size()
    assert counted.to_dict() == demo.defects
