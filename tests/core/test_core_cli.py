"""The CLI frame: --help everywhere, init, clear errors without tracebacks."""

from __future__ import annotations

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from segflow.cli import app

runner = CliRunner()


def _all_command_paths(command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # typer vendors its own click: a group is anything with sub-commands
    paths = [prefix]
    if getattr(command, "commands", None):
        for name, sub in command.commands.items():
            paths.extend(_all_command_paths(sub, (*prefix, name)))
    return paths


COMMANDS = _all_command_paths(get_command(app))


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "segflow")
def test_every_command_has_help(path):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_core_commands_exist():
    names = {p[0] for p in COMMANDS if p}
    assert {"init", "run", "report", "demo"} <= names


def test_init_creates_project_and_store(tmp_path):
    result = runner.invoke(app, ["init", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p" / "segflow.toml").exists()
    assert (tmp_path / "p" / "segflow.duckdb").exists()
    again = runner.invoke(app, ["init", str(tmp_path / "p")])
    assert again.exit_code == 1
    assert "already exists" in again.output and "Traceback" not in again.output


def test_missing_project_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["run", "--project", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "no project file" in result.output
    assert "Traceback" not in result.output


def test_run_on_empty_store_says_what_to_do(tmp_path):
    runner.invoke(app, ["init", str(tmp_path / "p")])
    result = runner.invoke(app, ["run", "--project", str(tmp_path / "p")])
    assert result.exit_code == 1
    assert "segflow ingest" in result.output


@pytest.mark.parametrize(("args", "said"), [
    (["export", "segments", "-s", "rfm", "--to", "x.csv", "--pii", "clear"],
     "'--pii': 'clear' is not one of hash, mask, omit, include"),
    (["tokens", "create", "--role", "root"], "'--role': 'root' is not one of viewer, analyst, admin"),
    (["run", "--engine", "spork"], "'--engine': 'spork' is not one of duckdb, spark"),
    (["clv", "fit", "-t", "x.csv", "--model", "bgnb"], "'--model': 'bgnb' is not one of bgnbd, mbgnbd, pnbd, bgbb"),
    (["clv", "score", "-t", "x.csv", "--time-unit", "fortnight"], "'fortnight' is not one of day, week, month"),
    (["clv", "fit", "-t", "x.csv", "--spend-model", "gg"], "'gg' is not one of gamma-gamma, constant, none"),
    (["segment", "cluster", "--input", "x.csv", "--k", "2.5"], "'2.5' is not 'auto' or a whole number of at least 1"),
    (["segment", "cluster", "--input", "x.csv", "--k", "0"], "'--k': '0' is less than 1"),
    (["segment", "cluster", "--input", "x.csv", "--method", "dbscan"], "'dbscan' is not one of kmeans, gmm, kprototypes"),
    (["campaign", "effect", "--campaign", "C", "--correction", "bonferroni"], "'bonferroni' is not one of holm, bh, none"),
    (["campaign", "uplift", "--responses", "x.csv", "--arm-col", "a", "--control", "c", "--outcome", "o",
      "--method", "forest"], "'forest' is not one of two_model, class_transformation"),
    (["migrate", "forecast", "--scheme", "rfm", "--periods", "-1"], "'-1' is less than 1"),
])
def test_a_value_outside_an_options_choices_is_a_one_line_usage_error(tmp_path, args, said):
    """README: a mistyped command, option or value is exit status 2, one line; these exited
    1 after reading the project or file (or, for --k 0 and --periods -1, not at all)."""
    result = runner.invoke(app, [*args, "-p", str(tmp_path)] if args[0] in (
        "export", "tokens", "run", "migrate") else args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    command = " ".join(a for a in args[:2] if not a.startswith("-"))
    assert lines[0].startswith(f"segflow {command}: invalid value for ") and said in lines[0]
    assert lines[0].endswith(f"see 'segflow {command} --help'")


@pytest.mark.parametrize(("args", "said"), [
    (["migrate", "--scheme", "rfm", "--level", "1.5"], "'--level'"),  # was a ValueError traceback
    (["migrate", "who", "--scheme", "rfm", "--from", "A", "--to", "B", "--limit", "-5"], "'--limit'"),
    (["migrate", "paths", "--scheme", "rfm", "--top", "-2"], "'--top'"),  # printed all but 2 paths
    (["serve", "--pool-size", "0", "--get", "/api/v1/live"], "'--pool-size'"),  # a pydantic traceback
    (["tokens", "audit", "--limit", "-1"], "'--limit'"),  # printed nothing
    (["sources", "check", "orders", "--rows", "-3"], "'--rows'"),  # "0 rows checked"
])
def test_a_number_outside_an_options_range_is_a_one_line_usage_error(tmp_path, args, said):
    """Counts and levels out of range are refused before the command runs (exit status 2)."""
    result = runner.invoke(app, [*args, "-p", str(tmp_path)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    command = " ".join(a for a in args[:2] if not a.startswith("-") and a != "orders")
    assert lines[0].startswith(f"segflow {command}: invalid value for {said}"), lines[0]
