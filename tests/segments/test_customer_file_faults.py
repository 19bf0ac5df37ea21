"""Faults of the customer-level file commands (segment cluster/profile, campaign audience):
each refused in one line naming the file, the rows and the column, never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from segflow.cli import app

runner = CliRunner()


def _one_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


def test_audience_refuses_repeated_and_missing_ids(tmp_path):
    """A repeated id was in the target and in the hold-out, a row without an id in neither."""
    path = tmp_path / "dup.csv"
    args = ["campaign", "audience", "--customers", str(path), "--holdout", "0.5", "--seed", "1",
            "--out", str(tmp_path / "aud.csv")]
    path.write_text("customer_id,score\nA,1\nA,2\nC,3\nB,4\nB,5\nD,6\n")
    assert _one_line(runner.invoke(app, args)) == (
        f"error: file {path}, rows 1, 2, 4, ... (4 in all), column 'customer_id': expected one "
        "row per customer, but 2 ids repeat (first 'A', 'B', on 4 rows in all)")
    path.write_text("customer_id,score\nA,1\nB,2\n,3\nC,4\n,5\n")
    assert _one_line(runner.invoke(app, args)) == (
        f"error: file {path}, rows 3 and 5, column 'customer_id': 2 rows have no id; give each "
        "row its customer's id")
    assert not (tmp_path / "aud.csv").exists()


@pytest.mark.parametrize(("cell", "shown"), [("inf", "inf"), ("-inf", "-inf"), ("1e400", "inf"),
                                             ("NaN", "nan"), ("1e300", "1e+300")])
def test_profile_refuses_numbers_it_cannot_compute_with(tmp_path, cell, shown):
    """DuckDB's STDDEV_POP failed with a traceback (OutOfRangeException) on these cells."""
    features, assigned = tmp_path / "f.csv", tmp_path / "a.csv"
    features.write_text(f"customer_id,x,y\nA,1,2\nB,2,{cell}\nC,3,4\nD,4,5\nE,5,1\nF,6,3\n")
    assigned.write_text("customer_id,segment\nA,s1\nB,s1\nC,s1\nD,s2\nE,s2\nF,s2\n")
    result = runner.invoke(app, ["segment", "profile", "-i", str(features), "-a", str(assigned)])
    assert _one_line(result) == (
        f"error: file {features}, row 2, column 'y': 1 values are infinite, not a number or too "
        f"large to compute with (first {shown}, row 2; expected numbers within +-1e+150); empty "
        "those cells for missing values")


def test_cluster_refuses_numbers_too_large(tmp_path):
    """scikit-learn's scaling overflowed to infinity on 1e308 (a ValueError traceback)."""
    path = tmp_path / "h.csv"
    path.write_text("customer_id,x,y\n" + "".join(f"c{i},1e308,{i}\n" for i in range(8)))
    result = runner.invoke(app, ["segment", "cluster", "--input", str(path), "--id-col",
                                 "customer_id", "--features", "x,y", "--k", "2"])
    assert _one_line(result) == (
        f"error: file {path}, rows 1, 2, 3, ... (8 in all), column 'x': 8 values are infinite, "
        "not a number or too large to compute with (first 1e+308, row 1; expected numbers "
        "within +-1e+150); empty those cells for missing values")


def test_profile_refuses_assignments_without_a_segment(tmp_path):
    """An empty segment cell was profiled as a segment called 'nan'."""
    features, assigned = tmp_path / "g.csv", tmp_path / "a.csv"
    features.write_text("customer_id,x\nA,1\nB,2\nC,3\nD,4\nE,5\nF,6\n")
    assigned.write_text("customer_id,segment\nA,s1\nB,\nC,s1\nD,s2\nE,NA\nF,s2\n")
    result = runner.invoke(app, ["segment", "profile", "-i", str(features), "-a", str(assigned)])
    assert _one_line(result) == (
        f"error: file {assigned}, rows 2 and 5, column 'segment': 2 rows have no segment; give "
        "each row a segment, or leave out the rows of customers without one")


def test_cluster_json_has_every_warning_stderr_shows(tmp_path, monkeypatch):
    """A warning of the file reader was printed on stderr while --json said "warnings": []
    (only the fit's own two kinds were collected)."""
    import json
    import warnings

    from segflow.cli import _cluster

    real = _cluster.read_customer_file

    def reader(*args, **kwargs):
        warnings.warn("a reader's note", UserWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_cluster, "read_customer_file", reader)
    path = tmp_path / "w.csv"
    path.write_text("customer_id,x,y\n" + "".join(f"c{i},{i % 7},{(i * 3) % 5}\n" for i in range(30))
                    + "d,,1\n")
    result = runner.invoke(app, ["segment", "cluster", "--input", str(path), "--k", "2",
                                 "--bootstrap", "0", "--json"])
    assert result.exit_code == 0, result.output
    shown = [line.removeprefix("warning: ") for line in result.stderr.splitlines()
             if line.startswith("warning: ")]
    assert json.loads(result.stdout)["warnings"] == shown == [
        "column 'x': 1 of 31 customers have no value (an empty cell or a missing-value token "
        "such as NA); each gets the sample median of 'x'", "a reader's note"]


