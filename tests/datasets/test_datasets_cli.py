"""``segflow generate``: JSON summary, files, and clear errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from segflow.cli import app


def test_generate_json(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        app, ["generate", "--customers", "300", "--months", "6", "--seed", "2", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["customers"] == 300 and summary["months"] == 6
    assert summary["rows"]["transactions"] > 300
    assert (out / "transactions.csv").exists() and (out / "truth" / "defects.csv").exists()
    lines = (out / "transactions.csv").read_text().count("\n") - 1
    assert lines == summary["rows"]["transactions"]


def test_generate_bad_option_is_one_clear_line(tmp_path):
    # a value out of range is a usage error (exit status 2) of generate and demo alike
    for args in (["generate", "--months", "1", str(tmp_path)], ["generate", "-n", "-5", str(tmp_path)],
                 ["demo", "-o", str(tmp_path), "--customers", "0"], ["demo", "-o", str(tmp_path), "--months", "241"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"segflow {args[0]}: invalid value for "), lines
