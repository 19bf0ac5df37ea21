"""``segflow clv fit|score`` on plain files as a new user writes them: dates in any field
order, missing-value tokens, repeated column names, the horizon of the CLV."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from segflow.cli import app
from segflow.cli._clv import read_transactions
from segflow.errors import InputError

runner = CliRunner()


def _run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def _days(path: Path) -> list[str]:
    table, col = read_transactions(path)
    return [str(d)[:10] for d in table[col].execute()]


def _purchases(n_customers: int = 60, seed: int = 3) -> pd.DataFrame:
    """A year of purchases (2023) of ``n_customers``: every day of the month 1-31 occurs."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_customers):
        days = sorted(rng.choice(365, size=int(rng.integers(1, 6)), replace=False))
        rows += [(f"c{c:03d}", dt.date(2023, 1, 1) + dt.timedelta(days=int(d)),
                  round(float(rng.gamma(2, 15)), 2)) for d in days]
    rows.append(("c999", dt.date(2023, 1, 31), 10.0))
    return pd.DataFrame(rows, columns=["customer_id", "day", "amount"])


@pytest.mark.parametrize("fmt", ["%d/%m/%y", "%d.%m.%y", "%d-%m-%y", "%m/%d/%y", "%d/%m/%Y"])
def test_numeric_dates_settled_by_the_data_are_read_in_their_order(
        tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """17/01/23 was read 2017-01-23 by DuckDB's sniffer (year-first for two-digit years):
    the calibration started 2001-01-23 and alpha came out 546. Now the order that reads
    every value as a date no later than today is used (y/m/d puts 31/01/23 in 2031)."""
    monkeypatch.setattr("segflow.cli._clv_dates._today", lambda: dt.date(2026, 12, 5))
    frame = _purchases()
    path = tmp_path / "tx.csv"
    frame.assign(ts=[d.strftime(fmt) for d in frame.day]).drop(columns="day").to_csv(path, index=False)
    assert _days(path) == [str(d) for d in frame.day]


def test_two_digit_year_dates_fit_on_their_days(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fit's calibration on a d/m/y file starts on its first day (it was 2001-01-23)."""
    monkeypatch.setattr("segflow.cli._clv_dates._today", lambda: dt.date(2026, 12, 5))
    frame = _purchases()
    path = tmp_path / "dmy.csv"
    frame.assign(ts=[d.strftime("%d/%m/%y") for d in frame.day]).drop(columns="day").to_csv(path, index=False)
    result = _run("clv", "fit", "-t", path, "--calibration-end", "2023-12-31", "--json",
                  "--penalizer", "0.01")
    assert result.exit_code == 0, result.output
    window = json.loads(result.stdout)["calibration"]
    first = frame.day.min()
    assert (window["first_day"], window["days"]) == (str(first), (dt.date(2024, 1, 1) - first).days)


def test_date_orders_by_the_rule(tmp_path: Path) -> None:
    """Year-first when the first field cannot be a day; one reading when every order gives
    the same day; refused when the orders disagree or none reads every value."""
    import ibis

    from segflow.cli._clv_dates import date_order
    from segflow.errors import InputError

    def order(*dates: str) -> str | None:
        raw = ibis.memtable({"ts": list(dates)})
        return date_order(raw, "ts", tmp_path / "d.csv", today=dt.date(2026, 12, 5))

    assert order("98/01/17", "99/12/31") == "ymd"
    assert order("01/17/23", "12/01/23") == "mdy"
    assert order("2023-01-17", "2023-02-01") is None  # four-digit year first: the reader's
    assert order("01/01/2024", "02/02/2024") in ("dmy", "mdy")  # the same day either way
    with pytest.raises(InputError, match="can be read day-first, month-first or year-first"):
        order("05/01/23", "06/02/23")
    with pytest.raises(InputError, match=r"'17/01/23' and '01/17/23' are not written in one order"):
        order("17/01/23", "01/17/23")


def _cdnow_part(tmp_path: Path, frame: pd.DataFrame, customers: int = 500) -> Path:
    """The purchases of the first ``customers`` CDNOW customers as a CSV (customer_id, ts,
    amount)."""
    ids = sorted(frame.customer_id.unique())[:customers]
    rows = frame[frame.customer_id.isin(ids)][["customer_id", "ts", "dollars"]]
    rows = rows.rename(columns={"dollars": "amount"}).assign(ts=lambda f: f.ts.dt.strftime("%Y-%m-%d"))
    path = tmp_path / "tx.csv"
    rows.to_csv(path, index=False)
    return path


def test_the_default_horizon_is_one_year_in_every_unit(tmp_path: Path, cdnow_frame: pd.DataFrame) -> None:
    """The default horizon was 52 units: 52 days, 52 weeks or 52 months, so one customer's
    CLV was 49 (day), 313 (week) or 1015 (month) with the same P(alive). Now it is one year
    (365 days, 52 weeks, 12 months), and the output says so."""
    csv = _cdnow_part(tmp_path, cdnow_frame, customers=150)
    clv, settings = {}, {}
    for unit in ("day", "week", "month"):
        out = tmp_path / f"{unit}.csv"
        json_or_margin = ["--margin", "0.3"] if unit == "week" else ["--json"]
        result = _run("clv", "score", "-t", csv, "--calibration-end", "1997-09-30", "--time-unit",
                      unit, "-o", out, *json_or_margin)
        assert result.exit_code == 0, result.output
        if unit == "week":
            assert ("horizon 52 weeks (364 days); clv: annual discount rate 0.1 (10%), margin 0.3"
                    in result.stdout)
        else:
            settings[unit] = json.loads(result.stdout)["scoring"]
        clv[unit] = pd.read_csv(out).set_index("customer_id").clv / (0.3 if unit == "week" else 1)
    assert {u: (s["horizon"], s["horizon_days"]) for u, s in settings.items()} == {
        "day": (365, 365), "month": (12, 365.25)}
    assert settings["day"]["annual_discount_rate"] == 0.1 and settings["day"]["margin"] == 1
    total = {u: float(c.sum()) for u, c in clv.items()}
    # one year's discounted spend: the units differ by the days of their year (< 0.5%) and
    # the day-exact summary of their own unit (before: 52 days, 52 weeks, 52 months)
    assert total["day"] == pytest.approx(total["week"], rel=0.01)
    assert total["month"] == pytest.approx(total["week"], rel=0.01)


@pytest.mark.parametrize(("horizon", "unit", "message"), [
    ("1e308", "week", "1e+308 weeks is more than 100 years (5,218 weeks)"),
    ("1201", "month", "1201 months is more than 100 years (1,200 months)")])
def test_an_unreasonable_horizon_is_a_usage_error(tmp_path: Path, horizon: str, unit: str,
                                                 message: str) -> None:
    """--horizon 1e308 stopped with "ValueError: Maximum allowed size exceeded" in NumPy;
    10,000 weeks took 11 s for 400 customers (one model evaluation per monthly step)."""
    csv = tmp_path / "tx.csv"
    csv.write_text("customer_id,ts,amount\na,2024-01-01,5\n")
    result = _run("clv", "score", "-t", csv, "--snapshot", "2024-06-01", "--time-unit", unit,
                  "--horizon", horizon, "-o", tmp_path / "s.csv")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"segflow clv score: invalid value for '--horizon': {message}; see 'segflow clv score --help'"]


def test_missing_value_tokens_are_missing_values(tmp_path: Path, cdnow_frame: pd.DataFrame) -> None:
    """Customer ids ``NA``/``null`` became one customer "NA" pooling every anonymous line,
    and an amount ``NA`` stopped the command; now the ingest's null_values are missing
    values in every column: the anonymous lines are left out and counted, an amount ``NA``
    is no purchase and a date ``NA`` no row, as their empty cells were."""
    clean = _cdnow_part(tmp_path, cdnow_frame, customers=150)
    frame = pd.read_csv(clean, dtype=str)
    someone = frame.customer_id.iloc[0]
    extra = pd.DataFrame([("NA", "1997-02-01", "20"), ("null", "1997-03-01", "20"),
                          (" N/A ", "1997-04-01", "20"), ("", "1997-05-01", "20"),
                          ("NA", "1997-06-01", "20"), (someone, "1997-06-02", "NA"),
                          (someone, "NA", "5")], columns=frame.columns)
    dirty = tmp_path / "dirty.csv"
    pd.concat([frame, extra]).to_csv(dirty, index=False)
    reports = {}
    for path in (clean, dirty):
        result = _run("clv", "fit", "-t", path, "--calibration-end", "1997-09-30", "--json")
        assert result.exit_code == 0, result.output
        reports[path.name] = json.loads(result.stdout)
    got = reports["dirty.csv"]
    n = len(frame)  # the extra rows are data rows n+1 to n+7
    assert got["notes"][:3] == [
        f"file {dirty}, rows {n + 1}, {n + 2}, {n + 3}, ... (5 in all), column 'customer_id': "
        "5 rows have no customer id and are left out",
        f"file {dirty}, row {n + 7}, column 'ts': 1 row has no date and is left out",
        f"file {dirty}, row {n + 6}, column 'amount': 1 row has no amount and is no purchase "
        "(not a return either)"]
    assert got["customers"] == reports["tx.csv"]["customers"]
    assert got["params"] == reports["tx.csv"]["params"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".sep.csv"])
