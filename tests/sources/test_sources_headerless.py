"""Text files without a header line (``options.header = false`` + ``names``) and fields
separated by runs of white space (``delimiter = "whitespace"``): row 1 is line 1 without a
header, a row with another number of fields than the names is a ``malformed_row``, and
``sources check``, DuckDB's reader and the careful reader agree row by row, with accepted +
quarantined + blank lines = the file's lines (counted here apart from segflow)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from sources_project import NOW

from segflow.config import Settings
from segflow.errors import InputError
from segflow.sources import _readers, _textlines, check_source, ingest
from segflow.store import Store

NAMES = ["order_id", "customer", "ts", "amount"]
TOML = ('[[sources]]\nname = "orders"\ntable = "transactions"\npath = "tx.txt"\n'
        'format = "csv"\nmax_date = 2026-01-01\ndate_formats = ["%Y-%m-%d"]\n'
        'options = {{ {options} }}\n'
        '[sources.columns]\ntransaction_id = "order_id"\ncustomer_id = "customer"\n'
        'ts = "ts"\namount = "amount"\n')
HEADERLESS = 'header = false, names = ["order_id", "customer", "ts", "amount"]'

CSV = ("A1,c1,2024-01-02,10\n"
       "A2,c2,2024-01-03,5,x\n"          # a field too many
       "A3,c3,2024-01-03,6\n"
       "A4,c4,2024-01-04\n"              # a field short
       "A5,c5,2024-01-05,8\n")
# leading spaces, runs of spaces and tabs, CRLF line ends, a quote as an ordinary character,
# a line of spaces (blank), a field too many and a field short
ALIGNED = ("   A1   c1  2024-01-02    10.5\r\n"
           "A2\tc\"2\t2024-01-03 \t 5  \r\n"
           "   \r\n"
           "  A3  c3  2024-01-03  6  7\r\n"
           "A4 c4 2024-01-04\r\n"
           "\tA5 c5   2024-01-05 8\r\n")


def _expected(text: str, *, header: bool, split) -> tuple[set, set, int]:
    """(row, id, amount) of the rows, (row, reason) of the malformed rows and the blank
    lines, from the text alone (``split`` splits a line; Python, not segflow)."""
    lines = text.splitlines()
    skip = 1 if header else 0
    rows, bad, blank = set(), set(), 0
    for n, line in enumerate(lines[skip:], start=1):
        fields = split(line)
        if not line.strip():
            blank += 1
        elif len(fields) == len(NAMES):
            rows.add((n, fields[0], float(fields[3])))
        else:
            what = "the header's 4" if header else "the 4 of options.names"
            bad.add((n, f"{len(fields)} fields instead of {what}"))
    return rows, bad, blank


def _project(root: Path, text: str, options: str) -> Settings:
    root.mkdir(parents=True, exist_ok=True)
    (root / "tx.txt").write_bytes(text.encode())
    (root / "segflow.toml").write_text(TOML.format(options=options))
    return Settings.load(root)


def _ingested(root: Path, settings: Settings) -> tuple[set, set, tuple]:
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest(store, settings, root, now=NOW)
    stored = store.raw.execute("SELECT source_row, transaction_id, amount FROM transactions"
                               ).fetchall()
    bad = store.raw.execute("SELECT row_number, reason FROM quarantine "
                            "WHERE rule = 'malformed_row'").fetchall()
    loads = store.raw.execute("SELECT rows_read, rows_accepted, rows_quarantined FROM loads"
                              ).fetchone()
    store.close()
    return {(r, t, float(a)) for r, t, a in stored}, set(bad), loads


def _checked(root: Path, settings: Settings) -> tuple[set, set]:
    report = check_source(settings.sources[0], root, n=100, now=NOW)
    acc = {(int(r.row_number), r.transaction_id, float(r.amount))
           for r in report.accepted.itertuples()}
    rej = {(int(r.row_number), r.reason) for r in report.rejected.itertuples()}
    return acc, rej


#: per layout: (module, the engine's reader: made to give up), (module, the careful reader)
ENGINE = {"csv": (_readers, "_stage_csv_duckdb"), "whitespace": (_textlines, "_engine_lines")}
CAREFUL = {"csv": (_readers, "read_csv_file"), "whitespace": (_textlines, "read_lines")}


def _both_readers(tmp_path: Path, text: str, options: str, monkeypatch,
                  kind: str) -> list[tuple[set, set, tuple]]:
    """Ingest ``text`` by the engine's reader (asserted used), then by the careful one
    (the engine's made to give up)."""
    (fast_mod, fast), (careful_mod, careful) = ENGINE[kind], CAREFUL[kind]
    real_fast, real_careful = getattr(fast_mod, fast), getattr(careful_mod, careful)
    used: list[str] = []
    monkeypatch.setattr(fast_mod, fast, lambda *a, **k: used.append("fast") or real_fast(*a, **k))
    monkeypatch.setattr(careful_mod, careful, lambda *a, **k: used.append(
        f"careful {k.get('limit')}") or real_careful(*a, **k))
    first = _ingested(tmp_path / "a", _project(tmp_path / "a", text, options))
    assert "fast" in used and "careful None" not in used, used  # the engine read the file

    def give_up(*_a, **_k):
        used.append("fast")
        if kind == "csv":
            raise InputError("forced")
        return None  # _engine_lines: "cannot read every line as one"

    used.clear()
    monkeypatch.setattr(fast_mod, fast, give_up)
    second = _ingested(tmp_path / "b", _project(tmp_path / "b", text, options))
    assert "fast" in used and "careful None" in used, used
    return [first, second]


@pytest.mark.parametrize("case", ["csv", "tsv", "aligned", "aligned-header"])
def test_sources_check_and_both_readers_agree_and_reconcile(tmp_path, monkeypatch, case):
    if case in ("csv", "tsv"):  # the TSV's delimiter is sniffed from its data lines
        sep = "," if case == "csv" else "\t"
        text, options, header = CSV.replace(",", sep), HEADERLESS, False
        split, kind = (lambda line: line.split(sep)), "csv"
    else:
        header = case == "aligned-header"
        text = ("order_id customer  ts amount\r\n" if header else "") + ALIGNED
        options = 'delimiter = "whitespace"' + ("" if header else ", " + HEADERLESS)
        split, kind = str.split, "whitespace"
    rows, bad, blank = _expected(text, header=header, split=split)
    lines = text.encode().count(b"\n")  # as wc -l: every line ends with a line end
    assert len(rows) + len(bad) + blank + header == lines and len(rows) >= 3 and len(bad) == 2

    for stored, quarantined, loads in _both_readers(tmp_path, text, options, monkeypatch, kind):
        assert stored == rows and quarantined == bad
        assert loads == (len(rows) + len(bad), len(rows), len(bad))
    assert _checked(tmp_path / "c", _project(tmp_path / "c", text, options)) == (rows, bad)


def test_whitespace_fields_keep_quotes_and_split_on_tabs(tmp_path):
    settings = _project(tmp_path, ALIGNED, 'delimiter = "whitespace", ' + HEADERLESS)
    stored, _, _ = _ingested(tmp_path, settings)
    store_ids = {t for _, t, _ in stored}
    assert store_ids == {"A1", "A2", "A5"}
    report = check_source(settings.sources[0], tmp_path, now=NOW)
    assert set(report.accepted["customer_id"]) == {"c1", 'c"2', "c5"}  # the quote is kept


@pytest.mark.parametrize(("options", "message"), [
    ("header = false", "options.header = false needs options.names"),
    ('names = ["a", "b"]', "set options.header = false too"),
    ('header = "no", names = ["a"]', "options.header must be true or false"),
    ('header = false, names = ["a", ""]', "options.names must be a list of column names"),
    ('header = false, names = ["a", "A"]', "column names repeat"),
    ('delimiter = "whitespace", quote = "\'"', "delimiter = 'whitespace' has no quoting"),
])
def test_layout_options_are_checked_in_one_line(tmp_path, options, message):
    settings = _project(tmp_path, CSV, options)
    with pytest.raises(InputError, match=re.escape(message)) as err:
        check_source(settings.sources[0], tmp_path, now=NOW)
    assert "\n" not in str(err.value) and "tx.txt" in str(err.value)


def test_a_space_delimiter_on_aligned_columns_suggests_whitespace(tmp_path):
    settings = _project(tmp_path, " 00004 0001 19970101  2   29.33\n", 'delimiter = " "')
    with pytest.raises(InputError, match="positions \\[1, 5, 7, 8\\]; .*delimiter = 'whitespace'"):
        check_source(settings.sources[0], tmp_path, now=NOW)


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_a_file_whose_rows_differ_in_fields_keeps_its_delimiter(sep):
    """Python's sniffer gives up on rows of several field counts (malformed rows); the
    delimiter is then the one the first line writes most, not a silent ','."""
    from segflow.sources._readers import _sniff

    text = "order_id,x;customer;ts;amount\nA1;c1;2024-01-02;10\nA2;c2;2024-01-03;5;x\nA4;c4\n"
    assert _sniff(text.replace(";", sep)) == sep


def test_a_headerless_file_of_blank_lines_loads_no_rows_and_says_so(tmp_path):
    settings = _project(tmp_path, "\n   \n\t\n", 'delimiter = "whitespace", ' + HEADERLESS)
    store = Store(":memory:")
    with pytest.warns(UserWarning, match=r"file tx\.txt holds only blank lines; loaded as 0 rows"):
        report = ingest(store, settings, tmp_path, now=NOW)
    assert list(report.to_pandas()[["status", "rows_read"]].itertuples(index=False, name=None)) \
        == [("empty", 0)]
    store.close()
