"""CLI: ``segflow warehouse push|runs|vacuum`` and ``segflow run`` on a Spark warehouse.

With ``[engine] kind = "spark"`` (or ``--engine spark``) ``segflow run`` computes on Spark
from the canonical tables in the warehouse and writes its results there; the project's
DuckDB store is not opened. ``segflow warehouse push`` copies what ``segflow ingest`` loaded
into the warehouse (interim, until ingest runs on Spark: docs/scale.md).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from segflow.cli._common import JsonOption, ProjectDirOption, console, print_json, user_errors

if TYPE_CHECKING:  # pragma: no cover
    from segflow.config import Settings
    from segflow.store._spark import SparkStore

warehouse_app = typer.Typer(
    help="The Spark warehouse of the project ([engine] in segflow.toml; docs/scale.md).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(warehouse_app, name="warehouse")


def open_warehouse(project_dir: Path) -> tuple[Settings, SparkStore]:
    """The project's settings and its Spark store (session from ``[engine]``)."""
    from segflow.config import Settings
    from segflow.store._spark import SparkStore

    settings = Settings.load(project_dir)
    return settings, SparkStore.open(settings.engine, project_dir)


@warehouse_app.command("push")
def push(project_dir: Path = ProjectDirOption, as_json: bool = JsonOption) -> None:
    """Copy the loads of the DuckDB store that the warehouse lacks into it (one run)."""
    from segflow.project import Project
    from segflow.warehouse import push_to_warehouse

    with user_errors():
        settings, warehouse = open_warehouse(project_dir)
        with Project.open(project_dir) as project:
            counts = push_to_warehouse(project.store, warehouse)
        if as_json:
            print_json({"warehouse": warehouse.root, "rows": counts})
            return
        console.print(f"pushed to [bold]{warehouse.root}[/]: " + ", ".join(
            f"{n:,} {t}" for t, n in counts.items()))


@warehouse_app.command("runs")
def runs(project_dir: Path = ProjectDirOption, as_json: bool = JsonOption) -> None:
    """The run log of the warehouse: one row per state a run reached (stdout)."""
    with user_errors():
        _settings, warehouse = open_warehouse(project_dir)
        frame = warehouse.runs().orderBy("started_at", "finished_at").toPandas()
        if as_json:
            print_json(frame.to_dict(orient="records"))
            return
        typer.echo(frame[["run_id", "command", "status", "started_at", "finished_at"]]
                   .to_string(index=False))


@warehouse_app.command("vacuum")
def vacuum(project_dir: Path = ProjectDirOption) -> None:
    """Delete the partitions of runs that never committed (run it when nothing else runs)."""
    with user_errors():
        _settings, warehouse = open_warehouse(project_dir)
        removed = warehouse.vacuum()
        console.print(f"removed the partitions of {len(removed)} uncommitted run(s)")


def run_on_spark(project_dir: Path, *, as_json: bool) -> None:
    """``segflow run`` on the warehouse (called by the ``run`` command)."""
    from segflow.warehouse import run_on_warehouse

    settings, warehouse = open_warehouse(project_dir)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        summary = run_on_warehouse(warehouse, settings)
    if as_json:
        print_json(summary.to_dict())
        return
    console.print(
        f"run {summary.run_id} on spark ({warehouse.session.sparkContext.master}): "
        f"{len(summary.snapshots_computed)} snapshots x {len(summary.schemes)} schemes, "
        f"{summary.assignments_written:,} assignments, {summary.scores_written:,} scores "
        f"in {sum(summary.seconds.values()):.1f} s, written to {warehouse.root}"
    )
    for note in summary.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
