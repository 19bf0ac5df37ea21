"""The spreadsheet-formula guard applies to CSV/TSV text files only: every file writer of
segflow writes the same table with ``=evil``, ``+1+1``, ``-2+3``, ``@x``, tab- and CR-led text
as ``'``-prefixed text in CSV/TSV (number-like text such as ``+44 7700 900123`` as it is), and as it is in Parquet (read back equal); numbers stay
numbers (``-2`` written as ``-2``) in both."""

from __future__ import annotations

import ast
import csv
import datetime as dt
import types
from collections.abc import Callable
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "segflow"

RISKY = ["=evil", "+1+1", "-2+3", "@x", "\t=1+1", "\r=1+1"]
#: number-like text (a sign, then digits, spaces, dots, dashes, parentheses): written as it is
NUMBER_TEXT = ["+44 7700 900123", "-12.5"]
SAFE = ["ok", "a=b", None]
#: column names of the CLI's segment file (``segment --out`` keeps only these), plus a
#: number column with negative values
TABLE = pa.table({
    "customer_id": RISKY + ["ok", *NUMBER_TEXT],
    "segment": list(reversed(RISKY)) + SAFE,
    "segment_rank": pa.array([-2, -1, 0, 1, 2, 3, 4, 5, 6], pa.int64()),
    "amount": pa.array([-2.0, -0.5, 1.5, -1e6, 0.0, 3.25, -7.0, 8.0, None], pa.float64()),
})


def _guarded(value: str | None) -> str:
    """What a CSV cell should hold, stated by hand: ``'`` before a sign, tab or CR first,
    except number-like text (:data:`NUMBER_TEXT`)."""
    if value is None:
        return ""
    if value in NUMBER_TEXT:
        return value
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


#: the CSV cells of TABLE, by hand: text guarded, numbers as Arrow writes them (no ')
CSV_NUMBERS = {"segment_rank": ["-2", "-1", "0", "1", "2", "3", "4", "5", "6"],
               "amount": ["-2", "-0.5", "1.5", "-1000000", "0", "3.25", "-7", "8", ""]}


def _expected_csv(table: pa.Table) -> list[dict[str, str]]:
    text = {c: [_guarded(v) for v in table[c].to_pylist()] for c in ("customer_id", "segment")}
    columns = {**text, **CSV_NUMBERS}
    return [{c: columns[c][i] for c in table.column_names} for i in range(table.num_rows)]


def _read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter))


# -- every file writer, as (name, write(table, path)) ---------------------------------------
def _export_table_pandas(t: pa.Table, path: Path) -> None:
    from segflow.campaigns import export_table

    export_table(t.to_pandas(), path)


def _export_table_arrow(t: pa.Table, path: Path) -> None:
    from segflow.campaigns import export_table

    export_table(t, path)


def _audience_export(t: pa.Table, path: Path) -> None:  # campaign audience --out
    from segflow.campaigns import build_audience

    build_audience(t.to_pandas(), holdout=0.0, pii="include").export(path)


def _exports_write_file(t: pa.Table, path: Path) -> None:  # segflow export --to
    from segflow.exports._targets import write_file

    write_file(t, path, path.suffix.lstrip("."))


def _segment_list(t: pa.Table, path: Path) -> None:
    from segflow.exports import write_segment_list

    write_segment_list(t, path)


def _segment_out(t: pa.Table, path: Path) -> None:  # segflow segment --out
    from segflow.cli._segment import _Out, _write

    _write(ibis.memtable(t), _Out(path, "include", path.parent))


def _clv_score_out(t: pa.Table, path: Path) -> None:  # segflow clv score -o
    from segflow.cli._clv import _write_file

    _write_file(ibis.memtable(t), path, "include", path.parent)


def _churn_score_out(t: pa.Table, path: Path) -> None:  # segflow churn score --out
    from segflow.cli._churn import _write_out

    _write_out(types.SimpleNamespace(to_pandas=t.to_pandas, snapshot=dt.date(2024, 1, 1)), path)


