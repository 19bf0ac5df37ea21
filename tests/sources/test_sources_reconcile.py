"""The reconciliation is independent of the parser: a reader that loses a row fails loudly,
and nothing of the file is written."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from sources_project import NOW, ORDERS_TOML

from segflow.config import Settings
from segflow.errors import StoreError
from segflow.sources import _csvread, ingest
from segflow.store import Store

TOML = ORDERS_TOML


def _project(tmp_path: Path, body: str) -> Path:
    (tmp_path / "segflow.toml").write_text(TOML)
    (tmp_path / "orders.csv").write_text("order_id,customer,date,amount\n" + body)
    return tmp_path


# quoted line break -> careful reader; blank line -> careful reader
BODIES = ['1,A,2024-01-01,3\n2,"B\nB",2024-01-02,4\n3,C,2024-01-03,5\n',
          "1,A,2024-01-01,3\n\n2,B,2024-01-02,4\n3,C,2024-01-03,5\n"]


@pytest.mark.parametrize("body", BODIES)
def test_a_reader_losing_a_row_fails_loudly(tmp_path: Path, body: str, monkeypatch) -> None:
    root = _project(tmp_path, body)
    real_add = _csvread._Sink.add
    second = 2 if '"' in body else 3  # the second record's row (its first physical line - 1)

    def lossy(self, row: int, fields: list[str]) -> None:
        if row != second:  # drop one parsed row on the floor, as a buggy parser would
            real_add(self, row, fields)

    monkeypatch.setattr(_csvread._Sink, "add", lossy)
    store = Store(":memory:")
    with warnings.catch_warnings(), pytest.raises(StoreError, match="nothing was loaded"):
        warnings.simplefilter("ignore")
        ingest(store, Settings.load(root), root, now=NOW)
    assert store.sql("SELECT count(*) FROM transactions").column(0)[0].as_py() == 0
    assert store.sql("SELECT count(*) FROM loads").column(0)[0].as_py() == 0


def test_line_accounting_catches_swallowed_lines() -> None:
    tally = _csvread.CsvTally(bytes_read=10, file_bytes=10, lines=5, header_lines=1,
                              blank_lines=0, record_lines=3, records=3)
    with pytest.raises(StoreError, match="5 lines"):
        tally.check("f.csv")
    tally.record_lines = 4
    tally.check("f.csv")
    tally.bytes_read = 9
    with pytest.raises(StoreError, match="9 bytes of 10"):
        tally.check("f.csv")


def test_rows_are_physical_lines_with_blank_lines(tmp_path: Path) -> None:
    """101 rows, a blank line every other row: each stored row names its own line."""
    lines = []
    for i in range(1, 102):
        lines.append(f"{i},C{i},2024-01-01,{i}")
        if i % 2 == 0:
            lines.append("")
    root = _project(tmp_path, "\n".join(lines) + "\n")
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest(store, Settings.load(root), root, now=NOW)
    physical = (root / "orders.csv").read_text().split("\n")
    rows = store.sql("SELECT source_row, transaction_id FROM transactions").to_pylist()
    assert len(rows) == 101
    assert all(physical[r["source_row"]].split(",")[0] == r["transaction_id"] for r in rows)
