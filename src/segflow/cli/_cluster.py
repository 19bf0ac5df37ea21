"""CLI: ``segflow segment cluster`` (``segflow segment profile``: :mod:`segflow.cli._profile`).

Works on a project's store (features at a snapshot, default the latest) or directly on
customer-level files (one row per customer; any numeric and categorical columns). Thin:
parse, call :mod:`segflow.segments` clustering, print.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from segflow.cli._common import (
    DATE,
    Choice,
    JsonOption,
    ProjectDirOption,
    console,
    print_json,
    print_labelled,
    refuse_on_spark,
    stdout,
    user_errors,
)
from segflow.cli._customer_file import (  # (read_customer_file also imported from here)
    read_customer_file,
)
from segflow.cli._pseudonyms import ids_pii_option
from segflow.cli._segment import segment_app
from segflow.errors import InputError, about_file

if TYPE_CHECKING:  # ibis and scikit-learn load only in the commands that use them (fast --help)
    import ibis


NullValuesOption = typer.Option(
    None,
    "--null-values",
    help="Comma-separated cell values read as missing in every column of an --input file "
    "(compared trimmed, case-sensitive), as ingest's null_values (default: NA, N/A, #N/A, "
    "null, NULL, \\N, None, -); '' for none, when one is a real value (the country code "
    "NA). An empty cell is always missing.",
)


def register(app: typer.Typer) -> None:
    """Nothing to add to the root app: the commands live in the ``segment`` group."""


def _store_features(project: Any, snapshot: dt.date | None) -> tuple[ibis.Table, dt.date]:
    """Customer features of the project at ``snapshot`` (default: its latest snapshot date)."""
    from segflow.engine import Engine
    from segflow.features._stored_state import current_features
    from segflow.pipeline import canonical_tables, resolve_snapshot_dates

    snapshot = snapshot or resolve_snapshot_dates(project.store, project.settings)[-1]
    tables = canonical_tables(Engine("duckdb", project.store))
    # the run's stored features when current (the latest snapshot), else all history read
    features = current_features(project.store, tables, snapshot,
                                window_days=project.settings.rfm.window_days)
    return features.cache(), snapshot


def _parse_k(k: str) -> int | str:
    if k == "auto":
        return "auto"
    try:
        value = int(k)
    except ValueError:
        raise InputError(f"--k must be 'auto' or a whole number, got {k!r}") from None
    if value < 1:
        raise InputError(f"--k must be at least 1, got {value}")
    return value


def _feature_list(text: str | None) -> list[str] | None:
    """The columns of ``--features`` (None: the default features); a column named twice is
    a usage error (exit status 2), not a clustering on a repeated feature."""
    columns = [c.strip() for c in text.split(",") if c.strip()] if text else None
    repeated = [c for c in dict.fromkeys(columns or []) if (columns or []).count(c) > 1]
    if repeated:
        raise typer.BadParameter(f"{', '.join(map(repr, repeated))} named more than once",
                                 param_hint="'--features'")
    return columns


def _write(con: ibis.BaseBackend, table: ibis.Table, out: Path, *, pii: str = "include",
           project_dir: Path = Path("."), file_ids: str | None = None) -> None:
    """The assignments ``table`` to ``out``; unless ``pii`` is include, ids that are e-mails or
    phone numbers as the pseudonymous keys of the project at ``project_dir``
    (segflow.cli._pseudonyms: the project's features, whose ids the exports key alike).
    Owner-only (:mod:`segflow._private`) under include; ``file_ids``: the id column of the
    user's own input file, written as given, owner-only only when some ids are personal."""
    from segflow._private import private_target

    data: Any = table
    private, why = pii == "include", "--pii include"
    if pii != "include":
        from segflow.cli._pseudonyms import key_ids

        arrow = table.to_pyarrow()
        keyed = key_ids(arrow, pii, project_dir)
        data = table if keyed is arrow else keyed
    elif file_ids is not None:
        from segflow.cli._pseudonyms import count_personal_ids

        private = count_personal_ids(table.select(file_ids).to_pyarrow(), [file_ids])[0] > 0
        why = "ids of the input file that are e-mails or phone numbers"
    suffix = out.suffix.lower()
    if private:  # before the writer opens the file
        private_target(out, why=why)
    if suffix == ".parquet" and private:
        # DuckDB's COPY would replace the file by one of the umask's mode: Arrow writes it
        data = table.to_pyarrow()
    if suffix == ".parquet" and data is not table:
        import pyarrow.parquet as pq

        pq.write_table(data, str(out))
    elif suffix == ".parquet":  # DuckDB's COPY makes the file anew: the old one's mode, and
        from segflow._private import existing_mode, keep_mode, link_target

        target = link_target(out)  # the file a link points to, are kept
        saved = existing_mode(target)
        con.to_parquet(table, str(target))
        keep_mode(target, saved, shown=out)
    elif suffix in (".csv", ".txt", ".tsv"):
        from segflow._csv import write_csv

        write_csv(data, out, delimiter="\t" if suffix == ".tsv" else ",")
    else:
        raise InputError("--out must end in .csv or .parquet", file=str(out))


# -- cluster ------------------------------------------------------------------------------
@segment_app.command("cluster")
def cluster_command(
    input: Path | None = typer.Option(
        None,
        "--input",
        "-i",
        help="Customer-level file (CSV, Parquet, Excel): one row per customer. Without it, the project's customer features are used.",
    ),
    id_col: str = typer.Option("customer_id", "--id-col", help="Customer id column."),
    features: str | None = typer.Option(
        None,
        "--features",
        "-f",
        help="Comma-separated feature columns (default: all but the id in a file; recency, frequency, monetary, tenure, order value in a project).",
    ),
    k: str = typer.Option(
        "auto",
        "--k",
        parser=Choice("auto", integers=1),
        help="Number of segments, or 'auto' (chosen by silhouette, Davies-Bouldin, Calinski-Harabasz).",
    ),
    k_min: int = typer.Option(2, "--k-min", min=1, help="Smallest k tried by --k auto."),
    k_max: int = typer.Option(10, "--k-max", min=1, help="Largest k tried by --k auto."),
    method: str | None = typer.Option(
        None,
        "--method",
        parser=Choice("kmeans", "gmm", "kprototypes"),
        help="kmeans, gmm or kprototypes (default: kprototypes if a feature is text, else kmeans).",
    ),
    sample_size: int = typer.Option(
        50_000,
        "--sample-size",
        min=2,
        help="Fit on a random sample of at most this many customers; all are assigned.",
    ),
    min_share: float = typer.Option(
        0.02, "--min-share", min=0.0, max=0.99,
        help="Minimum segment share (over-segmentation guard)."
    ),
    bootstrap: int = typer.Option(
        20, "--bootstrap", min=0, help="Bootstrap runs for stability (0 = skip)."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed (sample, fits, bootstrap)."),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Write assignments (id, segment, segment_rank) to this .csv or .parquet file.",
    ),
    save_model: Path | None = typer.Option(
        None,
        "--save-model",
        help="Save the fitted model as JSON (re-apply with the library's ClusterModel.from_json).",
    ),
    snapshot: dt.date | None = typer.Option(
        None,
        "--snapshot",
        parser=DATE,
        help="Snapshot date YYYY-MM-DD for project features (default: the latest).",
    ),
    save_scheme: str | None = typer.Option(
        None,
        "--save-scheme",
        help="Save the model in the project store as cluster scheme NAME (or NAME:VERSION); "
        "`segflow run` then re-applies it to every snapshot of a kind = 'cluster' scheme "
        "of that name and version.",
    ),
    null_values: str | None = NullValuesOption,
    project_dir: Path = ProjectDirOption,
    pii: str = ids_pii_option("--out, of the project's features (an --input file's ids are "
                              "written as they are)"),
    as_json: bool = JsonOption,
) -> None:
    """Cluster customers into segments: automatic k, quality table, bootstrap stability.

    A missing value (an empty cell, or a missing-value token of --null-values: NA, N/A, ...)
    keeps the customer: a missing number gets the sample median, a missing text value is one
    more category, '(missing)'. A warning names each feature with missing values and counts
    the customers."""
    if k_min > k_max:  # usage errors (exit status 2), as the options' own ranges
        raise typer.BadParameter(f"{k_min} is above --k-max {k_max}", param_hint="'--k-min'")
    columns = _feature_list(features)
    tokens = _null_values(null_values)
    from segflow.segments._cluster_scheme import fit_cluster_table, save_cluster_model

    # every warning of the command (the reader's, the fit's, the assignment's) goes into the
    # summary, so --json has each warning stderr shows
    with user_errors(), _warnings_kept() as caught:
        con, table, where, store, day = _cluster_input(input, id_col, snapshot, project_dir,
                                                       writing=save_scheme is not None,
                                                       null_values=tokens)
        if save_scheme is not None and store is None:
            raise InputError(
                "--save-scheme saves into a project store; it cannot be used with --input"
            )
        params = dict(
            k=_parse_k(k),
            k_range=(k_min, k_max),
            sample_size=sample_size,
            min_segment_share=min_share,
            n_bootstrap=bootstrap,
            random_state=seed,
        )
        with about_file(input):  # the library's and engine's errors name the file
            segmenter = fit_cluster_table(table, columns, method=method, id_col=id_col, **params)
            assigned = segmenter.assign(table, id_col=id_col)
            sizes = (
                assigned.group_by(["segment_rank", "segment"])
                .aggregate(customers=assigned.count())
                .order_by("segment_rank")
                .to_pandas()
            )
        if out is not None:
            _write(con, assigned.order_by(id_col), out,  # a file's ids: back to its owner
                   pii="include" if input is not None else pii, project_dir=project_dir,
                   file_ids=id_col if input is not None else None)
        if save_model is not None:
            save_model.write_text(segmenter.model_.to_json(), encoding="utf-8")
        if save_scheme is not None:
            name, _, version = save_scheme.partition(":")
            save_cluster_model(store, name, version or "1", segmenter.model_, snapshot_date=day)
        summary = segmenter.summary()
        what = ("a missing value" if input is None else "an empty cell" if tokens == ()
                else "an empty cell or a missing-value token such as NA" if tokens is None
                else "an empty cell or one of --null-values")
        missing, notes = _missing_values(table, segmenter.prep_, what)
        summary.update(
            source=where,
            customers=int(sizes["customers"].sum()),
            sizes=sizes.to_dict(orient="records"),
            missing_values=missing,
            warnings=notes + _user_warnings(caught),
            out=str(out) if out else None,
            saved_scheme=save_scheme,
        )
        _print_cluster(summary)
        if as_json:
            print_json(summary)


@contextlib.contextmanager
def _warnings_kept() -> Iterator[list[warnings.WarningMessage]]:
    """Record the warnings of a block (user warnings always); those recorded before an error
    are shown then, not lost."""
    kept: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            kept = caught
            yield caught
    except BaseException:
        for w in kept:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        raise


def _user_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """The messages of the user warnings among ``caught`` (each once, in order), for the
    summary that prints them and the --json document; any other warning (a library's
    deprecation) is shown as it would have been."""
    out: list[str] = []
    for w in caught:
        if issubclass(w.category, UserWarning):
            if str(w.message) not in out:
                out.append(str(w.message))
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return out


def _null_values(text: str | None) -> tuple[str, ...] | None:
    """The tokens of ``--null-values`` (None: ingest's default; ``''``: none)."""
    if text is None:
        return None
    return tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))


