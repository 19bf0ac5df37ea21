"""CLI: ``segflow segment`` (scheme assignment) and its subcommands.

``segment_app`` is the command group; ``_cluster.py`` adds ``cluster`` and ``profile`` to it.
``segflow segment --scheme NAME [--snapshot DATE]`` assigns the customers known at the
snapshot to the segments of one scheme and prints the segment sizes and value.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import typer

from segflow.cli._common import (
    DATE,
    EngineOption,
    JsonOption,
    ProjectDirOption,
    Table,
    console,
    on_spark,
    print_json,
    stdout,
    user_errors,
)
from segflow.cli._pseudonyms import ids_pii_option
from segflow.errors import SegflowError

if TYPE_CHECKING:
    from segflow.config import SchemeSettings
    from segflow.segments import SegmentSizes

segment_app = typer.Typer(
    help=(
        "Assign customers to the segments of a scheme at a snapshot (--scheme NAME "
        "[--snapshot DATE]); cluster; profile segments."
    ),
    invoke_without_command=True,
)


def register(app: typer.Typer) -> None:
    """Add ``segflow segment`` to the root app."""
    app.add_typer(segment_app, name="segment")


@segment_app.callback()
def segment(
    ctx: typer.Context,
    scheme: str | None = typer.Option(
        None, "--scheme", "-s", help="Scheme to assign: a scheme of segflow.toml or a built-in one."
    ),
    snapshot: dt.date | None = typer.Option(
        None, "--snapshot", parser=DATE,
        help="Snapshot date YYYY-MM-DD (default: the project's last one).",
    ),
    project_dir: Path = ProjectDirOption,
    engine: str | None = EngineOption,
    save: bool = typer.Option(
        False, "--save", help="Store the assignments (replacing those of the same scheme and date)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write the assignments to this .csv or .parquet file."
    ),
    pii: str = ids_pii_option("--out"),
    as_json: bool = JsonOption,
) -> None:
    """Assign customers to the segments of one scheme at a snapshot date and show sizes.

    Uses only data before the snapshot date. Without --save nothing is written to the store
    (its store is opened read-only: it works while `segflow refresh` runs; a cluster scheme
    without a stored model is then fitted for this command and not saved). --out writes a
    customer id that is an e-mail address or a phone number as the project's pseudonymous key
    (pid-...), as segflow export does, unless --pii include.
    """
    if ctx.invoked_subcommand is not None:
        _refuse_group_options(ctx, ctx.invoked_subcommand)
        return
    with user_errors():
        if not scheme:
            raise SegflowError(
                "give a scheme: segflow segment --scheme NAME (or a subcommand; see --help)"
            )
        if out and out.suffix.lower() not in (".csv", ".parquet"):
            raise SegflowError(f"--out {out}: use a .csv or .parquet file name")
        sizes, written = _segment(scheme, snapshot, project_dir, engine, save,
                                  _Out(out, pii, project_dir) if out else None)
        if as_json:
            payload = sizes.to_dict()
            payload["saved"] = written
            payload["out"] = str(out) if out else None
            print_json(payload)
            return
        from segflow.config import Settings

        _print(sizes, Settings.load(project_dir).project.currency)
        if save:
            console.print(f"stored {written:,} assignments")
        if out:
            console.print(f"wrote assignments to {out}")


#: The group's options (assigning a scheme) and the option of each sub-command that does
#: their work, if any.
_GROUP_OPTIONS = {"scheme": ("--scheme", {"profile": "--scheme"}),
                  "snapshot": ("--snapshot", {"cluster": "--snapshot", "profile": "--snapshot"}),
                  "project_dir": ("--project", {"cluster": "--project", "profile": "--project"}),
                  "engine": ("--engine", {}),
                  "save": ("--save", {"cluster": "--save-scheme NAME"}),
                  "out": ("--out", {"cluster": "--out"}),
                  "pii": ("--pii", {"cluster": "--pii"}),
                  "as_json": ("--json", {"cluster": "--json", "profile": "--json"})}


def _refuse_group_options(ctx: typer.Context, sub: str) -> None:
    """A usage error (one line, exit 2) when an option of the scheme assignment was given
    before a sub-command (``segment --pii include cluster ...``): the sub-command would ignore
    it, and ``--pii include`` or ``--out`` would silently not apply."""
    from segflow.cli._common import _UsageError

    for param, (option, instead) in _GROUP_OPTIONS.items():
        source = ctx.get_parameter_source(param)  # Typer's own Click: its enum, compared by name
        if source is None or source.name == "DEFAULT":
            continue
        where = (f"give {instead[sub]} after '{sub}' (segflow segment {sub} ... {instead[sub]} ...)"
                 if sub in instead else f"'{sub}' has no such option")
        raise _UsageError(f"{option} before '{sub}' is an option of the scheme assignment "
                          f"(`segflow segment --scheme NAME`) and '{sub}' would ignore it: {where}",
                          ctx=ctx)


class _Out(NamedTuple):
    """Where ``--out`` writes the assignments, and how their ids are written (``pii``: keyed
    with the secret of the project at ``project_dir`` unless ``include``)."""

    path: Path
    pii: str
    project_dir: Path


def _segment(
    scheme_name: str,
    snapshot: dt.date | None,
    project_dir: Path,
    engine: str | None,
    save: bool,
    out: _Out | None,
) -> tuple[SegmentSizes, int]:
    """Sizes of ``scheme_name`` at ``snapshot`` and the assignments stored (``save``).

    On Spark the features and assignments are computed by Spark from the canonical tables of
    the project's warehouse (:func:`_segment_on_spark`), not from the DuckDB store."""
    from segflow.engine import connect
    from segflow.pipeline import canonical_tables, resolve_schemes, resolve_snapshot_dates
    from segflow.project import Project

    if on_spark(project_dir, engine):
        if save:
            raise SegflowError("`segflow segment --save` is not available on Spark yet; "
                               "`segflow run` stores every scheme's assignments in the warehouse")
        return _segment_on_spark(scheme_name, snapshot, project_dir, out), 0
    # without --save only read: read-only, so it works during a refresh (docs/operations.md)
    with Project.open(project_dir) if save else Project.open_reading(project_dir) as project:
        schemes = resolve_schemes(project.settings)
        chosen = _find(scheme_name, schemes, project.settings.rfm.bins)
        day = snapshot or resolve_snapshot_dates(project.store, project.settings)[-1]
        eng = connect(project.store, engine, settings=project.settings.engine)
        try:
            return _assign(chosen, schemes, canonical_tables(eng), day,
                           project.settings.rfm.window_days, project.store,
                           out, project.store if save else None, store=project.store)
        finally:
            eng.close()


