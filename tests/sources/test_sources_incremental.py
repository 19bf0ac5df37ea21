"""Several files per source (a folder or glob), overlapping exports, max_date, check_source."""

from __future__ import annotations

import warnings

import pytest
from sources_project import NOW

from segflow.config import Settings
from segflow.sources import check_source, ingest
from segflow.store import Store

TOML = """
[[sources]]
name = "orders"
table = "transactions"
path = "exports/*.csv"
{extra}
[sources.columns]
transaction_id = "id"
customer_id = "cust"
ts = "ts"
amount = "amount"
"""
JAN = "id,cust,ts,amount\n1,a,2024-01-05,10\n2,b,2024-01-09,20\n3,a,2024-01-30,5\n"
# February's export repeats the last January order, corrects order 2, and adds two orders
FEB = "id,cust,ts,amount\n3,a,2024-01-30,5\n2,b,2024-01-09,25\n4,c,2024-02-02,7\n5,b,2024-02-03,9\n"


def _run(project, store, extra=""):
    (project / "segflow.toml").write_text(TOML.format(extra=extra))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ingest(store, Settings.load(project), project, now=NOW)


def test_glob_of_monthly_exports(tmp_path):
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "2024-01.csv").write_text(JAN)
    store = Store(":memory:")
    _run(tmp_path, store)
    (tmp_path / "exports" / "2024-02.csv").write_text(FEB)
    report = _run(tmp_path, store)
    frame = report.to_pandas().set_index("source_file")
    assert frame.loc["exports/2024-01.csv", "status"] == "unchanged"
    feb = frame.loc["exports/2024-02.csv"]
    assert (feb.rows_read, feb.rows_accepted, feb.rows_replaced, feb.rows_duplicate) == (4, 3, 1, 1)
    got = store.sql("SELECT transaction_id, amount, source_file FROM transactions ORDER BY 1").to_pandas()
    assert got.transaction_id.tolist() == ["1", "2", "3", "4", "5"]
    assert got.amount.tolist() == [10, 25, 5, 7, 9]  # order 2 corrected
    assert got.source_file.tolist()[1] == "exports/2024-02.csv"
    kinds = store.sql("SELECT kind, row_number FROM ingest_duplicates").to_pandas()
    assert kinds.values.tolist() == [["already_loaded", 1]]


def test_max_date_makes_future_reproducible(tmp_path):
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "2024-01.csv").write_text(JAN)
    report = _run(tmp_path, Store(":memory:"), 'max_date = 2024-01-10')
    assert report.rules().rule.tolist() == ["future_date"]
    assert report.to_pandas().rows_quarantined.tolist() == [1]  # 2024-01-30


def test_check_source_dry_run(tmp_path):
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "a.csv").write_text(JAN + "6,,2024-01-31,x\n7,d,2024-01-31,0\n")
    (tmp_path / "segflow.toml").write_text(TOML.format(extra=""))
    source = Settings.load(tmp_path).sources[0]
    report = check_source(source, tmp_path, n=4)
    assert report.counts == {"rows_read": 4, "rows_accepted": 3, "rows_quarantined": 1,
                             "rows_duplicate": 0}
    assert report.rejected.rule.tolist() == ["non_numeric_amount"]
    assert report.rejected.row_number.tolist() == [4]
    assert report.to_pandas().transaction_id.tolist() == ["1", "2", "3"]
    assert "CheckReport('orders'" in repr(report)
    full = check_source(source, tmp_path)
    assert full.rules == {"non_numeric_amount": 1}  # the $0 row is kept by default
    strict = check_source(source.model_copy(update={"zero_amount": "quarantine"}), tmp_path)
    assert strict.rules == {"non_numeric_amount": 1, "zero_amount": 1}
    with pytest.raises(Exception, match="no file matches"):
        check_source(source.model_copy(update={"path": "nothing/*.csv"}), tmp_path)