def _missing_values(table: ibis.Table, prep: Any, what: str) -> tuple[dict[str, int], list[str]]:
    """The customers of ``table`` without a value of each feature of ``prep`` (those with
    any, in feature order) and a warning for each: how many (``what``: the kind of cell),
    and what the clustering made of them (the median, or the category '(missing)';
    '(other)' where that level is pooled with the rare ones)."""
    from segflow.segments._cluster_prep import MISSING_LEVEL, OTHER_LEVEL

    names = list(prep.feature_names)
    if not names:
        return {}, []
    got = table.aggregate(
        _n=table.count(), **{f"m{i}": table[c].isnull().sum() for i, c in enumerate(names)}
    ).execute().iloc[0]
    total = int(got["_n"])
    counts = {c: int(got[f"m{i}"] or 0) for i, c in enumerate(names)}
    numeric = {s.name for s in prep.numeric}
    kinds = {s.name: s for s in prep.categorical}
    notes = []
    for c, n in counts.items():
        if not n:
            continue
        if c in numeric:
            fate = f"each gets the sample median of {c!r}"
        elif MISSING_LEVEL in kinds[c].levels or kinds[c].pooled:
            level = MISSING_LEVEL if MISSING_LEVEL in kinds[c].levels else OTHER_LEVEL
            fate = f"they are clustered as one more category, {level!r}"
        else:  # none in the fitting sample: a level it never saw
            fate = "none is in the fitting sample, so they are equally far from every segment"
        notes.append(f"column {c!r}: {n:,} of {total:,} customers have no value ({what}); {fate}")
    return {c: n for c, n in counts.items() if n}, notes


