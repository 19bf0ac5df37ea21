"""CLI: ``migrate`` (transition matrix), ``migrate forecast|who|paths|stability``, ``export``.

Thin: parse options, call :mod:`segflow.migration` / :mod:`segflow.exports` on the project
store, print. Human output goes to stderr; ``--json`` prints the result on stdout.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer

from segflow.cli._common import (
    DATE,
    Choice,
    DateType,
    JsonOption,
    ProjectDirOption,
    Table,
    console,
    list_line,
    on_spark,
    open_project,
    print_json,
    print_labelled,
    refuse_on_spark,
    stdout,
    user_errors,
)
from segflow.cli._pseudonyms import ids_pii_option
from segflow.errors import SegflowError, printable

migrate_app = typer.Typer(
    help="Customer migration: who moved between segments, forecasts, paths.",
    no_args_is_help=False,
    invoke_without_command=True,
)

SchemeOption = typer.Option(
    None, "--scheme", "-s", help="Scheme name (default: the only scheme, if there is one)."
)


def register(app: typer.Typer) -> None:
    """Add ``migrate`` (with its sub-commands) to the root app. Its ``export`` command is
    ``segflow export`` without a sub-command (see :mod:`segflow.cli._export`)."""
    app.add_typer(migrate_app, name="migrate")


#: What the migration commands read on a Spark project, copied from the warehouse: the
#: change rows (the copy's ``segment_assignments`` is the store's view over them).
SPARK_TABLES = ("segment_spells", "segment_snapshots")


def _open(project_dir: Path, *, read_only: bool = True):  # noqa: ANN202
    """The project; on Spark its store is a DuckDB copy of the warehouse's change rows."""
    return open_project(project_dir, SPARK_TABLES, read_only=read_only)


def _scheme(project, scheme: str | None) -> str:  # noqa: ANN001
    from segflow.migration._spells import has_spells
    from segflow.store._spells import assigned_schemes

    if has_spells(project.store):  # the change rows: the per-snapshot view expands them all
        schemes = assigned_schemes(project.store.raw)
    else:
        rows = project.store.sql("SELECT DISTINCT scheme FROM segment_assignments ORDER BY 1")
        schemes = [str(s) for s in rows["scheme"].to_pylist()]
    if scheme:
        if scheme not in schemes:
            from segflow._suggest import did_you_mean

            raise SegflowError(
                f"no assignments for scheme {scheme!r}; {did_you_mean(scheme, schemes)}"
                f"schemes with assignments: {', '.join(schemes) or 'none'}"
            )
        return scheme
    if len(schemes) == 1:
        return schemes[0]
    raise SegflowError(
        f"pass --scheme; schemes with assignments: {', '.join(schemes) or 'none (run `segflow run`)'}"
    )


def _last_two(
    project, scheme: str, frm: dt.date | None, to: dt.date | None
) -> tuple[dt.date, dt.date]:  # noqa: ANN001
    """The snapshot pair of ``--from``/``--to``: :meth:`segflow.Project.snapshot_pair`, the
    one rule of the library and the CLI (``--to`` the latest, ``--from`` the one before it).
    A pair in the wrong order is said in the options' terms (the library's message names its
    arguments ``from_date``/``to_date``): ``--from`` the latest snapshot, ``--to`` the first."""
    dates = project.snapshot_dates(scheme)
    if len(dates) >= 2:
        last = to if to is not None else dates[-1]
        if frm is not None and frm in dates and last in dates and frm >= last:
            if to is None:
                raise SegflowError(f"--from {frm} is the latest snapshot of scheme {scheme!r}: "
                                   "there is no later one to compare with (--to defaults to "
                                   "the latest); give an earlier --from")
            raise SegflowError(f"--from ({frm}) must be before --to ({to})")
        if frm is None and to is not None and to == dates[0]:
            raise SegflowError(f"--to {to} is the first snapshot of scheme {scheme!r}: there is "
                               "no earlier one to compare with (--from defaults to the one "
                               "before --to); give a later --to")
    return project.snapshot_pair(scheme, frm, to)


