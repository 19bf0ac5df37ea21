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
