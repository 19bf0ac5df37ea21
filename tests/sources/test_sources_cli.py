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
    audit = _json(runner.invoke(app, ["audit", "--as-of", "2024-06-01", *p, "--json"]))
    assert 0 <= audit["score"] <= 100 and audit["count"] > 5
    res = _json(runner.invoke(app, ["customers", "resolve", *p, "--json"]))
    assert res["linked"] == 1
    exp = _json(runner.invoke(app, ["customers", "explain", "C006", *p, "--json"]))
    assert exp["master_id"] == "C001"
    un = _json(runner.invoke(app, ["customers", "unlink", "C006", *p, "--json"]))
    assert un["links_removed"] == 1


def test_errors_are_one_line(project):
    p = ["--project", str(project)]
    result = runner.invoke(app, ["sources", "check", "nope", *p])
    assert result.exit_code == 1 and "no source named 'nope'" in result.output
    result = runner.invoke(app, ["audit", "--as-of", "yesterday", *p])
    assert result.exit_code == 1 and "not a date" in result.output
    for cmd in (["ingest"], ["audit"], ["sources", "check"], ["customers", "explain"]):
        assert runner.invoke(app, [*cmd, "--help"]).exit_code == 0
