"""Docs that cannot drift: the CLI and settings references are generated and checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_cli_and_settings_references_are_current():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_cli_docs.py"), "--check"],
        capture_output=True, text=True, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_setting_has_a_description():
    from segflow.config import (
        PeriodSettings,
        ProjectSettings,
        RfmSettings,
        RuleSettings,
        SchemeSettings,
        SourceSettings,
    )

    for model in (ProjectSettings, PeriodSettings, RfmSettings, SourceSettings, SchemeSettings, RuleSettings):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


def test_readme_begins_with_the_two_commands():
    lines = [line for line in (REPO / "README.md").read_text().splitlines() if line.strip()]
    block = "\n".join(lines[:5])
    assert "make demo" in block and "make test" in block
