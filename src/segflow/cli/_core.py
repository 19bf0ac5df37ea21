"""CLI: ``init``, ``run``, ``report``, ``demo`` — the project-level commands."""

from __future__ import annotations

import datetime as dt
import time
import warnings
from pathlib import Path
from typing import Any

import typer

from segflow.cli._common import (
    Choice,
    EngineOption,
    JsonOption,
    ProjectDirOption,
    Table,
    console,
    on_spark,
    print_json,
    progress,
    show_warning,
    stdout,
    user_errors,
)


def register(app: typer.Typer) -> None:
    """Add the project-level commands to the root app."""
    app.command("init")(init)
    app.command("run")(run)
    app.command("report")(report)
    app.command("demo")(demo)


def init(
    directory: Path = typer.Argument(..., help="Project folder to create (or reuse)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing segflow.toml."),
) -> None:
    """Create a project: a commented segflow.toml and an empty DuckDB store."""
    from segflow.project import Project

    with user_errors():
        project = Project.init(directory, overwrite=force)
        console.print(
            f"created [bold]{directory / 'segflow.toml'}[/] and store "
            f"[bold]{directory / project.settings.project.store}[/] "
            f"(schema version {project.store.schema_version})"
        )
        console.print(
            "next: edit [bold]\\[\\[sources]][/] in segflow.toml, then `segflow ingest` and `segflow run`"
        )
        project.close()


def _progress_callback(bar, task):  # noqa: ANN001, ANN202
    def update(description: str, done: int, total: int) -> None:
        bar.update(task, description=description, completed=done, total=total)

    return update


def run(
    project_dir: Path = ProjectDirOption,
    engine: str | None = EngineOption,
    full: bool = typer.Option(
        False, "--full",
        help="Recompute every snapshot (default: only new snapshots and those whose data "
             "changed; on Spark every run computes every snapshot).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Compute features and segment assignments for new or changed snapshot dates and schemes.

    On Spark (``[engine] kind = "spark"`` or ``--engine spark``) the run reads the canonical
    tables from the project's Spark warehouse and writes its results there, computing every
    snapshot (no incremental planning on Spark yet: docs/scale.md)."""
    from segflow.project import Project

    with user_errors():
        if on_spark(project_dir, engine):
            from segflow.cli._warehouse import run_on_spark

            run_on_spark(project_dir, as_json=as_json)
            return
        with Project.open(project_dir) as project:
            with progress(disable=as_json) as bar:
                task = bar.add_task("features and segments", total=None)
                # the run's notes repeat its warnings: hold the warnings, print each message once
                with warnings.catch_warnings(record=True) as caught:  # keeps the CLI's filters
                    summary = project.run(engine=engine, progress=_progress_callback(bar, task),
                                          full=full)
            for message, category in {str(w.message): w.category for w in caught}.items():
                if not any(message in note or note in message for note in summary.notes):
                    show_warning(message, category, "", 0)
            if as_json:
                print_json(summary.to_dict())
                return
            done, total = len(summary.snapshots_computed), len(summary.snapshot_dates)
            computed = (f"{done} snapshots computed" if done == total else
                        f"{done} of {total} snapshots computed (the others were up to date)")
            console.print(
                f"run {summary.run_id} on {summary.engine}: {computed} "
                f"x {len(summary.schemes)} schemes, {summary.assignments_written:,} assignments "
                f"in {sum(summary.seconds.values()):.1f} s"
            )
            from rich.markup import escape

            for note in summary.notes:  # e.g. a stage that could not run, and why
                console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
            for scheme in summary.schemes:
                _print_sizes(project, scheme)


def _demo_view(project: Any, engine: str | None) -> Any:
    """What the demo's summary reads: the DuckDB store, or on Spark the warehouse's
    aggregates (a :class:`~segflow.report._context.ReportContext` either way)."""
    from segflow.engine import resolve_engine
    from segflow.project import Project
    from segflow.report._context import ReportContext

    if resolve_engine(engine, project.settings.engine) == "spark":
        from segflow.warehouse import aggregates_store

        project = Project(project.directory, project.settings, aggregates_store(project.warehouse))
    return ReportContext(project)


def report(
    project_dir: Path = ProjectDirOption,
    out: Path = typer.Option(None, "--out", "-o", help="HTML file to write (default: PROJECT/report.html)."),
    engine: str | None = EngineOption,
    role: str = typer.Option("analyst", "--for", parser=Choice("analyst", "viewer"),
                             help="Who the report is for: 'viewer' (readers of aggregates only) withholds the "
                                  "value figures of segments, moves and campaign arms below [server] "
                                  "min_cell_customers, as the dashboard does for its viewers; 'analyst' "
                                  "shows every figure."),
) -> None:
    """Write the self-contained HTML report (works offline).

    On Spark (``[engine] kind = "spark"`` or ``--engine spark``) the report reads the
    aggregates of the latest run in the project's warehouse (docs/scale.md). With
    ``--for viewer`` small cells' value figures are withheld (docs/report.md)."""
    from segflow.project import Project

    with user_errors():
        # on Spark the figures come from the warehouse: the DuckDB store is not opened
        # (opening it would create an empty segflow.duckdb)
        spark = on_spark(project_dir, engine)
        with _report_project(project_dir) if not spark else Project.on_warehouse(project_dir) as project:
            with progress() as bar:
                bar.add_task("writing report", total=None)
                path = project.report(out, engine=engine, role=role)
            console.print(f"report written to [bold]{path.resolve()}[/]")


def _report_project(project_dir: Path):  # noqa: ANN202
    """The project for ``segflow report``, which only reads: opened read-only
    (:meth:`~segflow.project.Project.open_reading`: an older store's schema is upgraded
    first), so it works while a refresh works on its copy of the store (the report then
    shows the store as it is until the refresh replaces it) and leaves other readers free."""
    from segflow.project import Project

    return Project.open_reading(project_dir)


def demo(
    out: Path = typer.Option(Path("out"), "--out", "-o", help="Folder for the demo project, data and report (an earlier demo's store there is replaced, an interrupted demo's folder started afresh; a folder holding other files is refused)."),
    customers: int = typer.Option(5_000, min=1, help="Number of demo customers."),
    months: int = typer.Option(24, min=3, max=240, help="Months of history (3..240)."),
    seed: int = typer.Option(0, help="Random seed of the generator."),
    engine: str | None = EngineOption,
    as_json: bool = JsonOption,
) -> None:
    """Generate demo data, ingest it, run the pipeline and write OUT/report.html."""
    from segflow.datasets import demo_project_toml, generate_demo
    from segflow.project import Project
    from segflow.report._queries import reconciliation

    with user_errors():
        started = time.perf_counter()
        _fresh_demo_folder(out)
        data_dir = out / "data"
        with progress(disable=as_json) as bar:
            task = bar.add_task("generating demo data", total=None)
            dataset = generate_demo(data_dir, customers=customers, months=months, seed=seed)
            bar.update(task, description="demo data written", completed=1, total=1)
        project = Project.init(out, toml_text=demo_project_toml("data", max_date=dataset.end), overwrite=True)
        with project:
            with progress(disable=as_json) as bar:
                task = bar.add_task("ingesting", total=None)
                project.ingest(engine=engine)
                bar.update(task, description="ingested", completed=1, total=1)
                task = bar.add_task("features and segments", total=None)
                # the run's notes repeat its warnings: hold the warnings, print each message once
                with warnings.catch_warnings(record=True) as caught:  # keeps the CLI's filters
                    summary = project.run(engine=engine, progress=_progress_callback(bar, task))
                task = bar.add_task("writing report", total=None)
                path = project.report(out / "report.html", engine=engine)
                bar.update(task, description="report written", completed=1, total=1)
            for message, category in {str(w.message): w.category for w in caught}.items():
                if not any(message in note or note in message for note in summary.notes):
                    show_warning(message, category, "", 0)
            shown = _demo_view(project, engine)
            recon = reconciliation(shown.project.store)
            if as_json:
                print_json(
                    {
                        "report": str(path.resolve()),
                        "run": summary.to_dict(),
                        "reconciliation": recon.to_dict(orient="records"),
                        "segments": {
                            s: shown.sizes(s, shown.dates(s)[-1]).to_dict(orient="records")
                            for s in summary.schemes
                        } if shown.project is not project else {
                            s: project.segment_sizes(s).to_dict(orient="records") for s in summary.schemes
                        },
                    }
                )
                return
            console.print(
                f"ingested {int(recon['rows_read'].sum()):,} rows: {int(recon['rows_accepted'].sum()):,} accepted, "
                f"{int(recon['rows_quarantined'].sum()):,} quarantined, {int(recon['rows_duplicate'].sum()):,} duplicates"
            )
            scheme = summary.schemes[0]
            if shown.project is project:  # on Spark: the report has them
                _print_sizes(project, scheme)
                _print_flows(project, scheme)
            console.print(
                f"\nreport: [bold]{path.resolve()}[/]  ({time.perf_counter() - started:.1f} s in all)"
            )


#: The file a demo writes first into its folder (before its data): a folder holding it and
#: no project file is a demo's that was interrupted before writing its ``segflow.toml``.
DEMO_MARKER = ".segflow-demo"


def _fresh_demo_folder(out: Path) -> None:
    """Make ``out`` ready for a new demo: a folder of an earlier demo loses its store, its
    churn models (``models/churn_*.joblib``) and Spark warehouse (else the new data would be ingested beside the old, and the report would
    show rows no generated file holds); a folder holding any other segflow project is refused
    (its ``segflow.toml`` and store are the user's, not the demo's to replace). A folder of
    a demo interrupted before its project file (its :data:`DEMO_MARKER`, no ``segflow.toml``)
    loses the data that demo wrote (:func:`_forget_unfinished_demo`: refused when its data
    folder holds anything else, or a store is there). The marker is then written (again), first.

    Raises
    ------
    ConfigError
        When ``out`` holds a ``segflow.toml`` the demo did not write, a store without one,
        any other file without one (another project's ``data/customers.csv`` would be
        overwritten), a demo's project file whose store lies outside ``out``, or a
        ``models`` folder leading outside ``out`` (a link: its churn models are not the demo's),
        or an interrupted demo's ``data`` folder leading outside ``out``.
    """
    from segflow.errors import ConfigError

    toml = out / "segflow.toml"
    if not toml.exists() and (out / DEMO_MARKER).is_file():
        _forget_unfinished_demo(out)
    elif not toml.exists():
        if (out / "segflow.duckdb").exists():
            raise ConfigError(f"{out} holds a segflow store without a segflow.toml; the demo "
                              "does not replace it: choose another --out")
        if out.is_dir() and any(out.iterdir()):
            raise ConfigError(f"{out} holds files and no demo project file; the demo does not "
                              "write over them: choose an empty or new --out")
    else:
        _forget_earlier_demo(out, toml)
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).write_text("written by segflow demo before its data: this folder is a "
                                   "demo's, which a new demo may replace\n", encoding="utf-8")


def _forget_unfinished_demo(out: Path) -> None:
    """Remove what a demo interrupted before its project file wrote in ``out``: the files
    of its data folder that the generator writes (:func:`segflow.datasets._generate.written_files`;
    they are written again). Anything else there (a file of another name, a link, a store:
    the demo writes its store after its project file) is not the demo's: refused, nothing
    deleted (a marker copied or planted beside someone's files must not cost them)."""
    import shutil

    from segflow.datasets._generate import written_files
    from segflow.errors import ConfigError

    data = out / "data"
    if data.is_symlink() or (data.exists() and out.resolve() not in data.resolve().parents):
        raise ConfigError(f"{data} leads outside {out} ({data.resolve()}); the demo does not "
                          "delete the files there: choose another --out")
    if (out / "segflow.duckdb").exists():
        raise ConfigError(f"{out} holds a segflow store without a segflow.toml; the demo "
                          "does not replace it: choose another --out")
    if not data.exists():
        return
    ours, found = written_files(), sorted(data.rglob("*"))
    foreign = [p for p in found if p.is_symlink() or (p.is_file() and p.relative_to(data).as_posix() not in ours)
               or (not p.is_file() and p != data / "truth")]
    if foreign:
        raise ConfigError(f"{foreign[0]} was not written by the demo ({len(foreign)} such "
                          f"entries in {data}); the demo does not delete them: choose another --out")
    shutil.rmtree(data)


def _forget_earlier_demo(out: Path, toml: Path) -> None:
    """Remove the store, churn models and local warehouse of the demo whose project file is
    ``toml`` (see :func:`_fresh_demo_folder`)."""
    import shutil

    from segflow.config import Settings
    from segflow.datasets import demo_project_toml
    from segflow.errors import ConfigError

    header = demo_project_toml().splitlines()[0]
    with toml.open(encoding="utf-8", errors="replace") as fh:
        first = fh.readline().rstrip("\r\n")
    if first != header:
        raise ConfigError(f"{toml} is not a demo's project file; the demo does not replace "
                          "a project: choose another --out")
    settings = Settings.load(out)
    store = (out / settings.project.store).resolve()
    if out.resolve() not in store.parents:  # an edited demo file naming a store of its own
        raise ConfigError(f"{toml} names a store outside {out} ({settings.project.store}); "
                          "the demo does not replace it: choose another --out")
    models = out / "models"
    if models.is_dir() and out.resolve() not in models.resolve().parents:  # a linked folder
        raise ConfigError(f"{models} leads outside {out} ({models.resolve()}); the demo does "
                          "not delete the churn models there: choose another --out")
    # the churn models trained on the earlier demo's store too: refresh and churn score
    # would apply them to the new data
    stale = [store, store.with_name(store.name + ".wal"), *models.glob("churn_*.joblib")]
    for path in stale:
        path.unlink(missing_ok=True)
    warehouse = (out / settings.engine.warehouse).resolve()  # a local folder inside out only
    if "://" not in settings.engine.warehouse and out.resolve() in warehouse.parents \
            and warehouse.is_dir():
        shutil.rmtree(warehouse)


def _print_sizes(project, scheme: str, snapshot: dt.date | None = None) -> None:  # noqa: ANN001
    sizes = project.segment_sizes(scheme, snapshot)
    cur = project.settings.project.currency
    table = Table(title=f"{scheme} segments at {snapshot or project.snapshot_dates(scheme)[-1]}")
    for col in ("segment", "customers", "share", f"revenue 12m ({cur})", "revenue share"):
        table.add_column(col, justify="left" if col == "segment" else "right")
    for row in sizes.itertuples():
        table.add_row(
            str(row.segment), f"{row.customers:,}", f"{row.share:.1%}",
            f"{row.revenue_12m:,.0f}", f"{row.revenue_share:.1%}",
        )
    stdout.print(table)


def _print_flows(project, scheme: str, top: int = 10) -> None:  # noqa: ANN001
    matrix = project.transitions(scheme)
    flows = matrix.flows(top=top)
    table = Table(title=f"biggest {scheme} migration flows, {matrix.from_date} → {matrix.to_date}")
    for col in ("from", "to", "customers", "share of from"):
        table.add_column(col, justify="left" if col in ("from", "to") else "right")
    for row in flows.itertuples():
        table.add_row(str(row.from_segment), str(row.to_segment), f"{row.customers:,}", f"{row.share:.1%}")
    stdout.print(table)
