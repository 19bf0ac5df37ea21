"""Identifiers are text in every file command (issue 12, item 3).

Property: any CSV whose id column holds long digit strings, leading zeros or mixed digits
and letters round-trips every id unchanged through ``clv fit``, ``clv score``, ``segment
cluster``, ``segment profile``, ``campaign effect``, ``campaign uplift`` and ``campaign
audience --customers``. The written
files are read back with Python's csv module (text, no type guessing), so the check does
not depend on the reader under test.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from segflow.cli import app
from segflow.cli._files import is_id_column, read_user_csv

runner = CliRunner()

_long_digits = st.from_regex(r"[1-9][0-9]{15,24}", fullmatch=True)
_plain = st.from_regex(r"[1-9][0-9]{0,8}", fullmatch=True)
_leading_zeros = st.from_regex(r"0[0-9]{1,10}", fullmatch=True)
_mixed = st.from_regex(r"[0-9]{1,6}[A-Za-z][0-9A-Za-z]{0,6}|[A-Za-z]{1,3}[0-9]{1,8}", fullmatch=True)


@st.composite
def id_sets(draw: st.DrawFn, kind: str) -> list[str]:
    """10-30 distinct ids plus numeric twins ('007' next to '7', a long id next to its
    float-rounded form). ``long``: long and short digit strings without leading zeros (the
    column a type-guessing reader turns into a DOUBLE); ``zeros``: leading zeros too;
    ``mixed``: letters too."""
    kinds = {"long": [_long_digits, _plain], "zeros": [_long_digits, _leading_zeros],
             "mixed": [_long_digits, _leading_zeros, _mixed]}[kind]
    ids = draw(st.lists(st.one_of(*kinds), min_size=10, max_size=26, unique=True))
    twins = [i.lstrip("0") or "0" for i in ids if i.startswith("0")][:3]
    longs = [i for i in ids if len(i) > 15 and i.isdigit()]
    twins += [str(int(float(longs[0])))] if longs else []  # what a DOUBLE reader would write
    return list(dict.fromkeys([*ids, *twins]))


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _ok(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _histories(n: int = 330) -> list[list[tuple[int, float]]]:
    """(day of 2023, amount) purchases of ``n`` customers drawn from BG/NBD and Gamma-Gamma
    processes with a fixed seed, so that every example fits the same, identified data."""
    import numpy as np

    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        rate, drop = rng.gamma(0.8, 1 / 25), rng.beta(1.0, 3.0)  # purchases per day, dropout
        nu = rng.gamma(3.0, 1 / 40)  # spend per order ~ Gamma(4, nu)
        t, days = float(rng.integers(0, 300)), set()
        while t < 364 and len(days) < 30:
            days.add(int(t))
            if rng.random() < drop:
                break
            t += rng.exponential(1 / rate)
        out.append([(d, round(float(rng.gamma(4, 1 / nu)), 2)) for d in sorted(days)])
    return out


HISTORIES = _histories()


def _transactions(ids: list[str]) -> tuple[list[list[object]], dict[str, int]]:
    """The fixed histories, the first ones named by ``ids`` and the rest 500000, 500001...;
    returns the rows and each customer's repeat count (distinct purchase days - 1)."""
    fillers = (str(k) for k in range(500_000, 600_000) if str(k) not in ids)  # digits too
    names = [*ids, *(next(fillers) for _ in range(len(HISTORIES) - len(ids)))]
    rows, repeats = [], {}
    start = dt.date(2023, 1, 1)
    for cid, history in zip(names, HISTORIES, strict=True):
        rows += [[cid, (start + dt.timedelta(days=d)).isoformat(), f"{a:.2f}"] for d, a in history]
        repeats[cid] = len(history) - 1
    return rows, repeats


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["long", "zeros", "mixed"])
def test_ids_round_trip_through_every_file_command(tmp_path_factory, kind):
    @settings(max_examples=1, deadline=None, derandomize=True, phases=[Phase.generate],
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(ids=id_sets(kind))
    def check(ids: list[str]) -> None:
        _round_trip(tmp_path_factory.mktemp("ids"), ids)

    check()


def _round_trip(tmp: Path, ids: list[str]) -> None:
    n = len(ids)

    # clv fit / clv score: one customer per id, none merged; scores carry the ids unchanged
    rows, repeats = _transactions(ids)
    tx = _write_csv(tmp / "tx.csv", ["customer_id", "ts", "amount"], rows)
    fit = _ok(runner.invoke(app, ["clv", "fit", "-t", str(tx), "--calibration-end", "2023-12-31",
                                  "--time-unit", "week", "--spend-model", "none", "--json"]))
    assert fit["customers"]["in_summary"] == len(HISTORIES)
    scores = tmp / "scores.csv"
    _ok(runner.invoke(app, ["clv", "score", "-t", str(tx), "--snapshot", "2023-12-31",
                            "--time-unit", "week", "--spend-model", "none", "--output", str(scores), "--json"]))
    written = _read_csv(scores)
    assert sorted(r["customer_id"] for r in written) == sorted(repeats)
    assert {r["customer_id"]: round(float(r["x"])) for r in written} == repeats

    # segment cluster / profile: the assignments name every input id once, unchanged
    feats = [[cid, k % 5 + (k % 2) * 40.0, 100.0 + k] for k, cid in enumerate(ids)]
    customers = _write_csv(tmp / "customers.csv", ["customer_id", "frequency", "monetary"], feats)
    out = tmp / "assign.csv"
    _ok(runner.invoke(app, ["segment", "cluster", "--input", str(customers), "--k", "2",
                            "--bootstrap", "0", "--min-share", "0", "--out", str(out), "--json"]))
    assert sorted(r["customer_id"] for r in _read_csv(out)) == sorted(ids)
    profile = _ok(runner.invoke(app, ["segment", "profile", "--input", str(customers),
                                      "--assignments", str(out), "--json"]))
    assert sum(s["size"] for s in profile["data"]) == n
    assert sum(s["value"] for s in profile["data"]) == pytest.approx(sum(f[2] for f in feats))

    # campaign effect / uplift: every id is one customer; scored rows keep id and attributes
    # (uplift and audience with --pii include: by default an id shaped like a phone number,
    # such as a zero-padded 05906019572, is written as the project's pseudonymous key)
    resp_rows = [[cid, "T" if k % 2 else "C", (k * 5) % 3 == 0, k % 7 - 3.0]
                 for k, cid in enumerate(ids)]
    resp = _write_csv(tmp / "resp.csv", ["customer_id", "arm", "y", "x"],
                      [[c, a, int(y), x] for c, a, y, x in resp_rows])
    effect = _ok(runner.invoke(app, ["campaign", "effect", "--responses", str(resp),
                                     "--outcome", "y", "--control", "C", "--json"]))
    assert sum(r["n"] for r in effect["data"] if r["by"] == "(all)") == n
    scored = tmp / "uplift.csv"
    _ok(runner.invoke(app, ["campaign", "uplift", "--responses", str(resp), "--control", "C",
                            "--outcome", "y", "--feature", "x", "--test-size", "0.3",
                            "--scores-out", str(scored), "--pii", "include", "--json"]))
    back = {r["customer_id"]: float(r["x"]) for r in _read_csv(scored)}
    assert back == {c: x for c, _, _, x in resp_rows}

    # campaign audience --customers: the audience (target and hold-out) lists every id once
    aud = tmp / "audience.csv"
    _ok(runner.invoke(app, ["campaign", "audience", "--customers", str(scored), "--holdout", "0.2",
                            "--out", str(aud), "--pii", "include", "--json"]))
    assert sorted(r["customer_id"] for r in _read_csv(aud)) == sorted(ids)


@pytest.mark.parametrize(("name", "is_id"), [
    ("id", True), ("customer_id", True), ("Customer ID", True), ("customer-id", True),
    ("CustomerID", True), ("customerId", True), ("paid", False), ("valid", False),
    ("idle_days", False), ("amount", False)])
def test_id_column_names(name, is_id):
    assert is_id_column(name) is is_id


def test_reader_keeps_id_text_and_types_the_rest(tmp_path):
    import ibis

    path = _write_csv(tmp_path / "f.csv", ["CustomerID", "member", "amount"],
                      [["00123", "0042", "1.5"], ["12345678901234567890123", "7", "2"]])
    table = read_user_csv(ibis.duckdb.connect(), path, id_columns=("member",))
    frame = table.to_pyarrow().to_pylist()
    assert [r["CustomerID"] for r in frame] == ["00123", "12345678901234567890123"]
    assert [r["member"] for r in frame] == ["0042", "7"]
    assert [r["amount"] for r in frame] == [1.5, 2.0]


def test_a_file_mixing_line_ends_is_read_whole(tmp_path):
    # two exports joined: LF lines, then CRLF lines. DuckDB's strict parser failed to sniff
    # it ("cannot read the file: ... Error when sniffing file"); every file command reads
    # it now, each record once, with the ids as text and no CR left in the last column
    import ibis

    path = tmp_path / "customers.csv"
    lf = "".join(f"c{i:03d},{i % 5},{i}.5\n" for i in range(30))
    crlf = "".join(f"00{i},{i % 7},{i}\r\n" for i in range(30))
    path.write_bytes(("customer_id,visits,spend\n" + lf + crlf).encode())
    rows = read_user_csv(ibis.duckdb.connect(), path).to_pyarrow().to_pylist()
    assert len(rows) == 60 and rows[0]["customer_id"] == "c000" and rows[30]["customer_id"] == "000"
    assert sum(r["spend"] for r in rows) == sum(i + 0.5 for i in range(30)) + sum(range(30))
    out = tmp_path / "segments.csv"
    result = runner.invoke(app, ["segment", "cluster", "--input", str(path), "--k", "2",
                                 "--bootstrap", "0", "--min-share", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(r["customer_id"] for r in _read_csv(out)) == sorted(r["customer_id"] for r in rows)


def test_a_file_mixing_line_ends_that_reads_wrong_is_refused(tmp_path):
    # the lenient reader's rows are checked against Python's csv count of the records
    from segflow.cli._files import _check_records
    from segflow.errors import InputError

    path = tmp_path / "tx.csv"
    path.write_bytes(b"customer_id,ts\na,2023-01-01\r\nb,2023-01-02\n")
    _check_records(str(path), ",", 2)
    with pytest.raises(InputError, match="mixes line ends"):
        _check_records(str(path), ",", 3)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_file_commands_trim_ids_as_the_ingest_does(tmp_path, fmt):
    """`` A``, ``A `` and ``A`` with a tab or a zero-width space are one customer ``A`` in a
    project (the ingest trims ids); a file command counted them as four customers."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    spelled = [" A", "A ", "A\t", "\u200bA", "B", "\u00a0B", "C", "C", "D"]
    days = ["2023-01-05", "2023-03-01", "2023-06-10", "2023-09-02", "2023-02-01", "2023-05-01",
            "2023-04-04", "2023-11-11", "2023-07-07"]
    amounts = [10.0, 12.0, 9.0, 11.0, 20.0, 25.0, 5.0, 6.0, 40.0]
    start = dt.date(2023, 1, 1)
    for k, history in enumerate(HISTORIES):  # other customers, for the fit
        for d, a in history:
            spelled.append(f"F{k:03d}")
            days.append((start + dt.timedelta(days=d)).isoformat())
            amounts.append(a)

    def write(path, ids):
        if fmt == "csv":
            _write_csv(path, ["customer_id", "ts", "amount"],
                       [[i, d, str(a)] for i, d, a in zip(ids, days, amounts, strict=True)])
        else:
            pq.write_table(pa.table({"customer_id": ids, "ts": days, "amount": amounts}), path)

    messy, clean = tmp_path / f"messy.{fmt}", tmp_path / f"clean.{fmt}"
    write(messy, spelled)
    write(clean, [s.strip(" \t\u200b\u00a0") for s in spelled])
    out = {}
    for name, path in (("messy", messy), ("clean", clean)):
        scores = tmp_path / f"{name}-scores.csv"
        _ok(runner.invoke(app, ["clv", "score", "-t", str(path), "--snapshot", "2023-12-31",
                                "--spend-model", "none", "-o", str(scores), "--json"]))
        out[name] = {r["customer_id"]: (r["x"], r["t_x"], r["T"]) for r in _read_csv(scores)}
    assert sorted(out["messy"])[:4] == ["A", "B", "C", "D"] and len(out["messy"]) == 4 + len(HISTORIES)
    assert out["messy"] == out["clean"]
    # A: four purchase days, 2023-01-05 .. 2023-09-02 (240 days)
    assert float(out["messy"]["A"][0]) == 3
    assert float(out["messy"]["A"][1]) == pytest.approx(240 / 7, abs=1e-3)


def test_clv_reads_unix_time_with_date_format_s(tmp_path):
    """--date-format %s: seconds since 1970 UTC (DuckDB's strptime has no %s); the scores
    equal those of the same file written with ISO dates."""
    rows, _ = _transactions([])
    iso, unix = tmp_path / "iso.csv", tmp_path / "unix.csv"
    _write_csv(iso, ["customer_id", "ts", "amount"], rows)
    epoch = dt.datetime(1970, 1, 1)
    _write_csv(unix, ["customer_id", "ts", "amount"],
               [[c, str(int((dt.datetime.fromisoformat(d) - epoch).total_seconds())), a] for c, d, a in rows])
    out = {}
    for name, path, extra in (("iso", iso, []), ("unix", unix, ["--date-format", "%s"])):
        scores = tmp_path / f"{name}.scores.csv"
        _ok(runner.invoke(app, ["clv", "score", "-t", str(path), "--snapshot", "2023-12-31",
                                "-o", str(scores), "--json", *extra]))
        out[name] = _read_csv(scores)
    assert out["unix"] == out["iso"] and len(out["iso"]) == len(HISTORIES)


def test_clv_notes_the_rows_it_leaves_out(tmp_path):
    """Rows without a customer id (empty, or blank once trimmed) or without a date belong
    to no customer's history: they were dropped without a word."""
    rows, _ = _transactions([])
    extra = [["  ", "2023-05-01", "10"], ["", "2023-06-01", "12"], ["\t", "2023-07-01", "9"],
             ["500000", "", "4"]]
    path = _write_csv(tmp_path / "tx.csv", ["customer_id", "ts", "amount"], rows + extra)
    report = _ok(runner.invoke(app, ["clv", "fit", "-t", str(path), "--calibration-end", "2023-12-30",
                                     "--json"]))
    n = len(rows)  # the extra rows are data rows n+1 to n+4
    assert (f"file {path}, rows {n + 1}, {n + 2} and {n + 3}, column 'customer_id': 3 rows have "
            "no customer id and are left out") in report["notes"]
    assert f"file {path}, row {n + 4}, column 'ts': 1 row has no date and is left out" in report["notes"]
    assert report["customers"]["in_summary"] == len(HISTORIES)


@pytest.mark.parametrize("command", [
    ["clv", "fit", "--snapshot", "2024-01-01", "-t"],
    ["segment", "cluster", "--id-col", "customer_id", "--k", "2", "--input"],
    ["campaign", "effect", "--outcome", "amount", "--responses"],
])
def test_an_empty_file_is_named_empty(tmp_path, command):
    """A 0-byte CSV read as one column 'column0': the error blamed a missing column
    ("no date column 'ts'; columns are ['column0']")."""
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = runner.invoke(app, [*command, str(empty)])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: file {empty}: the file is empty (0 bytes: no header, no rows)"
