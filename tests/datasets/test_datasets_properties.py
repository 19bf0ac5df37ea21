"""Invariants that hold for any size, length and seed (small sizes, property-based)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from segflow.datasets import generate_demo


@settings(max_examples=8, deadline=None)
@given(
    customers=st.integers(1, 400),
    months=st.integers(3, 9),
    seed=st.integers(0, 2**32 - 1),
)
def test_counts_files_and_truth_agree(customers, months, seed):
    with tempfile.TemporaryDirectory() as tmp:
        ds = generate_demo(Path(tmp), customers=customers, months=months, seed=seed)
        summary = ds.to_pandas().set_index("table")
        for table, n in ds.rows.items():
            assert pd.read_parquet(ds.files[table]["parquet"]).shape[0] == n
            lines = Path(ds.files[table]["csv"]).read_bytes().count(b"\n") - 1
            assert lines == n
            assert summary.loc[table, "rows"] == n
        cust = pd.read_parquet(ds.files["customers"]["parquet"])
        assert cust["customer_id"].nunique() == customers
        latent = pd.read_parquet(ds.truth["latent_groups"])
        assert set(latent["customer_id"]) == set(cust["customer_id"])
        month = pd.to_datetime(latent["month"])
        index = (month.dt.year - ds.start.year) * 12 + month.dt.month - ds.start.month
        first = index.groupby(latent["customer_id"]).transform("min")
        per = latent.assign(i=index).groupby("customer_id")["i"].agg(["min", "max", "count"])
        assert (per["max"] == months - 1).all()  # every customer is followed to the end
        assert (per["count"] == per["max"] - per["min"] + 1).all()  # no gaps
        assert (first >= 0).all()
        defects = pd.read_csv(ds.truth["defects"])
        for file, rows in defects.groupby("file")["row_number"]:
            table = file.rsplit(".", 1)[0]
            assert rows.between(1, ds.rows[table]).all()
            assert rows.is_unique
        assert int(summary["defects"].sum()) == sum(ds.defects.values())
