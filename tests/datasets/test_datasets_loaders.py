"""Loaders of the CDNOW sample and the donations panel, against independent reads."""

from __future__ import annotations

import numpy as np
import pytest

from segflow.datasets import load_cdnow, load_donations_bgbb
from segflow.errors import InputError, SegflowError


def test_cdnow_sample(cdnow_dir):
    df = load_cdnow(cdnow_dir / "CDNOW_sample.txt")
    assert list(df.columns) == ["customer_id", "date", "cds", "amount"]
    assert len(df) == 6919
    assert df["customer_id"].nunique() == 2357
    raw = np.loadtxt(cdnow_dir / "CDNOW_sample.txt")  # independent read
    assert df["amount"].sum() == pytest.approx(raw[:, 4].sum(), abs=1e-6)
    assert df["cds"].sum() == int(raw[:, 3].sum())
    assert df["date"].min().date().isoformat() == "1997-01-01"
    assert df["date"].max().date().isoformat() == "1998-06-30"
    assert df["customer_id"].iloc[0] == "00004"
    first = df.groupby("customer_id")["date"].min()
    assert (first < "1997-04-01").all()  # the cohort first bought in 1997 Q1


def test_cdnow_default_path(cdnow_dir):
    assert len(load_cdnow()) == 6919
    assert len(load_cdnow(cdnow_dir)) == 6919  # a folder works too


def test_donations_panel(cdnow_dir):
    df = load_donations_bgbb(cdnow_dir / "donations_bgbb.csv")
    assert list(df.columns) == ["frequency", "recency", "periods", "weights"]
    assert df["weights"].sum() == 11104
    assert (df["periods"] == 6).all()
    assert len(load_donations_bgbb()) == len(df)


def test_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(SegflowError, match="CDNOW_sample.txt not found.*brucehardie"):
        load_cdnow(tmp_path / "nope.txt")
    with pytest.raises(SegflowError, match="donations_bgbb.csv not found"):
        load_donations_bgbb(tmp_path)


def test_bad_rows_name_row_and_column(tmp_path):
    f = tmp_path / "cd.txt"
    f.write_text(" 00001 0001 19970101 1 10.0\n 00002 0002 19971340 1 12.0\n")
    with pytest.raises(InputError, match="row 2, column 'yyyymmdd'.*yyyymmdd"):
        load_cdnow(f)
    f.write_text(" 00001 0001 19970101 1\n")
    with pytest.raises(InputError, match="expected 5"):
        load_cdnow(f)
    d = tmp_path / "don.csv"
    d.write_text("frequency,recency,periods,weights\n1,1,6,10\n2,1,6,3\n")
    with pytest.raises(InputError, match="row 2.*frequency <= recency <= periods"):
        load_donations_bgbb(d)
    d.write_text("frequency,recency,periods\n1,1,6\n")
    with pytest.raises(InputError, match="missing weights"):
        load_donations_bgbb(d)