def test_returns_file_with_positive_refunds(tmp_path):
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "2024-01.csv").write_text(JAN)
    (tmp_path / "returns.csv").write_text("rid,cust,day,refund\nR1,a,2024-01-12,4\nR2,b,2024-01-13,-3\n")
    extra = """
[[sources]]
name = "returns"
table = "transactions"
path = "returns.csv"
[sources.columns]
transaction_id = "rid"
customer_id = "cust"
ts = "day"
amount = "= -refund"
is_return = "'true'"
"""
    (tmp_path / "segflow.toml").write_text(TOML.format(extra="") + extra)
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = ingest(store, Settings.load(tmp_path), tmp_path, now=NOW)
    got = store.sql("SELECT transaction_id, amount, is_return FROM transactions "
                    "WHERE source = 'returns'").to_pandas()
    assert got.values.tolist() == [["R1", -4.0, True]]
    # a refund already negative in the file becomes positive: a sign error, not a silent fix
    assert report.rules().rule.tolist() == ["return_sign"]


def test_force_rechecks_quarantine_when_customers_arrive(tmp_path):
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "2024-01.csv").write_text(JAN)
    (tmp_path / "crm.csv").write_text("customer_id\na\nb\n")
    crm = '\n[[sources]]\nname = "crm"\ntable = "customers"\npath = "crm.csv"\n'
    (tmp_path / "segflow.toml").write_text(TOML.format(extra="") + crm)
    store = Store(":memory:")

    def run(**kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ingest(store, Settings.load(tmp_path), tmp_path, now=NOW, **kw)

    run()
    (tmp_path / "exports" / "2024-01.csv").write_text(JAN + "9,z,2024-01-31,4\n")
    first = run().to_pandas().set_index("source")
    assert first.loc["orders", "rows_quarantined"] == 1  # z is unknown
    (tmp_path / "crm.csv").write_text("customer_id\na\nb\nz\n")
    assert run().to_pandas().set_index("source").loc["orders", "status"] == "unchanged"
    again = run(force=True).to_pandas().set_index("source").loc["orders"]
    assert (again.rows_read, again.rows_accepted, again.rows_duplicate, again.rows_released) == (4, 1, 3, 1)
    assert store.sql("SELECT count(*) FROM quarantine WHERE source = 'orders'").column(0)[0].as_py() == 0
    assert store.sql("SELECT count(*) FROM transactions").column(0)[0].as_py() == 4


LINES_TOML = """
[[sources]]
name = "till"
table = "transactions"
path = "lines.csv"
[sources.columns]
customer_id = "cust"
ts = "ts"
amount = "amount"
"""
# basket lines without an order id: rows 2 and 3 are two of the same item (not duplicates)
LINES = "cust,ts,amount\na,2024-01-05,10\nb,2024-01-09,4\nb,2024-01-09,4\nc,2024-01-30,5\n"


def _load(store, project):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = ingest(store, Settings.load(project), project, now=NOW)
    row = report.to_pandas().iloc[0]
    return (row.rows_read, row.rows_accepted, row.rows_duplicate, row.rows_replaced), report.warnings


def _lines(store):
    rows = store.sql("SELECT source_row, customer_id, amount FROM transactions ORDER BY 1, 2")
    return [tuple(r.values()) for r in rows.to_pylist()]


def test_a_grown_file_without_order_ids_adds_only_its_new_lines(tmp_path):
    """Transaction lines without an id, read again after the file grew at its end: its old
    lines are already loaded (they were all loaded again before: the revenue doubled), two
    identical lines stay two lines, and the counts reconcile."""
    (tmp_path / "segflow.toml").write_text(LINES_TOML)
    (tmp_path / "lines.csv").write_text(LINES)
    store = Store(":memory:")
    _load(store, tmp_path)
    (tmp_path / "lines.csv").write_text(LINES + "a,2024-02-02,7\nb,2024-02-03,9\n")
    counts, warned = _load(store, tmp_path)
    assert counts == (6, 2, 4, 0) and not warned
    (tmp_path / "lines.csv").write_text(LINES + "a,2024-02-02,7\nb,2024-02-03,9\nc,2024-02-04,1\n")
    assert _load(store, tmp_path)[0] == (7, 1, 6, 0)  # grown twice
    assert _lines(store) == [(1, "a", 10), (2, "b", 4), (3, "b", 4), (4, "c", 5), (5, "a", 7),
                             (6, "b", 9), (7, "c", 1)]


def test_a_file_without_order_ids_changed_otherwise_loads_every_line_with_a_warning(tmp_path):
    """A line inserted, removed or changed (or the name reused for a new export): without ids
    a corrected line cannot be told from a new one, so every line is loaded as new, as the
    first load of a file, and the load says so; an earlier store where a grown file was
    loaded twice (the fault before) does not stop the next load."""
    (tmp_path / "segflow.toml").write_text(LINES_TOML)
    (tmp_path / "lines.csv").write_text(LINES)
    store = Store(":memory:")
    _load(store, tmp_path)
    (tmp_path / "lines.csv").write_text("cust,ts,amount\nz,2024-01-02,1\n" + LINES.split("\n", 1)[1])
    counts, warned = _load(store, tmp_path)
    assert counts == (5, 5, 0, 0)
    assert "changed other than by rows added at its end" in warned[0]
    assert len(_lines(store)) == 9
    # then it only grows: the lines of its latest load are the file as read before
    changed = "cust,ts,amount\nz,2024-01-02,1\n" + LINES.split("\n", 1)[1]
    (tmp_path / "lines.csv").write_text(changed + "y,2024-03-03,3\n")
    counts, warned = _load(store, tmp_path)
    assert counts == (6, 1, 5, 0) and not warned and len(_lines(store)) == 10
    # the store of the fault: every line of the file stored twice at its row number
    other = Store(":memory:")
    _load(other, tmp_path)
    other.raw.execute("INSERT INTO transactions SELECT * FROM transactions")
    (tmp_path / "lines.csv").write_text(changed + "y,2024-03-03,3\nq,2024-03-01,2\n")
    counts, warned = _load(other, tmp_path)
    assert counts == (7, 1, 6, 0) and not warned
    assert len(_lines(other)) == 13


def test_a_grown_file_with_blank_lines_and_a_rule_failing_now(tmp_path):
    """Row numbers are lines of the file (blank lines count), not records; and a line stored
    before that fails a rule now (its customer is missing from a customers file added since)
    is still the same line: the file only grew, so only its new line is loaded."""
    (tmp_path / "segflow.toml").write_text(LINES_TOML)
    spaced = "cust,ts,amount\na,2024-01-05,10\n\n\nb,2024-01-09,4\n\nc,2024-01-30,5\n"
    (tmp_path / "lines.csv").write_text(spaced)
    store = Store(":memory:")
    assert _load(store, tmp_path)[0] == (3, 3, 0, 0)
    (tmp_path / "lines.csv").write_text(spaced + "a,2024-02-02,7\n")
    counts, warned = _load(store, tmp_path)
    assert counts == (4, 1, 3, 0) and not warned
    (tmp_path / "cust.csv").write_text("id\na\nb\n")  # no customer c
    (tmp_path / "segflow.toml").write_text(
        '[[sources]]\nname = "crm"\ntable = "customers"\npath = "cust.csv"\n'
        '[sources.columns]\ncustomer_id = "id"\n' + LINES_TOML)
    (tmp_path / "lines.csv").write_text(spaced + "a,2024-02-02,7\nb,2024-02-03,9\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = ingest(store, Settings.load(tmp_path), tmp_path, now=NOW)
    till = report.to_pandas().set_index("source").loc["till"]
    assert (till.rows_read, till.rows_accepted, till.rows_duplicate) == (5, 1, 4)
    assert not any("changed other than" in w for w in report.warnings)
    assert _lines(store) == [(1, "a", 10), (4, "b", 4), (6, "c", 5), (7, "a", 7), (8, "b", 9)]
