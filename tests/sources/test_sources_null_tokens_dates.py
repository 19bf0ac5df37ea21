"""Real exports: missing-value tokens and two-digit years (issue 12, items 1 and 2)."""

from __future__ import annotations

import datetime as dt
import random
import warnings
from pathlib import Path

import pytest

from segflow.config import Settings
from segflow.config._sources import DEFAULT_NULL_VALUES
from segflow.sources import ingest
from segflow.store import Store

NOW = dt.datetime(2024, 6, 1)

TX_TOML = """
[[sources]]
name = "shop"
table = "transactions"
path = "tx.csv"
{extra}
[sources.columns]
transaction_id = "InvoiceNo"
customer_id = "CustomerID"
ts = "InvoiceDate"
amount = "Amount"
"""


def _load(tmp_path: Path, csv_text: str, extra: str = "", toml: str = TX_TOML):
    (tmp_path / "tx.csv").write_text(csv_text, encoding="utf-8")
    (tmp_path / "segflow.toml").write_text(toml.format(extra=extra), encoding="utf-8")
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = ingest(store, Settings.load(tmp_path), tmp_path, now=NOW)
    return store, report.to_pandas().iloc[0]


def _rows(store: Store, sql: str) -> list[tuple]:
    return [tuple(r.values()) for r in store.sql(sql).to_pylist()]


# -- item 1: null tokens ---------------------------------------------------------------------
def _token_file() -> tuple[str, dict[str, float]]:
    """Lines with every default token (padded or not) as customer id, and real customers."""
    ids = [*DEFAULT_NULL_VALUES, " NA ", "", "  ", "C1", "C2", "na", "NaN", "C1"]
    lines, anonymous = ["InvoiceNo,CustomerID,InvoiceDate,Amount"], {}
    for i, cid in enumerate(ids, start=1):
        amount = 10.0 * i + 0.25
        lines.append(f"{i},{cid},2024-01-{i:02d} 10:00:00,{amount}")
        if cid.strip() in ("", *DEFAULT_NULL_VALUES):
            anonymous[str(i)] = amount
    return "\n".join(lines) + "\n", anonymous


def test_default_null_tokens_make_anonymous_lines(tmp_path):
    text, anonymous = _token_file()
    store, rep = _load(tmp_path, text)
    assert len(anonymous) == 11  # 8 tokens, ' NA ', '' and a blank value
    assert {"#N/A", "\\N"} <= set(DEFAULT_NULL_VALUES)  # Excel's error value, SQL dumps' NULL
    assert rep.rows_read == 16 and rep.rows_accepted == 16 and rep.rows_quarantined == 0
    assert rep.rows_anonymous == len(anonymous)
    got = _rows(store, "SELECT transaction_id, amount FROM transactions WHERE customer_id IS NULL")
    assert dict(got) == pytest.approx(anonymous)
    flagged = _rows(store, "SELECT CAST(row_number AS VARCHAR) FROM ingest_flags WHERE rule = 'anonymous'")
    assert sorted(r[0] for r in flagged) == sorted(anonymous)
    # not tokens: other spellings stay customers (case-sensitive, exact)
    ids = {r[0] for r in _rows(store, "SELECT customer_id FROM transactions WHERE customer_id IS NOT NULL")}
    assert ids == {"C1", "C2", "na", "NaN"}


def test_null_tokens_apply_to_every_column(tmp_path):
    text = ("InvoiceNo,CustomerID,InvoiceDate,Amount\n"
            "1,C1,2024-01-02 10:00:00,N/A\n"
            "2,C1,NULL,5\n"
            "3,C2,2024-01-03 10:00:00,-\n"
            "NA,C2,2024-01-04 10:00:00,7\n"
            "5,C2,2024-01-05 10:00:00,-7\n")
    store, rep = _load(tmp_path, text)
    assert (rep.rows_accepted, rep.rows_quarantined) == (1, 4)
    rules = _rows(store, "SELECT row_number, rule FROM quarantine ORDER BY row_number")
    assert rules == [(1, "missing_amount"), (2, "missing_date"), (3, "missing_amount"),
                     (4, "missing_transaction_id")]
    # '-7' is a number, not the token '-'; the raw token stays in the quarantine
    assert _rows(store, "SELECT amount FROM transactions") == [(-7.0,)]
    raw = _rows(store, "SELECT raw_row FROM quarantine WHERE row_number = 1")[0][0]
    assert '"Amount":"N/A"' in raw.replace(" ", "")
    # the reason says the value may have been a token (the raw row shows 'N/A', not nothing)
    reason = _rows(store, "SELECT reason FROM quarantine WHERE row_number = 1")[0][0]
    assert reason == ("amount is empty or a missing-value token of null_values, such as NA "
                      "(source column Amount)")


