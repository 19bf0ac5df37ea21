"""``segflow clv fit|score``: BTYD customer-lifetime-value models on a transaction file or store.

Both commands work on a plain transaction file (CSV, Parquet, or the whitespace-separated
CDNOW format) without a project; ``score`` can also read the transactions of a project's
store and write its scores into the store's ``customer_scores`` table.
"""

from __future__ import annotations

import datetime as dt
import time
import warnings
from pathlib import Path
from typing import Any

import typer

from segflow.cli._common import JsonOption, console, print_json, user_errors
from segflow.errors import InputError, SegflowError

MODELS = ("bgnbd", "mbgnbd", "pnbd", "bgbb")
UNITS = {"day": "D", "week": "W", "month": "M"}

TransactionsOption = typer.Option(
    None, "--transactions", "-t", help="Transaction file: .csv, .parquet, or CDNOW .txt.",
    exists=False,
)
FormatOption = typer.Option(
    "auto", "--format",
    help="File format: auto (by extension), csv, parquet, or cdnow (whitespace-separated "
    "'customer_id sample_id yyyymmdd quantity amount', no header).",
)
CustomerOption = typer.Option("customer_id", "--customer-col", help="Customer id column.")
DateOption = typer.Option("ts", "--date-col", help="Timestamp or date column.")
AmountOption = typer.Option(
    "amount", "--amount-col", help="Amount column ('none': count purchases only, no spend)."
)
DateFormatOption = typer.Option(
    None, "--date-format", help="strftime format of the date column, e.g. %Y%m%d."
)
CalibrationOption = typer.Option(
    ..., "--calibration-end",
    help="Snapshot date YYYY-MM-DD: the model learns from rows before it.",
)
UnitOption = typer.Option("week", "--time-unit", help="Time unit: day, week or month.")
ModelOption = typer.Option("bgnbd", "--model", help="Count model: bgnbd, mbgnbd, pnbd or bgbb.")
SpendOption = typer.Option(
    "gamma-gamma", "--spend-model", help="Spend model: gamma-gamma or none."
)
PenalizerOption = typer.Option(0.0, "--penalizer", min=0.0, help="L2 penalty on the parameters.")


def read_transactions(
    path: Path, *, fmt: str = "auto", date_col: str = "ts", date_format: str | None = None
) -> Any:
    """Read a transaction file into an in-memory DuckDB table (Ibis)."""
    import ibis

    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=str(path))
    con = ibis.duckdb.connect()
    kind = fmt if fmt != "auto" else {".parquet": "parquet", ".pq": "parquet", ".txt": "cdnow"}.get(
        path.suffix.lower(), "csv"
    )
    try:
        if kind == "parquet":
            table = con.read_parquet(str(path))
        elif kind == "csv":
            table = con.read_csv(str(path), all_varchar=date_format is not None)
        elif kind == "cdnow":
            import pandas as pd

            frame = pd.read_csv(
                path, sep=r"\s+", header=None, dtype=str,
                names=["customer_id", "sample_id", "date", "quantity", "amount"],
            )
            frame["amount"] = pd.to_numeric(frame["amount"], errors="raise")
            table = con.create_table("transactions", frame)
            date_col, date_format = ("date", date_format or "%Y%m%d") if date_col == "ts" else (
                date_col, date_format)
        else:
            raise InputError(f"unknown format {fmt!r}; expected csv, parquet or cdnow", file=str(path))
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot read the file: {exc}", file=str(path)) from None
    except ibis.common.exceptions.IbisError as exc:  # pragma: no cover - engine message
        raise InputError(f"cannot read the file: {exc}", file=str(path)) from None
    if date_col not in table.columns:
        raise InputError(
            f"no date column {date_col!r}; columns are {list(table.columns)} (use --date-col)",
            file=str(path), column=date_col,
        )
    if date_format is not None:
        table = table.mutate(**{date_col: table[date_col].cast("string").as_timestamp(date_format)})
    _check_dates(table, date_col, path)
    return table, date_col