def _segment_on_spark(scheme_name: str, snapshot: dt.date | None, project_dir: Path,
                      out: _Out | None) -> SegmentSizes:
    """:func:`_segment` on the project's warehouse: the committed canonical tables as Ibis
    tables on Spark; a cluster scheme takes the warehouse's fitted model (one is fitted on
    the driver, not saved, when the warehouse has none). Nothing is written there.

    Raises
    ------
    SegflowError
        The warehouse has no transactions (``segflow ingest`` on Spark first)."""
    from segflow.config import Settings
    from segflow.pipeline import resolve_schemes, snapshot_dates_between
    from segflow.store import CANONICAL_TABLES
    from segflow.store._spark import SparkStore
    from segflow.warehouse._run import _ClusterModels, transaction_span

    settings = Settings.load(project_dir)
    schemes = resolve_schemes(settings)
    chosen = _find(scheme_name, schemes, settings.rfm.bins)
    warehouse = SparkStore.open(settings.engine, project_dir)
    if "transactions" not in warehouse.tables():
        raise SegflowError(f"the warehouse {warehouse.root} has no transactions; load them "
                           "with `segflow ingest` first")
    tables = {name: warehouse.table(name) for name in CANONICAL_TABLES}
    day = snapshot or snapshot_dates_between(
        settings, *transaction_span(tables["transactions"]))[-1]
    book = _ClusterModels(warehouse).book if chosen.kind == "cluster" else None
    sizes, _ = _assign(chosen, schemes, tables, day, settings.rfm.window_days, book, out, None)
    return sizes


def _assign(chosen: SchemeSettings, schemes: list[SchemeSettings], tables: dict[str, Any],
            day: dt.date, window: int, book: Any, out: _Out | None,
            save_to: Any, *, store: Any = None) -> tuple[SegmentSizes, int]:
    """Assign the customers known at ``day`` to ``chosen`` (Ibis ``tables``, any engine;
    ``book``: the store where a cluster scheme's model is found or saved), write them to
    ``out`` and to the store ``save_to`` when given; the sizes and the rows stored. ``store``:
    the DuckDB store whose run's features are read when current (else computed)."""
    from segflow.features import customer_features
    from segflow.features._stored_state import current_features
    from segflow.segments import (
        assign,
        check_scheme,
        freeze_cutoffs,
        segment_names,
        segment_sizes,
    )

    cached = []
    try:
        schemes = freeze_cutoffs(schemes, tables, window_days=window)
        chosen = freeze_cutoffs([chosen], tables, window_days=window)[0]
        features = (customer_features(tables, day, window_days=window) if store is None else
                    current_features(store, tables, day, window_days=window)).cache()
        cached.append(features)
        assignments = assign(chosen, features, store=book, schemes=schemes).cache()
        cached.append(assignments)
        check_scheme(chosen, features, assignments, snapshot=day)
        sizes = segment_sizes(assignments, features, scheme=chosen.name, snapshot_date=day,
                              segments=segment_names(chosen))
        if int(sizes.frame["customers"].sum()) == 0:
            import warnings

            warnings.warn(f"nobody is known at {day}: no customer signed up or bought before "
                          "it (is the snapshot before the data?)", UserWarning, stacklevel=2)
        else:
            _warn_after_the_data(tables["transactions"], day)
        written = _save(save_to, chosen, day, assignments) if save_to is not None else 0
        if out:
            _write(assignments, out)
    finally:
        for table in reversed(cached):  # before the engine closes (no drop on a closed one)
            table.release()
    return sizes, written