def test_null_values_setting_replaces_the_default(tmp_path):
    text = "InvoiceNo,CustomerID,InvoiceDate,Amount\n1,NA,2024-01-02 10:00:00,3\n2,?,2024-01-02 11:00:00,4\n"
    store, rep = _load(tmp_path, text, extra='null_values = ["?"]')
    assert rep.rows_anonymous == 1
    assert _rows(store, "SELECT customer_id, amount FROM transactions ORDER BY amount") == [
        ("NA", 3.0), (None, 4.0)]
    store, rep = _load(tmp_path, text, extra="null_values = []")
    assert rep.rows_anonymous == 0
    assert sorted(r[0] for r in _rows(store, "SELECT customer_id FROM transactions")) == ["?", "NA"]


def test_customer_row_with_a_null_token_id_is_quarantined(tmp_path):
    toml = """
[[sources]]
name = "crm"
table = "customers"
path = "tx.csv"
[sources.columns]
customer_id = "id"
"""
    store, rep = _load(tmp_path, "id,email\nNA,a@x.org\nC1,None\n", toml=toml)
    assert (rep.rows_accepted, rep.rows_quarantined) == (1, 1)
    assert _rows(store, "SELECT rule FROM quarantine") == [("missing_customer_id",)]
    assert _rows(store, "SELECT customer_id, email FROM customers") == [("C1", None)]


# -- item 2: two-digit years ------------------------------------------------------------------
MIXED = 'date_formats = ["%m/%d/%Y %H:%M", "%m/%d/%y %H:%M"]'


def test_mixed_four_and_two_digit_years_load(tmp_path):
    text = ("InvoiceNo,CustomerID,InvoiceDate,Amount\n"
            "1,C1,12/06/2010 10:08,1\n"
            "2,C1,1/25/11 11:20,2\n"
            "3,C2,12/1/10 8:26,3\n"
            "4,C2,6/30/1999 23:59,4\n")
    store, rep = _load(tmp_path, text, extra=MIXED)
    assert (rep.rows_accepted, rep.rows_quarantined) == (4, 0)
    got = _rows(store, "SELECT transaction_id, ts FROM transactions ORDER BY transaction_id")
    assert [(t, ts) for t, ts in got] == [
        ("1", dt.datetime(2010, 12, 6, 10, 8)), ("2", dt.datetime(2011, 1, 25, 11, 20)),
        ("3", dt.datetime(2010, 12, 1, 8, 26)), ("4", dt.datetime(1999, 6, 30, 23, 59))]


@pytest.mark.parametrize("order", ["", 'date_order = "monthfirst"', 'date_order = "dayfirst"'])
def test_four_digit_format_never_reads_two_digits(tmp_path, order):
    """Only %Y given: '1/25/11' is unparseable (with a hint), never the year 0011."""
    text = ("InvoiceNo,CustomerID,InvoiceDate,Amount\n"
            "1,C1,12/06/2010 10:08,1\n2,C1,1/25/11 11:20,2\n3,C1,1/25/0011 11:20,2\n")
    extra = 'date_formats = ["%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M"]\n' + order
    store, rep = _load(tmp_path, text, extra=extra)
    q = _rows(store, "SELECT row_number, rule, reason FROM quarantine ORDER BY row_number")
    bad = [(2, "unparseable_date"), (3, "unparseable_date")]
    # without date_order, 12/06/2010 is a real ambiguity between the two four-digit formats
    assert [(r, rule) for r, rule, _ in q] == (bad if order else [(1, "ambiguous_date"), *bad])
    assert "add a format with %y" in q[-1][2] and "add a format with %y" in q[-2][2]
    if order:  # the accepted row follows date_order
        want = dt.datetime(2010, 12, 6, 10, 8) if "month" in order else dt.datetime(2010, 6, 12, 10, 8)
    else:
        assert rep.rows_accepted == 0
        return
    assert _rows(store, "SELECT ts FROM transactions")[0][0] == want