def _check_dates(table: Any, date_col: str, path: Path) -> None:
    """Fail with the first row whose date does not parse, instead of an engine traceback."""
    import duckdb

    col = table[date_col]
    if col.type().is_string():
        col = col.try_cast("timestamp")
    try:
        bad = table.mutate(_row=table[date_col]).filter(col.isnull() & table[date_col].notnull())
        sample = bad.limit(1).execute()
    except duckdb.Error as exc:
        raise InputError(f"dates do not parse: {exc}".splitlines()[0], file=str(path), column=date_col) from None
    if len(sample):
        raise InputError(
            f"expected a date or timestamp, got {sample.iloc[0][date_col]!r} "
            "(use --date-format, e.g. %Y%m%d)",
            file=str(path), column=date_col,
        )


def _model(name: str, penalizer: float) -> Any:
    from segflow.models import (
        BetaGeoBetaBinomModel,
        BetaGeoModel,
        ModifiedBetaGeoModel,
        ParetoNBDModel,
    )

    classes = {"bgnbd": BetaGeoModel, "mbgnbd": ModifiedBetaGeoModel, "pnbd": ParetoNBDModel,
               "bgbb": BetaGeoBetaBinomModel}
    if name not in classes:
        raise InputError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")
    return classes[name](penalizer=penalizer)


def _unit(time_unit: str) -> str:
    if time_unit not in UNITS:
        raise InputError(f"unknown time unit {time_unit!r}; expected day, week or month")
    return UNITS[time_unit]


def _date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option}: expected a date YYYY-MM-DD, got {value!r}") from None


def fit_clv(
    transactions: Any,
    *,
    calibration_end: dt.date,
    holdout_end: dt.date | None,
    time_unit: str,
    model_name: str,
    spend: bool,
    penalizer: float = 0.0,
    customer_col: str = "customer_id",
    ts_col: str = "ts",
    amount_col: str | None = "amount",
) -> tuple[dict[str, Any], Any, Any, Any]:
    """Summary, fit and (optionally) holdout validation; returns a JSON-ready report."""
    from segflow.models import (
        GammaGammaModel,
        btyd_summary,
        compress,
        discrete_summary,
        validate_holdout,
    )

    unit = _unit(time_unit)
    report: dict[str, Any] = {"model": model_name, "time_unit": time_unit,
                              "calibration_end": calibration_end, "warnings": []}
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", UserWarning)  # segflow's counted data warnings
        cols = dict(customer_col=customer_col, ts_col=ts_col, amount_col=amount_col)
        if model_name == "bgbb":
            summary = discrete_summary(transactions, calibration_end=calibration_end,
                                       time_unit=unit, **cols)
            triples = compress(summary, ("x", "t_x", "n"))
        else:
            summary = btyd_summary(transactions, calibration_end=calibration_end,
                                   observation_end=holdout_end, time_unit=unit, **cols)
            summary = summary.cache()
            triples = compress(summary)
        report["summary_seconds"] = time.perf_counter() - started
        model = _model(model_name, penalizer).fit(triples)
        spend_model = None
        if spend and amount_col is not None and model_name != "bgbb":
            spend_model = GammaGammaModel(penalizer=penalizer).fit(
                compress(summary, ("x", "monetary_value"))
            )
    report["warnings"] = [str(w.message) for w in caught]
    report.update(model.to_dict())
    report["model"] = model_name
    report["customers"] = {
        "in_summary": model.n_customers_,
        "repeat_buyers": int(triples.loc[triples.x > 0, "count"].sum()),
        "distinct_triples": model.n_rows_,
    }
    if spend_model is not None:
        report["spend_model"] = {
            **spend_model.to_dict(),
            "model": "gamma-gamma",
            "frequency_spend_correlation": spend_model.frequency_spend_correlation_,
            "mean_spend": spend_model.mean_spend_,
        }
    if holdout_end is not None and model_name != "bgbb":
        result = validate_holdout(summary, model, time_unit=unit, spend_model=spend_model)
        report["holdout"] = {"end": holdout_end, "metrics": result.to_dict()["data"],
                             "by_frequency": result.to_dict()["by_frequency"]}
    return report, summary, model, spend_model


