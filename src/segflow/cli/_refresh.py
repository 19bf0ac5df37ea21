"""``segflow refresh`` (ingest, recompute, re-score, record drift; safe from cron) and
``segflow alerts`` (the drift alerts it recorded)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from segflow.cli._common import (
    DATE,
    JsonOption,
    ProjectDirOption,
    Table,
    console,
    print_json,
    print_labelled,
    refuse_on_spark,
    stdout,
    user_errors,
)

if TYPE_CHECKING:
    from segflow.refresh import Alert


def register(app: typer.Typer) -> None:
    """Add ``refresh`` and ``alerts`` to the root app."""
    app.command("refresh")(refresh)
    app.command("alerts")(alerts)


def refresh(
    project_dir: Path = ProjectDirOption,
    wait: float = typer.Option(
        0.0, "--wait", min=0.0,
        help="Seconds to wait for a refresh already running (default: refuse at once)."),
    force: bool = typer.Option(False, "--force", help="Recompute even when nothing is new."),
    share_pp: float = typer.Option(5.0, "--share-alert", min=0.0,
                                   help="Segment share change (percentage points) that raises an alert."),
    psi: float = typer.Option(0.1, "--psi-alert", min=0.0,
                              help="Population stability index of a feature that raises an alert."),
    calibration: float = typer.Option(
        0.2, "--calibration-alert", min=0.0,
        help="Relative error of predicted purchases in the latest period that raises an alert."),
    as_json: bool = JsonOption,
) -> None:
    """Ingest new files, recompute snapshots, re-apply saved schemes and models, record drift.

    All or nothing: the work is done on a copy of the store, which replaces it at the end; a
    refresh that fails or is killed leaves the store as it was. One refresh at a time per
    store. Exits 0 when done or when nothing was new, 1 with one line on stderr otherwise.
    """
    from segflow.refresh import DriftThresholds
    from segflow.refresh import refresh as run_refresh

    with user_errors():
        refuse_on_spark(project_dir, "segflow refresh",
                        "run `segflow ingest` and `segflow run`, which work on the warehouse")
        thresholds = DriftThresholds(share_pp=share_pp, psi_warning=psi,
                                     psi_critical=max(psi, 0.25), calibration=calibration)
        result = run_refresh(
            project_dir, wait=wait, force=force, thresholds=thresholds,
            stage=None if as_json else (lambda msg: console.print(f"refresh: {msg}", highlight=False)),
        )
    if as_json:
        print_json(result.to_dict())
        return
    if result.status == "nothing new":
        console.print("refresh: nothing new (no new source file, same settings and models)")
        return
    console.print(
        f"refresh {result.run_id}: {len(result.new_inputs)} new input(s), "
        f"{result.rows_loaded:,} rows loaded, {len(result.snapshot_dates)} snapshots, "
        f"{result.assignments_written:,} assignments, {result.scores_written:,} scores in "
        f"{sum(result.seconds.values()):.1f} s; {_alert_count(result.alerts)}"
        + _unchanged(len(result.alerts_unchanged)),
        highlight=False,
    )
    for a in result.alerts:
        colour = {"critical": "red", "warning": "yellow"}.get(a.severity, "dim")
        print_labelled(a.severity, a.message, style=colour, indent="  ")
    for note in result.notes:
        print_labelled("note", note, style="", indent="  ")


def _unchanged(n: int) -> str:
    """`` (N unchanged, recorded before)``: the alerts a refresh measured again unchanged and
    did not record again (nor list); empty when none."""
    return f" ({n} unchanged, recorded before: segflow alerts --latest)" if n else ""


def _alert_count(alerts: list[Alert] | list[str]) -> str:
    """``N drift alert(s)``, the info rows (a PSI on too few customers to judge, which the
    refresh lists but does not alert on) counted apart; ``alerts``: the rows or their
    severities."""
    severities = [a if isinstance(a, str) else a.severity for a in alerts]
    info = severities.count("info")
    text = f"{len(severities) - info} drift alert(s)"
    return f"{text} and {info} info row(s): sample too small to judge" if info else text


def alerts(
    project_dir: Path = ProjectDirOption,
    since: dt.date | None = typer.Option(
        None, "--since", parser=DATE, help="Only alerts from this date (YYYY-MM-DD)."
    ),
    latest: bool = typer.Option(
        False, "--latest", help="Only the alerts of the latest refresh: those it recorded and "
        "those it found unchanged, recorded before."),
    as_json: bool = JsonOption,
) -> None:
    """List the drift alerts recorded by `segflow refresh` (newest first)."""
    from segflow.project import Project
    from segflow.refresh import read_alerts

    with user_errors():
        refuse_on_spark(project_dir, "segflow alerts",
                        "drift alerts come from `segflow refresh`, which runs on DuckDB only")
        with Project.open_reading(project_dir) as project:
            table = read_alerts(project.store, since=since, latest_run=latest)
    rows = table.to_pylist()
    if as_json:
        print_json({"data": rows, "count": len(rows)})
        return
    # the info rows apart, as refresh's summary line: "6 drift alert(s)" were 6 info rows
    out = Table(title=_alert_count([r["severity"] for r in rows]), title_justify="left")
    for col in ("created (UTC)", "severity", "kind", "message"):
        out.add_column(col)
    for r in rows:
        out.add_row(f"{r['created_at']:%Y-%m-%d %H:%M}", r["severity"], r["kind"], r["message"])
    stdout.print(out)
