"""``segflow churn train|score``: the supervised churn model of a project.

``train`` builds the stacked training set from the store's history, evaluates on a
time-based split and saves the scoring model under ``<project>/models/``; ``score`` writes
churn probabilities and risk bands for a snapshot into ``customer_scores``.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Any

import typer

from segflow.cli._common import (
    DATE,
    VIA_DUCKDB_STORE,
    EngineOption,
    JsonOption,
    ProjectDirOption,
    Table,
    console,
    print_json,
    print_labelled,
    progress,
    refuse_on_spark,
    stdout,
    user_errors,
)
from segflow.cli._pseudonyms import ids_pii_option
from segflow.errors import SegflowError

HorizonOption = typer.Option(
    90, "--horizon-days", min=1, help="Churn = no purchase in the N days after the snapshot."
)
ThreadsOption = typer.Option(
    None, "--threads", min=1, help="Threads for the model (default: all cores; 1 on a busy machine)."
)


def _train(
    project_dir: Path,
    horizon_days: int,
    engine: str | None,
    quiet: bool,
    threads: int | None = None,
    data_end: dt.date | None = None,
) -> dict[str, Any]:
    """``churn train``: :func:`segflow.models._churn_project.train_project_churn` (the code
    path of ``Project.train_churn``) under a progress line; its summary with the model file."""
    from segflow.models._churn_project import train_project_churn
    from segflow.project import Project

    refuse_on_spark(project_dir, "segflow churn train",
                    VIA_DUCKDB_STORE, engine)
    with Project.open(project_dir) as project, progress(disable=quiet) as bar:
        task = bar.add_task("building training set and fitting", total=None)
        training, path = train_project_churn(project, horizon_days=horizon_days, engine=engine,
                                             threads=threads, data_end=data_end)
        bar.update(task, total=1, completed=1)
    summary = training.summary()
    summary["model_file"] = str(path)
    return summary


def _print_training(summary: dict[str, Any]) -> None:
    m = summary["metrics"]
    stdout.print(
        f"[bold]{summary['model']}[/]: trained on {len(summary['train_snapshots'])} snapshot(s) "
        f"({summary['n_train']} rows), tested on {summary['test_snapshot']} "
        f"({summary['n_test']} customers, churn rate {m['base_rate']:.1%})"
    )
    stdout.print(
        f"AUC {m['auc']:.3f}   Brier {m['brier']:.4f}   log-loss {m['log_loss']:.4f}   "
        f"calibration error (ECE) {m['ece']:.4f}   lift top 10% {m['lift_at_10']:.2f}   "
        f"top 20% {m['lift_at_20']:.2f}"
    )
    table = Table(title="lift and calibration by decile of predicted risk (1 = highest)")
    for col in ("decile", "customers", "mean predicted", "churn rate", "lift", "cum. capture"):
        table.add_column(col, justify="right")
    for row in summary["deciles"]:
        table.add_row(
            str(row["decile"]), str(row["customers"]), f"{row['mean_predicted']:.3f}",
            f"{row['churn_rate']:.3f}", f"{row['lift']:.2f}", f"{row['cumulative_capture']:.1%}",
        )
    stdout.print(table)
    lo, hi = summary["band_thresholds"]
    stdout.print(f"risk bands: low < {lo:.3f} <= medium < {hi:.3f} <= high")
    console.print(f"model saved to {summary['model_file']}", highlight=False)


def _score(
    project_dir: Path,
    horizon_days: int,
    snapshot: dt.date | None,
    engine: str | None,
    threads: int | None = None,
) -> tuple[Any, int]:
    """``churn score``: :func:`segflow.models._churn_project.score_project_churn` (the code
    path of ``Project.score_churn``)."""
    from segflow.models._churn_project import score_project_churn
    from segflow.project import Project

    refuse_on_spark(project_dir, "segflow churn score",
                    VIA_DUCKDB_STORE, engine)
    with Project.open(project_dir) as project:
        return score_project_churn(project, horizon_days=horizon_days, snapshot=snapshot,
                                   engine=engine, threads=threads)


def _next_segment(
    project_dir: Path, scheme: str, engine: str | None, threads: int | None, quiet: bool
) -> tuple[dict[str, Any], Any, int]:
    from segflow.models._churn_data import stored_snapshots
    from segflow.models._churn_next import (
        score_next_segment,
        train_next_segment,
        write_next_segment_scores,
    )
    from segflow.models._churn_project import features_at
    from segflow.models._next_segment import NextSegmentModel
    from segflow.pipeline import canonical_tables
    from segflow.project import Project

    refuse_on_spark(project_dir, "segflow churn next-segment",
                    VIA_DUCKDB_STORE, engine)
    with Project.open(project_dir) as project:
        store = project.store
        with store.run("churn next-segment", {"scheme": scheme, "engine": engine}) as run_id, \
                progress(disable=quiet) as bar:
            task = bar.add_task(f"next-segment model of {scheme}", total=None)
            eng = connect_engine(store, engine, project.settings)
            try:
                tables = canonical_tables(eng)
                assignments = eng.table("segment_assignments")
                feats = features_at(tables, project.settings)
                training = train_next_segment(
                    feats, assignments, scheme,
                    model=NextSegmentModel(n_threads=threads, random_state=0),
                )
                latest = stored_snapshots(assignments, scheme)[-1]
                scores = score_next_segment(training.model, feats(latest), assignments, scheme,
                                            latest)
            finally:
                eng.close()
            bar.update(task, total=1, completed=1)
            written = write_next_segment_scores(store, scores, run_id)
    return training.summary(), scores, written


def connect_engine(store: Any, engine: str | None, settings: Any = None) -> Any:
    from segflow.engine import connect

    return connect(store, engine, settings=settings.engine if settings is not None else None)


def _print_next_segment(summary: dict[str, Any], scores: Any, written: int) -> None:
    m = summary["metrics"]
    stdout.print(
        f"[bold]{summary['model']}[/]: trained on pairs from {len(summary['train_snapshots'])} "
        f"snapshot(s), tested on the pair from {summary['test_snapshot']} ({m['n']} customers)"
    )
    stdout.print(
        f"accuracy: model {m['accuracy']:.3f}, stay {m['stay_accuracy']:.3f}, "
        f"Markov {m['markov_accuracy']:.3f}   log-loss: model {m['log_loss']:.3f}, "
        f"Markov {m['markov_log_loss']:.3f}"
    )
    table = Table(title="accuracy by current segment")
    for col in ("segment", "customers", "model", "stay", "Markov"):
        table.add_column(col, justify="right")
    for row in summary["by_segment"]:
        table.add_row(row["segment"], str(row["customers"]), f"{row['model_accuracy']:.3f}",
                      f"{row['stay_accuracy']:.3f}", f"{row['markov_accuracy']:.3f}")
    stdout.print(table)
    console.print(
        f"scored {len(scores.frame)} customers at {scores.snapshot}; {written} rows written to "
        "customer_scores"
    )


def _keyed(scores: Any, pii: str, project: Path) -> Any:
    """``scores`` (ChurnScores) with the ids that are e-mails or phone numbers as the
    project's pseudonymous keys (segflow.cli._pseudonyms), unless ``pii`` is include: what
    --out and --json write (the store keeps its ids)."""
    from segflow.cli._pseudonyms import key_frame

    frame = key_frame(scores.frame, pii, project)
    if frame is scores.frame:
        return scores
    return type(scores)(frame, scores.snapshot, scores.model, scores.thresholds)


def _write_out(scores: Any, out: Path, private: bool = False) -> None:
    """The scores to ``out`` (CSV or Parquet); ``private``: ids in clear (``--pii include``),
    written with mode 0600."""
    frame = scores.to_pandas()
    frame.insert(0, "snapshot_date", scores.snapshot)
    suffix = out.suffix.lower()
    if suffix == ".csv":
        from segflow._csv import write_csv

        write_csv(frame, out, private=private)
    elif suffix == ".parquet":
        from segflow._private import private_target

        private_target(out, private)
        frame.to_parquet(out, index=False)
    else:
        raise SegflowError(f"--out {out}: expected a .csv or .parquet file name")


def register(app: typer.Typer) -> None:
    """Add ``segflow churn train`` and ``segflow churn score``."""
    churn = typer.Typer(help="Supervised churn model: train, evaluate, score.", no_args_is_help=True)

    @churn.command("train")
    def train(
        project: Path = ProjectDirOption,
        horizon_days: int = HorizonOption,
        engine: str | None = EngineOption,
        threads: int | None = ThreadsOption,
        data_end: dt.date | None = typer.Option(
            None, "--data-end", parser=DATE,
            help="Exclusive end of complete data YYYY-MM-DD; default: day after the last transaction.",
        ),
        json_out: bool = JsonOption,
    ) -> None:
        """Train the churn model on the store's history; print AUC, lift and calibration.

        Uses every snapshot whose label window ends before the data end; tests on the latest
        such snapshot (trained on snapshots whose window ends by it), then refits on all of
        them and saves the model to PROJECT/models/churn_<N>d.joblib.
        """
        with user_errors():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                summary = _train(project, horizon_days, engine, quiet=json_out,
                                 threads=threads, data_end=data_end)
            summary["warnings"] = [str(w.message) for w in caught if _is_ours(w)]
            for message in summary["warnings"]:
                print_labelled("warning", message, style="bold yellow")
            if json_out:
                print_json(summary)
            else:
                _print_training(summary)

    @churn.command("score")
    def score(
        project: Path = ProjectDirOption,
        snapshot: dt.date | None = typer.Option(
            None, "--snapshot", parser=DATE,
            help="Snapshot date YYYY-MM-DD; default: the latest period boundary.",
        ),
        horizon_days: int = HorizonOption,
        out: Path = typer.Option(None, "--out", help="Also write the scores to a .csv or .parquet file."),
        engine: str | None = EngineOption,
        threads: int | None = ThreadsOption,
        pii: str = ids_pii_option("--out and --json"),
        json_out: bool = JsonOption,
    ) -> None:
        """Score every customer with a purchase before the snapshot: churn probability and
        risk band, written to the store's customer_scores table.

        --out and --json write a customer id that is an e-mail address or a phone number as
        the project's pseudonymous key (pid-...), as segflow export does, unless --pii include.
        """
        with user_errors():
            if out is not None and out.suffix.lower() not in (".csv", ".parquet"):
                # before the scores are computed and stored, not after
                raise SegflowError(f"--out {out}: expected a .csv or .parquet file name")
            scores, written = _score(project, horizon_days, snapshot, engine, threads)
            scores = _keyed(scores, pii, project)
            if out is not None:
                _write_out(scores, out, private=pii == "include")
            if json_out:
                payload = scores.to_dict()
                payload["rows_written"] = written
                print_json(payload)
            else:
                bands = scores.band_counts()
                console.print(
                    f"scored {len(scores.frame)} customers at {scores.snapshot} "
                    f"({scores.model}): high {bands['high']}, medium {bands['medium']}, "
                    f"low {bands['low']}; {written} rows written to customer_scores"
                    + (f"; scores saved to {out}" if out else "")
                )

    @churn.command("next-segment")
    def next_segment(
        project: Path = ProjectDirOption,
        scheme: str = typer.Option(..., "--scheme", help="The segment scheme to predict."),
        engine: str | None = EngineOption,
        threads: int | None = ThreadsOption,
        json_out: bool = JsonOption,
    ) -> None:
        """Predict each customer's segment at the next snapshot of a scheme.

        Trains on the scheme's stored snapshot pairs, tests on the latest pair against the
        "stays in the same segment" and pooled Markov baselines, then scores the latest stored
        snapshot: one p_next:<segment> row per customer and segment in customer_scores.
        """
        with user_errors():
            summary, scores, written = _next_segment(project, scheme, engine, threads, json_out)
            if json_out:
                payload = {**summary, "scores": {
                    "snapshot": scores.snapshot, "customers": len(scores.frame),
                    "rows_written": written,
                    "expected_flows": scores.to_dict()["expected_flows"],
                }}
                print_json(payload)
            else:
                _print_next_segment(summary, scores, written)

    app.add_typer(churn, name="churn")


def _is_ours(caught: warnings.WarningMessage) -> bool:
    """UserWarnings raised by segflow (not library deprecation noise)."""
    return issubclass(caught.category, UserWarning) and "segflow" in str(caught.filename)
