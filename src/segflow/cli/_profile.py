"""CLI: ``segflow segment profile``: what tells a scheme's segments apart.

Works on a project's store (features at a snapshot, default the latest) or directly on
customer-level files, as ``segflow segment cluster`` (:mod:`segflow.cli._cluster`, whose
input options and warning handling it shares). Thin: parse, call
:mod:`segflow.segments` profiling, print.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from segflow.cli._cluster import (
    NullValuesOption,
    _null_values,
    _store_features,
    _user_warnings,
    _warnings_kept,
)
from segflow.cli._common import (
    DATE,
    JsonOption,
    ProjectDirOption,
    console,
    print_json,
    print_labelled,
    refuse_on_spark,
    stdout,
    user_errors,
)
from segflow.cli._customer_file import check_value_column, read_customer_file
from segflow.cli._segment import segment_app
from segflow.errors import InputError, about_file

if TYPE_CHECKING:  # ibis loads only in the commands that use it (fast --help)
    import ibis


def register(app: typer.Typer) -> None:
    """Nothing to add to the root app: the command lives in the ``segment`` group."""


@segment_app.command("profile")
def profile_command(
    input: Path | None = typer.Option(
        None, "--input", "-i", help="Customer-level feature file (CSV, Parquet, Excel)."
    ),
    assignments: Path | None = typer.Option(
        None,
        "--assignments",
        "-a",
        help="File with the id and 'segment' columns (e.g. from `segment cluster --out`).",
    ),
    id_col: str = typer.Option("customer_id", "--id-col", help="Customer id column of both files."),
    scheme: str | None = typer.Option(
        None, "--scheme", "-s", help="Profile a scheme stored in the project (instead of files)."
    ),
    snapshot: dt.date | None = typer.Option(
        None, "--snapshot", parser=DATE, help="Snapshot date YYYY-MM-DD (default: the scheme's latest)."
    ),
    value_col: str | None = typer.Option(
        None,
        "--value-col",
        help="Feature summed for the revenue share (default: monetary_12m in a project, monetary in a file).",
    ),
    plots: Path | None = typer.Option(
        None, "--plots", help="Folder to write heat-map, snake and size HTML plots into."
    ),
    null_values: str | None = NullValuesOption,
    project_dir: Path = ProjectDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Profile segments: size, value, feature means/medians, distinguishing features, names."""
    from segflow.segments._profile import profile_segments

    with user_errors(), _warnings_kept() as caught:  # each warning in --json's too
        features, assigned, value_col, names = _profile_input(
            input, assignments, id_col, scheme, snapshot, value_col, project_dir,
            null_values=_null_values(null_values),
        )
        rule_based = scheme is not None and input is None and _is_rule_scheme(scheme, project_dir)
        if rule_based:  # rule segments are named by their rules; suggested names are for clusters
            segs = [str(s) for s in assigned.select("segment").distinct().to_pyarrow()["segment"].to_pylist()]
            names = {**{s: s for s in segs}, **names}
        with about_file(input):  # (the features file; None for a project's scheme)
            profile = profile_segments(
                features, assigned, value_col=value_col, id_col=id_col, names=names
            )
        if rule_based:
            profile.table["suggested_name"] = None
        _print_profile(profile, rule_based=rule_based)
        if plots is not None:
            plots.mkdir(parents=True, exist_ok=True)
            for kind in ("heatmap", "snake", "size"):
                profile.figure(kind).write_html(
                    plots / f"profile_{kind}.html", include_plotlyjs=True
                )
            console.print(f"plots written to {plots}")
        found = _user_warnings(caught)
        for message in found:
            print_labelled("warning", message)
        if as_json:
            print_json({**profile.to_dict(), "warnings": found})