def _print_fit(report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"{report['model']} fit ({report['time_unit']})")
    for col in ("parameter", "estimate", "std. error"):
        table.add_column(col)
    for name, value in report["params"].items():
        table.add_row(name, f"{value:.4f}", f"{report['standard_errors'][name]:.4f}")
    for name, value in report.get("spend_model", {}).get("params", {}).items():
        table.add_row(f"spend {name}", f"{value:.4f}",
                      f"{report['spend_model']['standard_errors'][name]:.4f}")
    console.print(table)
    c = report["customers"]
    console.print(
        f"log-likelihood {report['log_likelihood']:.2f}; converged {report['converged']}; "
        f"fit {report['fit_seconds']:.2f} s; {c['in_summary']} customers, "
        f"{c['repeat_buyers']} repeat buyers, {c['distinct_triples']} distinct triples"
    )
    for w in report["warnings"]:
        console.print(f"[yellow]warning:[/] {w}")
    for row in report.get("holdout", {}).get("metrics", []):
        console.print(
            f"holdout {row['predictor']}: MAE {row['mae_purchases']:.3f}, RMSE "
            f"{row['rmse_purchases']:.3f}, predicted {row['predicted_total']:.0f} vs actual "
            f"{row['actual_total']:.0f}"
        )


def register(app: typer.Typer) -> None:
    """Add ``clv fit`` and ``clv score`` to the root app."""
    clv = typer.Typer(help="Customer lifetime value: BTYD models (BG/NBD, Pareto/NBD, ...).",
                      no_args_is_help=True)
    app.add_typer(clv, name="clv")

    @clv.command("fit")
    def fit_cmd(
        transactions: Path = typer.Option(..., "--transactions", "-t",
                                          help="Transaction file: .csv, .parquet, or CDNOW .txt."),
        fmt: str = FormatOption,
        customer_col: str = CustomerOption,
        date_col: str = DateOption,
        amount_col: str = AmountOption,
        date_format: str | None = DateFormatOption,
        calibration_end: str = CalibrationOption,
        holdout_end: str | None = typer.Option(
            None, "--holdout-end", help="End (exclusive) of the holdout; adds holdout metrics."),
        time_unit: str = UnitOption,
        model: str = ModelOption,
        spend_model: str = SpendOption,
        penalizer: float = PenalizerOption,
        as_json: bool = JsonOption,
    ) -> None:
        """Fit a BTYD model (and the spend model) on a transaction file; print the estimates."""
        with user_errors():
            table, date_col = read_transactions(
                transactions, fmt=fmt, date_col=date_col, date_format=date_format
            )
            amount = None if amount_col.lower() == "none" else amount_col
            if spend_model not in ("gamma-gamma", "none"):
                raise InputError(f"unknown spend model {spend_model!r}; expected gamma-gamma or none")
            report, *_ = fit_clv(
                table,
                calibration_end=_date(calibration_end, "--calibration-end"),
                holdout_end=None if holdout_end is None else _date(holdout_end, "--holdout-end"),
                time_unit=time_unit, model_name=model, spend=spend_model == "gamma-gamma",
                penalizer=penalizer, customer_col=customer_col, ts_col=date_col, amount_col=amount,
            )
            if as_json:
                print_json(report)
            else:
                _print_fit(report)

    @clv.command("score")
    def score_cmd(
        transactions: Path | None = TransactionsOption,
        project: Path | None = typer.Option(
            None, "--project", "-p",
            help="Project folder: read its transactions and write scores into its store."),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="Write scores to this .csv or .parquet file."),
        fmt: str = FormatOption,
        customer_col: str = CustomerOption,
        date_col: str = DateOption,
        amount_col: str = AmountOption,
        date_format: str | None = DateFormatOption,
        calibration_end: str = typer.Option(
            ..., "--snapshot", "--calibration-end",
            help="Snapshot date YYYY-MM-DD: fit on rows before it; scores belong to it."),
        horizon: float = typer.Option(52.0, "--horizon", min=0.0,
                                      help="Prediction horizon in time units."),
        margin: float = typer.Option(1.0, "--margin", min=0.0, help="Profit margin on spend."),
        discount_rate: float = typer.Option(0.1, "--discount-rate", min=0.0,
                                            help="Annual discount rate of the CLV."),
        time_unit: str = UnitOption,
        model: str = ModelOption,
        spend_model: str = SpendOption,
        penalizer: float = PenalizerOption,
        as_json: bool = JsonOption,
    ) -> None:
        """Fit at a snapshot and score every customer: P(alive), expected purchases, CLV."""
        with user_errors():
            _score(transactions, project, output, fmt, customer_col, date_col, amount_col,
                   date_format, _date(calibration_end, "--snapshot"), horizon, margin,
                   discount_rate, time_unit, model, spend_model, penalizer, as_json)


