"""``segflow campaign effect|uplift`` on customer files: how arm values are read (trimmed,
rows without an arm left out, case), missing outcomes and usage errors."""

from __future__ import annotations

from typer.testing import CliRunner

from segflow.cli import app

runner = CliRunner()


def test_effect_on_a_file_without_outcome_is_a_usage_error(tmp_path):
    """A missing --outcome in file mode exited 1 (an error) instead of 2 (a usage error)."""
    path = tmp_path / "r.csv"
    path.write_text("customer_id,arm,converted\nC1,control,1\nC2,treatment,0\n")
    result = runner.invoke(app, ["campaign", "effect", "--responses", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        "segflow campaign effect: invalid value for '--outcome': file mode (--responses) needs "
        "at least one outcome column; see 'segflow campaign effect --help'")