def test_year_before_1000_is_never_a_rival_reading(tmp_path):
    """03/04/11 under %d/%m/%Y would be 3 April 0011: not a rival of %m/%d/%y's 4 March 2011."""
    text = "InvoiceNo,CustomerID,InvoiceDate,Amount\n1,C1,03/04/11,1\n2,C1,03/04/2011,1\n"
    store, rep = _load(tmp_path, text, extra='date_formats = ["%d/%m/%Y", "%m/%d/%y"]')
    assert (rep.rows_accepted, rep.rows_quarantined) == (2, 0)
    got = sorted(r[0] for r in _rows(store, "SELECT ts FROM transactions"))
    assert got == [dt.datetime(2011, 3, 4), dt.datetime(2011, 4, 3)]


def test_random_mixed_year_widths_match_python_strptime(tmp_path):
    """200 random timestamps written with %Y or %y (unpadded month and day, as spreadsheets
    export them) load to exactly the values Python's own strptime reads."""
    rng = random.Random(12)
    lines, want = ["InvoiceNo,CustomerID,InvoiceDate,Amount"], {}
    start = dt.datetime(1970, 1, 1)
    for i in range(200):
        ts = start + dt.timedelta(minutes=rng.randrange(54 * 365 * 24 * 60))
        fmt = "%m/%d/%Y %H:%M" if rng.random() < 0.5 else "%m/%d/%y %H:%M"
        text = f"{ts.month}/{ts.day}/{ts.strftime(fmt.split(' ')[0][-2:])} {ts:%H:%M}"
        want[str(i)] = dt.datetime.strptime(text, fmt)
        lines.append(f"{i},C{i % 7},{text},1")
    store, rep = _load(tmp_path, "\n".join(lines) + "\n", extra=MIXED)
    assert (rep.rows_accepted, rep.rows_quarantined) == (200, 0)
    got = {t: ts for t, ts in _rows(store, "SELECT transaction_id, ts FROM transactions")}
    assert got == want


def test_text_cleaning_with_a_column_named_like_its_helper(tmp_path):
    """The cleaned rows carry one helper column per text column (whether its value is its
    own trim); a source column of that name is read as itself. Padded tokens are missing,
    padded and non-breaking-space ids are trimmed, a settled id is kept as it is."""
    toml = TX_TOML.replace('customer_id = "CustomerID"', 'customer_id = "_sf_settled_0"')
    csv_text = ("InvoiceNo,_sf_settled_0,InvoiceDate,Amount\n"
                "1,C1,2024-01-01 10:00:00,10\n"
                "2,  C2 ,2024-01-02 10:00:00,20\n"
                "3, N/A ,2024-01-03 10:00:00,30\n"
                "4,\u00a0C4,2024-01-04 10:00:00,40\n"
                "5,NA,2024-01-05 10:00:00,50\n")
    store, report = _load(tmp_path, csv_text, toml=toml)
    assert report.rows_accepted == 5 and report.rows_anonymous == 2
    assert _rows(store, "SELECT transaction_id, customer_id FROM transactions ORDER BY 1") == [
        ("1", "C1"), ("2", "C2"), ("3", None), ("4", "C4"), ("5", None)]


def test_a_two_digit_year_under_iso_dates_gets_a_hint(tmp_path):
    # the default formats are ISO: '24-01-05' reads as year 24, quarantined as implausible;
    # the reason says what to do (a format with %y), not only "before 1900"
    text = ("InvoiceNo,CustomerID,InvoiceDate,Amount\n"
            "1,C1,24-01-05,5\n"
            "2,C1,1850-01-05,5\n"
            "3,C1,2024-01-05,5\n")
    store, rep = _load(tmp_path, text)
    assert rep.rows_read == 3 and rep.rows_accepted == 1 and rep.rows_quarantined == 2
    got = dict(_rows(store, "SELECT CAST(row_number AS VARCHAR), reason FROM quarantine "
                            "WHERE rule = 'implausible_date' ORDER BY row_number"))
    assert got["1"] == ("0024-01-05 is before 1900-01-01: a two-digit year? add a format with "
                        "%y to date_formats (docs/data.md)")
    assert got["2"] == "1850-01-05 is before 1900-01-01"


