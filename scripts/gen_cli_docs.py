"""Generate docs/cli.md from the CLI's own ``--help`` and docs/settings.md from the settings
models (run after changing any command or setting).

    python scripts/gen_cli_docs.py          # rewrite both
    python scripts/gen_cli_docs.py --check  # exit 1 if either is out of date
"""

from __future__ import annotations

import sys
import typing
from pathlib import Path

from typer.main import get_command
from typer.testing import CliRunner

from segflow.cli import app

DOCS = Path(__file__).resolve().parents[1] / "docs"


def command_paths(command, prefix=()):  # noqa: ANN001, ANN201
    paths = [prefix]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        paths.extend(command_paths(sub, (*prefix, name)))
    return paths


def render() -> str:
    runner = CliRunner()
    parts = [
        "# Command reference",
        "",
        "Generated from `--help` by `python scripts/gen_cli_docs.py`; a test fails when it is out of date.",
        "",
    ]
    for path in command_paths(get_command(app)):
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"})
        title = " ".join(("segflow", *path))
        text = "\n".join(line.rstrip() for line in result.output.strip("\n").splitlines())
        parts += [f"## `{title}`", "", "```", text, "```", ""]
    return "\n".join(parts)


def _model_rows(model, prefix: str) -> list[str]:  # noqa: ANN001
    rows = []
    for name, field in model.model_fields.items():
        if typing.get_origin(field.annotation) is typing.Literal:
            annotation = " or ".join(repr(v) for v in typing.get_args(field.annotation))
        else:
            annotation = getattr(field.annotation, "__name__", None) or str(field.annotation)
        annotation = annotation.replace("typing.", "").replace("datetime.", "").replace("|", "\\|")
        default = "" if field.is_required() else repr(field.get_default(call_default_factory=True))
        rows.append(f"| `{prefix}{name}` | {annotation} | `{default}` | {field.description or ''} |")
    return rows


def render_settings() -> str:
    from segflow.config import (
        EngineSettings,
        PeriodSettings,
        ProjectSettings,
        RfmSettings,
        RuleSettings,
        SchemeSettings,
        ServingSettings,
        SourceSettings,
    )

    parts = [
        "# Settings reference (`segflow.toml`)",
        "",
        "Generated from the settings models by `python scripts/gen_cli_docs.py`; a test fails when",
        "it is out of date. A commented example is written by `segflow init`.",
        "",
        "An invalid setting is one error line naming the file and the setting. An entry of a list",
        "of tables is named by its `name` (a rule by its `segment`) and its position from 1:",
        "`segflow.toml: source 'orders' (the 2nd [[sources]]): table: Input should be 'customers',",
        "...`; `scheme 'vip' (the 2nd [[schemes]]): rule 'Silver' (the 2nd of its rules): when:",
        "Field required`; a value of a list by its position: `tiers (2nd value)`.",
        "",
    ]
    for title, model, prefix in [
        ("[project]", ProjectSettings, "project."),
        ("[periods]", PeriodSettings, "periods."),
        ("[rfm]", RfmSettings, "rfm."),
        ("[engine]", EngineSettings, "engine."),
        ("[server]", ServingSettings, "server."),
        ("[[sources]]", SourceSettings, "sources."),
        ("[[schemes]]", SchemeSettings, "schemes."),
        ("rules = [{...}] of a rule scheme", RuleSettings, "rules."),
    ]:
        parts += [f"## {title}", "", "| setting | type | default | meaning |", "|---|---|---|---|"]
        parts += _model_rows(model, prefix)
        parts.append("")
    return "\n".join(parts)


def main() -> int:
    outputs = {DOCS / "cli.md": render(), DOCS / "settings.md": render_settings()}
    if "--check" in sys.argv:
        stale = [p.name for p, text in outputs.items() if not p.exists() or p.read_text() != text]
        if stale:
            print(f"out of date: {', '.join(stale)}; run python scripts/gen_cli_docs.py")
            return 1
        return 0
    for path, text in outputs.items():
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
