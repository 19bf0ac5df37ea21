"""The CLI commands of this area: ingest, sources check, audit, customers."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from segflow.cli import app

runner = CliRunner()


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_ingest_check_audit_customers(project):
    p = ["--project", str(project)]
    out = _json(runner.invoke(app, ["ingest", *p, "--json"]))
    assert out["reconciles"] and out["totals"]["rows_read"] == 27
    assert out["totals"]["rows_accepted"] == 13
    again = _json(runner.invoke(app, ["ingest", *p, "--json"]))
    assert {d["status"] for d in again["data"]} == {"unchanged"}
    check = _json(runner.invoke(app, ["sources", "check", "shop", "-n", "5", *p, "--json"]))
    assert check["counts"]["rows_read"] == 5 and check["rules"] == {"excluded_line": 1}
    assert check["mapping"]["amount"] == "Quantity+UnitPrice"
    # a customers source's accepted rows: personal columns masked unless --pii include
    crm = _json(runner.invoke(app, ["sources", "check", "crm", "-n", "2", *p, "--json"]))
    assert [(r["email"], r["phone"]) for r in crm["accepted"]] == [("A***@Example.com", "***01"),
                                                                  ("b***@example.com", "***02")]
    crm = _json(runner.invoke(app, ["sources", "check", "crm", "-n", "2", *p, "--json", "--pii", "include"]))
    assert [r["email"] for r in crm["accepted"]] == ["Ann@Example.com", "bob@example.com"]
    audit = _json(runner.invoke(app, ["audit", "--as-of", "2024-06-01", *p, "--json"]))
    assert 0 <= audit["score"] <= 100 and audit["count"] > 5
    res = _json(runner.invoke(app, ["customers", "resolve", *p, "--json"]))
    assert res["linked"] == 1
    exp = _json(runner.invoke(app, ["customers", "explain", "C006", *p, "--json"]))
    assert exp["master_id"] == "C001"
    # personal values masked by default (the exports' mask rules), in clear on request
    records = {r["customer_id"]: r for r in exp["records"]}
    assert (records["C001"]["email"], records["C001"]["phone"]) == ("A***@Example.com", "***01")
    assert records["C006"]["email"] == "a***@example.com"
    assert [e["evidence"] for e in exp["edges"]] == ["a***@example.com"]
    text = runner.invoke(app, ["customers", "explain", "C006", *p])
    assert text.exit_code == 0 and "same email (a***@example.com)" in text.stdout
    for shown in (json.dumps(exp), text.stdout):
        assert "ann@example.com" not in shown.lower() and "7946" not in shown
    clear = _json(runner.invoke(app, ["customers", "explain", "C006", *p, "--pii", "include", "--json"]))
    records = {r["customer_id"]: r for r in clear["records"]}
    assert (records["C001"]["email"], records["C001"]["phone"]) == ("Ann@Example.com", "+44 20 7946 0001")
    assert [e["evidence"] for e in clear["edges"]] == ["ann@example.com"]
    un = _json(runner.invoke(app, ["customers", "unlink", "C006", *p, "--json"]))
    assert un["links_removed"] == 1


def test_errors_are_one_line(project):
    p = ["--project", str(project)]
    result = runner.invoke(app, ["sources", "check", "nope", *p])
    assert result.exit_code == 1 and "no source named 'nope'" in result.output
    result = runner.invoke(app, ["audit", "--as-of", "yesterday", *p])
    assert result.exit_code == 2  # a usage error (cli._common.DATE), as every date option's
    assert result.stderr == ("segflow audit: invalid value for '--as-of': 'yesterday' is not a "
                             "date; expected YYYY-MM-DD; see 'segflow audit --help'\n")
    for cmd in (["ingest"], ["audit"], ["sources", "check"], ["customers", "explain"]):
        assert runner.invoke(app, [*cmd, "--help"]).exit_code == 0


def test_quarantined_rules_are_listed_per_file(tmp_path):
    """Two files of one source, each with a missing amount: the rules table listed
    'orders | missing_amount | 1' twice, without saying which file each row was."""
    (tmp_path / "data").mkdir()
    (tmp_path / "segflow.toml").write_text(
        '[project]\nname = "t"\nstore = "segflow.duckdb"\n\n'
        '[[sources]]\nname = "orders"\ntable = "transactions"\npath = "data/tx*.csv"\n'
        'max_date = 2026-01-01\ndate_formats = ["%Y-%m-%d"]\n'
        '[sources.columns]\ntransaction_id = "order_id"\ncustomer_id = "customer_id"\n'
        'ts = "order_date"\namount = "amount"\n')
    for name, order in (("tx1.csv", "A"), ("tx2.csv", "B")):
        (tmp_path / "data" / name).write_text(
            f"order_id,customer_id,order_date,amount\n{order}1,c1,2024-01-02,10\n"
            f"{order}2,c2,2024-01-03,NA\n")
    result = runner.invoke(app, ["ingest", "--project", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    listed = [line.split("│")[1:-1] for line in result.stdout.splitlines()
              if "missing_amount" in line]
    assert [[cell.strip() for cell in row] for row in listed] == [
        ["orders", "data/tx1.csv", "missing_amount", "1"],
        ["orders", "data/tx2.csv", "missing_amount", "1"],
    ]


def _orders_project(tmp_path) -> None:
    """A project with one CSV source ``orders`` at data/tx.csv (the caller writes the file)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "segflow.toml").write_text(
        '[project]\nname = "t"\nstore = "segflow.duckdb"\n\n'
        '[[sources]]\nname = "orders"\ntable = "transactions"\npath = "data/tx.csv"\n'
        'max_date = 2026-01-01\ndate_formats = ["%Y-%m-%d"]\n'
        '[sources.columns]\ntransaction_id = "order_id"\ncustomer_id = "customer_id"\n'
        'ts = "order_date"\namount = "amount"\n')


def test_check_and_ingest_name_the_same_reason_for_a_malformed_line(tmp_path):
    """`sources check` (the careful CSV reader) and `ingest` (DuckDB's reader for a simple
    file) quarantined the same lines as "5 fields instead of the header's 4" and "TOO MANY
    COLUMNS: Expected Number of Columns: 4 Found: 5"."""
    _orders_project(tmp_path)
    (tmp_path / "data" / "tx.csv").write_text(
        "order_id,customer_id,order_date,amount\nA1,c1,2024-01-02,10\nA2,c2,2024-01-03,5,x\n"
        'A3\nA4,"c4"x,2024-01-04,7\nA5,c5,2024-01-05,8\n')
    p = ["--project", str(tmp_path)]
    check = _json(runner.invoke(app, ["sources", "check", "orders", *p, "--json"]))
    checked = {(r["row_number"], r["reason"], r["column_name"]) for r in check["rejected"]}
    assert checked == {(2, "5 fields instead of the header's 4", None),
                       (3, "1 field instead of the header's 4", None),
                       (4, "cannot split the line: ',' expected after '\"'", None)}
    assert _json(runner.invoke(app, ["ingest", *p, "--json"]))["totals"]["rows_quarantined"] == 3
    from segflow.store import Store

    with Store(tmp_path / "segflow.duckdb", read_only=True) as store:
        stored = store.raw.execute("SELECT row_number, reason, column_name FROM quarantine").fetchall()
    assert set(stored) == checked


def test_check_and_ingest_agree_on_extra_and_missing_fields(tmp_path):
    """One rule for a row's field count, in `sources check` (the careful reader) and `ingest`
    (DuckDB's reader for this simple file): empty fields past the header's last column (as
    Excel writes them) are ignored, a non-empty one or a missing field quarantines the row.
    Check quarantined `A2,...,5,,` ("6 fields instead of the header's 4"); ingest stored it."""
    _orders_project(tmp_path)
    (tmp_path / "data" / "tx.csv").write_text(
        "order_id,customer_id,order_date,amount\n"
        "A1,c1,2024-01-02,10\n"
        "A2,c2,2024-01-03,5,,\n"          # two empty trailing fields: accepted, dropped
        "A3,c3,2024-01-03,6,x\n"          # a non-empty extra field: quarantined
        "A4,c4,2024-01-04\n"              # one field short: quarantined
        'A5,c5,2024-01-05,8,"",,,\n'      # quoted empty and more empties: accepted
        "A6,c6,2024-01-06,9,, \n"         # a space is not empty: quarantined
        "A7,c7,2024-01-07,4,,x\n")        # an empty then a non-empty extra: quarantined
    p = ["--project", str(tmp_path)]
    check = _json(runner.invoke(app, ["sources", "check", "orders", *p, "--json"]))
    checked_ok = {(r["row_number"], r["transaction_id"], r["amount"]) for r in check["accepted"]}
    checked_bad = {(r["row_number"], r["reason"]) for r in check["rejected"]}
    assert checked_ok == {(1, "A1", 10.0), (2, "A2", 5.0), (5, "A5", 8.0)}
    assert checked_bad == {(3, "5 fields instead of the header's 4"),
                           (4, "3 fields instead of the header's 4"),
                           (6, "6 fields instead of the header's 4"),
                           (7, "6 fields instead of the header's 4")}
    assert check["counts"]["rows_read"] == 7
    ingest = _json(runner.invoke(app, ["ingest", *p, "--json"]))["totals"]
    assert (ingest["rows_read"], ingest["rows_accepted"], ingest["rows_quarantined"]) == (7, 3, 4)
    from segflow.store import Store

    with Store(tmp_path / "segflow.duckdb", read_only=True) as store:
        stored = store.raw.execute(
            "SELECT source_row, transaction_id, amount FROM transactions").fetchall()
        quarantined = store.raw.execute("SELECT row_number, reason FROM quarantine").fetchall()
    assert {(r, t, float(a)) for r, t, a in stored} == checked_ok
    assert set(quarantined) == checked_bad


def test_check_masks_addresses_and_numbers_in_reasons_and_ids_unless_include(tmp_path):
    """`sources check` printed the rejected rows' reasons (``'bob@example.org' does not
    match ...``) and, in --json, accepted ids that are addresses in clear, while the report and
    `segflow audit` mask them: now masked by the report's rule unless --pii include."""
    _orders_project(tmp_path)
    (tmp_path / "data" / "tx.csv").write_text(
        "order_id,customer_id,order_date,amount\nA1,ann@example.com,2024-01-02,10\n"
        "A2,+44 20 7946 0002,2024-01-03,5\nA3,c3,bob@example.org,7\n"
        "A4,c4,2024-01-04,+44 7700 900123\nA5,C000123,2024-01-05,3\n")
    p = ["orders", "--project", str(tmp_path)]
    masked = _json(runner.invoke(app, ["sources", "check", *p, "--json"]))
    assert [r["reason"] for r in masked["rejected"]] == [
        "'b***@example.org' does not match the accepted formats (%Y-%m-%d)", "'***23' is not a number"]
    assert [r["customer_id"] for r in masked["accepted"]] == ["a***@example.com", "***02", "C000123"]
    clear = _json(runner.invoke(app, ["sources", "check", *p, "--json", "--pii", "include"]))
    assert [r["reason"] for r in clear["rejected"]] == [
        "'bob@example.org' does not match the accepted formats (%Y-%m-%d)", "'+44 7700 900123' is not a number"]
    assert [r["customer_id"] for r in clear["accepted"]] == ["ann@example.com", "+44 20 7946 0002", "C000123"]
    text = runner.invoke(app, ["sources", "check", *p], env={"COLUMNS": "200"})
    assert text.exit_code == 0 and "'b***@example.org' does not match" in text.stdout
    assert "bob@" not in text.stdout and "900123" not in text.stdout and "***23" in text.stdout
    shown = runner.invoke(app, ["sources", "check", *p, "--pii", "include"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "'bob@example.org' does not match" in shown.stdout
    assert not list(tmp_path.glob("segflow.duckdb*"))  # a dry run: nothing written


def test_check_masks_an_address_split_by_a_nul_in_an_invalid_id_reason(tmp_path):
    """A NUL inside an id is refused (invalid_id) with the id shown as ``ann<NUL>@...``: the
    mask did not see an address there and printed it in clear."""
    _orders_project(tmp_path)
    (tmp_path / "data" / "tx.csv").write_bytes(
        b"order_id,customer_id,order_date,amount\nA1,ann\x00@example.com,2024-01-02,10\n")
    p = ["orders", "--project", str(tmp_path), "--json"]
    masked = _json(runner.invoke(app, ["sources", "check", *p]))
    assert [r["reason"][:40] for r in masked["rejected"]] == ["identifier 'a***@example.com' holds a NU"]
    clear = _json(runner.invoke(app, ["sources", "check", *p, "--pii", "include"]))
    assert [r["reason"][:39] for r in clear["rejected"]] == ["identifier 'ann<NUL>@example.com' holds"]