def test_iso_dates_honour_the_time_zone_unless_the_value_names_its_own(tmp_path):
    # ISO 8601 (date_formats = []) under timezone = America/New_York (UTC-4 in May, -5 in
    # March): a date alone and a naive timestamp are local, so both move by the zone's offset
    # (a date's day, '-31', is no UTC offset); a value ending in Z, UTC, GMT or an offset
    # (also +hh:mm:ss) is converted by its own zone, never shifted a second time
    text = ("InvoiceNo,CustomerID,InvoiceDate,Amount\n"
            "1,C1,2024-05-31,1\n"
            "2,C1,2024-05-31 00:00:00,1\n"
            "3,C1,2024-03-01,1\n"
            "4,C1,2024-05-12 14:03:00 UTC,1\n"
            "5,C1,2024-05-12T14:03:00 gmt,1\n"
            "6,C1,2024-05-12T14:03:00Z,1\n"
            "7,C1,2024-05-12 14:03:00+02:00:00,1\n"
            "8,C1,2024-05-12 14:03:00-0530,1\n"
            "9,C1,2024-5-3,1\n"
            "10,C1,2024-05-12 14:03:00 +0200,1\n"  # a space before the offset
            "11,C1,2024-05-12 14:03:00 -05:30,1\n")
    extra = 'date_formats = []\ntimezone = "America/New_York"'
    store, rep = _load(tmp_path, text, extra=extra)
    assert rep.rows_accepted == 11
    got = dict(_rows(store, "SELECT transaction_id, strftime(ts, '%Y-%m-%d %H:%M') "
                            "FROM transactions"))
    assert got == {"1": "2024-05-31 04:00", "2": "2024-05-31 04:00", "3": "2024-03-01 05:00",
                   "4": "2024-05-12 14:03", "5": "2024-05-12 14:03", "6": "2024-05-12 14:03",
                   "7": "2024-05-12 12:03", "8": "2024-05-12 19:33", "9": "2024-05-03 04:00",
                   "10": "2024-05-12 12:03", "11": "2024-05-12 19:33"}


def test_unix_time_is_read_with_the_epoch_format(tmp_path):
    # date_formats "%s": seconds since 1970-01-01 UTC (a fraction allowed), whatever the
    # source's time zone; without it such values are unparseable with a hint
    expected = dt.datetime(2024, 5, 12, 14, 3, tzinfo=dt.UTC)
    stamp = int(expected.timestamp())
    text = ("InvoiceNo,CustomerID,InvoiceDate,Amount\n"
            f"1,C1,{stamp},1\n"
            f"2,C1,{stamp}.5,1\n"
            "3,C1,2024-05-31 10:00:00,1\n"
            "4,C1,12:00,1\n")
    extra = 'date_formats = ["%Y-%m-%d %H:%M:%S", "%s"]\ntimezone = "America/New_York"'
    store, rep = _load(tmp_path, text, extra=extra)
    assert rep.rows_accepted == 3 and rep.rows_quarantined == 1
    got = dict(_rows(store, "SELECT transaction_id, strftime(ts, '%Y-%m-%d %H:%M:%S.%f') "
                            "FROM transactions"))
    assert got == {"1": "2024-05-12 14:03:00.000000", "2": "2024-05-12 14:03:00.500000",
                   "3": "2024-05-31 14:00:00.000000"}  # the local time moved to UTC
    store, rep = _load(tmp_path, text, extra='date_formats = ["%Y-%m-%d %H:%M:%S"]')
    assert rep.rows_accepted == 1
    reasons = [r[0] for r in _rows(store, "SELECT reason FROM quarantine ORDER BY row_number")]
    assert reasons[0] == (f"'{stamp}' does not match the accepted formats (%Y-%m-%d %H:%M:%S); "
                          "Unix time? add '%s' (seconds since 1970) to date_formats")
    assert "Unix time" not in reasons[2]