def _score(
    transactions: Path | None, project: Path | None, output: Path | None, fmt: str,
    customer_col: str, date_col: str, amount_col: str, date_format: str | None,
    snapshot: dt.date, horizon: float, margin: float, discount_rate: float, time_unit: str,
    model_name: str, spend_model: str, penalizer: float, as_json: bool,
) -> None:
    from segflow.models import score_customers, write_scores

    if model_name == "bgbb":
        raise SegflowError("clv score supports the continuous-time models (bgnbd, mbgnbd, pnbd)")
    if project is None and output is None:
        raise InputError("give --output FILE or --project DIR to say where the scores go")
    project_ctx = None
    if project is not None:
        from segflow.project import Project

        project_ctx = Project.open(project)
    try:
        if transactions is not None:
            table, date_col = read_transactions(transactions, fmt=fmt, date_col=date_col,
                                                date_format=date_format)
        elif project_ctx is not None:
            table = project_ctx.store.table("transactions")
            customer_col, date_col, amount_col = "customer_id", "ts", "amount"
        else:
            raise InputError("give --transactions FILE or --project DIR")
        amount = None if amount_col.lower() == "none" else amount_col
        report, summary, model, spend = fit_clv(
            table, calibration_end=snapshot, holdout_end=None, time_unit=time_unit,
            model_name=model_name, spend=spend_model == "gamma-gamma", penalizer=penalizer,
            customer_col=customer_col, ts_col=date_col, amount_col=amount,
        )
        scores = score_customers(summary, model, horizon=horizon, time_unit=_unit(time_unit),
                                 spend_model=spend, margin=margin,
                                 annual_discount_rate=discount_rate)
        written: dict[str, Any] = {}
        if output is not None:
            written.update(_write_file(scores, output))
        if project_ctx is not None:
            store = project_ctx.store
            params = {"model": model_name, "snapshot": snapshot, "horizon": horizon}
            with store.run("clv score", params) as run_id:
                written["store_rows"] = write_scores(store, scores, snapshot_date=snapshot,
                                                     model=model_name, run_id=run_id)
    finally:
        if project_ctx is not None:
            project_ctx.close()
    report["scores"] = written
    if as_json:
        print_json(report)
    else:
        _print_fit(report)
        console.print(f"scores written: {written}")


def _write_file(scores: Any, output: Path) -> dict[str, Any]:
    frame = scores.to_pyarrow()
    if output.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        pq.write_table(frame, output)
    else:
        from segflow._csv import write_csv

        write_csv(frame, output)
    return {"file": str(output), "rows": frame.num_rows}
