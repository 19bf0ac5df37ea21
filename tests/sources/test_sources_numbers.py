"""Numbers of a source: thousands separators only between groups of three digits, none of the
extras DuckDB's cast reads (``1_000``, ``+-5``), and no value a double would change
(``imprecise_*``). Each case is checked against the values written here and against an
independent reading in Python (``re`` and ``decimal.Decimal``); counts reconcile with the
rows of the file, counted from the file."""

from __future__ import annotations

import re
import warnings
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sources_project import NOW

from segflow.config import Settings
from segflow.errors import ConfigError
from segflow.sources import ingest
from segflow.store import Store

TOML = """
[[sources]]
name = "orders"
table = "transactions"
path = "{path}"
{options}
[sources.columns]
transaction_id = "order_id"
customer_id = "customer_id"
ts = "order_date"
amount = "{amount}"
{extra}
"""
IMPRECISE = " has more significant digits than a double keeps exactly (15): as a double it would be "


def _load(tmp_path: Path, amounts: list[str], *, options: str = "", sep: str = ",",
          amount: str = "amount", extra_cols: dict[str, list[str]] | None = None,
          extra_map: str = ""):
    """Ingest a CSV of one order per amount; returns (store, report frame, data rows counted
    in the written file)."""
    extra_cols = extra_cols or {}
    header = ["order_id", "customer_id", "order_date", "amount", *extra_cols]
    lines = [sep.join(header)]
    for i, a in enumerate(amounts):
        lines.append(sep.join([str(i + 1), f"C{i}", "2024-01-02", a,
                               *(vals[i] for vals in extra_cols.values())]))
    path = tmp_path / "orders.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "segflow.toml").write_text(TOML.format(
        path="orders.csv", options=f"options = {options}" if options else "", amount=amount,
        extra=extra_map))
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = ingest(store, Settings.load(tmp_path), tmp_path, now=NOW).to_pandas()
    counted = len(path.read_text(encoding="utf-8").splitlines()) - 1
    return store, report, counted


def _outcome(store: Store) -> tuple[dict[int, float], dict[int, tuple[str, str]]]:
    """(row -> stored amount, row -> (rule, reason))."""
    kept = store.sql("SELECT source_row, amount FROM transactions").to_pandas()
    quar = store.sql("SELECT row_number, rule, reason FROM quarantine").to_pandas()
    return (dict(zip(kept.source_row, kept.amount, strict=True)),
            {r: (rule, why) for r, rule, why in quar.itertuples(index=False)})


def _reconciles(store: Store, report, counted: int) -> None:
    accepted = store.sql("SELECT count(*) FROM transactions").column(0)[0].as_py()
    quarantined = store.sql("SELECT count(*) FROM quarantine").column(0)[0].as_py()
    assert accepted + quarantined == counted
    assert report.rows_read.tolist() == [counted]
    assert report.rows_accepted.tolist() == [accepted]
    assert report.rows_quarantined.tolist() == [quarantined]


# -- an independent reading ---------------------------------------------------------------
def _reference(text: str, decimal: str = ".", thousands: str | None = None):
    """The number a text stands for (Decimal), or None when it is none, by the documented
    grammar; written with Python's ``re`` (not the SQL of the module)."""
    d, t = re.escape(decimal), re.escape(thousands) if thousands else None
    whole = rf"(?:\d{{1,3}}(?:{t}\d{{3}})+|\d+)" if t else r"\d+"
    if not re.fullmatch(rf"[+-]?(?:{whole}(?:{d}\d*)?|{d}\d+)(?:[eE][+-]?\d+)?", text, re.ASCII):
        return None
    plain = text.replace(thousands, "") if thousands else text
    return Decimal(plain.replace(decimal, "."))


def _exact(value: Decimal) -> bool:
    """Whether the double nearest ``value`` is ``value`` at its own decimal places (those up
    to its last nonzero digit after the point, none for a whole number), by Decimal."""
    if value == 0:
        return True
    places = max(-value.normalize().as_tuple().exponent, 0)
    double = float(value)
    if double == 0:
        return False
    return Decimal(double).quantize(Decimal(1).scaleb(-places)) == value


def _check_against_reference(texts: list[str], kept: dict[int, float],
                             quar: dict[int, tuple[str, str]], **fmt) -> None:
    for row, text in enumerate(texts, start=1):
        ref = _reference(text, **fmt)
        if ref is None or abs(ref) >= Decimal("1e20"):
            assert quar[row][0] == "non_numeric_amount", text
        elif not _exact(ref):
            assert quar[row][0] == "imprecise_amount", text
        else:
            assert kept[row] == float(ref), text


