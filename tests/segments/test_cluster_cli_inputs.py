"""``segflow segment cluster`` on plain files: option ranges (usage errors, exit status 2),
missing-value tokens, features that do not vary and repeated column names."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from segflow.cli import app

runner = CliRunner()


@pytest.fixture
def small_file(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("customer_id,x,y\n" + "".join(f"C{i},{i % 5},{i * 7 % 11}\n" for i in range(30)))
    return path


@pytest.mark.parametrize(("args", "message"), [
    (["--sample-size", "-5"], "invalid value for '--sample-size': Input should be greater than or equal to 2"),
    (["--sample-size", "0"], "invalid value for '--sample-size': Input should be greater than or equal to 2"),
    (["--k-min", "0"], "invalid value for '--k-min': Input should be greater than or equal to 1"),
    (["--bootstrap", "-3"], "invalid value for '--bootstrap': Input should be greater than or equal to 0"),
    (["--k-min", "5", "--k-max", "3"], "invalid value for '--k-min': 5 is above --k-max 3"),
    (["--features", "x,x"], "invalid value for '--features': 'x' named more than once"),
])
def test_bad_options_are_usage_errors(small_file, args, message):
    """A negative sample size (a DuckDB traceback), a feature named twice (an Ibis
    traceback), --k-min 0 (an internal 'k_range' error, exit 1) and --bootstrap -3
    (accepted) are usage errors in one line, exit status 2."""
    result = runner.invoke(app, ["segment", "cluster", "-i", str(small_file), *args])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (f"segflow segment cluster: {message}; "
                                     "see 'segflow segment cluster --help'")
