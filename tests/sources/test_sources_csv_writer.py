"""Every CSV segflow writes goes through one writer that neutralises spreadsheet formulas."""

from __future__ import annotations

import ast
import csv
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from segflow._csv import neutralise_formulas, write_csv

SRC = Path(__file__).resolve().parents[2] / "src" / "segflow"
PAYLOADS = ["=cmd|' /C calc'!A0", "+1+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
            "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1",
            # after white space, and full-width / small forms that fold to the signs
            " =1+1", "\u3000=1+1", "\n =HYPERLINK(\"http://evil.test\")", "\uff1dHYPERLINK(1)",
            "\uff0b1+1", "\uff0d2+3", "\uff20SUM(1)", "\ufe661+1"]


def test_neutralise_prefixes_formulas_in_text_not_in_numbers() -> None:
    values = [*PAYLOADS, "-12.5", "1e5", "plain", None, "'=already", " plain", "a=b", "\uff21"]
    out = neutralise_formulas(pa.table({"v": values, "n": [-1.5] * len(values)}))
    got = out.column("v").to_pylist()
    assert got[: len(PAYLOADS)] == ["'" + p for p in PAYLOADS]
    assert got[len(PAYLOADS):] == ["-12.5", "1e5", "plain", None, "'=already", " plain", "a=b",
                                   "\uff21"]
    assert out.column("n").to_pylist() == [-1.5] * len(values)  # numeric columns unchanged


#: OWASP's list ends with the line feed, OWASP ASVS 5.0 (1.2.10) adds NUL; a sign after an
#: invisible format character (zero-width space, byte-order mark, word joiner, soft hyphen,
#: direction mark) or a vertical tab is a sign to a program that drops those on import. These
#: were written as they were (only tab, CR and white space were looked through).
INVISIBLE = ["\nfoo", "\x00=1", "\u200b=HYPERLINK(\"http://evil.test\")", "\ufeff@SUM(1)",
             "\u2060+1+cmd", "\u00ad-2+cmd", "\u200e\u200b =1", "\x0b=1", "\u200b\uff1dx"]


def test_line_feed_nul_and_invisible_characters_before_a_sign(tmp_path: Path) -> None:
    harmless = ["\u200bplain", "\u00adx", "a\u200b=b"]
    out = neutralise_formulas(pa.table({"v": [*INVISIBLE, *harmless]})).column("v").to_pylist()
    assert out == ["'" + v for v in INVISIBLE] + harmless
    write_csv(pa.table({"v": INVISIBLE}), tmp_path / "i.csv")
    with (tmp_path / "i.csv").open(newline="", encoding="utf-8") as fh:
        assert [r["v"] for r in csv.DictReader(fh)] == ["'" + v for v in INVISIBLE]


def test_write_csv_round_trip(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"id": PAYLOADS, "x": np.arange(len(PAYLOADS), dtype=float)})
    n = write_csv(frame, tmp_path / "sub" / "a.csv")
    with (tmp_path / "sub" / "a.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert n == len(rows) == len(PAYLOADS)
    assert all(r["id"].startswith("'") for r in rows)


def test_write_csv_neutralises_the_header_row(tmp_path: Path) -> None:
    """A column named by the user (``--id-col``, a source's own columns) is a header cell."""
    write_csv(pa.table({"=cmd|' /C calc'!A0": ["a"], "\uff1dx": ["b"], "ok": ["c"]}),
              tmp_path / "h.csv")
    header = (tmp_path / "h.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == '"\'=cmd|\' /C calc\'!A0","\'\uff1dx","ok"'


def _csv_calls(tree: ast.AST) -> list[int]:
    """Lines calling a CSV writer other than segflow._csv.write_csv."""
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            if name == "to_csv" or (name == "write_csv" and owner in ("pacsv", "pcsv", "csv")) \
                    or (name in ("writer", "DictWriter") and owner == "csv"):
                bad.append(node.lineno)
        # DuckDB's COPY ... (FORMAT CSV) / (FORMAT 'csv'), not a message naming `--format csv`
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and re.search(r"[(,]\s*FORMAT\s+'?CSV", node.value.upper()):
            bad.append(node.lineno)
    return bad


def test_no_csv_writer_bypasses_the_shared_one() -> None:
    # The demo-data generator writes *input* files (with deliberate defects) and is exempt.
    exempt = {SRC / "_csv.py", SRC / "datasets" / "_generate.py"}
    offenders = {str(p.relative_to(SRC)): _csv_calls(ast.parse(p.read_text()))
                 for p in SRC.rglob("*.py") if p not in exempt}
    assert {k: v for k, v in offenders.items() if v} == {}


def _cli(*args: str, cwd: Path):
    import os

    from typer.testing import CliRunner

    from segflow.cli import app

    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        os.chdir(old)


@pytest.mark.slow
def test_cluster_output_is_neutralised(tmp_path: Path) -> None:
    from segflow.sources._ids import TRIM_CHARS

    rng = np.random.default_rng(0)
    # ids are trimmed as the ingest trims them (" =1+1" is the id "=1+1"): one of each
    payloads = list(dict.fromkeys(p.strip(TRIM_CHARS) for p in PAYLOADS))
    ids = [*payloads, *(f"c{i}" for i in range(200))]
    with (tmp_path / "cust.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["customer_id", "recency", "frequency"])
        for cid in ids:
            w.writerow([cid, rng.integers(1, 300), rng.integers(1, 20)])
    r = _cli("segment", "cluster", "--input", "cust.csv", "--k", "3", "--bootstrap", "0",
             "--out", "seg.csv", cwd=tmp_path)
    assert r.exit_code == 0, r.output
    for name in ("seg.csv",):
        with (tmp_path / name).open(newline="", encoding="utf-8") as fh:
            got = {r["customer_id"] for r in csv.DictReader(fh)}
        assert {"'" + p for p in payloads} <= got, name
        assert not any(v[:1] in "=+-@\t\r" for v in got), name