def test_clock_changes_read_as_documented(tmp_path):
    # docs/data.md, timezone: the skipped spring hour takes the offset before the change, the
    # repeated autumn hour is the second (standard-time) one
    text = ("InvoiceNo,CustomerID,InvoiceDate,Amount\n"
            "1,C1,2023-03-26 02:45:00,1\n"
            "2,C1,2023-10-29 02:30:00,1\n"
            "3,C1,2023-10-29 01:30:00,1\n")
    store, rep = _load(tmp_path, text, extra='timezone = "Europe/Berlin"')
    assert rep.rows_accepted == 3
    got = dict(_rows(store, "SELECT transaction_id, strftime(ts, '%Y-%m-%d %H:%M') FROM transactions"))
    assert got == {"1": "2023-03-26 01:45", "2": "2023-10-29 01:30", "3": "2023-10-28 23:30"}


def test_percent_s_also_reads_a_fraction_of_a_second(tmp_path):
    # docs/data.md, date_formats: %S takes one to six digits after a point (DuckDB's %f);
    # seven digits, a bare point or a decimal comma are unparseable_date (the first with the
    # ISO 8601 hint, which reads it)
    text = ("InvoiceNo,CustomerID,InvoiceDate,Amount\n"
            "1,C1,2024-05-31 12:00:00.123,1\n"
            "2,C1,2024-05-31 12:00:00,1\n"
            "3,C1,2024-05-31 12:00:00.5,1\n"
            "4,C1,2024-05-31 12:00:00.123456,1\n"
            "5,C1,2024-05-31 12:00:00.1234567,1\n"
            "6,C1,2024-05-31 12:00:00.,1\n"
            '7,C1,"2024-05-31 12:00:00,25",1\n')
    extra = 'date_formats = ["%Y-%m-%d %H:%M:%S"]\ntimezone = "Europe/Berlin"'
    store, rep = _load(tmp_path, text, extra=extra)
    assert rep.rows_accepted == 4 and rep.rows_quarantined == 3
    got = dict(_rows(store, "SELECT transaction_id, strftime(ts, '%Y-%m-%d %H:%M:%S.%f') "
                            "FROM transactions"))
    assert got == {"1": "2024-05-31 10:00:00.123000", "2": "2024-05-31 10:00:00.000000",
                   "3": "2024-05-31 10:00:00.500000", "4": "2024-05-31 10:00:00.123456"}
    reasons = dict(_rows(store, "SELECT row_number, reason FROM quarantine "
                                "WHERE rule = 'unparseable_date'"))
    assert sorted(reasons) == [5, 6, 7]
    assert reasons[5] == ("'2024-05-31 12:00:00.1234567' does not match the accepted formats "
                          "(%Y-%m-%d %H:%M:%S); it is valid ISO 8601: date_formats = [] reads "
                          "ISO 8601 (Z, offsets, fractions of a second)")


def test_an_excel_serial_date_is_quarantined_with_a_hint(tmp_path):
    # a date column exported as Excel's day numbers (45292 is 2024-01-01, days since
    # 1899-12-30): unparseable, with a hint naming it, under ISO 8601 and under formats; a
    # number of another size gets no such hint
    assert dt.date(1899, 12, 30) + dt.timedelta(days=45292) == dt.date(2024, 1, 1)
    text = ("InvoiceNo,CustomerID,InvoiceDate,Amount\n1,C1,45292,1\n2,C1,45292.5,1\n"
            "3,C1,2024-05-31,1\n4,C1,123,1\n")
    hint = "; an Excel serial date (days since 1899-12-30)? format the column as a date before exporting"
    for formats in ("[]", '["%Y-%m-%d", "%d.%m.%Y"]'):
        store, rep = _load(tmp_path, text, extra=f"date_formats = {formats}")
        assert rep.rows_accepted == 1 and rep.rows_quarantined == 3
        reasons = [r[0] for r in _rows(store, "SELECT reason FROM quarantine ORDER BY row_number")]
        shown = "ISO 8601" if formats == "[]" else "%Y-%m-%d, %d.%m.%Y"
        assert reasons[:2] == [f"'{v}' does not match the accepted formats ({shown}){hint}"
                               for v in ("45292", "45292.5")]
        assert "Excel" not in reasons[2]