def _cluster_out(t: pa.Table, path: Path) -> None:  # segflow segment cluster --out
    from segflow.cli._cluster import _write

    con = ibis.duckdb.connect()
    _write(con, con.create_table("t", t), path)


def _server_audience_download(t: pa.Table, path: Path) -> None:  # /api/v1/audiences?format=
    from segflow.server.routes.insights import _audience_download

    path.write_bytes(_audience_download(t.to_pandas(), path.suffix.lstrip("."), "a").body)


WRITERS: dict[str, Callable[[pa.Table, Path], None]] = {
    "export_table(pandas)": _export_table_pandas,
    "export_table(arrow)": _export_table_arrow,
    "Audience.export": _audience_export,
    "exports.write_file": _exports_write_file,
    "write_segment_list": _segment_list,
    "segment --out": _segment_out,
    "clv score -o": _clv_score_out,
    "churn score --out": _churn_score_out,
    "segment cluster --out": _cluster_out,
    "server audience download": _server_audience_download,
}




@pytest.mark.parametrize("writer", list(WRITERS))
def test_csv_is_guarded_and_parquet_is_kept_as_it_is(writer: str, tmp_path: Path) -> None:
    write = WRITERS[writer]
    write(TABLE, tmp_path / "out.csv")
    rows = _read_csv(tmp_path / "out.csv")
    keep = [c for c in TABLE.column_names if c in rows[0]]  # `segment --out` keeps three
    assert {"customer_id", "segment"} <= set(keep)
    by_id = {r["customer_id"]: {c: r[c] for c in keep} for r in rows}
    expected = {r["customer_id"]: {c: r[c] for c in keep} for r in _expected_csv(TABLE)}
    assert by_id == expected  # guarded text; -2, -0.5 and -1e6 as numbers, unprefixed

    write(TABLE, tmp_path / "out.parquet")
    back = pq.read_table(tmp_path / "out.parquet")
    for column in keep:  # the same values, read back equal (no ' added anywhere)
        got = dict(zip(back["customer_id"].to_pylist(), back[column].to_pylist(), strict=True))
        assert got == dict(zip(TABLE["customer_id"].to_pylist(), TABLE[column].to_pylist(),
                               strict=True)), column


def test_tsv_is_guarded_too(tmp_path: Path) -> None:
    """``segment cluster --out x.tsv``: the one TSV writer, through the same guard."""
    _cluster_out(TABLE, tmp_path / "out.tsv")
    rows = _read_csv(tmp_path / "out.tsv", delimiter="\t")
    assert [r["customer_id"] for r in rows] == [_guarded(v) for v in TABLE["customer_id"].to_pylist()]
    assert [r["amount"] for r in rows] == CSV_NUMBERS["amount"]


def test_number_like_text_is_written_as_it_is_and_formulas_are_guarded(tmp_path: Path) -> None:
    """A number or phone number stored as text (``-2``, ``+44 7700 900123``: a sign, then
    digits, spaces, dots, dashes, parentheses) holds no letter, so no function, reference or
    DDE call: written as it is (a quote would break CRM uploads of E.164 numbers). An
    operator besides (``-2+3``, ``+1*2``), any letter (``-A1``, ``+1e5``), or invisible
    characters first (`` -2``) keep the guard; a lone sign too."""
    from segflow.exports import write_csv

    values = {  # value -> the CSV cell, by hand
        "-2": "-2", "+1": "+1", "+44 7700 900123": "+44 7700 900123", "-12.5": "-12.5",
        "+1 (555) 010-0100": "+1 (555) 010-0100", "-2-3": "-2-3", "+44.20.7946.0000": "+44.20.7946.0000",
        "-2+3": "'-2+3", "+1*2": "'+1*2", "-A1": "'-A1", "+1e5": "'+1e5", " -2": "' -2",
        "+": "'+", "-": "'-", "=1+1": "'=1+1", "+cmd|' /C calc'!A0": "'+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0": "'-2+3+cmd|' /C calc'!A0", "@SUM(1)": "'@SUM(1)",
    }
    write_csv(pa.table({"as_text": list(values), "as_number": list(range(len(values)))}),
              tmp_path / "n.csv")
    assert [r["as_text"] for r in _read_csv(tmp_path / "n.csv")] == list(values.values())


