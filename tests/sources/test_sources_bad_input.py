"""Bad input gets a clear InputError naming file, row and column, and the store is unchanged."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from sources_project import NOW, ORDERS_TOML

from segflow.config import Settings
from segflow.errors import ConfigError, InputError
from segflow.sources import ingest
from segflow.store import Store

TOML = ORDERS_TOML
GOOD = "order_id,customer,date,amount,note\n1,A,2024-01-02,10.5,ok\n2,B,2024-01-03,7,fine\n"


def _project(tmp_path: Path, data: bytes | str, toml: str = TOML, name: str = "orders.csv") -> Path:
    (tmp_path / "segflow.toml").write_text(toml)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    (tmp_path / name).write_bytes(payload)
    return tmp_path


def _run(project: Path, store: Store | None = None):
    store = store or Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return store, ingest(store, Settings.load(project), project, now=NOW)


def _rows(store: Store, table: str) -> int:
    return store.sql(f"SELECT count(*) FROM {table}").column(0)[0].as_py()


@pytest.mark.parametrize(
    ("data", "message", "row"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "binary", None),
    ],
)
def test_unreadable_files(tmp_path, data, message, row):
    project = _project(tmp_path, data)
    with pytest.raises(InputError, match=message) as info:
        _run(project)
    assert info.value.file == "orders.csv"
    assert info.value.row == row
    assert "orders.csv" in str(info.value)


def test_missing_mapped_column_names_file_and_column(tmp_path):
    project = _project(tmp_path, GOOD.replace("customer", "client"))
    with pytest.raises(InputError) as info:
        _run(project)
    err = info.value
    assert err.file == "orders.csv" and err.column == "customer" and err.row == 0
    assert "client" in str(err)  # lists the columns that are there
    assert str(err).startswith("file orders.csv, header, column 'customer': ")


def test_missing_file(tmp_path):
    (tmp_path / "segflow.toml").write_text(TOML)
    with pytest.raises(InputError, match="no file matches"):
        _run(tmp_path)


@pytest.mark.parametrize("url", ["hdfs://localhost:9000/lake/orders.csv", "s3a://bucket/orders/"])
def test_a_url_path_says_the_duckdb_ingest_reads_local_files(tmp_path, url):
    (tmp_path / "segflow.toml").write_text(TOML.replace('path = "orders.csv"', f'path = "{url}"'))
    with pytest.raises(InputError) as info:
        _run(tmp_path)
    assert str(info.value) == (f"source 'orders': {url!r} is a URL; the DuckDB ingest reads local "
                               "files, folders and globs (a URL Spark reads: [engine] kind = "
                               '"spark", docs/scale.md)')


def test_nothing_written_when_one_file_is_bad(tmp_path):
    toml = TOML + """
