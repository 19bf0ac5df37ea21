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