def test_engine_errors_on_a_file_are_one_line_naming_it():
    """An engine's error (DuckDB's OutOfRangeException, scikit-learn's plain ValueError) in a
    file command is one line naming the file, its cause kept for --debug; segflow's own bugs
    (a ValueError raised outside the engines) are not disguised."""
    import duckdb
    import numpy as np
    from sklearn.utils import check_array

    from segflow.errors import InputError, about_file, engine_error

    with pytest.raises(InputError) as got, about_file("f.csv"):
        duckdb.sql("SELECT stddev_pop(x) FROM (VALUES (1e300), (1.0)) t(x)").fetchall()
    assert str(got.value).startswith("file f.csv: the engine failed on this data "
                                      "(OutOfRangeException: Out of Range Error: STDDEV_POP")
    assert str(got.value).endswith("; rerun with --debug for the traceback")
    assert isinstance(got.value.__cause__, duckdb.OutOfRangeException)
    with pytest.raises(InputError, match=r"^file h.csv: the engine failed on this data "
                                         r"\(ValueError: Input contains infinity"), about_file("h.csv"):
        check_array(np.array([[np.inf, 1.0]]))
    with pytest.raises(ValueError, match="ours"), about_file("f.csv"):
        raise ValueError("ours")
    assert not engine_error(ValueError("ours")) and not engine_error(InputError("x"))