def test_text_of_every_arrow_form_is_guarded(tmp_path: Path) -> None:
    """Text reaches the writer as string, large string, string view, a dictionary of either
    string kind, or a pandas categorical (pandas 3: a dictionary of large strings, which
    went out unguarded: ``=1+1`` written as it is); every form is guarded alike."""
    import pandas as pd

    from segflow.exports import write_csv

    values = ["=1+1", "@SUM(1)", "-2+3", "ok", "-2"]
    expected = ["'=1+1", "'@SUM(1)", "'-2+3", "ok", "-2"]
    text = pa.array(values, pa.string())
    forms = {
        "string": text, "large_string": text.cast(pa.large_string()), "string_view": text.cast(pa.string_view()),
        "dictionary": text.dictionary_encode(), "large_dictionary": text.cast(pa.large_string()).dictionary_encode(),
    }
    write_csv(pa.table(forms), tmp_path / "arrow.csv")
    rows = _read_csv(tmp_path / "arrow.csv")
    for name in forms:
        assert [r[name] for r in rows] == expected, name
    write_csv(pd.DataFrame({"segment": pd.Categorical(values)}), tmp_path / "categorical.csv")
    assert [r["segment"] for r in _read_csv(tmp_path / "categorical.csv")] == expected


def test_only_the_csv_writer_applies_the_guard() -> None:
    """The guard's one implementation is called by the CSV writer only (and by the
    deprecated pandas wrapper that forwards to it), so no Parquet/JSON/table writer can
    change a value."""
    callers = {}
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if "neutralise" not in text:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if name in ("neutralise_formulas", "neutralise_arrow"):
                    callers.setdefault(str(path.relative_to(SRC)), []).append(node.lineno)
    assert set(callers) == {"_csv.py", "campaigns/_targeting.py"}, callers
    assert len(callers["campaigns/_targeting.py"]) == 1  # the deprecated wrapper


#: Where a CSV may be written other than through segflow._csv.write_csv: the writer itself,
#: and the synthetic data generator (made-up rows, no user data; the defects it plants, such
#: as formula-like cells, are what the ingest's tests read back).
RAW_CSV_WRITERS = {"_csv.py", "datasets/_generate.py"}


def test_every_csv_is_written_through_the_guarded_writer() -> None:
    """No module writes CSV text itself (pyarrow.csv.write_csv, DataFrame.to_csv, the csv
    module's writers, a COPY ... (FORMAT csv)): each CSV file goes through write_csv and so
    through the formula guard (a new writer beside it would skip the guard)."""
    found = {}
    for path in SRC.rglob("*.py"):
        where = str(path.relative_to(SRC))
        text = path.read_text(encoding="utf-8")
        if "csv" not in text.lower():
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                owner_name = owner.id if isinstance(owner, ast.Name) else ""
                raw = (node.func.attr == "to_csv"
                       or node.func.attr in ("writer", "DictWriter") and owner_name == "csv"
                       or node.func.attr == "write_csv" and owner_name in ("pacsv", "pcsv", "csv"))
                if raw:
                    found.setdefault(where, []).append(node.lineno)
            if _copies_to_csv(node):
                found.setdefault(where, []).append(node.lineno)
    assert set(found) <= RAW_CSV_WRITERS, found


def _copies_to_csv(node: ast.AST) -> bool:
    """Whether ``node`` is SQL text (a string, or an f-string's literal parts) copying to a
    CSV file: ``COPY ... TO ... (FORMAT csv)``."""
    import re

    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    else:
        return False
    return bool(re.search(r"\bCOPY\b[\s\S]*\bTO\b[\s\S]*FORMAT\W*CSV", text, re.IGNORECASE))