def _cluster_input(
    input: Path | None, id_col: str, snapshot: dt.date | None, project_dir: Path, *,
    writing: bool = False, null_values: tuple[str, ...] | None = None,
) -> tuple[ibis.BaseBackend, ibis.Table, str, Any, dt.date | None]:
    """Engine, customer table, a description, the project store (or None) and the snapshot.
    The store is opened for writing only when ``writing`` (``--save-scheme``); else read-only
    (it works while a ``segflow refresh`` runs). ``null_values``: the file's missing-value
    tokens (None: ingest's default)."""
    if input is None and null_values is not None:
        raise InputError("--null-values applies to --input files; project features are typed")
    if input is not None:
        import ibis

        from segflow.store import interruptible

        con = interruptible(ibis.duckdb.connect())  # Ctrl-C stops its queries
        table = read_customer_file(con, input, id_col=id_col, name="customers_input",
                                   null_values=null_values)
        return con, table, str(input), None, None
    if id_col != "customer_id":
        raise InputError("--id-col applies to --input files; project features use customer_id")
    from segflow.project import Project

    refuse_on_spark(project_dir, "segflow segment cluster --project",
                    "cluster a features file with --input, or add a cluster scheme "
                    "([[schemes]] kind = \"cluster\") and run `segflow run`")
    project = Project.open(project_dir) if writing else Project.open_reading(project_dir)
    features, day = _store_features(project, snapshot)
    return (
        project.store.con,
        features,
        f"project {project_dir} features at {day}",
        project.store,
        day,
    )


