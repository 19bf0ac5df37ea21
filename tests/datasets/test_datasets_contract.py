"""The fixed file contract: names, columns, types, codes, date formats, returns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

COLUMNS = {
    "customers": ["customer_id", "created_at", "email", "phone", "age_band", "gender",
                  "income_band", "region", "city", "signup_channel"],
    "transactions": ["order_id", "customer_id", "order_date", "amount", "quantity",
                     "unit_price", "category", "channel", "promo_code", "product_id"],
    "events": ["customer_id", "ts", "event_type", "item", "category", "session_id"],
    "campaign_exposures": ["campaign_id", "customer_id", "ts", "arm", "exposure_type"],
    "survey_responses": ["customer_id", "ts", "question", "answer"],
}
TIMESTAMPS = {"created_at", "order_date", "ts"}
FLOATS = {"amount", "unit_price"}


def _defect_rows(demo_dir, file: str) -> set[int]:
    d = pd.read_csv(demo_dir / "truth" / "defects.csv")
    return set(d.loc[d["file"] == file, "row_number"] - 1)


def test_files_and_columns(demo_dir):
    for table, cols in COLUMNS.items():
        header = (demo_dir / f"{table}.csv").read_text().split("\n", 1)[0]
        assert header.split(",") == cols
        schema = pq.read_schema(demo_dir / f"{table}.parquet")
        assert schema.names == cols
        for field in schema:
            if field.name in TIMESTAMPS:
                assert field.type == pa.timestamp("us"), field
            elif field.name in FLOATS:
                assert field.type == pa.float64(), field
            elif field.name == "quantity":
                assert field.type == pa.int64()
            else:
                assert field.type == pa.string(), field
    for name in ("latent_groups.parquet", "transition_matrix.csv", "defects.csv",
                 "campaign_effects.csv", "campaign_transitions.csv", "groups.csv"):
        assert (demo_dir / "truth" / name).exists()
    assert list(pd.read_csv(demo_dir / "truth" / "defects.csv").columns[:4]) == [
        "file", "row_number", "column", "defect"]
    latent = pq.read_schema(demo_dir / "truth" / "latent_groups.parquet")
    assert latent.names == ["customer_id", "month", "group"]
    assert latent.field("month").type == pa.date32()


def test_csv_and_parquet_hold_the_same_rows(demo_dir):
    for table in COLUMNS:
        csv = pd.read_csv(demo_dir / f"{table}.csv", dtype=str, keep_default_na=False)
        par = pd.read_parquet(demo_dir / f"{table}.parquet")
        assert len(csv) == len(par), table
        for col in ("customer_id", "order_id", "session_id", "campaign_id", "answer"):
            if col in par:
                assert (csv[col] == par[col].fillna("")).all(), (table, col)


def test_codes_and_id_formats(demo_dir, demo):
    cust = pd.read_parquet(demo_dir / "customers.parquet")
    bad_gender = _defect_rows(demo_dir, "customers.parquet")
    ok = cust.drop(index=list(bad_gender))
    assert set(ok["gender"]) == {"F", "M", "X"}
    assert cust["customer_id"].str.match(r"^C\d{6}$").all()
    assert set(cust["age_band"]) == {"18-24", "25-34", "35-44", "45-54", "55-64", "65+"}
    ev = pd.read_parquet(demo_dir / "events.parquet")
    assert set(ev["event_type"]) == {"visit", "product_view", "cart_add", "purchase"}
    ex = pd.read_parquet(demo_dir / "campaign_exposures.parquet")
    assert set(ex["arm"]) == {"treatment", "control"}
    assert set(ex["exposure_type"]) == {"send", "open", "click"}
    assert set(ex.loc[ex["arm"] == "control", "exposure_type"]) == {"send"}
    sv = pd.read_parquet(demo_dir / "survey_responses.parquet")
    assert set(sv["question"]) == {"lifestyle", "price_sensitivity"}
    tx = pd.read_parquet(demo_dir / "transactions.parquet")
    assert tx["order_id"].str.match(r"^[OR]\d{9}$").all()


def test_order_dates_mix_two_documented_formats(demo_dir):
    csv = pd.read_csv(demo_dir / "transactions.csv", dtype=str, keep_default_na=False)
    par = pd.read_parquet(demo_dir / "transactions.parquet")
    bad = _defect_rows(demo_dir, "transactions.csv")
    iso = pd.to_datetime(csv["order_date"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    dayfirst = pd.to_datetime(csv["order_date"], format="%d/%m/%Y %H:%M", errors="coerce")
    parsed = iso.fillna(dayfirst)
    unparsed = set(np.flatnonzero(parsed.isna().to_numpy()))
    flagged = {r for r in bad if r in unparsed}
    assert unparsed == flagged  # every unparseable date is a recorded defect
    share = dayfirst.notna().mean()
    assert 0.05 < share < 0.11  # about 8% day-first
    both = parsed.notna() & par["order_date"].notna()
    assert (parsed[both] == par.loc[both, "order_date"]).all()  # same instants in both formats
    assert (dayfirst.dropna().dt.second == 0).all()


def test_returns_reference_an_earlier_order_of_the_same_customer(demo_dir):
    tx = pd.read_parquet(demo_dir / "transactions.parquet")
    bad = _defect_rows(demo_dir, "transactions.parquet")
    tx["clean"] = ~tx.index.isin(list(bad))
    ret = tx[tx["order_id"].str.startswith("R") & tx["clean"]]
    orders = tx[tx["order_id"].str.startswith("O")].drop_duplicates("order_id")
    assert 0.02 < len(ret) / len(orders) < 0.05
    assert (ret["quantity"] < 0).all() and (ret["amount"] < 0).all()
    assert np.allclose(ret["amount"], (ret["quantity"] * ret["unit_price"]).round(2))
    pair = ret.merge(orders.assign(order_id="R" + orders["order_id"].str[1:]), on="order_id",
                     suffixes=("", "_order"), validate="one_to_one")
    assert len(pair) == len(ret)  # every return has its order
    pair = pair[pair["clean_order"]]
    assert (pair["customer_id"] == pair["customer_id_order"]).all()
    assert (pair["order_date"] > pair["order_date_order"]).all()
    assert (-pair["quantity"] <= pair["quantity_order"]).all()
    assert (pair["unit_price"] == pair["unit_price_order"]).all()
    clean = orders[orders["clean"]]
    assert (clean["amount"] > 0).all()
    assert np.allclose(clean["amount"], (clean["quantity"] * clean["unit_price"]).round(2))


def test_clean_rows_lie_within_the_data_window(demo_dir, demo):
    end = pd.Timestamp(demo.end)
    start = pd.Timestamp(demo.start)
    assert demo.end == dt.date(2026, 1, 1)
    for table, col in (("transactions", "order_date"), ("events", "ts"),
                       ("campaign_exposures", "ts"), ("survey_responses", "ts")):
        frame = pd.read_parquet(demo_dir / f"{table}.parquet")
        bad = _defect_rows(demo_dir, f"{table}.parquet")
        ts = frame[col].drop(index=list(bad))
        assert ts.min() >= start - pd.Timedelta(hours=1), table
        assert ts.max() < end, table
    cust = pd.read_parquet(demo_dir / "customers.parquet")
    assert cust["created_at"].max() < end
    assert (cust["created_at"] >= start).mean() > 0.5  # most customers are acquired over time


def test_orders_never_precede_sign_up(demo_dir):
    tx = pd.read_parquet(demo_dir / "transactions.parquet")
    cust = pd.read_parquet(demo_dir / "customers.parquet").drop_duplicates("customer_id")
    m = tx.merge(cust[["customer_id", "created_at"]], on="customer_id")
    assert (m["order_date"] >= m["created_at"]).all()
