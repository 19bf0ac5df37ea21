"""CLI: ``segflow warehouse push|runs|vacuum`` and ``segflow run`` on a Spark warehouse.

With ``[engine] kind = "spark"`` (or ``--engine spark``) ``segflow run`` computes on Spark
from the canonical tables in the warehouse and writes its results there; the project's
DuckDB store is not opened. ``segflow warehouse push`` copies what ``segflow ingest`` loaded
into the DuckDB store to the warehouse (the way from DuckDB to Spark, and for the sources the
Spark ingest cannot read: docs/scale.md). The warehouse of every project, whatever its
``kind``, is the one ``[engine]`` names: ``push`` creates it, ``runs`` and ``vacuum`` read it
and never create one (:func:`open_warehouse`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from segflow.cli._common import (
    JsonOption,
    ProjectDirOption,
    Table,
    console,
    print_json,
    print_labelled,
    progress,
    stdout,
    user_errors,
)
from segflow.errors import SegflowError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from rich.table import Table as RichTable

    from segflow.config import Settings
    from segflow.store._spark import SparkStore

warehouse_app = typer.Typer(
    help="The project's Spark warehouse, where [engine] warehouse and database point, whatever "
         "[engine] kind: push the DuckDB store there, list its runs, clean up (docs/scale.md).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(warehouse_app, name="warehouse")


def open_warehouse(project_dir: Path, *, existing: bool = False) -> tuple[Settings, SparkStore]:
    """The project's settings and its Spark store (session from ``[engine]``).

    The warehouse of a project is the one its ``[engine]`` names (``warehouse``,
    ``database``), whatever its ``kind``: ``kind`` chooses where commands compute, not
    whether there is a warehouse. ``segflow warehouse push`` fills it from the DuckDB store
    on any project; ``run`` and ``ingest`` on Spark use it; ``runs`` and ``vacuum`` read it.

    ``existing``: a warehouse that does not exist yet is not created: a local one is looked
    for before any Spark session starts.

    Raises
    ------
    SegflowError
        ``existing`` and there is no warehouse yet: one line saying how to make it
        (``segflow warehouse push`` from the DuckDB store; on a Spark project also
        ``segflow ingest``)."""
    from segflow.config import Settings
    from segflow.store._spark import NoWarehouse, SparkStore, local_folder, warehouse_root

    settings = Settings.load(project_dir)
    if existing:
        root = warehouse_root(settings.engine, project_dir)
        folder = local_folder(root)
        if folder is not None and not folder.is_dir():
            raise no_warehouse(project_dir, settings, root)
        try:
            return settings, SparkStore.open(settings.engine, project_dir, create=False)
        except NoWarehouse:
            raise no_warehouse(project_dir, settings, root) from None
    return settings, SparkStore.open(settings.engine, project_dir)


def no_warehouse(project_dir: Path, settings: Settings, root: str) -> SegflowError:
    """The one-line error of a command that reads a warehouse that does not exist yet."""
    fill = f"`segflow warehouse push -p {project_dir}` copies its DuckDB store there"
    if settings.engine.kind == "spark":
        fill = f"`segflow ingest -p {project_dir}` loads its sources there (or {fill})"
    return SegflowError(
        f"the project in {project_dir} has no warehouse yet at {root} ([engine] warehouse and "
        f"database in segflow.toml; its engine is {settings.engine.kind}): {fill}")


@warehouse_app.command("push")
def push(project_dir: Path = ProjectDirOption, as_json: bool = JsonOption) -> None:
    """Copy the loads of the DuckDB store that the warehouse lacks into it (one run), and take
    back there the rows DuckDB deleted from loads pushed before (late corrections, files
    delivered again); on any project: the warehouse is the one [engine] names, created if
    need be."""
    from rich.markup import escape

    from segflow.project import Project
    from segflow.warehouse import push_to_warehouse

    with user_errors():
        settings, warehouse = open_warehouse(project_dir)
        with Project.open_reading(project_dir) as project:  # reads the store (a TEMP table)
            counts = push_to_warehouse(project.store, warehouse)
        nothing = None if counts else (f"nothing new to push: {warehouse.root} already holds "
                                       "every load of the DuckDB store (no run logged)")
        if as_json:
            print_json({"warehouse": warehouse.root, "rows": counts}
                       | ({"message": nothing} if nothing else {}))
            return
        if nothing:
            console.print(escape(nothing), highlight=False, soft_wrap=True)
            return
        console.print(f"pushed to [bold]{escape(warehouse.root)}[/]: " + ", ".join(
            f"{n:,} {t}" for t, n in counts.items()))


@warehouse_app.command("runs")
def runs(project_dir: Path = ProjectDirOption, as_json: bool = JsonOption,
         log: bool = typer.Option(False, "--log", help="Every state each run reached (the raw run "
                                  "log: a running row, then an ok or failed row).")) -> None:
    """The runs of the warehouse, one row per run with its last state, oldest first (stdout);
    a push is a run. Without a warehouse yet, one line says how to make one."""
    with user_errors():
        _settings, warehouse = open_warehouse(project_dir, existing=True)
        frame = warehouse.runs().orderBy("started_at", "finished_at").toPandas()
        if not log:
            frame = one_row_per_run(frame)
        if as_json:
            print_json(frame.to_dict(orient="records"))
            return
        stdout.print(_runs_table(frame, warehouse.root, log=log))


#: Shown for a missing time (a run still running or killed has no ``finished_at``).
MISSING = "—"
#: The status of a run whose log has only its ``running`` row: it is still running, or it
#: was stopped before it could log ``ok`` or ``failed`` (its writes are not visible).
NOT_COMMITTED = "not committed (running, or stopped)"


def one_row_per_run(log: pd.DataFrame) -> pd.DataFrame:
    """The run log ``log`` (:meth:`segflow.store.SparkWarehouse.runs` as pandas: one row per
    state a run reached) as one row per run: its last state (``ok`` or ``failed``, else
    :data:`NOT_COMMITTED`) with its finish time and message, and the start time of its
    ``running`` row; ordered by start time, then run id. Same columns as ``log``."""
    if log.empty:
        return log
    final = log.status.isin(["ok", "failed"])
    ended = log[final].drop_duplicates("run_id", keep="last").set_index("run_id")
    out = log.drop_duplicates("run_id", keep="first").set_index("run_id")
    started = log.groupby("run_id").started_at.min()
    out.update(ended.drop(columns=["started_at"]))
    out["started_at"] = started
    out.loc[~out.index.isin(ended.index), "status"] = NOT_COMMITTED
    out = out.reset_index().sort_values(["started_at", "run_id"], kind="stable")
    return out[list(log.columns)].reset_index(drop=True)


def _runs_table(frame: pd.DataFrame, root: str, *, log: bool = False) -> RichTable:
    """The runs ``frame`` (:func:`one_row_per_run`, or with ``log`` one row per state a run
    reached) as a Rich table; times to the second (UTC), a missing one as :data:`MISSING`."""
    import pandas as pd

    def when(value: object) -> str:
        return MISSING if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d %H:%M:%S}"

    title = f"run log of the warehouse {root}" if log else f"runs of the warehouse {root}"
    table = Table(title=title, title_justify="left")
    for col in ("run", "command", "status", "started (UTC)", "finished (UTC)"):
        table.add_column(col)
    for row in frame.itertuples(index=False):
        table.add_row(str(row.run_id), str(row.command), str(row.status),
                      when(row.started_at), when(row.finished_at))
    return table


@warehouse_app.command("vacuum")
def vacuum(project_dir: Path = ProjectDirOption) -> None:
    """Delete the partitions of runs that never committed (run it when nothing else runs);
    without a warehouse yet, one line says how to make one."""
    with user_errors():
        _settings, warehouse = open_warehouse(project_dir, existing=True)
        removed = warehouse.vacuum()
        console.print(f"removed the partitions of {len(removed)} uncommitted run(s)")


def run_on_spark(project_dir: Path, *, as_json: bool) -> None:
    """``segflow run`` on the warehouse (called by the ``run`` command)."""
    from segflow.warehouse import run_on_warehouse

    settings, warehouse = open_warehouse(project_dir)
    with progress(disable=as_json) as bar, warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        task = bar.add_task("run on Spark", total=None)

        def step(label: str, done: int, total: int) -> None:
            bar.update(task, description=label, completed=done, total=total)

        summary = run_on_warehouse(warehouse, settings, progress=step)
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
        print_labelled("note", note)