def _print_cluster(summary: dict[str, Any]) -> None:
    from rich.table import Table

    stdout.print(
        f"[bold]{summary['method']}[/]: k = {summary['k']} on a sample of {summary['n_sample']:,} "
        f"of {summary['customers']:,} customers ({summary['source']})"
    )
    quality = Table(
        "k", "silhouette", "Davies-Bouldin", "Calinski-Harabasz", "min share", title="Quality by k"
    )
    for row in summary["quality"]:
        mark = " *" if row["k"] == summary["k"] else ""
        quality.add_row(
            f"{row['k']}{mark}",
            _fmt(row["silhouette"]),
            _fmt(row["davies_bouldin"]),
            _fmt(row["calinski_harabasz"], 1),
            f"{row['min_share']:.1%}",
        )
    stdout.print(quality)
    segs = Table(
        "#",
        "segment",
        "customers",
        "Jaccard",
        title=f"Segments (overall ARI {_fmt(summary.get('stability_ari'))})",
    )
    sizes = {r["segment_rank"]: r["customers"] for r in summary["sizes"]}
    for seg in summary["segments"]:
        segs.add_row(
            str(seg["segment_rank"]),
            seg["segment"],
            f"{sizes.get(seg['segment_rank'], 0):,}",
            _fmt(seg.get("jaccard")),
        )
    stdout.print(segs)
    for message in summary["warnings"]:
        print_labelled("warning", message)
    if summary.get("out"):
        console.print(f"assignments written to {summary['out']}")
    if summary.get("saved_scheme"):
        console.print(f"model saved in the store as cluster scheme {summary['saved_scheme']}")


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.{digits}f}"


# -- profile ------------------------------------------------------------------------------