#: Days from the last transaction to a snapshot from which :func:`_warn_after_the_data`
#: warns (a year: every 12-month value is then 0).
AFTER_THE_DATA_DAYS = 365


def _warn_after_the_data(transactions: Any, day: dt.date) -> None:
    """Warn when the last transaction before ``day`` is :data:`AFTER_THE_DATA_DAYS` or more
    days before it: the segments then describe a base with no purchase in its 12 months."""
    import ibis

    t = transactions
    last = t.filter(t.ts < ibis.literal(dt.datetime.combine(day, dt.time()))).ts.max().execute()
    if last is None or last != last:  # no transaction (or NaT)
        return
    gap = (day - last.date()).days
    if gap >= AFTER_THE_DATA_DAYS:
        import warnings

        warnings.warn(f"the snapshot {day} is {gap} days after the last transaction "
                      f"({last.date()}): every 12-month value is 0 and recency counts the gap "
                      "(is the snapshot after the data?)", UserWarning, stacklevel=2)


def _find(name: str, schemes: list[SchemeSettings], rfm_bins: int = 5) -> SchemeSettings:
    from segflow.segments import builtin_schemes, with_project_defaults

    builtins = with_project_defaults(builtin_schemes(), rfm_bins=rfm_bins)
    for candidate in [*schemes, *builtins]:
        if candidate.name == name:
            return candidate
    from segflow._suggest import did_you_mean

    known = list(dict.fromkeys(s.name for s in [*schemes, *builtin_schemes()]))
    raise SegflowError(f"unknown scheme {name!r}; {did_you_mean(name, known)}known schemes: {', '.join(known)}")


def _save(store, scheme, day: dt.date, assignments) -> int:  # noqa: ANN001
    import ibis

    from segflow.store._spells import write_spells

    params = {"scheme": scheme.name, "snapshot": day.isoformat()}
    with store.run("segment", params) as run_id:
        rows = assignments.select(
            snapshot_date=ibis.literal(day),
            customer_id=assignments.customer_id.cast("string"),
            segment=assignments.segment.cast("string"),
            segment_rank=assignments.segment_rank.cast("int32"),
        ).to_pyarrow()
        with store.transaction() as con:
            con.register("_segment_rows", rows)
            try:
                # replaces the scheme's assignments at that date (in the change rows)
                write_spells(con, scheme=scheme.name, scheme_version=scheme.version,
                             source="_segment_rows", snapshots=[day], run_id=run_id)
            finally:
                con.unregister("_segment_rows")
            return rows.num_rows


def _write(assignments, out: _Out) -> None:  # noqa: ANN001
    """The assignments to ``out.path``: ids that are e-mails or phone numbers as the
    project's pseudonymous keys (segflow.cli._pseudonyms) unless ``out.pii`` is include."""
    from segflow.cli._pseudonyms import key_ids

    table = assignments.select("customer_id", "segment", "segment_rank").to_pyarrow()
    table = key_ids(table, out.pii, out.project_dir)
    path = out.path
    suffix = path.suffix.lower()
    if suffix == ".csv":
        from segflow._csv import write_csv

        write_csv(table, path, private=out.pii == "include")
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        from segflow._private import private_target

        private_target(path, out.pii == "include")
        pq.write_table(table, path)
    else:  # checked before computing
        raise SegflowError(f"--out {path}: use a .csv or .parquet file name")


def _print(sizes: SegmentSizes, currency: str) -> None:
    frame = sizes.to_pandas()
    table = Table(title=f"{sizes.scheme} at {sizes.snapshot_date}")
    for col in ("segment", "rank", "customers", "share", f"revenue, 12 months ({currency})",
                "revenue share"):
        table.add_column(col, justify="left" if col == "segment" else "right")
    for row in frame.itertuples(index=False):
        table.add_row(
            str(row.segment),
            "" if row.segment_rank is None or row.segment_rank != row.segment_rank
            else str(int(row.segment_rank)),
            f"{int(row.customers):,}",
            f"{row.share:.1%}",
            f"{row.revenue_12m:,.0f}",
            "" if row.revenue_share is None or row.revenue_share != row.revenue_share
            else f"{row.revenue_share:.1%}",
        )
    stdout.print(table)