# -- defect A: thousands separators ------------------------------------------------------
DECIMAL_COMMA = [
    ("1.234,50", 1234.5), ("1.234.567,89", 1234567.89), ("1234,5", 1234.5), ("-1.234", -1234.0),
    (",5", 0.5), ("12", 12.0), ("999.999,999", 999999.999), ("+1.000", 1000.0),
    ("1.5", None), ("12.34", None), ("1.2.3", None), ("1234.567,8", None), ("1.23,4", None),
    ("1..234", None), (".234", None), ("1.234.56", None), ("4.25", None), ("1,2,3", None),
    ("1.234,5.6", None), ("1_234,5", None),
]


def test_thousands_separator_only_between_groups_of_three(tmp_path):
    texts = [t for t, _ in DECIMAL_COMMA]
    store, report, counted = _load(tmp_path, texts, sep=";",
                                   options='{ delimiter = ";", decimal = ",", thousands = "." }')
    kept, quar = _outcome(store)
    assert counted == len(DECIMAL_COMMA) == 20
    why = " is not a number with decimal ',' and thousands '.' (between groups of three digits)"
    for row, (text, want) in enumerate(DECIMAL_COMMA, start=1):
        if want is None:
            assert quar[row] == ("non_numeric_amount", f"'{text}'{why}")
        else:
            assert kept[row] == want
    assert sorted(kept) == [i for i, (_, w) in enumerate(DECIMAL_COMMA, 1) if w is not None]
    _check_against_reference(texts, kept, quar, decimal=",", thousands=".")
    _reconciles(store, report, counted)


COMMA_THOUSANDS = [("1,234.50", 1234.5), ("1,234", 1234.0), ("12,345,678.9", 12345678.9),
                   ("1234.5", 1234.5), ("1,5", None), ("12,34.5", None), ("1,2345", None),
                   ("1,234,5", None)]


def test_comma_thousands_with_decimal_point(tmp_path):
    texts = [t for t, _ in COMMA_THOUSANDS]
    # quoted: the separator is the CSV delimiter
    store, report, counted = _load(tmp_path, [f'"{t}"' for t in texts],
                                   options='{ thousands = "," }')
    kept, quar = _outcome(store)
    why = " is not a number with decimal '.' and thousands ',' (between groups of three digits)"
    for row, (text, want) in enumerate(COMMA_THOUSANDS, start=1):
        if want is None:
            assert quar[row] == ("non_numeric_amount", f"'{text}'{why}")
        else:
            assert kept[row] == want
    _check_against_reference(texts, kept, quar, thousands=",")
    _reconciles(store, report, counted)


def test_decimal_comma_without_thousands_still_rejects_a_point(tmp_path):
    texts = ["4,25", "4.25", "1.234,5", "-0,5"]
    store, report, counted = _load(tmp_path, texts, sep=";",
                                   options='{ delimiter = ";", decimal = "," }')
    kept, quar = _outcome(store)
    assert kept == {1: 4.25, 4: -0.5}
    why = " is not a number with decimal ','"
    assert quar == {2: ("non_numeric_amount", f"'4.25'{why}"),
                    3: ("non_numeric_amount", f"'1.234,5'{why}")}
    _check_against_reference(texts, kept, quar, decimal=",")
    _reconciles(store, report, counted)


@pytest.mark.parametrize("options", ['{ decimal = ",", thousands = "," }',
                                     '{ thousands = "12" }', '{ decimal = "1" }'])
def test_unusable_separators_are_config_errors(tmp_path, options):
    with pytest.raises(ConfigError, match="option|options"):
        _load(tmp_path, ["1"], options=options)


# -- defect B: what DuckDB's cast reads besides numbers ----------------------------------
def test_underscores_and_doubled_signs_are_not_numbers(tmp_path):
    texts = ["1_5", "1_000", "+-5", "-+5", "10", "-2.5", "+.5", "5.", "1.5e3", "2E-2", "inf",
             "NaN", "0x10", "1 000", "١٢"]
    extra = {"qty": ["1"] * 4 + ["1_0", "2", "1", "1", "1", "1", "1", "1", "1", "1", "1"],
             "price": ["1"] * 5 + ["+-1", "1", "1", "1", "1", "1", "1", "1", "1", "1"]}
    store, report, counted = _load(tmp_path, texts, extra_cols=extra,
                                   extra_map='quantity = "qty"\nunit_price = "price"')
    kept, quar = _outcome(store)
    assert kept == {7: 0.5, 8: 5.0, 9: 1500.0, 10: 0.02}
    amount = {r: ("non_numeric_amount", f"'{t}' is not a number")
              for r, t in enumerate(texts, 1) if r in (1, 2, 3, 4, 11, 12, 13, 14, 15)}
    assert quar == {**amount, 5: ("non_numeric_quantity", "'1_0' is not a number"),
                    6: ("non_numeric_unit_price", "'+-1' is not a number")}
    _reconciles(store, report, counted)


