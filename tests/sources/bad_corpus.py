"""A generated corpus of bad (and awkward) input files: more than 100 kinds.

Each :class:`Case` writes its files into a project folder and states, independently of
segflow's readers, how many data records the files hold (counted while writing them) or
that the input must be refused with a one-line error naming the file (and row / column
where the case says so). Nothing here is committed as data: every file is generated.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import json
import lzma
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TOML = """
[[sources]]
name = "orders"
table = "transactions"
path = "{path}"
{extra}
[sources.columns]
transaction_id = "order_id"
customer_id = "customer"
ts = "date"
amount = "amount"
category = "note"
"""
HEADER = ["order_id", "customer", "date", "amount", "note"]


@dataclass
class Case:
    """One kind of bad input."""

    name: str
    files: dict[str, bytes]
    path: str = "orders.csv"
    extra: str = ""
    records: int | None = None  # data records in the files (None: refused)
    refused: str | None = None  # a word the one-line error must contain
    error_row: int | None = None  # the row the error must name
    error_column: str | None = None
    quarantined_rows: list[int] = field(default_factory=list)  # rows that must be quarantined
    accepted: int | None = None  # exact accepted count, when the case fixes it
    skipped: int = 0  # files of a folder listed as skipped
    distinct_customers: int | None = None
    flagged: int | None = None  # accepted rows flagged formula_in_text

    def write(self, root: Path) -> Path:
        (root / "segflow.toml").write_text(TOML.format(path=self.path, extra=self.extra))
        for name, data in self.files.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return root


def _row(i: int, **over: str) -> list[str]:
    row = {"order_id": f"T{i}", "customer": f"C{i % 7}", "date": f"2024-01-{1 + i % 28:02d}",
           "amount": f"{10 + i % 13}.5", "note": f"n{i}"}
    row.update(over)
    return [row[h] for h in HEADER]


def _csv(rows: list[list[str]], *, header: list[str] = HEADER, delimiter: str = ",",
         terminator: str = "\n") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=terminator)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _lines(n: int, start: int = 1) -> list[str]:
    return [",".join(_row(i)) for i in range(start, start + n)]


def _join(header: str, lines: list[str], end: str = "\n") -> bytes:
    return (end.join([header, *lines]) + end).encode("utf-8", "surrogateescape")


H = ",".join(HEADER)


def _structural() -> list[Case]:
    out = []
    for at in (1, 2, 5, 10, 19, 20):  # an unclosed quote opens on data row `at` of 20
        lines = _lines(20)
        lines[at - 1] = lines[at - 1].replace(",C", ',"C', 1)
        out.append(Case(f"runaway_quote_row_{at}", {"orders.csv": _join(H, lines)}, records=20,
                        quarantined_rows=[at], accepted=19))
    lines = _lines(20)
    for at in (3, 12):
        lines[at - 1] = lines[at - 1].replace(",C", ',"C', 1)
    out.append(Case("two_stray_quotes", {"orders.csv": _join(H, lines)}, records=20,
                    quarantined_rows=[3, 12], accepted=18))
    lines = _lines(2000)
    lines[9] = lines[9].replace(",n", ',"n', 1)
    out.append(Case("runaway_quote_2000_rows", {"orders.csv": _join(H, lines)}, records=2000,
                    quarantined_rows=[10], accepted=1999))
    lines = _lines(10)
    lines[4] = lines[4].replace(",n5", ',"n5 "quoted" word', 1)
    out.append(Case("quote_inside_quoted_field", {"orders.csv": _join(H, lines)}, records=10))
    lines = _lines(10)
    lines[9] = lines[9] + '"'
    out.append(Case("quote_at_last_byte", {"orders.csv": _join(H, lines)}, records=10))
    rows = [_row(i) for i in range(1, 11)]
    rows[3][4] = "two\nlines"
    rows[6][4] = "three\r\nline\nnote"
    out.append(Case("newline_in_quoted_field", {"orders.csv": _csv(rows).encode()}, records=10,
                    accepted=10))
    rows = [_row(i) for i in range(1, 11)]
    rows[2][4] = 'a "quoted", with comma'
    out.append(Case("doubled_quotes_and_comma", {"orders.csv": _csv(rows).encode()}, records=10,
                    accepted=10))
    for where, blanks in (("start", [0]), ("middle", [4]), ("end", [10]), ("many", [2, 2, 5, 9])):
        lines = _lines(10)
        for k in sorted(blanks, reverse=True):
            lines.insert(k, "")
        out.append(Case(f"blank_lines_{where}", {"orders.csv": _join(H, lines)}, records=10,
                        accepted=10))
    lines = _lines(10)
    lines.insert(5, "   ")
    out.append(Case("whitespace_only_line", {"orders.csv": _join(H, lines)}, records=10,
                    accepted=10))
    lines = _lines(10)
    lines[3] += ",extra"
    lines[6] = lines[6].rsplit(",", 1)[0]
    out.append(Case("wrong_field_counts", {"orders.csv": _join(H, lines)}, records=10,
                    quarantined_rows=[4, 7], accepted=8))
    lines = [ln + "," for ln in _lines(10)]
    out.append(Case("trailing_delimiter_every_row", {"orders.csv": _join(H, lines)}, records=10,
                    accepted=10))
    lines[4] = lines[4].replace(",C", ',"C', 1)  # the careful reader must agree with DuckDB
    out.append(Case("trailing_delimiter_and_quote", {"orders.csv": _join(H, lines)}, records=10,
                    accepted=9, quarantined_rows=[5]))
    for name, end in (("crlf", "\r\n"), ("cr_only", "\r")):
        out.append(Case(f"line_end_{name}", {"orders.csv": _join(H, _lines(10), end)},
                        records=10, accepted=10))
    mixed = (H + "\n" + "\r\n".join(_lines(3)) + "\r" + "\n".join(_lines(3, 4)) + "\n").encode()
    out.append(Case("line_end_mixed", {"orders.csv": mixed}, records=6, accepted=6))
    out.append(Case("no_final_newline", {"orders.csv": _join(H, _lines(10)).rstrip(b"\n")},
                    records=10, accepted=10))
    long_note = "x" * 200_000
    lines = _lines(5)
    lines[2] = lines[2].replace(",n3", f",{long_note}")
    out.append(Case("field_200k_chars", {"orders.csv": _join(H, lines)}, records=5,
                    quarantined_rows=[3], accepted=4))
    lines = _lines(5)
    lines[1] = lines[1] + "," + "y" * 30_000
    out.append(Case("long_malformed_line", {"orders.csv": _join(H, lines)}, records=5,
                    quarantined_rows=[2], accepted=4))
    wide = HEADER + [f"extra{i}" for i in range(500)]
    out.append(Case("500_unmapped_columns", {"orders.csv": _csv(
        [[*_row(i), *(["v"] * 500)] for i in range(1, 11)], header=wide).encode()},
        records=10, accepted=10))
    for name, delim in (("semicolon", ";"), ("tab", "\t"), ("pipe", "|")):
        out.append(Case(f"delimiter_{name}", {"orders.csv": _csv(
            [_row(i) for i in range(1, 11)], delimiter=delim).encode()}, records=10, accepted=10))
    out.append(Case("backslash_escape", {"orders.csv": (H + "\n" + "\n".join(
        f'T{i},C1,2024-01-02,3,"say \\"hi\\" {i}"' for i in range(1, 6)) + "\n").encode()},
        extra='options = { escape = "\\\\" }', records=5, accepted=5))
    out.append(Case("header_quoted_names", {"orders.csv": (
        '"order_id","customer","date","amount","note"\n' + "\n".join(_lines(5)) + "\n").encode()},
        records=5, accepted=5))
    out.append(Case("header_spaces", {"orders.csv": (
        " order_id , customer ,date,amount,note \n" + "\n".join(_lines(5)) + "\n").encode()},
        records=5, accepted=5))
    lines = _lines(6)
    lines[2] = 'T3,"",2024-01-02,5,""'
    out.append(Case("quoted_empty_strings", {"orders.csv": _join(H, lines)}, records=6,
                    accepted=6))
    nul = _join(H, _lines(400)).replace(b"n300\n", b"n\x00300\n")  # past the first 8 KiB
    out.append(Case("nul_byte_late", {"orders.csv": nul}, records=400, accepted=400))
    nul = _join(H, _lines(400)).replace(b"n3\n", b"n\x003\n")  # line 4: stray, not binary
    out.append(Case("nul_byte_early", {"orders.csv": nul}, records=400, accepted=400))
    return out


def _encodings() -> list[Case]:
    text = H + "\n" + "\n".join(_lines(8)).replace("n3", "Müller €5") + "\n"
    out = [
        Case("utf8_bom", {"orders.csv": codecs.BOM_UTF8 + text.encode()}, records=8, accepted=8),
        Case("utf16_le_bom", {"orders.csv": text.encode("utf-16")}, records=8, accepted=8),
        Case("utf16_be_bom", {"orders.csv": codecs.BOM_UTF16_BE + text.encode("utf-16-be")},
             records=8, accepted=8),
        Case("utf16_no_bom", {"orders.csv": text.encode("utf-16-le")}, refused="UTF-16"),
        Case("cp1252_without_option", {"orders.csv": text.encode("cp1252")}, records=8,
             quarantined_rows=[3], accepted=7),
        Case("cp1252_with_option", {"orders.csv": text.encode("cp1252")},
             extra='options = { encoding = "windows-1252" }', records=8, accepted=8),
        Case("latin1_option", {"orders.csv": text.replace("€", "E").encode("latin-1")},
             extra='options = { encoding = "latin-1" }', records=8, accepted=8),
        Case("utf16_truncated", {"orders.csv": text.encode("utf-16") + b"A"},
             refused="not valid utf-16"),
        Case("unknown_encoding", {"orders.csv": text.encode()},
             extra='options = { encoding = "klingon-8" }', refused="unknown encoding"),
        Case("invalid_utf8_bytes", {"orders.csv": text.encode().replace(b"M\xc3\xbc", b"M\xff\xfe")},
             records=8, quarantined_rows=[3], accepted=7),
        Case("truncated_utf8", {"orders.csv": text.encode().replace("€".encode(), b"\xe2\x82")},
             records=8, quarantined_rows=[3], accepted=7),
        Case("emoji_and_rtl", {"orders.csv": text.replace("Müller", "😀 שלום").encode()},
             records=8, accepted=8),
    ]
    return out


def _compressed() -> list[Case]:
    data = _join(H, _lines(12))
    blank = _join(H, [*_lines(6), "", *_lines(6, 7)])
    out = [
        Case("gzip_csv", {"orders.csv.gz": gzip.compress(data)}, path="orders.csv.gz",
             records=12, accepted=12),
        Case("bz2_csv", {"orders.csv.bz2": bz2.compress(data)}, path="orders.csv.bz2",
             records=12, accepted=12),
        Case("xz_csv", {"orders.csv.xz": lzma.compress(data)}, path="orders.csv.xz",
             records=12, accepted=12),
        Case("gzip_csv_blank_line", {"orders.csv.gz": gzip.compress(blank)}, path="orders.csv.gz",
             records=12, accepted=12),
        Case("gzip_corrupt", {"orders.csv.gz": gzip.compress(data)[:40] + b"\x00garbage"},
             path="orders.csv.gz", refused="decompress"),
        Case("gzip_not_gzip", {"orders.csv.gz": data}, path="orders.csv.gz", refused="decompress"),
    ]
    return out


def _refused() -> list[Case]:
    return [
        # no data rows: an empty month, loaded as 0 rows with a warning (not refused)
        Case("empty_file", {"orders.csv": b""}, records=0, accepted=0),
        Case("header_only", {"orders.csv": (H + "\n").encode()}, records=0, accepted=0),
        Case("header_only_no_newline", {"orders.csv": H.encode()}, records=0, accepted=0),
        Case("header_only_wrong_header", {"orders.csv": b"order_id,client,date,amount,note\n"},
             refused="customer", error_row=0, error_column="customer"),
        Case("empty_parquet_0_bytes", {"orders.parquet": b""}, path="orders.parquet",
             refused="empty (0 bytes)"),
        Case("binary_png", {"orders.csv": b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)) * 8},
             refused="binary"),
        Case("duplicate_header", {"orders.csv": _join(H + ",note", [ln + ",x" for ln in _lines(3)])},
             refused="repeat", error_row=0),
        # the store's SQL resolves names ignoring case: Amount and amount are one column
        Case("duplicate_header_case", {"orders.csv": _join(H + ",AMOUNT", [ln + ",9" for ln in _lines(3)])},
             refused="'amount' / 'AMOUNT'", error_row=0),
        Case("empty_header_name", {"orders.csv": _join("order_id,customer,,date,amount,note",
             [ln.replace(",", ",x,", 1) for ln in _lines(3)])},
             refused="empty column names", error_row=0),
        # trailing empty names are Excel's padding: ignored, as empty fields past them are
        Case("empty_header_names_trailing", {"orders.csv": _join(H + ",,", [
             ln + ("," if i % 2 else ",,x") for i, ln in enumerate(_lines(4))])},
             records=4, accepted=2, quarantined_rows=[1, 3]),
        Case("missing_mapped_column", {"orders.csv": _join("order_id,customer,date,note",
             ["T1,C1,2024-01-01,x"])}, refused="amount", error_row=0, error_column="amount"),
        Case("file_missing", {}, refused="no file matches"),
        Case("blank_first_line", {"orders.csv": b"\n" + _join(H, _lines(3))}, refused="empty"),
        Case("reserved_row_column", {"orders.csv": _join(H + ",_row", [ln + ",1" for ln in _lines(2)])},
             refused="reserved", error_column="_row"),
    ]


def _values() -> list[Case]:
    def one(name: str, n_bad: int = 1, *, accepted: int | None = None, flagged: int | None = None,
            **over: str) -> Case:
        rows = [_row(i) for i in range(1, 11)]
        for k in range(n_bad):
            rows[2 + k] = _row(3 + k, **over)
        return Case(name, {"orders.csv": _csv(rows).encode()}, records=10,
                    accepted=10 - n_bad if accepted is None else accepted,
                    quarantined_rows=[] if accepted is not None else list(range(3, 3 + n_bad)),
                    flagged=flagged)

    out = [
        one("bad_date", date="31/02/2024"), one("future_date", date="2999-01-01"),
        one("ancient_date", date="1800-01-01"), one("empty_date", date=""),
        one("amount_text", amount="abc"), one("amount_nan", amount="NaN"),
        one("amount_inf", amount="inf"), one("amount_overflow", amount="1e309"),
        one("amount_empty", amount=""), one("amount_decimal_comma", amount="1,5"),
        one("amount_zero", accepted=10, amount="0"),  # $0 rows are kept (purchase definition)
        one("order_id_empty", order_id=""),
        one("id_only_zero_width", customer="\u200b\u200b"),
        one("formula_eq", accepted=10, flagged=1, note="=cmd|' /C calc'!A0"),
        one("formula_plus", accepted=10, flagged=1, note="+1+cmd|' /C calc'!A0"),
        one("formula_minus", accepted=10, flagged=1, note="-2+3+cmd|' /C calc'!A0"),
        one("formula_at", accepted=10, flagged=1, note="@SUM(1+1)"),
        one("formula_tab", accepted=10, flagged=1, note="\t=1+1"),
        one("negative_number_text", accepted=10, flagged=0, note="-12.5"),
        one("html_in_text", accepted=10, flagged=0, note="<script>alert(1)</script>"),
        one("sql_in_text", accepted=10, flagged=0, note="'; DROP TABLE transactions; --"),
        one("very_negative_amount", accepted=10, amount="-1e12"),
    ]
    rows = [_row(i) for i in range(1, 11)]
    rows[5] = list(rows[4])
    out.append(Case("exact_duplicate_row", {"orders.csv": _csv(rows).encode()}, records=10,
                    accepted=9))
    rows = [_row(i) for i in range(1, 11)]
    rows[5] = _row(5, amount="99")
    out.append(Case("conflicting_id", {"orders.csv": _csv(rows).encode()}, records=10,
                    quarantined_rows=[6], accepted=9))
    invisible = ["C1", "C1\u200b", "\u200bC1", "C1\u00a0", "\u200eC1", "C1\u200f", "\ufeffC1",
                 "C\u2060" + "1", "\u202aC1\u202c", " C1 "]
    rows = [_row(i, customer=c) for i, c in enumerate(invisible, start=1)]
    out.append(Case("invisible_chars_in_ids", {"orders.csv": _csv(rows).encode()}, records=10,
                    accepted=10, distinct_customers=1))
    return out


def _jsonl() -> list[Case]:
    def obj(i: int, **over: object) -> str:
        return json.dumps(dict(zip(HEADER, _row(i), strict=True)) | over)

    good = [obj(i) for i in range(1, 9)]
    p = "orders.jsonl"

    def case(name: str, lines: list[str], end: str = "\n", **kw: object) -> Case:
        return Case(name, {p: (end.join(lines) + end).encode()}, path=p, **kw)  # type: ignore[arg-type]

    return [
        case("jsonl_valid", good, records=8, accepted=8),
        case("jsonl_one_invalid_line", [*good[:3], "{bad", *good[3:]], records=9,
             quarantined_rows=[4], accepted=8),
        case("jsonl_array_line", [*good[:2], "[1, 2]", *good[2:]], records=9,
             quarantined_rows=[3], accepted=8),
        case("jsonl_number_line", [*good[:2], "42", *good[2:]], records=9,
             quarantined_rows=[3], accepted=8),
        case("jsonl_blank_lines", [good[0], "", "", *good[1:]], records=8, accepted=8),
        case("jsonl_crlf", good, end="\r\n", records=8, accepted=8),
        case("jsonl_nested_value", [*good[:2], obj(3, note={"a": [1, 2]}), *good[3:]],
             records=8, accepted=8),
        case("jsonl_missing_key", [*good[:2], json.dumps({"order_id": "T3"}), *good[3:]],
             records=8, quarantined_rows=[3], accepted=7),
        case("jsonl_all_invalid", ["{bad", "nope"], refused="no JSON objects"),
        case("jsonl_truncated_last", [*good, good[0][:10]], records=9, quarantined_rows=[9],
             accepted=8),
        case("jsonl_cr_only", good, end="\r", records=8, accepted=8),
        Case("jsonl_invalid_utf8", {p: ("\n".join(good) + "\n").encode().replace(b'"C1"', b'"C\xff1"')},
             path=p, records=8, quarantined_rows=[1, 8], accepted=6),  # C1: rows 1 and 8
        Case("jsonl_bz2", {"orders.jsonl.bz2": bz2.compress(("\n".join(good) + "\n").encode())},
             path="orders.jsonl.bz2", records=8, accepted=8),
        Case("jsonl_gzip", {"orders.jsonl.gz": gzip.compress(("\n".join(good) + "\n").encode())},
             path="orders.jsonl.gz", records=8, accepted=8),
    ]


def _parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _parquet() -> list[Case]:
    n = 8
    base = {"order_id": [f"T{i}" for i in range(n)], "customer": [f"C{i}" for i in range(n)],
            "date": ["2024-01-02"] * n, "amount": [1.5] * n, "note": ["x"] * n}
    p = "orders.parquet"

    def case(name: str, **kw: object) -> Case:
        cols = dict(base)
        cols.update(kw.pop("cols", {}))  # type: ignore[arg-type]
        return Case(name, {p: _parquet_bytes(pa.table(cols))}, path=p, **kw)  # type: ignore[arg-type]

    floats = [1.0, 2.0, float("nan"), float("inf"), -float("inf"), 1.2345678901234567e19, 2.5, 7.0]
    return [
        case("parquet_valid", records=n, accepted=n),
        case("parquet_float_ids", cols={"order_id": floats}, records=n,
             quarantined_rows=[3, 4, 5, 6, 7], accepted=3),
        case("parquet_float_customer_nan", cols={"customer": [float("nan")] + [1.0] * (n - 1)},
             records=n, quarantined_rows=[1]),
        case("parquet_int_ids", cols={"order_id": list(range(n))}, records=n, accepted=n),
        case("parquet_list_column_mapped", cols={"note": [[1, 2]] * n}, refused="lists",
             error_column="note", error_row=1),
        case("parquet_struct_column_mapped", cols={"customer": [{"a": 1}] * n}, refused="lists",
             error_column="customer", error_row=1),
        case("parquet_list_column_unmapped", cols={"tags": [[1], [2, 3]] * (n // 2)}, records=n,
             accepted=n),
        case("parquet_map_column_unmapped", cols={"attrs": pa.array(
            [[("k", "v")]] * n, pa.map_(pa.string(), pa.string()))}, records=n, accepted=n),
        case("parquet_null_ids", cols={"order_id": [None] * n}, records=n,
             quarantined_rows=list(range(1, n + 1)), accepted=0),
        case("parquet_timestamp_dates", cols={"date": pa.array([1704153600] * n, pa.timestamp("s"))},
             records=n, accepted=n),
        case("parquet_dictionary_strings", cols={"customer": pa.array(
            [f"C{i % 2}" for i in range(n)]).dictionary_encode()}, records=n, accepted=n),
        Case("parquet_corrupt", {p: b"PAR1" + b"\x00" * 50 + b"PAR1"}, path=p, refused="Parquet"),
        Case("parquet_empty", {p: _parquet_bytes(pa.table({k: pa.array([], pa.string())
                                                           for k in base}))},
             path=p, records=0, accepted=0),
        Case("parquet_is_csv", {p: _join(H, _lines(3))}, path=p, refused="Parquet"),
    ]


def _folders() -> list[Case]:
    data = _join(H, _lines(4))
    more = _join(H, _lines(3, 5))
    return [
        Case("folder_mixed_no_format", {"in/a.csv": data, "in/b.csv.gz": gzip.compress(more),
                                        "in/README.md": b"notes", "in/.DS_Store": b"\x00\x01",
                                        "in/sub/c.csv": data},
             path="in", records=7, accepted=7, skipped=3),
        Case("folder_format_csv_with_parquet", {
            "in/a.csv": data, "in/b.parquet": _parquet_bytes(pa.table({"x": [1]}))},
            path="in", extra='format = "csv"', records=4, accepted=4, skipped=1),
        Case("folder_csv_and_jsonl", {"in/a.csv": data, "in/b.jsonl": (json.dumps(
            dict(zip(HEADER, _row(9), strict=True))) + "\n").encode()},
            path="in", records=5, accepted=5),
        Case("folder_only_unknown", {"in/notes.txt.md": b"x"}, path="in", refused="no file"),
        Case("folder_blank_line_file", {"in/a.csv": _join(H, [*_lines(2), "", *_lines(2, 3)])},
             path="in", records=4, accepted=4),
        Case("glob_two_files", {"x_1.csv": data, "x_2.csv": more}, path="x_*.csv", records=7,
             accepted=7),
    ]


def _generated() -> list[Case]:
    """A few dozen more kinds: each structural defect at a different place of a larger file."""
    out = []
    for k, (kind, make) in enumerate(_DEFECTS.items()):
        for where in (1, 250, 500):
            lines = _lines(500)
            lines[where - 1], quarantined = make(lines[where - 1])
            out.append(Case(f"{kind}_at_{where}", {"orders.csv": _join(H, lines)}, records=500,
                            quarantined_rows=[where] if quarantined else [],
                            accepted=499 if quarantined else None))
        del k
    return out


_DEFECTS: dict[str, Callable[[str], tuple[str, bool]]] = {
    "open_quote": lambda s: (s.replace(",C", ',"C', 1), True),
    "extra_field": lambda s: (s + ",x", True),
    "missing_field": lambda s: (s.rsplit(",", 1)[0], True),
    "bad_amount": lambda s: (s.replace(".5,", ".5x,", 1), True),
    "latin1_byte": lambda s: (s.replace("n", "n\udce9", 1), True),
}


def corpus() -> list[Case]:
    """Every case, with unique names."""
    cases = [*_structural(), *_encodings(), *_compressed(), *_refused(), *_values(), *_jsonl(),
             *_parquet(), *_folders(), *_generated()]
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases
