"""``segflow ingest``, ``segflow sources check``, ``segflow audit``, ``segflow customers ...``.

Thin commands over :mod:`segflow.sources` and :mod:`segflow.quality`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from segflow.cli._common import (
    DATE,
    Choice,
    EngineOption,
    JsonOption,
    ProjectDirOption,
    Table,
    Text,
    console,
    on_spark,
    print_json,
    progress,
    refuse_on_spark,
    show_warning,
    stdout,
    user_errors,
)

sources_app = typer.Typer(help="Inspect and dry-run the [[sources]] of segflow.toml.",
                          no_args_is_help=True)
customers_app = typer.Typer(help="Identity resolution: link, explain and unlink customers.",
                            no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("ingest")(ingest_command)
    app.command("audit")(audit_command)
    sources_app.command("check")(check_command)
    customers_app.command("resolve")(resolve_command)
    customers_app.command("explain")(explain_command)
    customers_app.command("unlink")(unlink_command)
    app.add_typer(sources_app, name="sources")
    app.add_typer(customers_app, name="customers")


#: Why the identity commands refuse a Spark project.
IDENTITY_ON_DUCKDB = ("identity resolution runs in a DuckDB project only ([engine] kind = \"duckdb\"): "
                      "it reads and rewrites the canonical tables of the DuckDB store")


def _open(project: Path, *, read_only: bool = False):  # noqa: ANN202
    """Settings, store and folder of ``project``; ``read_only`` for a command that only reads
    (:func:`segflow.store.open_reading`: it works while a ``segflow refresh`` runs)."""
    from segflow.config import Settings
    from segflow.store import Store, open_reading

    settings = Settings.load(project)
    folder = project if project.is_dir() else project.parent
    store_path = Path(settings.project.store)
    if not store_path.is_absolute():
        store_path = folder / store_path
    limit = settings.project.memory_limit
    store = open_reading(store_path, memory_limit=limit) if read_only else Store(
        store_path, memory_limit=limit)
    return settings, store, folder


def _table(title: str, frame, columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, justify="right" if frame[c].dtype.kind in "iuf" else "left")
    for row in frame[columns].itertuples(index=False):
        # Text(): data and advice such as "[sources.value_maps]" are not Rich markup
        table.add_row(*(Text(f"{v:,}" if isinstance(v, int) else str(v)) for v in row))
    return table


def ingest_command(
    force: bool = typer.Option(
        False, "--force", help="Re-read unchanged files too (re-checks quarantined rows)."),
    project: Path = ProjectDirOption,
    json_output: bool = JsonOption,
    engine: str | None = EngineOption,
) -> None:
    """Read every [[sources]] entry into the store: validate, de-duplicate, quarantine.

    Prints the reconciliation per file: rows read = accepted + quarantined + duplicate.
    Re-running on unchanged files adds nothing. On Spark (``[engine] kind = "spark"`` or
    ``--engine spark``) Spark reads the sources and checks their rows, and the loads are
    written to the project's warehouse as one run (docs/scale.md).
    """
    import warnings

    from segflow.sources import ingest
    from segflow.summaries import store_audit

    with user_errors():
        if on_spark(project, engine):
            from segflow.cli._warehouse import open_warehouse
            from segflow.warehouse import ingest_on_warehouse

            settings, warehouse = open_warehouse(project)
            folder = project if project.is_dir() else project.parent
            with progress(disable=json_output) as bar, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                task = bar.add_task("ingesting on Spark", total=None)

                def spark_step(label: str, done: int, total: int) -> None:
                    bar.update(task, description=label if done < total else
                               "auditing the data", completed=done, total=total)

                report = ingest_on_warehouse(warehouse, settings, folder, force=force,
                                             progress=spark_step)
            _show(report, json_output)
            return
        settings, store, folder = _open(project)
        with store, progress(disable=json_output) as bar:
            task = bar.add_task("ingesting", total=None)

            def step(label: str, done: int, total: int) -> None:
                bar.update(task, description=label, completed=done, total=total)

            with store.run("ingest", {"project": str(folder)}), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = ingest(store, settings, folder, progress=step, force=force)
                bar.update(task, description="auditing the data", completed=0, total=None)
                store_audit(store)
        _show(report, json_output)


def _show(report, json_output: bool) -> None:
    """The reconciliation (stdout) and the warnings (stderr) of an ingest: each as
    ``segflow refresh`` prints the same warning, ``warning: ...`` (an empty file, text that
    looks like a formula, rows left by an earlier delivery: things about the data, not
    advice, which is a ``note``; :func:`~segflow.cli._common.show_warning`)."""
    if json_output:
        print_json(report.to_dict())
        return
    frame = report.to_pandas()
    stdout.print(_table("Reconciliation (rows)", frame, [
        "source", "source_file", "status", "rows_read", "rows_accepted", "rows_quarantined",
        "rows_duplicate", "rows_replaced", "rows_anonymous", "rows_stale"]))
    rules = report.rules()
    if len(rules):
        # per file, as the reconciliation: without the file, one rule of two files read as
        # the same rule listed twice
        stdout.print(_table("Quarantined rows by rule", rules,
                            ["source", "source_file", "rule", "rows"]))
    for w in report.warnings:
        show_warning(w, UserWarning, "", 0)


def check_command(
    name: str = typer.Argument(..., help="Name of the source in segflow.toml."),
    rows: int = typer.Option(1000, "--rows", "-n", min=1, help="Number of rows to check."),
    project: Path = ProjectDirOption,
    pii: str = typer.Option("mask", "--pii", parser=Choice("mask", "include"),
                            help="Personal data shown: the accepted rows' personal columns in "
                                 "--json (email, phone, name...) and the e-mail addresses and phone "
                                 "numbers in their ids and in the rejected rows' reasons (as the "
                                 "report shows them): mask (a***@example.com, ***23, J***), or "
                                 "include them in clear."),
    json_output: bool = JsonOption,
) -> None:
    """Dry-run a source's mapping on its first rows: what would be accepted and rejected.

    Nothing is written. unknown_customer and the comparison with the store are not checked.
    The accepted rows (--json) show personal columns masked, and the e-mail addresses and
    phone numbers quoted by the rejected rows' reasons (and --json's ids) are masked as the
    report masks them, unless --pii include.
    """
    from segflow.config import Settings
    from segflow.errors import ConfigError
    from segflow.sources import check_source

    with user_errors():
        settings = Settings.load(project)
        folder = project if project.is_dir() else project.parent
        match = [s for s in settings.sources if s.name == name]
        if not match:
            names = ", ".join(s.name for s in settings.sources) or "(none)"
            raise ConfigError(f"no source named {name!r}; sources are: {names}")
        report = check_source(match[0], folder, n=rows)
        if pii != "include":
            report = report.masked()
        if json_output:
            print_json(report.to_dict())
            return
        stdout.print(f"source {report.source!r}, file {report.file}", highlight=False)
        for canonical, col in report.mapping.items():
            stdout.print(f"  {canonical:<16} <- {col}", highlight=False)
        c = report.counts
        stdout.print(f"{c['rows_read']} rows checked: {c['rows_accepted']} accepted, "
                      f"{c['rows_quarantined']} quarantined, {c['rows_duplicate']} duplicate")
        if len(report.rejected):
            stdout.print(_table("Rejected rows", report.rejected.head(30).fillna(""),
                                 ["row_number", "rule", "column_name", "reason"]))


def audit_command(
    as_of: dt.date | None = typer.Option(
        None, "--as-of", parser=DATE, help="Audit date (YYYY-MM-DD); default: today."
    ),
    project: Path = ProjectDirOption,
    pii: str = typer.Option("mask", "--pii", parser=Choice("mask", "include"),
                            help="E-mail addresses and phone numbers in the checks' examples (e.g. "
                                 "customer_id=u***@example.com, as the report shows them): mask, or "
                                 "include them in clear."),
    json_output: bool = JsonOption,
) -> None:
    """Score the customer base: completeness, duplicates, outliers, dates, gaps, integrity.

    The examples (--json) mask e-mail addresses and phone numbers as the report does;
    --pii include shows them in clear.
    """
    from segflow.quality import audit

    with user_errors():
        refuse_on_spark(project, "segflow audit", "`segflow report` shows the data audit "
                        "of the warehouse")
        _, store, _ = _open(project, read_only=True)
        with store:
            report = audit(store, as_of=as_of)
        if pii != "include":
            report = report.masked()
        if json_output:
            print_json(report.to_dict())
            return
        stdout.print(f"data-quality score: {report.score:.0f} / 100 (audit date {report.as_of}; "
                      f"stale and old dates judged against the data's end {report.data_end})")
        stdout.print(_table("Checks", report.to_pandas(),
                             ["check", "table", "severity", "count", "advice"]))


def resolve_command(
    id_map: Path = typer.Option(None, "--id-map", help="CSV of explicit links: customer_id,other_id."),
    project: Path = ProjectDirOption,
    json_output: bool = JsonOption,
) -> None:
    """Link customers across sources by normalised email and phone (and an id map)."""
    from segflow.sources import resolve_identities

    with user_errors():
        refuse_on_spark(project, "segflow customers resolve", IDENTITY_ON_DUCKDB)
        _, store, _ = _open(project)
        with store:
            report = resolve_identities(store, id_map=id_map)
        if json_output:
            print_json(report.to_dict())
            return
        console.print(f"{report.linked} customer ids linked into {report.groups} groups "
                      f"({report.edges} links by {', '.join(report.by_rule) or 'none'})")


def explain_command(
    customer_id: str = typer.Argument(..., help="A customer id, or its pseudonymous key (pid-...)."),
    project: Path = ProjectDirOption,
    pii: str = typer.Option("mask", "--pii", parser=Choice("mask", "include"),
                            help="Personal values shown (e-mails, phone numbers: in the records and "
                                 "as the evidence of links): mask (a***@example.com, ***02; a customer id "
                                 "that is or holds an e-mail or phone number as its pseudonymous key, "
                                 "pid-...), or include them in clear."),
    json_output: bool = JsonOption,
) -> None:
    """Explain a customer's identity: which ids are merged with it, and why.

    E-mails and phone numbers are masked as
    `segflow export segments -s rfm --to rfm.csv --pii mask` writes them; --pii include shows
    them in clear.
    """
    from segflow.sources import explain

    with user_errors():
        refuse_on_spark(project, "segflow customers explain", IDENTITY_ON_DUCKDB)
        _, store, _ = _open(project, read_only=True)
        with store:
            result = explain(store, customer_id, pii=pii)
        if result.ids_pseudonymised:
            from segflow.exports._pseudonym import key_file, pseudonym_note

            console.print(pseudonym_note(result.ids_pseudonymised, key_file(store.path)),
                          highlight=False, soft_wrap=True, markup=False)
        if json_output:
            print_json(result.to_dict())
            return
        stdout.print(result.text(), highlight=False)


def unlink_command(
    customer_id: str = typer.Argument(..., help="The customer id to separate from its group, "
                                      "or its pseudonymous key (pid-...)."),
    project: Path = ProjectDirOption,
    json_output: bool = JsonOption,
) -> None:
    """Undo a merge: the id stands alone again (and stays so on later resolves)."""
    from segflow.sources import unlink

    with user_errors():
        refuse_on_spark(project, "segflow customers unlink", IDENTITY_ON_DUCKDB)
        _, store, _ = _open(project)
        with store:
            removed = unlink(store, customer_id)
        if json_output:
            print_json({"customer_id": customer_id, "links_removed": removed})
            return
        console.print(f"{customer_id}: {removed} links removed; it is its own customer again")