@migrate_app.callback()
def migrate(
    ctx: typer.Context,
    scheme: str = SchemeOption,
    from_date: dt.date | None = typer.Option(
        None, "--from", parser=DATE, help="First snapshot date (default: the one before --to)."
    ),
    to_date: dt.date | None = typer.Option(
        None, "--to", parser=DATE, help="Second snapshot date (default: the latest)."
    ),
    interval: str = typer.Option(
        "dirichlet",
        help="Share intervals: dirichlet (pointwise Jeffreys) or goodman (simultaneous).",
    ),
    level: float = typer.Option(0.95, min=0.5, max=0.999, help="Interval level (0.5 to 0.999)."),
    project_dir: Path = ProjectDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Transition matrix between two snapshots: counts, shares with intervals, revenue of movers."""
    if ctx.invoked_subcommand is not None:
        return
    from segflow.migration import transition_matrix

    with user_errors(), _open(project_dir) as project:
        name = _scheme(project, scheme)
        frm, to = _last_two(project, name, from_date, to_date)
        if on_spark(project_dir):  # the revenue of movers computed by Spark from the warehouse
            source = project.warehouse
            tm = transition_matrix(
                source.table("segment_assignments"),
                scheme=name,
                from_date=frm,
                to_date=to,
                transactions=source.table("transactions"),
                interval=interval,
                level=level,  # type: ignore[arg-type]
            )
        else:  # the run's stored cells when current (Project.transitions)
            tm = project.transitions(name, frm, to, interval=interval, level=level)
        if as_json:
            print_json(tm.to_dict())
            return
        _print_matrix(tm, project.settings.project.currency)


def _print_matrix(tm, currency: str) -> None:  # noqa: ANN001
    cells = tm.to_pandas()
    cells = cells[cells["customers"] > 0]
    table = Table(title=f"{tm.scheme}: transitions {tm.from_date} → {tm.to_date} (non-empty cells)")
    for col in ("from", "to", "customers", "row share", f"{tm.level:.0%} interval"):
        table.add_column(col, justify="left" if col in ("from", "to") else "right")
    if "revenue" in cells:  # net revenue of the cell's customers from --from to before --to
        table.add_column(f"revenue between ({currency})", justify="right")
    for row in cells.itertuples():
        extra = [f"{row.revenue:,.0f}"] if "revenue" in cells else []
        table.add_row(
            str(row.from_segment),
            str(row.to_segment),
            f"{row.customers:,}",
            f"{row.share:.1%}",
            f"{row.share_lower:.1%} – {row.share_upper:.1%}",
            *extra,
        )
    stdout.print(table)
    s = tm.summary()
    line = f"stayed {s['stay']:,} · up {s['up']:,} · down {s['down']:,} · new {s['new']:,} · gone {s['gone']:,}"
    if "revenue_in_motion" in s:
        share = s["revenue_in_motion_share"]
        line += f" · revenue in motion {s['revenue_in_motion']:,.0f} {currency}" + (
            f" ({share:.0%})" if share is not None else ""
        )
    stdout.print(line)


@migrate_app.command("forecast")
def forecast(
    scheme: str = SchemeOption,
    periods: int = typer.Option(6, "--periods", "-k", parser=Choice(integers=1), help="Periods to forecast."),
    start: Any = typer.Option(  # a date or "first" (Typer takes no union)
        None, "--start", parser=DateType("first"), metavar="<date|first>",
        help="First snapshot of the pairs pooled, or 'first' for every pair (default: a year before --end).",
    ),
    end: dt.date | None = typer.Option(
        None, "--end", parser=DATE, help="Last snapshot pooled (default: the latest); the forecast starts from its sizes."
    ),
    half_life: float = typer.Option(
        None, "--half-life", help="Weight recent pairs more (half-life in periods; default: unweighted)."
    ),
    arrivals: str = typer.Option(
        "mean", help="New customers per period: 'mean' of the pooled pairs, 'none', or a number (0 to 10^12)."
    ),
    project_dir: Path = ProjectDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Forecast the segment sizes k periods ahead with a Markov chain fitted on pooled transitions.

    The same forecast as the API's /forecasts, the dashboard and the report (docs/migration.md,
    "The segment-size forecast"); the output states its window, inflow and the options given.
    """
    import numpy as np

    from segflow.migration import pooled_transition_matrix, segment_forecast
    from segflow.migration._forecast import parse_arrivals

    with user_errors(), _open(project_dir) as project:
        name = _scheme(project, scheme)
        how = parse_arrivals(arrivals)
        pooled = pooled_transition_matrix(project.store, scheme=name)  # every pair, from the change rows
        fc = segment_forecast(pooled, periods=periods, start=start, end=end, half_life=half_life, arrivals=how)
        chain = fc.chain
        order = [*dict.fromkeys(fc.table["segment"]), *(s for s in chain.states_ if s not in set(fc.table["segment"]))]
        # inf = never absorbed (e.g. nobody ever left in the history): JSON null, listed
        periods_to_gone = chain.absorption()["expected_periods"]
        periods_to_gone = periods_to_gone.reindex([s for s in order if s in periods_to_gone.index])
        until_gone = {s: (None if np.isinf(v) else float(v)) for s, v in periods_to_gone.items()}
        never_gone = [s for s, v in periods_to_gone.items() if np.isinf(v)]
        if as_json:
            print_json(
                {
                    **fc.to_dict(),
                    "transition_matrix": chain.transition_matrix_.loc[order, order].round(6).to_dict(orient="index"),
                    "expected_periods_until_gone": until_gone,
                    "never_gone": never_gone,
                    "never_gone_note": (
                        "expected_periods_until_gone is null for states from which leaving "
                        "the base is not certain in the fitted chain (never, or not with "
                        "probability 1)" if never_gone else None
                    ),
                }
            )
            return
        wide = fc.wide()
        table = Table(title=f"{name}: expected customers per segment",
                      caption=fc.meta["definition"])
        table.add_column("date", justify="right")
        for col in wide.columns:
            table.add_column(str(col), justify="right")
        for day, row in wide.iterrows():
            table.add_row(str(day), *[f"{v:,.0f}" for v in row])
        stdout.print(table)


@migrate_app.command("who")
def who(
    from_segment: str = typer.Option(
        ..., "--from", help="Segment at the first snapshot, or '(new)'."
    ),
    to_segment: str = typer.Option(
        ..., "--to", help="Segment at the second snapshot, or '(gone)'."
    ),
    scheme: str = SchemeOption,
    from_date: dt.date | None = typer.Option(
        None, "--from-date", parser=DATE, help="First snapshot (default: the one before --to-date)."
    ),
    to_date: dt.date | None = typer.Option(
        None, "--to-date", parser=DATE, help="Second snapshot (default: the latest)."
    ),
    limit: int = typer.Option(50, min=0, help="Customers shown (JSON and text); 0 = all."),
    project_dir: Path = ProjectDirOption,
    as_json: bool = JsonOption,
    pii: str = ids_pii_option("the list and --json"),
) -> None:
    """List the customers behind one cell of the transition matrix (drill-down)."""
    from segflow.cli._pseudonyms import key_frame
    from segflow.migration import movers

    with user_errors(), _open(project_dir) as project:
        name = _scheme(project, scheme)
        frm, to = _last_two(project, name, from_date, to_date)
        table = movers(
            project.store.table("segment_assignments"), name, frm, to, from_segment, to_segment
        )
        total = int(table.count().execute())
        ordered = table.order_by("customer_id")
        rows = (ordered.limit(limit) if limit else ordered).execute()
        # ids that are e-mails or phone numbers as `export segments` writes them (the server's
        # /migration/SCHEME/customers alike), unless --pii include
        rows = key_frame(rows, pii, project_dir)
        if as_json:
            print_json(
                {
                    "scheme": name,
                    "from_date": frm,
                    "to_date": to,
                    "from_segment": from_segment,
                    "to_segment": to_segment,
                    "count": total,
                    "data": rows.to_dict(orient="records"),
                }
            )
            return
        console.print(f"{total:,} customers moved {printable(from_segment)} → "
                      f"{printable(to_segment)} ({frm} → {to})", markup=False, highlight=False)
        quoted = 0
        for cid in rows["customer_id"]:  # the list itself goes to stdout, one id per line
            line, was_quoted = list_line(cid)
            quoted += was_quoted
            typer.echo(line)
        if quoted:
            print_labelled("note", f"{quoted:,} customer id(s) hold a line break, tab or other "
                           "control character, start with a double quote or a space, end with a space or are "
                           "empty: written as JSON "
                           'strings ("..."), one per line; --json gives every id as JSON')


@migrate_app.command("paths")
def paths(
    scheme: str = SchemeOption,
    top: int = typer.Option(20, min=1, help="Number of paths shown."),
    project_dir: Path = ProjectDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Most frequent multi-period customer paths and time spent in each segment."""
    from segflow.migration import customer_paths

    with user_errors(), _open(project_dir) as project:
        name = _scheme(project, scheme)
        result = customer_paths(project.store, name, top=top)  # runs = the change rows
        if as_json:
            print_json(result.to_dict())
            return
        table = Table(title=f"{name}: most frequent paths over {len(result.dates)} snapshots")
        for col in ("path", "customers", "share"):
            table.add_column(col, justify="left" if col == "path" else "right")
        for row in result.paths.itertuples():
            table.add_row(str(row.path), f"{row.customers:,}", f"{row.share:.1%}")
        stdout.print(table)


@migrate_app.command("stability")
def stability_cmd(
    scheme: str = SchemeOption,
    project_dir: Path = ProjectDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Share who stay, membership churn per segment, and drift alarms."""
    from segflow.migration import stability

    with user_errors(), _open(project_dir) as project:
        name = _scheme(project, scheme)
        result = stability(project.store, scheme=name)  # read from the change rows
        if as_json:
            print_json(result.to_dict())
            return
        for row in result.overall.itertuples():
            stdout.print(
                f"{row.from_date} → {row.to_date}: {row.stay_rate:.1%} stayed in their segment"
            )
        alarms = result.alarms()
        stdout.print(f"{len(alarms)} drift alarm(s)")
        for row in alarms.itertuples():
            stdout.print(
                f"  {row.to_date} {row.segment}: size {row.size_to:,.0f}, inflow {row.inflow:,.0f}"
            )


def export(
    out: Path = typer.Option(None, "--out", "-o", help="CSV or Parquet file to write (by suffix)."),
    table_name: str = typer.Option(
        None, "--table", help="Write to this table of the store instead of a file."
    ),
    scheme: str = SchemeOption,
    as_of: dt.date | None = typer.Option(
        None, "--as-of", parser=DATE, help="Snapshot date (default: the latest)."
    ),
    project_dir: Path = ProjectDirOption,
    as_json: bool = JsonOption,
    pii: str = "hash",
) -> None:
    """Export the CRM segment list: current and previous segment, last change, periods in
    segment. In a file, customer ids that are e-mails or phone numbers are written as the
    exports' pseudonymous keys unless ``pii`` is ``include`` (the list has no other personal
    column); a table of the store keeps them."""
    from segflow.exports import segment_list, write_segment_list

    with user_errors():
        if (out is None) == (table_name is None):
            raise SegflowError("pass exactly one of --out FILE or --table NAME")
        if table_name is not None:
            from segflow.exports._targets import _check_ident

            _check_ident(table_name)  # before the store is opened for writing (also '')
        if table_name:
            refuse_on_spark(project_dir, "segflow export --table",
                            "write the list to a file with --out FILE")
        with _open(project_dir, read_only=table_name is None) as project:
            name = _scheme(project, scheme)
            listing = segment_list(
                project.store.table("segment_assignments"), name, as_of
            )
            if table_name:
                rows = write_segment_list(listing, table_name, format="table", store=project.store)
                where = f"table {table_name}"
            else:
                keyed = 0
                if pii != "include":
                    from segflow.exports._pseudonym import id_key, pseudonymise_table

                    listing, keyed = pseudonymise_table(listing.to_pyarrow(), id_key(project.store.path))
                rows = write_segment_list(listing, out, private=pii == "include")
                where = str(out)
                if keyed:
                    from segflow.cli._export import _note_pseudonyms

                    _note_pseudonyms(keyed, project.store.path)
            if as_json:
                print_json({"scheme": name, "rows": rows, "target": where})
                return
            console.print(f"wrote {rows:,} customers of scheme {name} to {where}")
