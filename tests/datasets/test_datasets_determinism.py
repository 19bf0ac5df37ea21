"""Same seed, same bytes; another seed, other data; ids continue across chunks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from segflow.datasets import _generate, generate_demo
from segflow.errors import SegflowError


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_files(tmp_path):
    a = generate_demo(tmp_path / "a", customers=1500, months=12, seed=11)
    b = generate_demo(tmp_path / "b", customers=1500, months=12, seed=11)
    da, db = _digests(a.out_dir), _digests(b.out_dir)
    assert len(da) == 5 * 2 + 6 + 1  # data files, truth files, README
    assert da == db
    assert a.rows == b.rows and a.defects == b.defects


def test_other_seed_gives_other_data(tmp_path):
    a = generate_demo(tmp_path / "a", customers=1500, months=12, seed=11)
    c = generate_demo(tmp_path / "c", customers=1500, months=12, seed=12)
    da, dc = _digests(a.out_dir), _digests(c.out_dir)
    for name in ("customers.parquet", "transactions.csv", "events.parquet", "truth/defects.csv"):
        assert da[name] != dc[name], name
    ta = pd.read_parquet(a.files["transactions"]["parquet"])
    tc = pd.read_parquet(c.files["transactions"]["parquet"])
    assert ta["amount"].sum() != pytest.approx(tc["amount"].sum(), rel=1e-9)


def test_ids_are_unique_and_continue_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(_generate, "CHUNK_CUSTOMERS", 400)
    ds = generate_demo(tmp_path, customers=1000, months=6, seed=3, formats=("parquet",))
    cust = pd.read_parquet(ds.files["customers"]["parquet"])
    ids = cust["customer_id"].drop_duplicates()
    assert list(ids) == [f"C{i:06d}" for i in range(1, 1001)]
    tx = pd.read_parquet(ds.files["transactions"]["parquet"])
    orders = tx[tx["order_id"].str.startswith("O")]
    truth = pd.read_csv(ds.truth["defects"])
    mine = (truth["file"] == "transactions.parquet") & truth["defect"].str.endswith("duplicate")
    dup_rows = truth.loc[mine, "row_number"] - 1
    clean = orders.drop(index=orders.index.intersection(dup_rows))
    numbers = clean["order_id"].str[1:].astype(int).sort_values().to_numpy()
    assert (numbers == range(1, len(numbers) + 1)).all()  # 1..N, no gap, no repeat
    ev = pd.read_parquet(ds.files["events"]["parquet"])
    sessions = ev.groupby("session_id")["customer_id"].nunique()
    assert (sessions == 1).sum() >= 0.99 * len(sessions)  # unknown-customer defects aside
    assert sessions.index.str.match(r"^S\d{10}$").all()


def test_only_the_requested_formats_are_written(tmp_path):
    ds = generate_demo(tmp_path, customers=200, months=4, formats=("csv",))
    assert not list(tmp_path.glob("*.parquet"))
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == sorted(
        f"{t}.csv" for t in _generate.TABLES
    )
    truth = pd.read_csv(ds.truth["defects"])
    assert set(truth["file"].str.rsplit(".", n=1).str[1]) <= {"csv"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"customers": 0}, "customers must be a positive integer"),
        ({"months": 2}, "months must be an integer between 3 and 240"),
        ({"start": "2024-01-15"}, "first day of a month"),
        ({"start": "soon"}, "start must be a date"),
        ({"formats": ("xlsx",)}, "formats must be"),
    ],
)
def test_bad_arguments_are_clear_errors(tmp_path, kwargs, match):
    with pytest.raises(SegflowError, match=match):
        generate_demo(tmp_path, **{"customers": 10, **kwargs})