[[sources]]
name = "more"
table = "transactions"
path = "more.csv"
[sources.columns]
transaction_id = "order_id"
ts = "date"
amount = "amount"
"""
    project = _project(tmp_path, GOOD, toml)
    (project / "more.csv").write_text("order_id,date\n1,2024-01-01\n")  # no amount column
    store = Store(":memory:")
    with pytest.raises(InputError, match="amount"):
        _run(project, store)
    assert _rows(store, "transactions") == 0 and _rows(store, "loads") == 0


def test_crash_mid_load_leaves_store_unchanged(tmp_path, monkeypatch):
    project = _project(tmp_path, GOOD)
    store, _ = _run(project)
    before = {t: _rows(store, t) for t in ("transactions", "quarantine", "loads")}
    (project / "orders.csv").write_text(GOOD + "3,C,2024-01-04,5,new\n")
    from segflow.sources import _load

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(_load, "_count", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        _run(project, store)
    assert {t: _rows(store, t) for t in before} == before
    monkeypatch.undo()
    _, report = _run(project, store)  # the retry loads the new row only
    assert report.to_pandas().rows_accepted.tolist() == [1]


def test_ten_megabyte_field_is_quarantined_not_fatal(tmp_path):
    big = "x" * (10 * 1024 * 1024)
    project = _project(tmp_path, GOOD + f'3,C,2024-01-04,5,"{big}"\n4,{big},2024-01-04,5,n\n')
    store, report = _run(project)
    q = store.sql("SELECT row_number, rule, column_name, length(raw_row) AS n FROM quarantine").to_pandas()
    assert q.row_number.tolist() == [4] and q.rule.tolist() == ["field_too_long"]
    assert q.column_name.tolist() == ["customer"]
    assert q.n[0] > 10 * 1024 * 1024  # raw row kept whole
    # the long text in an unmapped column does not matter: row 3 is accepted
    assert report.to_pandas().rows_accepted.tolist() == [3]


def test_formula_is_flagged_or_quarantined(tmp_path):
    data = GOOD + '3,"=HYPERLINK(""http://evil"",""x"")",2024-01-04,5,n\n'
    store, report = _run(_project(tmp_path, data))
    assert "row 3, column 'customer'" in report.warnings[0]
    flags = store.sql("SELECT row_number, rule, value FROM ingest_flags WHERE rule = 'formula_in_text'").to_pandas()
    assert flags.row_number.tolist() == [3] and flags.value[0].startswith("=HYPERLINK(")
    toml = TOML.replace('path = "orders.csv"', 'path = "orders.csv"\nformulas = "quarantine"')
    store, report = _run(_project(tmp_path, data, toml))
    assert report.rules().rule.tolist() == ["formula_in_text"]


def test_wrong_types_are_quarantined_with_the_value(tmp_path):
    data = GOOD + ("3,C,not a date,5,n\n4,D,2024-01-05,12 EUR,n\n5,E,2024-01-05,nan,n\n6,F,2024-01-05,inf,n\n"
                   "7,G,2024-01-05,1e20,n\n8,H,2024-01-05,-2.5e21,n\n9,I,2024-01-05,99999999999999999999,n\n"
                   "10,J,2024-01-05,5e13,n\n")
    store, _ = _run(_project(tmp_path, data))
    q = store.sql("SELECT row_number, rule, column_name, reason FROM quarantine ORDER BY 1").to_pandas()
    assert q.rule.tolist() == ["unparseable_date"] + ["non_numeric_amount"] * 6
    assert q.column_name.tolist() == ["date"] + ["amount"] * 6
    assert "'12 EUR'" in q.reason[1]
    assert q.reason[4] == "'1e20' is beyond +/-1e+20" and "'-2.5e21' is beyond" in q.reason[5]
    # 10^20 - 1 is 1e20 as a double: beyond too; 5e13 (a huge but real amount) is accepted
    assert q.row_number.tolist()[-1] == 9
    kept = store.sql("SELECT max(amount) FROM transactions").column(0)[0].as_py()
    assert kept == 5e13


def test_unknown_time_zone_and_bad_expression_are_config_errors(tmp_path):
    toml = TOML.replace('path = "orders.csv"', 'path = "orders.csv"\ntimezone = "Mars/Olympus"')
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        _run(_project(tmp_path, GOOD, toml))
    toml = TOML.replace('amount = "amount"', 'amount = "= amount * (("')
    with pytest.raises(ConfigError, match="cannot parse expression"):
        _run(_project(tmp_path, GOOD, toml))


def test_cli_prints_one_line_error(tmp_path):
    from typer.testing import CliRunner

    from segflow.cli import app

    # a header only, but not the source's: a wrong file, not an empty month
    project = _project(tmp_path, b"order_id,client,date,amount\n")
    result = CliRunner().invoke(app, ["ingest", "--project", str(project)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(
        "error: file orders.csv, header, column 'customer': "), result.output


def test_text_renamed_parquet(tmp_path):
    toml = TOML.replace('path = "orders.csv"', 'path = "orders.parquet"')
    project = _project(tmp_path, GOOD, toml, name="orders.parquet")
    with pytest.raises(InputError, match="cannot read as Parquet") as info:
        _run(project)
    assert info.value.file == "orders.parquet"


def test_excel_that_is_not_a_workbook(tmp_path):
    toml = TOML.replace('path = "orders.csv"', 'path = "orders.xlsx"')
    project = _project(tmp_path, GOOD, toml, name="orders.xlsx")
    with pytest.raises(InputError, match="Excel"):
        _run(project)


def test_formula_rule_agrees_with_the_csv_writer():
    """Ingest's formula flag (SQL) and the CSV writer's neutralisation (Arrow) judge alike:
    full-width and small signs, and signs after leading white space, are formulas; signed
    numbers and plain text are not (the writer also prefixes signed numbers, by design)."""
    import duckdb
    import pyarrow as pa

    from segflow._csv import formula_cells
    from segflow.sources._rules import formula_condition

    formulas = ["=1+1", "@SUM(1)", "\t=1", "\r=1", "-2+3+cmd", " =1", "\u3000=1", "\u00a0@x",
                "\uff1dcmd", "\uff1dcmd@example.com", "\ufe661", "\uff0d2+3", " -2+cmd",
                "\nfoo", "\u200b=1", "\ufeff@x", "\u2060-2+cmd", "\u2003=1"]
    plain = ["plain", " plain", "12345", "\u00c9mile", "\u65e5\u672c", "\uff21bc", "a=b", "",
             "\u200bplain"]
    numbers = ["-12.5", "+44 20 7946 0000", "\uff0b12", "  -5"]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, v VARCHAR)")
    values = [*formulas, *plain, *numbers, None]
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    got = [r[0] for r in con.execute(f"SELECT {formula_condition('v')} FROM t ORDER BY i").fetchall()]
    assert got == [True] * len(formulas) + [False] * (len(plain) + len(numbers) + 1)
    writer = formula_cells(pa.array(values, pa.string())).to_pylist()
    assert writer[:len(formulas) + len(plain)] == got[:len(formulas) + len(plain)]


@pytest.mark.parametrize(("fmt", "names"), [
    (fmt, names) for fmt in ("csv", "jsonl", "parquet", "xlsx")
    for names in (("Amount", "amount"), ("amount", "amount"))
    if not (fmt == "jsonl" and names[0] == names[1])])  # a JSON object holds a key once
def test_column_names_repeated_ignoring_case_are_refused(tmp_path, fmt, names):
    # SQL resolves column names ignoring case, so 'Amount' beside 'amount' was one column:
    # a CSV failed with a catalog traceback, a Parquet file or sheet loaded the first one
    # (1.5) for 'amount' (DuckDB and pandas rename an exact repeat to amount_1, amount.1)
    import openpyxl
    import pyarrow as pa
    import pyarrow.parquet as pq

    header, row = ["order_id", "customer", "date", *names], ["1", "A", "2024-01-02", "1.5", "2"]
    path = tmp_path / f"orders.{fmt}"
    if fmt == "csv":
        path.write_text(",".join(header) + "\n" + ",".join(row) + "\n")
    elif fmt == "jsonl":  # one object cannot repeat a key: the second spelling on line 2
        import json

        path.write_text("".join(json.dumps({**dict(zip(header[:3], row[:3], strict=True)),
                                            name: value}) + "\n"
                                for name, value in zip(names, row[3:], strict=True)))
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_arrays([pa.array([v]) for v in row], names=header), path)
    else:
        book = openpyxl.Workbook()
        book.active.append(header)
        book.active.append(row)
        book.save(path)
    (tmp_path / "segflow.toml").write_text(TOML.replace("orders.csv", path.name))
    with pytest.raises(InputError, match="column names repeat") as info:
        _run(tmp_path)
    assert info.value.file == path.name and f"{names[0]!r} / {names[1]!r}" in str(info.value)


def test_a_csv_header_repeated_but_for_spaces_names_both_as_written(tmp_path):
    """Ingest trims a CSV header before comparing names, and its message showed the trimmed
    names ('region' / 'region'), not what differs; it names them as written, as the file
    commands do."""
    path = tmp_path / "orders.csv"
    path.write_text("order_id,customer,date,amount,amount \n1,A,2024-01-02,1.5,2\n")
    (tmp_path / "segflow.toml").write_text(TOML)
    with pytest.raises(InputError, match="column names repeat") as info:
        _run(tmp_path)
    assert ("'amount' / 'amount ' (names are compared ignoring case and surrounding spaces)"
            in str(info.value))


CRM_TOML = """
[[sources]]
name = "crm"
table = "customers"
path = "crm.csv"
[sources.columns]
customer_id = "id"
first_name = "first"
Postcode = "zip"
segment_hint = "note"
"""


def test_a_mapped_name_or_address_is_refused_with_what_to_do(tmp_path):
    """The canonical customers hold no names or addresses (docs/data.md): mapping one is a
    config error that names the personal columns and says to join them by customer_id; a
    column that is neither gets the plain refusal. Nothing is stored."""
    project = _project(tmp_path, "id,first,zip,note\nC1,Ann,AB1 2CD,x\n", CRM_TOML, name="crm.csv")
    store = Store(":memory:")
    with pytest.raises(ConfigError) as info:
        _run(project, store)
    message = str(info.value)
    assert "\n" not in message
    assert "['Postcode', 'first_name', 'segment_hint'] are not columns of the canonical table 'customers'" in message
    assert "keeps no names or postal addresses (Postcode, first_name), only email and phone" in message
    assert "remove them from [sources.columns]" in message and "customer_id" in message
    assert _rows(store, "customers") == 0
    plain = CRM_TOML.replace('first_name = "first"\nPostcode = "zip"\n', "")
    with pytest.raises(ConfigError) as info:
        _run(_project(tmp_path, "id,first,zip,note\nC1,Ann,AB1 2CD,x\n", plain, name="crm.csv"))
    assert str(info.value).endswith("signup_channel, valid_from, valid_to)")