def test_repeated_column_names_are_refused(tmp_path: Path, suffix: str) -> None:
    """A header ``customer_id,ts,amount,amount`` was read with the first ``amount`` without
    a word (DuckDB renames the second ``amount_1``); the ingest refuses it, and so does clv."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / f"dup{suffix}"
    if suffix == ".csv":
        path.write_text("customer_id,ts,amount,Amount\na,2024-01-01,5,6\n")
    elif suffix == ".sep.csv":  # Excel's delimiter line before the header
        path.write_text("sep=;\ncustomer_id;ts;amount;Amount\na;2024-01-01;5;6\n")
    else:
        pq.write_table(pa.table([["a"], ["2024-01-01"], [5.0], [6.0]],
                                names=["customer_id", "ts", "amount", "Amount"]), path)
    result = _run("clv", "fit", "-t", path, "--snapshot", "2024-06-01")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: file {path}, header: column names repeat: 'amount' / 'Amount' (names are "
        "compared ignoring case); rename or drop the extra column"]


def test_a_file_not_in_the_cdnow_format_says_so(tmp_path: Path) -> None:
    """``--format cdnow`` on a CSV said "the summary holds no customers"."""
    csv = tmp_path / "tx.csv"
    csv.write_text("customer_id,ts,amount\na,2024-01-01,5\n")
    result = _run("clv", "fit", "-t", csv, "--format", "cdnow", "--snapshot", "2024-06-01")
    assert result.exit_code == 1
    assert " ".join(result.output.split()) == (
        f"error: file {csv}, row 1: not in the CDNOW format: the row has 1 field; expected "
        "'customer_id sample_id yyyymmdd quantity amount' separated by spaces, no header (for a "
        "CSV give --format csv)")



def test_a_cdnow_line_with_a_field_too_many_is_named_by_its_line(tmp_path: Path) -> None:
    """``--format cdnow`` reads as the ingest's ``header = false``, ``delimiter =
    "whitespace"``: a blank line is no row, so the bad line is row 3 (pandas said
    "Expected 5 fields in line 3, saw 6" and skipped blank lines in its numbers)."""
    txt = tmp_path / "tx.txt"
    txt.write_text(" 00004 0001 19970101  2   29.33\n   \n 00005 0001 19970102  1  9.99 x\n")
    result = _run("clv", "fit", "-t", txt, "--snapshot", "1997-06-01")
    assert result.exit_code == 1
    assert " ".join(result.output.split()) == (
        f"error: file {txt}, row 3: not in the CDNOW format: the row has 6 fields; expected "
        "'customer_id sample_id yyyymmdd quantity amount' separated by spaces, no header (for a "
        "CSV give --format csv)")

def test_decimal_comma_amounts(tmp_path: Path) -> None:
    """``12,72`` was "expected a number" with no way out; ``--decimal ,`` reads it as the
    ingest's decimal option does (a value with a ``.`` is then no number)."""
    csv = tmp_path / "tx.csv"
    csv.write_text("customer_id;ts;amount\na;2024-01-01;12,72\na;2024-02-01;5\nb;2024-01-05;-3,5\n")
    result = _run("clv", "fit", "-t", csv, "--snapshot", "2024-06-01")
    assert result.exit_code == 1
    assert "got '12,72' (a decimal comma: give --decimal ',', or remove" in " ".join(result.output.split())
    table, _ = read_transactions(csv, amount_col="amount", decimal=",")
    assert table.amount.execute().tolist() == [12.72, 5.0, -3.5]
    csv.write_text("customer_id;ts;amount\na;2024-01-01;12,72\na;2024-02-01;4.25\n")
    result = _run("clv", "fit", "-t", csv, "--snapshot", "2024-06-01", "--decimal", ",")
    assert result.exit_code == 1 and "row 2, column 'amount': expected a number, got '4.25'" in result.output