def test_audience_rule_errors_say_what_is_wrong(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("customer_id,x\nA,1\nB,2\n")
    expected = {"x >": "'>' lacks a value on its right", "> 3": "'>' lacks a value on its left",
                "x between 1": "'BETWEEN' lacks an upper bound (x BETWEEN 1 AND 9)",
                "x IN (": "Expecting ) at character 6"}
    for rule, problem in expected.items():
        result = runner.invoke(app, ["campaign", "audience", "--customers", str(path), "--where",
                                     rule, "--out", str(tmp_path / "aud.csv")])
        assert _one_line(result) == (f"error: file {path}: cannot use the rule {rule!r}: "
                                     f"{problem}; columns are: customer_id, x")


@pytest.mark.parametrize(("data", "kind"), [
    ("customer_id,x\nA,1\n".encode("utf-16"), "UTF-16 text (a spreadsheet's 'Unicode text'); "
     "convert it (iconv -f utf-16 -t utf-8) or"),
    ("customer_id,x\nA,1\nB,2\n".encode("utf-16-le"), "UTF-16 text (a spreadsheet's 'Unicode "
     "text'); convert it (iconv -f utf-16 -t utf-8) or"),
    (b"\x1f\x8b\x08\x00" + bytes(range(256)), "a gzip archive;"),
    (bytes(range(256)) * 4, "binary data;"),
], ids=["utf16-bom", "utf16le", "gzip", "binary"])
def test_a_file_that_is_not_utf8_text_is_named_so(tmp_path, data, kind):
    """DuckDB said 'Error when sniffing file' (or an unterminated quote), without advice."""
    path = tmp_path / "u.csv"
    path.write_bytes(data)
    for args in (["campaign", "audience", "--customers", str(path), "--out",
                  str(tmp_path / "aud.csv")], ["segment", "cluster", "--input", str(path)]):
        assert _one_line(runner.invoke(app, args)) == (
            f"error: file {path}: not a UTF-8 CSV file: it is {kind} save it as CSV UTF-8 (a "
            "spreadsheet's 'CSV UTF-8' export), or give a .parquet or .xlsx file under its own "
            "extension")


@pytest.mark.parametrize("cell", ["inf", "1e400", "NaN"])
def test_clv_refuses_amounts_it_cannot_compute_with(tmp_path, cell):
    """An 'inf' amount made a mean repeat spend NaN: the customer's CLV was dropped with
    only a warning. Refused, naming the rows and the first value as written."""
    from segflow.cli._clv import read_transactions
    from segflow.errors import InputError

    path = tmp_path / "tx.csv"
    path.write_text("customer_id,ts,amount\nA,2024-01-01,10\nA,2024-02-01,12\nB,2024-01-05,5\n"
                    f"B,2024-03-01,{cell}\nC,2024-01-09,1e300\nC,2024-02-09,3\n")
    with pytest.raises(InputError) as got:
        read_transactions(path, amount_col="amount")
    assert str(got.value) == (
        f"file {path}, rows 4 and 5, column 'amount': 2 amounts are infinite, not a number or too "
        f"large to compute with (first {cell!r}, row 4; expected amounts within +-1e+150); "
        "correct or remove those rows")
    path.write_text("customer_id,ts,amount\nA,2024-01-01,10\nB,2024-01-05,1e149\n")
    table, _ = read_transactions(path, amount_col="amount")
    assert sorted(table.to_pyarrow()["amount"].to_pylist()) == [10.0, 1e149]


def test_a_first_cell_inf_is_refused_too(tmp_path):
    """DuckDB's sniffer read a column whose first cell is 'inf' as text: profiled as
    categories, and summed as an audience's value to 'inf in total'."""
    features, assigned = tmp_path / "f.csv", tmp_path / "a.csv"
    features.write_text("customer_id,x,y\nA,inf,2\nB,2,1\nC,3,4\nD,4,5\n")
    assigned.write_text("customer_id,segment\nA,s1\nB,s1\nC,s2\nD,s2\n")
    expected = (f"error: file {features}, row 1, column 'x': 1 values are infinite, not a number "
                "or too large to compute with (first inf, row 1; expected numbers within "
                "+-1e+150); empty those cells for missing values")
    result = runner.invoke(app, ["segment", "profile", "-i", str(features), "-a", str(assigned)])
    assert _one_line(result) == expected
    result = runner.invoke(app, ["campaign", "audience", "--customers", str(features), "--value",
                                 "x", "--out", str(tmp_path / "aud.csv")])
    assert _one_line(result) == expected
    result = runner.invoke(app, ["campaign", "audience", "--customers", str(features), "--value",
                                 "y", "--out", str(tmp_path / "aud.csv"), "--json"])
    assert result.exit_code == 0, result.output  # another column's inf: not the value summed


def test_profile_json_has_every_warning_stderr_shows(tmp_path):
    import json

    features, assigned = tmp_path / "g.csv", tmp_path / "a.csv"
    features.write_text("customer_id,x\nA,1\nB,2\nC,3\nD,4\nE,5\n")
    assigned.write_text("customer_id,segment\nA,s1\nB,s1\nC,s2\nD,s2\n")  # E: no segment
    result = runner.invoke(app, ["segment", "profile", "-i", str(features), "-a", str(assigned),
                                 "--json"])
    assert result.exit_code == 0, result.output
    shown = [line.removeprefix("warning: ") for line in result.stderr.splitlines()
             if line.startswith("warning: ")]
    assert json.loads(result.stdout)["warnings"] == shown == [
        "1 customers of the features file have no segment in the assignments file and are left "
        "out of the profile"]


def test_a_carriage_return_inside_an_unquoted_field_names_its_row_and_column(tmp_path):
    """A CR alone inside an unquoted field (a line break in a spreadsheet cell) of a file whose
    lines end with LF: DuckDB's 'Error when sniffing file', no row nor column. Row 3 here is
    the third record: the quoted CR of row 1 is part of its field."""
    path = tmp_path / "cr.csv"
    args = ["campaign", "audience", "--customers", str(path), "--holdout", "0",
            "--out", str(tmp_path / "aud.csv")]
    path.write_bytes(b'customer_id,segment,score\nA,"x\ry",1\nB,y,2\nC,y\rz,3\nD,y,4\n')
    result = runner.invoke(app, args)
    assert "\r" not in result.output
    assert _one_line(result) == (
        f"error: file {path}, row 3, column 'segment': a carriage return (CR) inside an unquoted "
        "field, where the lines end with LF (a line break in a spreadsheet cell): put the field "
        "in double quotes or remove the character")
    path.write_bytes(b'customer_id,segment,score\nA,"x\ry",1\nB,y,2\nC,"y\rz",3\nD,y,4\n')
    assert runner.invoke(app, [*args, "--json"]).exit_code == 0  # quoted, it is read


def test_control_characters_of_names_in_an_error_are_escapes(tmp_path):
    """A segment name holding a tab or a CR was printed raw in the error line (a CR sent the
    cursor back over it); they are written as escapes, as `tokens list` writes a name."""
    path = tmp_path / "c.csv"
    path.write_bytes(b'customer_id,segment\nA,"a\tb"\nB,"c\rd"\n')
    result = runner.invoke(app, ["campaign", "audience", "--customers", str(path),
                                 "--segment", "segment=q\x1b[2J", "--out", str(tmp_path / "a.csv")])
    assert result.exit_code == 1
    assert not {"\t", "\r", "\x1b"} & set(result.output)
    assert result.output.strip().splitlines() == [
        f"error: file {path}, column 'segment': no segment 'q\\x1b[2J'; its segments are: "
        "a\\tb, c\\rd"]


def test_an_output_under_something_that_is_not_a_folder_says_so(tmp_path):
    """`--out /dev/null/x.csv` said 'File exists: /dev/null'."""
    path = tmp_path / "c.csv"
    path.write_text("customer_id,score\nA,1\nB,2\n")
    (tmp_path / "f").write_text("x")
    for out, blocker in (("/dev/null/x.csv", "/dev/null"), (str(tmp_path / "f" / "x.csv"), str(tmp_path / "f"))):
        result = runner.invoke(app, ["campaign", "audience", "--customers", str(path),
                                     "--out", out])
        assert _one_line(result) == (
            f"error: {blocker} is not a folder: a file is in the way of a folder to create")