def _profile_input(
    input: Path | None,
    assignments: Path | None,
    id_col: str,
    scheme: str | None,
    snapshot: dt.date | None,
    value_col: str | None,
    project_dir: Path,
    *,
    null_values: tuple[str, ...] | None = None,
) -> tuple[ibis.Table, ibis.Table, str | None, dict[str, str]]:
    if input is not None or assignments is not None:
        if input is None or assignments is None:
            raise InputError("profile files need both --input (features) and --assignments")
        import ibis

        from segflow.store import interruptible

        con = interruptible(ibis.duckdb.connect())  # Ctrl-C stops its queries
        features = read_customer_file(con, input, id_col=id_col, name="features_input",
                                      null_values=null_values)
        assigned = read_customer_file(con, assignments, id_col=id_col, name="assignments_input",
                                      null_values=null_values)
        if "segment" not in assigned.columns:
            raise InputError("no 'segment' column", file=str(assignments), column="segment")
        assigned = assigned.mutate(segment=assigned["segment"].cast("string"))
        _refuse_rows_without_segment(assigned, assignments)
        features = check_value_column(features, value_col, input)
        return features, _unneutralised(features, assigned, id_col), value_col or "monetary", {}
    if scheme is None:
        raise InputError("give --scheme NAME (project) or --input and --assignments (files)")
    if null_values is not None:
        raise InputError("--null-values applies to --input files; project features are typed")
    from segflow.project import Project

    refuse_on_spark(project_dir, "segflow segment profile --scheme",
                    "`segflow report` and `segflow serve` show the latest run's segment profiles")
    project = Project.open_reading(project_dir)  # only reads: works during a refresh
    dates = project.snapshot_dates(scheme)
    if not dates:
        project._check_scheme(scheme)  # names a close scheme ("did you mean ...")
    day = snapshot or dates[-1]
    if day not in dates:  # (else: "no customer of the assignments is in the feature table")
        raise InputError(f"{day} is not a snapshot of scheme {scheme!r}; its snapshots run from "
                         f"{dates[0]} to {dates[-1]} ({len(dates)} in all)")
    features, _ = _store_features(project, day)
    stored = project.store.table("segment_assignments")
    assigned = stored.filter((stored.scheme == scheme) & (stored.snapshot_date == day)).select(
        "customer_id", "segment", "segment_rank"
    )
    names = next((s.names for s in project.settings.schemes if s.name == scheme), {})
    return features, assigned, value_col or "monetary_12m", names


def _refuse_rows_without_segment(assigned: ibis.Table, path: Path) -> None:
    """Refuse an assignments file with rows whose segment is empty (or a missing-value
    token): InputError naming the file, the first rows and the column. Such a customer was
    profiled in a segment called ``nan``; the file should leave the row out instead (its
    customer is then counted among those without a segment)."""
    from segflow._rows import offending_rows

    bad = offending_rows(assigned, assigned["segment"].isnull())
    if bad.rows:
        raise InputError(f"{bad.total:,} rows have no segment; give each row a segment, or leave "
                         "out the rows of customers without one", file=str(path), row=bad.rows,
                         column="segment", rows_in_all=bad.total)


def _unneutralised(features: ibis.Table, assigned: ibis.Table, id_col: str) -> ibis.Table:
    """``assigned`` with the ids segflow's CSV writer neutralised read back: it writes an id a
    spreadsheet would run as a formula (``=x``, ``-1+1``, ``@x``) as ``'=x``, so the
    assignments of ``segment cluster --out`` matched no customer of the features file and
    those customers were left out of the profile silently. An id ``'`` + X is X when X is a
    customer of the features file and ``'`` + X is not. Customers of the features file still
    without a segment are counted in a warning."""
    import warnings

    known = features.select(_known=features[id_col].cast("string")).distinct()
    exact = assigned.left_join(known.select(_exact=known._known),
                               assigned[id_col].cast("string") == known._known.name("_exact"))
    ids = exact[id_col].cast("string")
    joined = exact.left_join(known, exact._exact.isnull() & ids.startswith("'")
                             & (ids.substr(1) == known._known))
    out = joined.mutate(**{id_col: joined._known.coalesce(joined[id_col].cast("string"))})
    out = out.drop("_known", "_exact")
    unassigned = features.filter(~features[id_col].cast("string").isin(out[id_col])).count()
    if n := int(unassigned.execute()):
        warnings.warn(f"{n:,} customers of the features file have no segment in the "
                      "assignments file and are left out of the profile", UserWarning, stacklevel=2)
    return out


def _is_rule_scheme(scheme: str, project_dir: Path) -> bool:
    """True unless ``scheme`` is a cluster scheme of the project (kind ``cluster``)."""
    from segflow.config import Settings
    from segflow.pipeline import resolve_schemes

    settings = Settings.load(project_dir)
    return all(s.kind != "cluster" for s in resolve_schemes(settings) if s.name == scheme)


def _print_profile(profile: Any, *, rule_based: bool = False) -> None:
    from rich.table import Table

    table = Table(
        "#",
        "segment",
        "customers",
        "share",
        "value share",
        "name (the rule's)" if rule_based else "suggested name",
        "distinguishing",
        title="Segment profiles",
    )
    for row in profile.table.itertuples():
        table.add_row(
            str(row.segment_rank),
            str(row.segment),
            f"{row.size:,}",
            f"{row.share:.1%}",
            "-" if row.revenue_share != row.revenue_share else f"{row.revenue_share:.1%}",
            row.name,
            row.distinguishing,
        )
    stdout.print(table)
