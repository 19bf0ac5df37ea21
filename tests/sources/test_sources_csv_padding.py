"""A CSV header ending in empty names (``a,b,c,d,,``: Excel writes them when a formatted
column was cleared) is padding, as the data rows' empty fields past the header are: the file
loads, and `sources check` and `ingest` (by DuckDB's reader or the careful one) agree per
row. An empty name between named columns is still refused in one line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from segflow.cli import app
from segflow.errors import InputError
from segflow.sources import _readers
from segflow.store import Store

runner = CliRunner()

TOML = ('[project]\nname = "t"\nstore = "segflow.duckdb"\n\n'
        '[[sources]]\nname = "orders"\ntable = "transactions"\npath = "data/tx.csv"\n'
        'max_date = 2026-01-01\ndate_formats = ["%Y-%m-%d"]\n'
        '[sources.columns]\ntransaction_id = "order_id"\ncustomer_id = "customer"\n'
        'ts = "ts"\namount = "amount"\n')
PADDED = ("order_id,customer,ts,amount,,\n"
          "A1,c1,2024-01-02,10,,\n"         # the padding, empty: accepted
          "A2,c2,2024-01-03,5\n"            # no padding at all: accepted
          "A3,c3,2024-01-03,6,x,\n"         # a value under an unnamed column: quarantined
          "A4,c4,2024-01-04\n"              # one field short: quarantined
          'A5,c5,2024-01-05,8,"",\n'        # quoted empty padding: accepted
          "A6,c6,2024-01-06,9,,,7\n")       # a value past the padding: quarantined
ACCEPTED = {(1, "A1", 10.0), (2, "A2", 5.0), (5, "A5", 8.0)}
QUARANTINED = {(3, "6 fields instead of the header's 4"),
               (4, "3 fields instead of the header's 4"),
               (6, "7 fields instead of the header's 4")}


def _project(root: Path, text: str = PADDED) -> list[str]:
    (root / "data").mkdir(parents=True)
    (root / "segflow.toml").write_text(TOML)
    (root / "data" / "tx.csv").write_text(text)
    return ["--project", str(root)]


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _ingested(root: Path, p: list[str]) -> tuple[set, set, tuple]:
    totals = _json(runner.invoke(app, ["ingest", *p, "--json"]))["totals"]
    with Store(root / "segflow.duckdb", read_only=True) as store:
        stored = store.raw.execute(
            "SELECT source_row, transaction_id, amount FROM transactions").fetchall()
        quarantined = store.raw.execute("SELECT row_number, reason FROM quarantine").fetchall()
        loads = store.raw.execute("SELECT sum(rows_read), sum(rows_accepted), "
                                  "sum(rows_quarantined) FROM loads").fetchone()
    assert (totals["rows_read"], totals["rows_accepted"], totals["rows_quarantined"]) == loads
    return {(r, t, float(a)) for r, t, a in stored}, set(quarantined), loads


def test_trailing_empty_header_names_are_padding_in_check_and_both_ingest_readers(
        tmp_path, monkeypatch):
    p = _project(tmp_path / "a")
    records = sum(1 for _ in csv.reader(PADDED.splitlines())) - 1  # Python's own count: 6
    check = _json(runner.invoke(app, ["sources", "check", "orders", *p, "--json"]))
    assert {(r["row_number"], r["transaction_id"], r["amount"])
            for r in check["accepted"]} == ACCEPTED
    assert {(r["row_number"], r["reason"]) for r in check["rejected"]} == QUARANTINED
    assert check["counts"]["rows_read"] == records

    # ingest of this simple file: DuckDB's reader, kept (the careful one reads no whole file;
    # it may read the first rows for ingest's preflight)
    calls: list[tuple[str, int | None]] = []
    fast, careful = _readers._stage_csv_duckdb, _readers.read_csv_file
    monkeypatch.setattr(_readers, "_stage_csv_duckdb",
                        lambda *a, **k: calls.append(("duckdb", a[-1])) or fast(*a, **k))
    monkeypatch.setattr(_readers, "read_csv_file",
                        lambda *a, **k: calls.append(("careful", k["limit"])) or careful(*a, **k))
    stored, quarantined, loads = _ingested(tmp_path / "a", p)
    assert ("duckdb", None) in calls and ("careful", None) not in calls
    assert (stored, quarantined, loads) == (ACCEPTED, QUARANTINED, (records, 3, 3))

    # the same file by the careful reader (DuckDB's gives up on it)
    calls.clear()

    def refuse(*a, **_k):
        calls.append(("duckdb", a[-1]))
        raise InputError("forced")

    monkeypatch.setattr(_readers, "_stage_csv_duckdb", refuse)
    p = _project(tmp_path / "b")
    stored, quarantined, loads = _ingested(tmp_path / "b", p)
    assert ("duckdb", None) in calls and ("careful", None) in calls
    assert (stored, quarantined, loads) == (ACCEPTED, QUARANTINED, (records, 3, 3))


@pytest.mark.parametrize("command", [["sources", "check", "orders"], ["ingest"]])
def test_an_empty_header_name_between_named_columns_is_refused(tmp_path, command):
    p = _project(tmp_path, "order_id,,customer,ts,amount,\nA1,x,c1,2024-01-02,10,\n")
    result = runner.invoke(app, [*command, *p])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "header has empty column names at positions [2]" in lines[0]
    assert "data/tx.csv" in lines[0]


def test_the_file_commands_read_padded_rows_by_the_ingest_rule(tmp_path):
    """``clv fit -t`` / ``segment cluster --input`` read a CSV through ``read_user_csv``:
    the same padding rule as ingest (header names and row fields past the last named column,
    all empty, are ignored); a value past the header still refuses the file, naming its line."""
    import ibis

    from segflow.cli._files import read_user_csv

    good = "".join(ln + "\n" for ln in PADDED.splitlines() if ln.split(",")[0] in
                   {"order_id", "A1", "A2", "A5"})
    both = [("order_id,customer,ts,amount\n", "header without padding"),
            ("order_id,customer,ts,amount,,\n", "header with padding")]
    for header, why in both:
        path = tmp_path / f"tx{len(header)}.csv"
        path.write_text(header + good.split("\n", 1)[1])
        frame = read_user_csv(ibis.duckdb.connect(), path).execute()
        assert list(frame.columns) == ["order_id", "customer", "ts", "amount"], why
        assert {(t, float(a)) for t, a in zip(frame.order_id, frame.amount, strict=True)} == \
            {(t, a) for _, t, a in ACCEPTED}, why
    path = tmp_path / "bad.csv"
    path.write_text(good + "A3,c3,2024-01-03,6,x,\n")  # line 5: a value under no name
    with pytest.raises(InputError) as info:
        read_user_csv(ibis.duckdb.connect(), path)
    assert str(info.value).startswith(f"file {path}: line 5 has 6 fields where the header has 4")

