"""Transaction lines without ids that repeat a block (docs/data.md, *Repeated lines*): all
kept, as documented, but a month appended twice to a file, or a file delivered again under
another name, no longer doubles its amounts silently: one warning per file naming the rows
or the days, each repeated line in ``ingest_flags`` (``repeated_lines``) and the audit."""

from __future__ import annotations

import warnings
from pathlib import Path

from sources_project import NOW
from sources_project import stored_rows as _stored

from segflow.config import Settings
from segflow.quality import audit
from segflow.sources import ingest
from segflow.store import Store

TOML = """
[[sources]]
name = "orders"
table = "transactions"
path = "data"
[sources.columns]
customer_id = "customer"
ts = "date"
amount = "amount"
"""
HEADER = b"customer,date,amount\n"
#: January: a basket of two equal lines (rows 1-2: no repeat), then three other orders
JAN = b"C1,2024-01-02,3.50\nC1,2024-01-02,3.50\nC2,2024-01-02,4.00\nC3,2024-01-05,1.00\nC1,2024-01-09,2.00\n"
FEB = b"C2,2024-02-01,5.00\nC3,2024-02-03,6.00\n"
FIX = ("its transaction lines have no id, so all are kept and these count twice (remove the "
       "copy, or map a transaction_id or a duplicate_key)")


def _ingest(root: Path, files: dict[str, bytes]) -> tuple[Store, object]:
    root.mkdir()
    (root / "segflow.toml").write_text(TOML)
    (root / "data").mkdir()
    for name, data in files.items():
        (root / "data" / name).write_bytes(data)
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = ingest(store, Settings.load(root), root, now=NOW)
    return store, report


def test_a_block_repeated_in_a_file_is_warned_about_and_flagged(tmp_path: Path) -> None:
    # January twice in one file (its basket's equal lines inside the copy), February twice
    # at the end of another
    store, report = _ingest(tmp_path / "p", {"a.csv": HEADER + JAN + JAN,
                                             "b.csv": HEADER + FEB + FEB + b"C4,2024-02-09,1\n"})
    frame = report.to_pandas().set_index("source_file")
    assert frame.loc["data/a.csv", ["rows_read", "rows_accepted", "rows_flagged"]].tolist() == [10, 10, 5]
    assert frame.loc["data/b.csv", ["rows_read", "rows_accepted", "rows_flagged"]].tolist() == [5, 5, 2]
    assert report.warnings == [
        f"file data/a.csv: rows 6 to 10 repeat rows 1 to 5 line for line (5 repeated lines in "
        f"all, over several orders); {FIX}",
        f"file data/b.csv: rows 3 to 4 repeat rows 1 to 2 line for line (2 repeated lines in "
        f"all, over several orders); {FIX}"]
    assert _stored(store, "SELECT source_file, row_number, column_name, value FROM ingest_flags "
                          "WHERE rule = 'repeated_lines' ORDER BY 1, 2") == [
        *[("data/a.csv", r, "date", f"repeats row {r - 5}") for r in range(6, 11)],
        ("data/b.csv", 3, "date", "repeats row 1"), ("data/b.csv", 4, "date", "repeats row 2")]
    assert _stored(store, "SELECT sum(amount) FROM transactions") == [(2 * 14.0 + 2 * 11.0 + 1,)]
    check = audit(store, as_of=NOW.date()).to_pandas().set_index("check").loc["flagged:repeated_lines"]
    assert (check["severity"], check["count"]) == ("warning", 7)


def test_lines_stored_from_another_file_are_warned_about_and_flagged(tmp_path: Path) -> None:
    # b.csv: January again (other bytes: CRLF), c.csv: February with January appended;
    # d.csv: a line equal to a stored one, one order only (a basket's equal line, say): no repeat
    crlf = (HEADER + JAN).replace(b"\n", b"\r\n")
    store, report = _ingest(tmp_path / "p", {"a.csv": HEADER + JAN, "b.csv": crlf,
                                             "c.csv": HEADER + FEB + JAN,
                                             "d.csv": HEADER + b"C3,2024-01-05,1.00\nC9,2024-03-01,2\n"})
    frame = report.to_pandas().set_index("source_file")
    assert frame.rows_flagged.to_dict() == {"data/a.csv": 0, "data/b.csv": 5, "data/c.csv": 5,
                                            "data/d.csv": 0}
    assert frame.rows_accepted.to_dict() == {"data/a.csv": 5, "data/b.csv": 5, "data/c.csv": 7,
                                             "data/d.csv": 2}
    stored = ("are stored already from file data/a.csv of source 'orders' (a file delivered "
              f"again under another name, or a month appended twice?); {FIX}")
    assert report.warnings == [
        f"file data/b.csv: all 5 lines of 3 days (2024-01-02 to 2024-01-09) {stored}",
        f"file data/c.csv: all 5 lines of 3 days (2024-01-02 to 2024-01-09) {stored}"]
    assert _stored(store, "SELECT source_file, list(row_number ORDER BY row_number), min(value) "
                          "FROM ingest_flags GROUP BY 1 ORDER BY 1") == [
        ("data/b.csv", [1, 2, 3, 4, 5], "stored from data/a.csv"),
        ("data/c.csv", [3, 4, 5, 6, 7], "stored from data/a.csv")]

