"""CSV ingest under a small ``memory_limit``: DuckDB's CSV buffer follows the limit. Its
default (16 x max_line_size = 1 GiB) failed below about 2 GB with "could not allocate block
of size 1.0 GiB", and every CSV file silently took the slower careful reader."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from sources_project import NOW, ORDERS_TOML

from segflow.config import Settings
from segflow.sources import ingest
from segflow.sources._csvread import MAX_LINE_BYTES, csv_buffer_sizes
from segflow.store import Store
from segflow.store._memory import memory_limit_bytes

TOML = '[project]\nmemory_limit = "{limit}"\n' + ORDERS_TOML


@pytest.mark.parametrize(("value", "expected"), [("500MB", 500e6), ("1.5GiB", 1.5 * 2**30),
                                                  ("768MiB", 768 * 2**20)])
def test_memory_limit_bytes_reads_the_connection_setting(value, expected):
    with Store(":memory:", memory_limit=value) as store:
        assert memory_limit_bytes(store.raw) == pytest.approx(expected, rel=1e-3)  # shown to 0.1 unit


def test_buffer_is_an_eighth_of_the_limit_and_duckdbs_default_above_8_gib():
    with Store(":memory:", memory_limit="256MiB") as store:
        assert csv_buffer_sizes(store.raw) == (32 * 2**20, 16 * 2**20)
    with Store(":memory:", memory_limit="16GiB") as store:
        assert csv_buffer_sizes(store.raw) == (16 * MAX_LINE_BYTES, MAX_LINE_BYTES)


def _ingest(root: Path, rows: list[str], limit: str):
    (root / "segflow.toml").write_text(TOML.format(limit=limit))
    (root / "orders.csv").write_text("order_id,customer,date,amount,note\n" + "".join(rows))
    settings = Settings.load(root)
    store = Store(":memory:", memory_limit=settings.project.memory_limit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = ingest(store, settings, root, now=NOW)
    return store, report.to_pandas()


@pytest.mark.parametrize("limit", ["256MB", "1GB"])
def test_csv_ingest_under_a_small_memory_limit(tmp_path, limit, monkeypatch):
    from segflow.sources import _readers

    fast = _readers._stage_csv_duckdb
    outcomes: list[str] = []

    def spy(*args, **kwargs):
        try:
            staged = fast(*args, **kwargs)
        except Exception as exc:
            outcomes.append(f"failed: {exc}")
            raise
        outcomes.append("staged")
        return staged

    monkeypatch.setattr(_readers, "_stage_csv_duckdb", spy)
    amounts = [round(1 + (i * 37 % 1000) / 10, 2) for i in range(5000)]
    rows = [f"T{i},C{i % 97},2024-01-{1 + i % 28:02d},{a},n{i}\n" for i, a in enumerate(amounts)]
    store, report = _ingest(tmp_path, rows, limit)
    assert outcomes == ["staged"]  # DuckDB's reader took the file (no fall-back on an error)
    assert report.rows_accepted.tolist() == [5000] and report.rows_quarantined.tolist() == [0]
    got = store.sql("SELECT count(*) AS n, sum(amount) AS s, count(DISTINCT customer_id) AS c "
                    "FROM transactions").to_pylist()[0]
    assert got["n"] == 5000 and got["c"] == 97
    assert got["s"] == pytest.approx(sum(amounts), abs=1e-6)
    store.close()


def test_line_longer_than_the_reduced_line_limit_still_loads(tmp_path):
    """Under 128 MB the DuckDB reader takes lines up to 8 MiB; a 10 MiB note (an unmapped
    column) sends the file to segflow's own reader, which loads every row."""
    with Store(":memory:", memory_limit="128MB") as store:
        assert csv_buffer_sizes(store.raw)[1] < 10 * 2**20
    big = "x" * (10 * 2**20)
    rows = ["T1,A,2024-01-02,10.5,ok\n", f'T2,B,2024-01-03,7,"{big}"\n', "T3,C,2024-01-04,5,n\n"]
    store, report = _ingest(tmp_path, rows, "128MB")
    assert report.rows_accepted.tolist() == [3] and report.rows_quarantined.tolist() == [0]
    assert store.sql("SELECT sum(amount) AS s FROM transactions").to_pylist()[0]["s"] == 22.5
    store.close()
