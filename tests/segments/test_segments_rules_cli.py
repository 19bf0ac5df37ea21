"""`segflow segment --scheme NAME`: JSON and text output, saving, exports and clear errors."""

from __future__ import annotations

import datetime as dt
import json
import textwrap

import pandas as pd
import pytest
from tests.features._fixture import S, make_tables, to_store
from typer.testing import CliRunner

from segflow.cli import app
from segflow.features import REQUIRED_TABLES, customer_features
from segflow.project import Project

TOML = textwrap.dedent(
    """
    [project]
    name = "cli test"

    [[schemes]]
    name = "lifecycle"
    kind = "lifecycle"

    [[schemes]]
    name = "big"
    kind = "rules"
    default = "rest"
    ordered = true
    rules = [{ segment = "big spenders", when = "monetary_12m >= 300" }]

    [[schemes]]
    name = "shadowed"
    kind = "rules"
    default = "rest"
    ordered = true
    rules = [
      { segment = "spenders", when = "monetary_12m >= 100" },
      { segment = "big spenders", when = "monetary_12m >= 300" },
    ]

    [[schemes]]
    name = "stage_value"
    kind = "value_tiers"
    within = "big"
    tiers = [10, 50]
    """
)


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("proj")
    project = Project.init(folder, toml_text=TOML)
    to_store(project.store, make_tables())
    project.close()
    return folder


def _run(*args: str):
    return CliRunner().invoke(app, ["segment", *args])


def _reference_rules(project_dir) -> pd.Series:
    with Project.open(project_dir) as project:
        tables = {n: project.store.table(n) for n in REQUIRED_TABLES}
        f = customer_features(tables, S).to_pandas()
    return f.monetary_12m.ge(300).map({True: "big spenders", False: "rest"}).value_counts()


def test_json_sizes_match_an_independent_count(project_dir):
    result = _run("--scheme", "big", "--snapshot", S.isoformat(), "--project", str(project_dir),
                  "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    got = {row["segment"]: row["customers"] for row in payload["data"]}
    assert got == _reference_rules(project_dir).to_dict()
    assert payload["scheme"] == "big" and payload["snapshot_date"] == S.isoformat()
    assert [row["segment_rank"] for row in payload["data"]] == [1, 2]
    assert sum(row["share"] for row in payload["data"]) == pytest.approx(1.0)


def test_nested_scheme_and_save_and_out(project_dir, tmp_path):
    out = tmp_path / "a.csv"
    result = _run("--scheme", "stage_value", "--snapshot", S.isoformat(), "--project",
                  str(project_dir), "--save", "--out", str(out))
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out)
    assert written.segment.str.startswith(("big spenders / ", "rest / ")).all()
    with Project.open(project_dir) as project:
        stored = project.store.sql(
            "SELECT count(*) AS n FROM segment_assignments WHERE scheme = 'stage_value'"
        ).to_pylist()[0]["n"]
    assert stored == len(written)
    # saving again replaces, never duplicates
    assert _run("--scheme", "stage_value", "--snapshot", S.isoformat(), "--project",
                str(project_dir), "--save").exit_code == 0
    with Project.open(project_dir) as project:
        again = project.store.sql(
            "SELECT count(*) AS n FROM segment_assignments WHERE scheme = 'stage_value'"
        ).to_pylist()[0]["n"]
    assert again == stored


def test_builtin_scheme_and_default_snapshot(project_dir):
    result = _run("--scheme", "rfm", "--project", str(project_dir))
    assert result.exit_code == 0, result.output
    assert "Champions" in result.output
    assert "revenue, 12 months (USD)" in result.output  # the project's currency (the default)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scheme", "nope"], "unknown scheme 'nope'"),
        # a bad --snapshot is a usage error (exit status 2), as of every date option:
        # tests/core/test_core_cli_conventions.py::test_a_bad_date_option_is_the_same_line_everywhere
        ([], "give a scheme"),
        (["--scheme", "big", "--out", "x.txt"], ".csv or .parquet"),
        # the 365-day look-back overflowed Python's dates: a traceback (OverflowError)
        (["--scheme", "rfm", "--snapshot", "0001-01-01"], "is too early"),
    ],
)
def test_errors_are_one_clear_line(project_dir, args, message):
    result = _run(*args, "--project", str(project_dir))
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_shadowed_rule_is_warned_and_listed_with_zero_customers(project_dir):
    out = _run("-p", str(project_dir), "--scheme", "shadowed", "--snapshot", S.isoformat(),
               "--json")
    assert out.exit_code == 0, out.output
    rows = {r["segment"]: r for r in json.loads(out.stdout)["data"]}
    with Project.open(project_dir) as project:
        tables = {n: project.store.table(n) for n in REQUIRED_TABLES}
        f = customer_features(tables, S).to_pandas()
    big = int((f.monetary_12m >= 300).sum())
    assert big > 0
    assert rows["big spenders"]["customers"] == 0 and rows["big spenders"]["segment_rank"] == 2
    assert rows["spenders"]["customers"] == int((f.monetary_12m >= 100).sum())
    assert (f"rule 2 ('big spenders') names no customer: earlier rules take all {big} "
            f"customers it matches: 'spenders' ({big})") in " ".join(out.stderr.split())


def test_a_snapshot_before_the_data_says_nobody_is_known(project_dir):
    out = _run("-p", str(project_dir), "--scheme", "rfm", "--snapshot", "1999-01-01", "--json")
    assert out.exit_code == 0, out.output
    assert sum(r["customers"] for r in json.loads(out.stdout)["data"]) == 0
    assert "nobody is known at 1999-01-01" in " ".join(out.stderr.split())


def test_a_snapshot_long_after_the_data_is_warned(project_dir):
    with Project.open(project_dir) as project:
        last = project.store.raw.execute("SELECT max(ts) FROM transactions").fetchone()[0]
    late = last.date() + dt.timedelta(days=400)
    out = _run("-p", str(project_dir), "--scheme", "rfm", "--snapshot", late.isoformat(), "--json")
    assert out.exit_code == 0, out.output
    gap = (late - last.date()).days
    assert (f"the snapshot {late} is {gap} days after the last transaction ({last.date()})"
            in " ".join(out.stderr.split())), out.stderr
    near = last.date() + dt.timedelta(days=30)  # a month after: no warning
    out = _run("-p", str(project_dir), "--scheme", "rfm", "--snapshot", near.isoformat(), "--json")
    assert out.exit_code == 0 and "after the last transaction" not in out.stderr
