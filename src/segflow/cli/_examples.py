"""The examples printed at the end of each command's ``--help``.

They follow the README: ``myproject/`` is the quick-start project (``segflow init``, its
``[[sources]]`` filled in, ingested and run) and ``demo-data/`` the folder written by
``segflow generate``. A test runs every one of them as written on a demo project
(tests/report/test_report_examples.py), so they cannot drift from the CLI.
"""

from __future__ import annotations

import re

import typer

#: command path (space-separated) -> example command lines (a group's: see GROUP_EXAMPLES)
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
    "demo": ["segflow demo --customers 2000 --months 12 -o demo-out"],
    "refresh": ["segflow refresh -p myproject"],
    "alerts": ["segflow alerts -p myproject --latest"],
    "customers resolve": ["segflow customers resolve -p myproject"],
    "customers explain": ["segflow customers explain -p myproject C000001"],
    "customers unlink": ["segflow customers unlink -p myproject C000001"],
    "churn train": ["segflow churn train -p myproject --horizon-days 90"],
    "churn score": ["segflow churn score -p myproject --out churn_scores.csv"],
    "churn next-segment": ["segflow churn next-segment -p myproject --scheme rfm"],
    "campaign audience": [
        "segflow campaign audience -p myproject --segment rfm=Champions --holdout 0.1 --out champions.csv",
    ],
    "campaign uplift": [
        "segflow campaign uplift --responses past_campaign.parquet --control control --outcome bought "
        "--feature rfm_segment --feature tenure_days --scores-out scored.parquet",
    ],
    "campaign promotions": ["segflow campaign promotions -p myproject --scheme rfm --window-days 365"],
    "tokens revoke": ["segflow tokens revoke -p myproject 1a2b3c4d"],
    "tokens audit": ["segflow tokens audit -p myproject --action export --limit 20"],
    "export audience": [
        "segflow export audience -p myproject --segment rfm=Champions "
        "--where 'bgnbd_gg__p_alive >= 0.5' --to champions_alive.csv",
    ],
    "warehouse push": ["segflow warehouse push -p myproject"],
    "warehouse runs": ["segflow warehouse runs -p myproject --json"],
    "warehouse vacuum": ["segflow warehouse vacuum -p myproject"],
    # a group that runs without a sub-command: its own examples (the group's typical
    # sub-commands follow, from GROUP_EXAMPLES)
    "export": ["segflow export -p myproject --scheme rfm --out rfm.csv"],
}

#: command group ("" is ``segflow`` itself) -> the commands whose first example its
#: ``--help`` shows after its own: 2-3 typical commands of the group, each line exactly as
#: its command has it (the test runs a line once, however many helps show it).
GROUP_EXAMPLES: dict[str, list[str]] = {
    "": ["init", "ingest", "run", "report"],
    "sources": ["sources check"],
    "customers": ["customers resolve", "customers explain"],
    "segment": ["segment profile"],
    "migrate": ["migrate forecast"],
    "clv": ["clv fit", "clv score"],
    "churn": ["churn train", "churn score"],
    "campaign": ["campaign list", "campaign effect", "campaign audience"],
    "tokens": ["tokens create", "tokens list"],
    "export": ["export segments", "export audience"],
    "warehouse": ["warehouse push", "warehouse runs"],
}
for _group, _commands in GROUP_EXAMPLES.items():
    EXAMPLES[_group] = [*EXAMPLES.get(_group, []), *(EXAMPLES[c][0] for c in _commands)]

#: Examples the test suite parses but does not run as written, and why (each is run in
#: other forms by the tests of its command).
NOT_RUN: dict[str, str] = {
    "segflow demo": "the README's own steps (generate, ingest, run, report) run as written",
    "segflow churn": "15-20 s each on the demo project; tests/models runs the commands",
    "segflow campaign uplift": "the file of a past experiment is the reader's own",
    "segflow tokens revoke": "the token id is the one `segflow tokens create` printed",
    "segflow warehouse": "each starts a Spark session (seconds; Java); tests/spark/test_warehouse_cli.py runs them",
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
    """Set the epilog of every command (and group) of ``app`` that has examples; ``app``
    itself (``prefix`` empty: ``segflow --help``) too."""
    if not prefix and "" in EXAMPLES:
        app.info.epilog = _epilog(EXAMPLES[""])
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