def test_a_four_digit_year_format_refuses_two_digit_years(tmp_path: Path) -> None:
    """``--date-format %d/%m/%Y`` read 17/01/23 as the year 23 (DuckDB's %Y takes one to
    three digits): the calibration began 0023-01-01. The ingest's rule: %Y needs four."""
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,ts,amount\na,05/01/2023,5\nb,17/01/23,3\n")
    with pytest.raises(Exception, match=r"row 2, column 'ts': --date-format '%d/%m/%Y' reads "
                       r"'17/01/23' with a year before 1000 \(%Y needs four digits"):
        read_transactions(path, date_format="%d/%m/%Y")
    path.write_text("customer_id,ts,amount\na,05/01/23,5\nb,17/01/23,3\n")
    table, col = read_transactions(path, date_format="%d/%m/%y")
    assert [str(d)[:10] for d in table[col].execute()] == ["2023-01-05", "2023-01-17"]


def test_a_bad_time_shows_the_date_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("segflow.cli._clv_dates._today", lambda: dt.date(2026, 12, 5))
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,ts,amount\na,17/01/23,5\nb,18/01/23 25:00,3\nc,31/01/23,3\n")
    with pytest.raises(Exception, match="row 2, column 'ts': 1 date does not parse \\(first "
                       "'18/01/23 25:00'; use --date-format"):
        read_transactions(path)
    path.write_text("customer_id,ts,amount\na, 17/01/23 ,5\nb,1/2/23,3\nc,31/1/23 10:05:07,3\n")
    assert [str(d) for d in read_transactions(path)[0].ts.execute()] == [
        "2023-01-17 00:00:00", "2023-02-01 00:00:00", "2023-01-31 10:05:07"]