def test_an_expression_reads_its_columns_by_the_same_rules(tmp_path):
    texts = ["2", "3", "2", "1"]
    extra = {"qty": ["1_0", "2", "1.5", "1"], "price": ["4", "2.5", "3", "1000000000000000.01"]}
    store, report, counted = _load(tmp_path, texts, amount="= qty * price", extra_cols=extra)
    kept, quar = _outcome(store)
    assert kept == {2: 5.0, 3: 4.5}
    assert quar == {
        1: ("non_numeric_amount", "'1_0, 4' is not a number"),
        4: ("imprecise_amount", f"'1000000000000000.01'{IMPRECISE}1000000000000000.00"),
    }
    _reconciles(store, report, counted)


# -- defect C: values a double would change ----------------------------------------------
PRECISION = [
    ("1000000000000000.01", "1000000000000000.00"),
    ("999999999999999.99", "1000000000000000.00"),
    ("-1000000000000000.05", "-1000000000000000.00"),
    ("12345678901234567.89", "12345678901234568.00"),
    ("99999999999999.99", "99999999999999.98"),
    ("9007199254740993", "9007199254740992"),
    ("12345678901234567000", "12345678901234567168"),
    ("1.2345678901234567891e5", "123456.78901234567456"),
    ("0.1", 0.1), ("19.99", 19.99), ("-0.01", -0.01), ("99999999999999.9", 99999999999999.9),
    ("123456789012345", 123456789012345.0), ("0.30000000000000004", 0.30000000000000004),
    ("59.97000000000001", 59.97000000000001), ("19.990000000000000000", 19.99),
    ("1000000000000000.10", 1000000000000000.1), ("5e13", 5e13), ("1.5e3", 1500.0),
    ("0.000001", 1e-06), ("1000000000000000", 1e15), ("0.00000000000000000000", 0.0),
]


def test_values_a_double_would_change_are_quarantined(tmp_path):
    texts = [t for t, _ in PRECISION]
    store, report, counted = _load(tmp_path, texts + ["1e-400"])
    kept, quar = _outcome(store)
    for row, (text, want) in enumerate(PRECISION, start=1):
        if isinstance(want, str):
            assert quar[row] == ("imprecise_amount", f"'{text}'{IMPRECISE}{want}")
            assert Decimal(want) != Decimal(text)
        else:
            assert kept[row] == want
            assert Decimal(kept[row]).quantize(Decimal(text).normalize()) == Decimal(text)
    assert quar[len(texts) + 1] == ("imprecise_amount",
                                    "'1e-400' is too small for a double: it would be 0")
    assert len(quar) == 9
    _check_against_reference(texts + ["1e-400"], kept, quar)
    _reconciles(store, report, counted)


def test_decimal_comma_values_are_judged_on_their_digits(tmp_path):
    texts = ["1.000.000.000.000.000,01", "999.999.999.999,99", "0,1"]
    store, report, counted = _load(tmp_path, texts, sep=";",
                                   options='{ delimiter = ";", decimal = ",", thousands = "." }')
    kept, quar = _outcome(store)
    assert kept == {2: 999999999999.99, 3: 0.1}
    assert quar == {1: ("imprecise_amount",
                        f"'1.000.000.000.000.000,01'{IMPRECISE}1000000000000000.00")}
    _check_against_reference(texts, kept, quar, decimal=",", thousands=".")
    _reconciles(store, report, counted)


