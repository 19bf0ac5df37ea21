"""Every kind of the generated bad-input corpus: no traceback; refused with one line naming the
file (row, column) or loaded with read = accepted + quarantined + duplicate, matching the
number of records the generator wrote."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from bad_corpus import Case, corpus
from sources_project import NOW
from typer.testing import CliRunner

from segflow.cli import app
from segflow.config import Settings
from segflow.errors import ConfigError, InputError
from segflow.sources import ingest
from segflow.store import Store

CASES = corpus()


def test_corpus_has_over_100_kinds() -> None:
    assert len(CASES) >= 100


def _ingest(root: Path, store: Store):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ingest(store, Settings.load(root), root, now=NOW)


def _count(store: Store, sql: str, params: list | None = None) -> int:
    return store.sql(sql, params).column(0)[0].as_py()


@pytest.mark.slow  # 132 kinds x two ingests: about a minute on a quiet machine
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_kind(case: Case, tmp_path: Path) -> None:
    root = case.write(tmp_path)
    store = Store(":memory:")
    if case.refused:
        with pytest.raises((InputError, ConfigError)) as info:
            _ingest(root, store)
        message = str(info.value)
        assert "\n" not in message and case.refused.lower() in message.lower(), message
        if isinstance(info.value, InputError) and case.name != "file_missing":
            assert info.value.file and Path(info.value.file).name in message
        if case.error_row is not None:
            assert info.value.row == case.error_row, message
        if case.error_column is not None:
            assert info.value.column == case.error_column, message
        assert _count(store, "SELECT count(*) FROM loads") == 0  # nothing written
        return
    report = _ingest(root, store)
    frame = report.to_pandas()
    assert (frame.rows_read == frame.rows_accepted + frame.rows_quarantined
            + frame.rows_duplicate).all()
    assert int(frame.rows_read.sum()) == case.records  # the generator's own count
    assert (frame.status == "skipped").sum() == case.skipped
    stored = _count(store, "SELECT count(*) FROM transactions")
    quarantined = _count(store, "SELECT count(*) FROM quarantine")
    duplicates = _count(store, "SELECT count(*) FROM ingest_duplicates")
    assert stored == frame.rows_accepted.sum()
    assert quarantined == frame.rows_quarantined.sum()
    assert duplicates == frame.rows_duplicate.sum()
    if case.accepted is not None:
        assert int(frame.rows_accepted.sum()) == case.accepted
    rows = {r["row_number"] for r in store.sql("SELECT row_number FROM quarantine").to_pylist()}
    assert set(case.quarantined_rows) <= rows
    if case.distinct_customers is not None:
        assert _count(store, "SELECT count(DISTINCT customer_id) FROM transactions") == \
            case.distinct_customers
    if case.flagged is not None:
        assert _count(store, "SELECT count(*) FROM ingest_flags WHERE rule = 'formula_in_text'") \
            == case.flagged
    # Every stored row names its physical line: re-reading that line gives the row's id.
    if case.path == "orders.csv" and case.records and stored:
        _check_lineage(root / "orders.csv", store)
    # A re-read adds nothing to the logs and says `unchanged`.
    again = _ingest(root, store).to_pandas()
    assert set(again.status) <= {"unchanged", "skipped"}
    assert _count(store, "SELECT count(*) FROM quarantine") == quarantined
    assert _count(store, "SELECT count(*) FROM ingest_duplicates") == duplicates


def _check_lineage(path: Path, store: Store) -> None:
    import csv
    import io

    raw = path.read_bytes()
    enc = "utf-16" if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    lines = io.StringIO(raw.decode(enc, errors="replace"), newline="").readlines()
    rows = store.sql("SELECT source_row, transaction_id FROM transactions").to_pylist()
    for r in rows:
        line = lines[r["source_row"]]  # row n is physical line n + 1 (0-based index n)
        first = next(csv.reader([line], delimiter=_delim(lines[0])), [""])[0]
        assert first.strip() == r["transaction_id"], (r, line)


def _delim(header: str) -> str:
    return next((d for d in (";", "\t", "|") if d in header), ",")


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if c.refused],
                         ids=[c.name for c in CASES if c.refused])
def test_cli_refuses_with_one_line(case: Case, tmp_path: Path) -> None:
    root = case.write(tmp_path)
    result = CliRunner().invoke(app, ["ingest", "-p", str(root)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and case.refused.lower() in errors[0].lower(), result.output