def test_date_format_reads_z_and_names_the_rows_it_does_not_read(tmp_path: Path) -> None:
    """``--date-format ...%z`` reads ``Z`` as UTC and converts offsets to UTC (the ingest's
    ``date_formats`` rule); values it does not read are named by row and column, not by
    DuckDB's text."""
    fmt = "%Y-%m-%dT%H:%M:%S%z"
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,ts,amount\na,2024-01-01T11:56:43Z,5\n"
                    "b,2024-01-02T11:56:43+02:00,3\nc,2024-01-03T01:00:00z,3\n")
    assert [str(d) for d in read_transactions(path, date_format=fmt)[0].ts.execute()] == [
        "2024-01-01 11:56:43", "2024-01-02 09:56:43", "2024-01-03 01:00:00"]
    path.write_text("customer_id,ts,amount\na,2024-01-01T11:56:43Z,5\nb,2024-01-02,3\n"
                    "c,2024-01-03T01:00:00Z,3\nd,soon,1\n")
    with pytest.raises(InputError) as info:
        read_transactions(path, date_format=fmt)
    assert str(info.value) == (f"file {path}, rows 2 and 4, column 'ts': 2 dates do not parse "
                               f"(first '2024-01-02'; --date-format '{fmt}' does not read it)")


def test_excel_safe_text_is_read_as_ingest_reads_it(tmp_path: Path) -> None:
    """A file exported for Excel writes ``="00123"`` to keep leading zeros: ingest reads it
    as ``00123``, the file commands kept it as written (an id no store holds; an amount
    ``="12.50"`` refused as "expected a number", a date ``="2024-01-05"`` as "dates do not
    parse"). They read it as ingest does (header names and ``= "00123"`` too), with one
    warning counting the values, and give the table of the same file written plainly."""
    rows = [("00123", "2024-01-05", "12.50"), ("00123", "2024-02-01", "7"), ("007", "2024-01-09", "3.25"),
            ("0042", "2024-03-01", "10")]
    plain, excel = tmp_path / "plain.csv", tmp_path / "excel.csv"
    plain.write_text("customer_id,ts,amount\n" + "".join(f"{c},{d},{a}\n" for c, d, a in rows))
    # the header's names too, and a space after '=' (Excel reads = "00123" as 00123)
    excel.write_text('="customer_id",ts,= "amount"\n="00123",="2024-01-05",="12.50"\n= "00123",2024-02-01,7\n'
                     ' =" 007 " ,2024-01-09,="3.25"\n0042,="2024-03-01",10\n')
    with pytest.warns(UserWarning) as said:
        got = read_transactions(excel, amount_col="amount")[0].execute()
    assert [str(w.message) for w in said if "Excel" in str(w.message)] == [
        f"file {excel}, row 1, column 'customer_id': Excel-safe text (=\"...\", written to keep leading "
        "zeros) read as the text between its quotes (7 such values)"]
    want = read_transactions(plain, amount_col="amount")[0].execute()
    pd.testing.assert_frame_equal(got, want, check_dtype=False)  # (dates read from text: in us, not s)
    assert got.customer_id.tolist() == ["00123", "00123", "007", "0042"]
    assert got.ts.dt.date.astype(str).tolist() == [d for _, d, _ in rows]
    assert got.amount.tolist() == [12.5, 7.0, 3.25, 10.0]