def test_typed_decimal_and_integer_columns(tmp_path):
    amounts = ["12345678901234567.890", "1000000000000000.010", "19.990", "-999999999999999.990",
               "123456789012.345", "0.100"]
    quantities = [1, 1, 9007199254740993, 2, 3, 4]
    table = pa.table({
        "order_id": [str(i + 1) for i in range(6)], "customer_id": list("ABCDEF"),
        "order_date": ["2024-01-02"] * 6,
        "amount": pa.array([Decimal(a) for a in amounts], pa.decimal128(20, 3)),
        "wide": pa.array([Decimal("0.1")] * 6, pa.decimal128(38, 18)),
        "qty": pa.array(quantities, pa.int64()),
        "double": pa.array([1e15 + 0.125, 0.1, 3.0, 4.0, 5.0, 6.0], pa.float64()),
    })
    pq.write_table(table, tmp_path / "orders.parquet")
    toml = TOML.format(path="orders.parquet", options="", amount="amount",
                       extra='quantity = "qty"\nunit_price = "wide"')
    (tmp_path / "segflow.toml").write_text(toml)
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = ingest(store, Settings.load(tmp_path), tmp_path, now=NOW).to_pandas()
    kept, quar = _outcome(store)
    assert kept == {5: 123456789012.345, 6: 0.1}
    prices = store.sql("SELECT unit_price FROM transactions").column(0).to_pylist()
    assert prices == [0.1, 0.1]  # decimal(38, 18): 0.100000000000000000 is 0.1
    assert quar == {
        1: ("imprecise_amount", f"'12345678901234567.890'{IMPRECISE}12345678901234568.00"),
        2: ("imprecise_amount", f"'1000000000000000.010'{IMPRECISE}1000000000000000.00"),
        3: ("imprecise_quantity", f"'9007199254740993'{IMPRECISE}9007199254740992"),
        4: ("imprecise_amount", f"'-999999999999999.990'{IMPRECISE}-1000000000000000.00"),
    }
    for row, text in enumerate(amounts, start=1):
        assert (row in kept) == (_exact(Decimal(text)) and _exact(Decimal(quantities[row - 1])))
    _reconciles(store, report, pq.read_metadata(tmp_path / "orders.parquet").num_rows)
    # a float column is a double already: taken as it is
    (tmp_path / "segflow.toml").write_text(toml.replace('amount = "amount"', 'amount = "double"')
                                           .replace('quantity = "qty"\n', ""))
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest(store, Settings.load(tmp_path), tmp_path, now=NOW)
    kept, quar = _outcome(store)
    assert kept[1] == 1e15 + 0.125 and len(kept) == 6 and quar == {}


def test_a_space_as_thousands_separator_also_reads_no_break_spaces(tmp_path):
    # French settings write 1 234,56 with a no-break space (U+00A0) or, lately, a narrow
    # one (U+202F); with thousands = " " they were quarantined under a reason that reads
    # exactly like a valid number ("'1 234,56' is not a number with ... thousands ' '")
    texts = ["1 234,56", "1\u00a0234,56", "1\u202f234\u202f567,8", "-12\u00a0345", "1\u00a0234 567",
             "12\u00a034,5", "1\u2009234,56", "1 2345"]
    store, report, counted = _load(tmp_path, texts, sep=";",
                                   options='{ delimiter = ";", decimal = ",", thousands = " " }')
    _reconciles(store, report, counted)
    kept, quar = _outcome(store)
    assert kept == {1: 1234.56, 2: 1234.56, 3: 1234567.8, 4: -12345.0, 5: 1234567.0}
    assert {row: rule for row, (rule, _) in quar.items()} == {
        6: "non_numeric_amount", 7: "non_numeric_amount", 8: "non_numeric_amount"}


def test_no_number_reasons_say_what_the_form_shows(tmp_path):
    """Currency signs and codes, accounting negatives, trailing minus signs and a decimal
    comma or grouped digits in a file whose options do not say so are no numbers, as before;
    their reasons now say why. A form that shows nothing gets no advice."""
    texts = ["€12.50", "USD 12.50", "12.50 EUR", "$1", "(12.50)", "12.50-", "12,50",
             "1.234,56", "1,234.50", "1,234", "12 5", "7"]
    store, report, counted = _load(tmp_path, texts, sep=";")
    kept, quar = _outcome(store)
    assert kept == {12: 7.0}
    money = ": a currency sign or code: export plain numbers (the currency is [project] currency)"
    comma = (": a decimal comma? set options.decimal = ',' (and thousands = '.' for 1.234,56; "
             "docs/data.md, Numbers)")
    grouped = ": grouped digits? set options.thousands = ',' (docs/data.md, Numbers)"
    advice = [money] * 4 + [": an accounting negative? write (12.50) as -12.50",
                            ": a trailing minus sign? write 12.50- as -12.50", comma, comma,
                            grouped, grouped, ""]
    assert quar == {r: ("non_numeric_amount", f"'{t}' is not a number{a}")
                    for r, (t, a) in enumerate(zip(texts[:-1], advice, strict=True), 1)}
    _reconciles(store, report, counted)
