"""The examples printed at the end of each command's ``--help``.

They follow the README: ``myproject/`` is the quick-start project (``segflow init``, its
``[[sources]]`` filled in, ingested and run) and ``demo-data/`` the folder written by
``segflow generate``. A test runs every one of them as written on a demo project
(tests/report/test_report_examples.py), so they cannot drift from the CLI.
"""

from __future__ import annotations

import re

import typer

#: command path (space-separated) -> example command lines
EXAMPLES: dict[str, list[str]] = {
    "init": ["segflow init myproject"],
    "ingest": ["segflow ingest -p myproject", "segflow ingest -p myproject --json"],
    "run": ["segflow run -p myproject"],
    "report": ["segflow report -p myproject"],
    "segment": ["segflow segment -p myproject --scheme rfm"],
    "segment cluster": [
        "segflow segment cluster --input scores.csv --id-col customer_id "
        "--features x,t_x,T,expected_spend --k auto --out segments.csv --json",
    ],
    "segment profile": ["segflow segment profile -p myproject --scheme lifecycle"],
    "migrate": [
        "segflow migrate -p myproject --scheme rfm --from 2025-01-01 --to 2025-02-01 --json",
        "segflow migrate -p myproject --scheme rfm",
    ],
    "migrate forecast": [
        "segflow migrate forecast -p myproject --scheme rfm --periods 6",
        "segflow migrate forecast -p myproject --scheme rfm --start first --half-life 6 --json",
    ],
    "migrate who": ["segflow migrate who -p myproject --scheme rfm --from Champions --to 'At risk'"],
    "migrate stability": ["segflow migrate stability -p myproject --scheme rfm"],
    "migrate paths": ["segflow migrate paths -p myproject --scheme rfm --top 10"],
    "audit": ["segflow audit -p myproject --as-of 2026-01-01"],
    "sources check": ["segflow sources check -p myproject orders --rows 500"],
    "generate": ["segflow generate --customers 2000 --months 24 --seed 1 demo-data"],
    "clv fit": [
        "segflow clv fit -t demo-data/transactions.parquet --date-col order_date "
        "--calibration-end 2025-06-30 --holdout-end 2025-12-31 --json",
    ],
    "clv score": [
        "segflow clv score -t demo-data/transactions.parquet --date-col order_date "
        "--snapshot 2026-01-01 -o scores.csv",
    ],
    "campaign list": ["segflow campaign list -p myproject"],
    "campaign effect": ["segflow campaign effect -p myproject --campaign CMP_WINBACK --scheme rfm --json"],
    "campaign playbook": ["segflow campaign playbook"],
    "export segments": ["segflow export segments -p myproject --scheme rfm --to crm_rfm.csv"],
    "tokens create": ["segflow tokens create -p myproject --role analyst --expires 30d"],
    "tokens list": ["segflow tokens list -p myproject"],
    "serve": ["segflow serve -p myproject"],
}


def _wrap(line: str, width: int = 86) -> list[str]:
    """A long example split before its options, shell style (`` \\`` at each line end)."""
    rows = [""]
    for chunk in re.split(r" (?=--?[A-Za-z])", line):
        if rows[-1] and len(rows[-1]) + 1 + len(chunk) > width:
            rows[-1] += " \\"
            rows.append("    " + chunk)
        else:
            rows[-1] = f"{rows[-1]} {chunk}" if rows[-1] else chunk
    return rows


def _epilog(lines: list[str]) -> str:
    # "\b" keeps Click from re-wrapping the block: the examples print as typed
    rows = [row for line in lines for row in _wrap(line)]
    return "Examples:\n\n\b\n" + "\n".join(f"  {row}" for row in rows)


def add_examples(app: typer.Typer, prefix: str = "") -> None:
    """Set the epilog of every command (and group) of ``app`` that has examples."""
    for command in app.registered_commands:
        path = f"{prefix}{command.name}"
        if path in EXAMPLES:
            command.epilog = _epilog(EXAMPLES[path])
    for group in app.registered_groups:
        path = f"{prefix}{group.name}"
        if path in EXAMPLES:
            group.epilog = _epilog(EXAMPLES[path])
        if group.typer_instance is not None:
            add_examples(group.typer_instance, f"{path} ")
