"""``segflow clv fit|score``: BTYD customer-lifetime-value models on a transaction file or store.

Both commands work on a plain transaction file (CSV, Parquet, or the whitespace-separated
CDNOW format) without a project; ``score`` can also read the transactions of a project's
store and write its scores into the store's ``customer_scores`` table.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any

import typer

from segflow.cli._clv_dates import date_order, iso_dates, strftime_dates
from segflow.cli._clv_fit import (
    MODELS,
    SPEND_MODELS,
    UNITS,
    clv_line,
    clv_settings,
    fit_clv,
    holdout_snapshot,
    horizon_of,
    print_fit,
    snapshot_of,
    unit_code,
)
from segflow.cli._common import (
    DATE,
    Choice,
    JsonOption,
    console,
    print_json,
    refuse_on_spark,
    stdout,
    user_errors,
)
from segflow.cli._files import (
    canonical_ids,
    is_id_column,
    null_tokens,
    read_user_csv,
    read_user_parquet,
    without_tokens,
)
from segflow.cli._pseudonyms import ids_pii_option
from segflow.errors import InputError, SegflowError, about_file

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
    None, "--date-format", help="strftime format of the date column, e.g. %Y%m%d; %s for Unix time (seconds since 1970 UTC)."
)
CalibrationOption = typer.Option(
    None, "--calibration-end", parser=DATE,
    help="Last day of the calibration period, YYYY-MM-DD (included; as lifetimes' "
    "calibration_period_end). Or give --snapshot.",
)
SnapshotOption = typer.Option(
    None, "--snapshot", parser=DATE,
    help="Snapshot date YYYY-MM-DD: the day after the calibration period (rows before it "
    "are used). Or give --calibration-end.",
)
UnitOption = typer.Option("week", "--time-unit", parser=Choice(*UNITS), help="Time unit: day, week or month.")
ModelOption = typer.Option("bgnbd", "--model", parser=Choice(*MODELS), help="Count model: bgnbd, mbgnbd, pnbd or bgbb.")
SpendOption = typer.Option(
    "gamma-gamma", "--spend-model", parser=Choice(*SPEND_MODELS),
    help="Spend model: gamma-gamma, constant (--order-value, else the mean repeat order), "
    "or none (no CLV unless --order-value is given).",
)
OrderValueOption = typer.Option(
    None, "--order-value", min=0.0,
    help="Average order value (currency) used as every customer's expected spend, with "
    "--spend-model constant or none.",
)
DecimalOption = typer.Option(
    ".", "--decimal", parser=Choice(".", ","),
    help="Decimal separator of a CSV's amounts: '.' or ',' (12,72; a value with a '.' is "
    "then no number), as the ingest's decimal option.",
)
PenalizerOption = typer.Option(0.0, "--penalizer", min=0.0, help="L2 penalty on the parameters.")


def read_transactions(
    path: Path, *, fmt: str = "auto", date_col: str = "ts", date_format: str | None = None,
    id_cols: tuple[str, ...] = ("customer_id",), amount_col: str | None = None,
    decimal: str = ".",
) -> Any:
    """Read a transaction file into an in-memory DuckDB table (Ibis); ``id_cols`` stay text.
    A text ``amount_col`` must hold numbers (or be empty) written with the decimal separator
    ``decimal`` (``.`` or ``,``): else an error naming the row."""
    import duckdb
    import ibis

    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=str(path))
    from segflow.store import interruptible

    con = interruptible(ibis.duckdb.connect())  # Ctrl-C stops its queries (cli._interrupt)
    order: str | None = None
    kind = fmt if fmt != "auto" else {".parquet": "parquet", ".pq": "parquet", ".txt": "cdnow"}.get(
        path.suffix.lower(), "csv"
    )
    try:
        if kind == "parquet":
            table = read_user_parquet(con, path)  # (a repeated column name: refused)
            table = canonical_ids(table, [c for c in table.columns if c in id_cols or is_id_column(c)])
        elif kind == "csv":
            if date_format is None:  # numeric dates: their field order (cli._clv_dates)
                order = date_order(read_user_csv(con, path, all_varchar=True), date_col, path)
            table = read_user_csv(con, path, id_columns=id_cols,
                                  all_varchar=date_format is not None or order is not None)
        elif kind == "cdnow":  # the ingest's header = false, delimiter = "whitespace"
            import pandas as pd

            from segflow.sources._textlines import read_aligned

            rows, bad = read_aligned(path, ["customer_id", "sample_id", "date", "quantity",
                                            "amount"], str(path))
            if bad is not None:
                row, fields, reason = bad
                if not reason[0].isdigit():  # not a field count: bytes invalid in UTF-8
                    raise InputError(f"cannot read the file: {reason}", file=str(path), row=row)
                raise InputError(
                    f"not in the CDNOW format: the row has {fields} field"
                    f"{'s' if fields != 1 else ''}; expected {CDNOW_LAYOUT} (for a CSV give "
                    "--format csv)", file=str(path), row=row)
            frame = rows.to_pandas()
            lines = frame.pop("_row")
            _check_cdnow(frame, path, dated=date_format in (None, "%Y%m%d"), lines=lines)
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
    except duckdb.Error as exc:  # the reader's own message, first line
        from segflow.cli._files import reader_error

        raise InputError(f"cannot read the file: {reader_error(exc)}", file=str(path)) from None
    # the ingest's missing-value tokens: an id NA is an anonymous line, not a customer "NA";
    # an amount or date NA is missing, as an empty cell (typed columns hold real NULLs)
    read = {*id_cols, date_col, amount_col or date_col}
    table = without_tokens(table, null_tokens(), [c for c in table.columns if c not in read])
    if date_col not in table.columns:
        from segflow._suggest import did_you_mean

        raise InputError(
            f"no date column {date_col!r}; {did_you_mean(date_col, table.columns)}"
            f"columns are {list(table.columns)} (use --date-col)",
            file=str(path), column=date_col,
        )
    if date_format == "%s":  # Unix time (seconds since 1970 UTC), as the ingest's date_formats
        seconds = table[date_col].cast("string").cast("float64")  # a bad value: an error
        epoch = ibis.timestamp("1970-01-01 00:00:00")
        micros = (seconds * 1_000_000).round().cast("int64")
        table = table.mutate(**{date_col: epoch + micros.as_interval("us")})
    elif date_format is not None:  # the ingest's date_formats rule (a Z for %z: UTC)
        table = table.mutate(_sf_written=table[date_col])
        if "%Y" in date_format:
            _refuse_short_years(table, date_col, date_format, path)
        table = table.mutate(**{date_col: strftime_dates(table[date_col], date_format)})
    elif order is not None:  # the text as written kept for the error of _check_dates
        table = table.mutate(_sf_written=table[date_col])
        table = table.mutate(**{date_col: iso_dates(table[date_col], order)})
    _check_dates(table, date_col, path, "_sf_written" if "_sf_written" in table.columns else None,
                 None if order is not None else date_format)
    if "_sf_written" in table.columns:
        table = table.drop("_sf_written")
    if table[date_col].type().is_string():  # every value parses (checked)
        table = table.mutate(**{date_col: table[date_col].cast("timestamp")})
    if amount_col is not None and amount_col in table.columns:
        table = _check_amounts(table, amount_col, path, decimal)
        _refuse_unusable_amounts(table, amount_col, path, csv=kind == "csv")
    return table, date_col


def _refuse_unusable_amounts(table: Any, amount_col: str, path: Path, *, csv: bool) -> None:
    """Refuse amounts that cannot be computed with (:func:`refuse_unusable_numbers`'s rule:
    infinite, ``NaN``, beyond +-1e150): an ``inf`` amount made a customer's mean repeat spend
    NaN, and its CLV was dropped with only a warning. InputError naming the file, the first
    rows, the column and the first value as written (a CSV's cell; a Parquet file's value)."""
    from segflow._rows import offending_rows
    from segflow.cli._customer_file import LARGEST_NUMBER

    x = table[amount_col]
    if not x.type().is_floating():
        return
    bad = x.isinf() | x.isnan() | (x.abs() > LARGEST_NUMBER)
    n = int(bad.fill_null(False).sum().execute() or 0)
    if not n:
        return
    rows = offending_rows(table, bad, value=amount_col, total=n)
    shown = repr(rows.values[0])
    if csv:  # the cell as written (DuckDB read '1e400' as inf): one more read, for the error
        import ibis

        written = read_user_csv(ibis.duckdb.connect(), path, all_varchar=True)
        cell = offending_rows(written, ibis.row_number() + 1 == rows.rows[0], value=amount_col)
        if cell.values:
            shown = repr(str(cell.values[0]).strip())
    raise InputError(
        f"{n:,} amounts are infinite, not a number or too large to compute with (first "
        f"{shown}, row {rows.rows[0]}; expected amounts within +-{LARGEST_NUMBER:g}); correct "
        "or remove those rows", file=str(path), row=rows.rows, column=amount_col, rows_in_all=n)


#: The CDNOW layout, as the errors of :func:`_check_cdnow` state it.
CDNOW_LAYOUT = "'customer_id sample_id yyyymmdd quantity amount' separated by spaces, no header"


def _check_cdnow(frame: Any, path: Path, *, dated: bool = True, lines: Any = None) -> None:
    """InputError naming the first row of a file read as CDNOW (``--format cdnow``, or a
    ``.txt`` file) that is not in that layout: five fields, the third a date ``yyyymmdd``
    (when ``dated``: no other ``--date-format`` given). ``lines``: each row's line (default:
    its place)."""
    # (An ordinary CSV read so was one field a line and "the summary holds no customers".)
    if frame.empty:
        raise InputError(f"the file holds no rows; expected the CDNOW layout {CDNOW_LAYOUT}",
                         file=str(path))
    short = frame.isnull().any(axis=1)
    undated = ~frame["date"].fillna("").str.fullmatch(r"[0-9]{8}") & dated
    bad = (short | undated).to_numpy().nonzero()[0]
    if len(bad):
        i = int(bad[0])
        fields = int(frame.iloc[i].notnull().sum())
        what = (f"has {fields} field{'s' if fields != 1 else ''}" if short.iloc[i] else
                f"has the date {frame['date'].iloc[i]!r}")
        raise InputError(
            f"not in the CDNOW format: the row {what}; expected {CDNOW_LAYOUT} (for a CSV "
            "give --format csv)", file=str(path),
            row=int(lines.iloc[i]) if lines is not None else i + 1)


def _check_amounts(table: Any, amount_col: str, path: Path, decimal: str = ".") -> Any:
    """``table`` with a text amount column read as numbers written with the decimal
    separator ``decimal`` (the ingest's ``decimal`` option: with ``,`` a value holding a
    ``.`` is no number, as ``4.25`` in a decimal-comma file); fail with the first row whose
    amount is text that is no number (``12 EUR``; ``12,72`` without ``--decimal ,``):
    DuckDB's sniffer then types the column as text, and the cast to a number later stopped
    with an engine traceback."""
    import ibis

    col = table[amount_col]
    if decimal not in (".", ","):
        raise InputError(f"--decimal {decimal!r}: the decimal separator is '.' or ','")
    if not col.type().is_string():
        if decimal == "," and col.type().is_floating():
            raise InputError("the amounts are written with a decimal point ('.'), not the "
                             "--decimal ',' given", file=str(path), column=amount_col)
        return table
    text = col.strip()
    if decimal == ",":
        text = text.contains(".").ifelse(ibis.literal("x"), text.replace(",", "."))
    number = text.try_cast("float64")
    bad = number.isnull() & (col.strip().length() > 0)
    numbered = table.mutate(_row=ibis.row_number() + 1, _bad=bad)
    sample = numbered.filter(numbered._bad).order_by("_row").limit(1).execute()
    if len(sample):
        value = str(sample.iloc[0][amount_col])
        comma = decimal == "." and re.fullmatch(r"\s*[-+]?[0-9]*,[0-9]+\s*", value)
        hint = "a decimal comma: give --decimal ',', or " if comma else ""
        raise InputError(
            f"expected a number, got {value!r} ({hint}remove or correct the row, or give "
            "--amount-col none to count purchases only)",
            file=str(path), column=amount_col, row=int(sample.iloc[0]["_row"]),
        )
    return table.mutate(**{amount_col: number}) if decimal == "," else table


def _refuse_short_years(table: Any, date_col: str, date_format: str, path: Path) -> None:
    """InputError naming the first row whose date ``date_format`` (with ``%Y``) reads with a
    year before 1000: DuckDB's ``%Y`` takes one to three digits, so ``17/01/23`` with
    ``%d/%m/%Y`` was the year 23 without a word. The ingest's rule: ``%Y`` needs four
    digits (:func:`segflow.sources._dates._strptime`)."""
    import ibis

    short = strftime_dates(table[date_col], date_format).year() < 1000
    numbered = table.mutate(_row=ibis.row_number() + 1, _short=short.fill_null(False))
    sample = numbered.filter(numbered._short).order_by("_row").limit(1).execute()
    if len(sample):
        raise InputError(
            f"--date-format {date_format!r} reads {sample.iloc[0][date_col]!r} with a year "
            "before 1000 (%Y needs four digits: for two-digit years give %y)",
            file=str(path), column=date_col, row=int(sample.iloc[0]["_row"]))


def _check_dates(table: Any, date_col: str, path: Path, written: str | None = None,
                 date_format: str | None = None) -> None:
    """Fail naming the first rows whose date does not parse (and how many), instead of an
    engine error; the error shows the first value of the column ``written`` (default: the
    date column) as written, and the ``--date-format`` that does not read it, if given."""
    import duckdb

    from segflow._rows import offending_rows

    col = table[date_col]
    table = table.mutate(_written=table[written or date_col])
    if col.type().is_string():
        col = col.try_cast("timestamp")
    try:
        bad = offending_rows(table, col.isnull() & table._written.notnull(), value="_written")
    except duckdb.Error as exc:
        raise InputError(f"dates do not parse: {exc}".splitlines()[0], file=str(path), column=date_col) from None
    if bad.rows:
        how = (f"--date-format {date_format!r} does not read it" if date_format is not None
               else "use --date-format, e.g. %Y%m%d")
        raise InputError(
            f"{bad.total:,} date{'s do' if bad.total != 1 else ' does'} not parse (first "
            f"{bad.values[0]!r}; {how})",
            file=str(path), column=date_col, row=bad.rows, rows_in_all=bad.total)


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
        decimal: str = DecimalOption,
        calibration_end: dt.date | None = CalibrationOption,
        snapshot: dt.date | None = SnapshotOption,
        holdout_end: dt.date | None = typer.Option(
            None, "--holdout-end", parser=DATE,
            help="Last day of the holdout period, YYYY-MM-DD (included); adds holdout metrics."),
        time_unit: str = UnitOption,
        model: str = ModelOption,
        spend_model: str = SpendOption,
        order_value: float | None = OrderValueOption,
        penalizer: float = PenalizerOption,
        as_json: bool = JsonOption,
    ) -> None:
        """Fit a BTYD model (and the spend model) on a transaction file; print the estimates."""
        with user_errors():
            cut = snapshot_of(calibration_end, snapshot)
            obs_end = holdout_snapshot(holdout_end, cut)
            amount = None if amount_col.lower() == "none" else amount_col
            table, date_col = read_transactions(
                transactions, fmt=fmt, date_col=date_col, date_format=date_format,
                id_cols=(customer_col,), amount_col=amount, decimal=decimal,
            )
            with about_file(transactions):  # the library's errors name columns, not files
                report, *_ = fit_clv(
                    table, snapshot=cut, observation_end=obs_end, time_unit=time_unit,
                    model_name=model, spend_model=spend_model, order_value=order_value,
                    penalizer=penalizer, customer_col=customer_col, ts_col=date_col,
                    amount_col=amount, source=str(transactions),
                )
            if as_json:
                print_json(report)
            else:
                print_fit(report)

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
        decimal: str = DecimalOption,
        snapshot: dt.date | None = typer.Option(
            None, "--snapshot", parser=DATE,
            help="Snapshot date YYYY-MM-DD: fit on rows before it; scores belong to it. "
            "Or give --calibration-end."),
        calibration_end: dt.date | None = typer.Option(
            None, "--calibration-end", parser=DATE,
            help="Last day of the calibration period, YYYY-MM-DD (included): the same as "
            "--snapshot of the next day."),
        horizon: float | None = typer.Option(
            None, "--horizon", min=0.0,
            help="Prediction horizon in --time-unit units (default one year: 365 days, 52 "
            "weeks or 12 months); at most 100 years."),
        margin: float = typer.Option(
            1.0, "--margin", min=0.0,
            help="Profit margin: the share of spend the CLV counts (1: revenue)."),
        discount_rate: float = typer.Option(0.1, "--discount-rate", min=0.0,
                                            help="Annual discount rate of the CLV."),
        time_unit: str = UnitOption,
        model: str = ModelOption,
        spend_model: str = SpendOption,
        order_value: float | None = OrderValueOption,
        penalizer: float = PenalizerOption,
        pii: str = ids_pii_option("--output, with --project (a file's ids are written as they "
                                  "are without it)"),
        as_json: bool = JsonOption,
    ) -> None:
        """Fit at a snapshot and score every customer: P(alive), expected purchases, CLV.

        With --project, --output writes a customer id that is an e-mail address or a phone
        number as the project's pseudonymous key (pid-...), as segflow export does, unless
        --pii include."""
        with user_errors():
            options = ScoreOptions(
                fmt=fmt, customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                date_format=date_format, decimal=decimal,
                snapshot=snapshot_of(calibration_end, snapshot),
                horizon=horizon_of(horizon, time_unit), margin=margin, discount_rate=discount_rate,
                time_unit=time_unit, model_name=model, spend_model=spend_model,
                order_value=order_value, penalizer=penalizer, pii=pii,
            )
            _score(transactions, project, output, options, as_json)


@dataclasses.dataclass
class ScoreOptions:
    """The options of ``clv score`` after parsing (the snapshot is the exclusive cut)."""

    fmt: str
    customer_col: str
    date_col: str
    amount_col: str
    date_format: str | None
    decimal: str
    snapshot: dt.date
    horizon: float
    margin: float
    discount_rate: float
    time_unit: str
    model_name: str
    spend_model: str
    order_value: float | None
    penalizer: float
    pii: str = "include"


def _score(
    transactions: Path | None, project: Path | None, output: Path | None, o: ScoreOptions,
    as_json: bool,
) -> None:
    from segflow.models import score_customers, write_scores

    if o.model_name == "bgbb":
        raise SegflowError("clv score supports the continuous-time models (bgnbd, mbgnbd, pnbd)")
    if project is None and output is None:
        raise InputError("give --output FILE or --project DIR to say where the scores go")
    if output is not None and output.suffix.lower() not in (".csv", ".parquet", ".pq"):
        # checked before the fit: any other name got a CSV file (scores.xlsx, scores.json)
        raise InputError(f"--output {output}: use a .csv or .parquet file name")
    project_ctx = None
    if project is not None:
        from segflow.project import Project

        refuse_on_spark(project, "segflow clv score --project",
                        "score a transaction file with --output FILE; `segflow run` writes "
                        "the CLV scores to the warehouse")
        project_ctx = Project.open(project)
    customer_col, date_col, amount_col = o.customer_col, o.date_col, o.amount_col
    try:
        if transactions is not None:
            table, date_col = read_transactions(transactions, fmt=o.fmt, date_col=date_col,
                                                date_format=o.date_format,
                                                id_cols=(customer_col,),
                                                amount_col=None if amount_col.lower() == "none"
                                                else amount_col, decimal=o.decimal)
        elif project_ctx is not None:
            table = project_ctx.store.table("transactions")
            customer_col, date_col, amount_col = "customer_id", "ts", "amount"
        else:
            raise InputError("give --transactions FILE or --project DIR")
        amount = None if amount_col.lower() == "none" else amount_col
        with about_file(transactions):  # (None: the project's store)
            report, summary, model, spend = fit_clv(
                table, snapshot=o.snapshot, observation_end=None, time_unit=o.time_unit,
                model_name=o.model_name, spend_model=o.spend_model, order_value=o.order_value,
                penalizer=o.penalizer, customer_col=customer_col, ts_col=date_col,
                amount_col=amount, source=None if transactions is None else str(transactions),
            )
        scores = score_customers(summary, model, horizon=o.horizon, time_unit=unit_code(o.time_unit),
                                 spend_model=spend, margin=o.margin,
                                 annual_discount_rate=o.discount_rate)
        report["notes"].extend(_score_notes(scores, spend))
        report["scoring"] = clv_settings(o.horizon, o.time_unit, o.margin, o.discount_rate)
        written: dict[str, Any] = {}
        if output is not None:
            written.update(_write_file(scores, output, o.pii if project else "include",
                                       project or Path("."), file_ids=project is None))
        if project_ctx is not None:
            store = project_ctx.store
            params = {"model": o.model_name, "snapshot": o.snapshot, "horizon": o.horizon}
            with store.run("clv score", params) as run_id:
                written["store_rows"] = write_scores(store, scores, snapshot_date=o.snapshot,
                                                     model=o.model_name, run_id=run_id)
    finally:
        if project_ctx is not None:
            project_ctx.close()
    report["scores"] = written
    if as_json:
        print_json(report)
    else:
        print_fit(report)
        stdout.print(clv_line(report["scoring"]), highlight=False)
        where = []
        if "file" in written:
            where.append(f"{written.get('rows', 0):,} customers to {written['file']}")
        if "store_rows" in written:
            where.append(f"{written['store_rows']:,} score rows to the project's customer_scores")
        console.print(f"scores written: {'; '.join(where) or 'none (give -o FILE or -p DIR)'}",
                      highlight=False)


def _score_notes(scores: Any, spend: Any) -> list[str]:
    """Say which scores are missing: no CLV column, or customers without expected spend."""
    if spend is None:
        return ["no spend model: the scores have no expected_spend or clv column (give "
                "--order-value for a constant average order value)"]
    if "expected_spend" not in scores.columns:
        return []
    missing = int(scores.expected_spend.isnull().sum().execute())
    if not missing:
        return []
    q = getattr(spend, "params_", {}).get("q", float("nan"))
    return [
        f"{missing} customers have no expected_spend or clv: their expected spend is "
        f"infinite under the fitted Gamma-Gamma model (q = {q:.3g} <= 1; customers without "
        "a repeat purchase). Their P(alive) and expected purchases are written."
    ]


def _write_file(scores: Any, output: Path, pii: str, project: Path, *,
                file_ids: bool = False) -> dict[str, Any]:
    """The scores to ``output``, ids that are e-mails or phone numbers as the pseudonymous
    keys of ``project`` unless ``pii`` is include (segflow.cli._pseudonyms). Owner-only
    (:mod:`segflow._private`) under ``--pii include``; with ``file_ids`` (the ids of the
    user's own transaction file, written as given) only when some are e-mails or phones."""
    from segflow._private import private_target
    from segflow.cli._pseudonyms import count_personal_ids, key_ids

    frame = scores.to_pyarrow()
    # one row per customer, in id order: DuckDB's parallel plan returns them in any order,
    # so two runs on the same data wrote files that differed
    frame = frame.sort_by([(frame.column_names[0], "ascending")])
    frame = key_ids(frame, pii, project, columns=frame.column_names[:1])
    private = pii == "include"
    why = "--pii include"
    if file_ids:
        private = count_personal_ids(frame, frame.column_names[:1])[0] > 0
        why = "ids of the transaction file that are e-mails or phone numbers"
    private_target(output, private, why=why)  # before the writer opens the file
    if output.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        pq.write_table(frame, output)
    else:
        from segflow._csv import write_csv

        write_csv(frame, output)
    return {"file": str(output), "rows": frame.num_rows}
