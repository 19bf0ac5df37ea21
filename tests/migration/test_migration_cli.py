"""The migrate/export commands on a small project store: JSON equals the library's numbers."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pytest
from tests.migration._migration_fixtures import (
    DATES,
    count_by_hand,
    random_assignments,
    random_transactions,
)
from typer.testing import CliRunner

from segflow.cli import app
from segflow.project import Project

runner = CliRunner()


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("migproj")
    frame = random_assignments()
    with Project.init(path) as project:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.set_column(
            table.schema.get_field_index("snapshot_date"),
            "snapshot_date",
            pa.array(frame["snapshot_date"].tolist(), pa.date32()),
        )
        project.store.append("segment_assignments", table)
        project.store.append(
            "transactions", pa.Table.from_pandas(random_transactions(), preserve_index=False)
        )
    return path, frame


def _run(*args: str):
    result = runner.invoke(app, list(args))
    return result


def test_migrate_json_counts(project_dir):
    path, frame = project_dir
    result = _run(
        "migrate",
        "--scheme",
        "tier",
        "--from",
        "2024-02-01",
        "--to",
        "2024-03-01",
        "--json",
        "-p",
        str(path),
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    got = {
        (r["from_segment"], r["to_segment"]): r["customers"]
        for r in payload["data"]
        if r["customers"]
    }
    assert got == count_by_hand(frame, DATES[1], DATES[2])
    assert {"share", "share_lower", "share_upper", "revenue"} <= set(payload["data"][0])
    assert payload["summary"]["customers_from"] == int((frame["snapshot_date"] == DATES[1]).sum())


def test_migrate_defaults_to_last_two_and_human_output(project_dir):
    path, _ = project_dir
    result = _run("migrate", "-p", str(path))  # the only scheme is picked
    assert result.exit_code == 0, result.output
    assert "2024-04-01 → 2024-05-01" in result.output and "stayed" in result.output
    # money in the project's currency (USD unless the project names another)
    assert "revenue between (USD)" in result.output and "revenue in motion" in result.output
    assert re.search(r"revenue in motion [\d,]+ USD", result.output), result.output


def test_forecast_who_paths_stability_export(project_dir, tmp_path):
    path, frame = project_dir
    out = _run("migrate", "forecast", "-p", str(path), "-k", "2", "--json")
    assert out.exit_code == 0, out.output
    fc = json.loads(out.stdout)
    assert sorted({r["period"] for r in fc["data"]}) == [0, 1, 2]
    # JSON has no infinity: states never absorbed into (gone) are null and listed by name
    until = fc["expected_periods_until_gone"]
    assert sorted(fc["never_gone"]) == sorted(s for s, v in until.items() if v is None)
    assert all(v is None or v > 0 for v in until.values())
    assert (fc["never_gone_note"] is None) == (not fc["never_gone"])
    who = _run(
        "migrate",
        "who",
        "-p",
        str(path),
        "--from",
        "Gold",
        "--to",
        "(gone)",
        "--from-date",
        "2024-01-01",
        "--to-date",
        "2024-02-01",
        "--limit",
        "0",
        "--json",
    )
    assert who.exit_code == 0, who.output
    assert (
        json.loads(who.stdout)["count"]
        == count_by_hand(frame, DATES[0], DATES[1])[("Gold", "(gone)")]
    )
    paths = _run("migrate", "paths", "-p", str(path), "--json", "--top", "3")
    assert paths.exit_code == 0 and len(json.loads(paths.stdout)["data"]) == 3
    stab = _run("migrate", "stability", "-p", str(path), "--json")
    assert stab.exit_code == 0 and len(json.loads(stab.stdout)["overall"]) == 4
    target = tmp_path / "crm.csv"
    exp = _run("export", "-p", str(path), "--out", str(target), "--json")
    assert exp.exit_code == 0, exp.output
    assert json.loads(exp.stdout)["rows"] == int((frame["snapshot_date"] == DATES[4]).sum())
    assert target.read_text().startswith('"customer_id","scheme","snapshot_date","segment"')


def test_user_errors_are_one_line(project_dir):
    path, _ = project_dir
    bad = _run("migrate", "-p", str(path), "--from", "2030-01-01", "--to", "2030-02-01")
    assert bad.exit_code == 1 and "has no snapshot at 2030-01-01; the nearest: 2024-05-01" in bad.output
    assert "Traceback" not in bad.output
    bad = _run("migrate", "-p", str(path), "--scheme", "nope")
    assert bad.exit_code == 1 and "no assignments for scheme 'nope'" in bad.output
    bad = _run("export", "-p", str(path))
    assert bad.exit_code == 1 and "exactly one of --out" in bad.output


def test_who_lists_one_id_per_line_whatever_the_ids_hold(tmp_path):
    """`migrate who` printed one id per line raw: an id holding a line break became two
    lines (two customers), a CR overwrote the terminal line, and a segment named '[bold]'
    vanished from the count line (Rich markup). Now an id holding a control character, or
    starting with a double quote, or with a space at either end (a shell's `read` trims it),
    is one JSON string per line, read back exactly, with one
    note on stderr; the segment names are printed as written."""
    import datetime as dt

    ids = ["plain id", "a\nb", "tab\there", "cr\rx", '"quoted', "ls\u2028sep", "Müller-7",
           " 42", "42 "]
    d1, d2 = dt.date(2024, 1, 1), dt.date(2024, 2, 1)
    with Project.init(tmp_path) as project:
        n = len(ids)
        project.store.append("segment_assignments", pa.table({
            "scheme": ["rfm"] * 2 * n, "scheme_version": ["1"] * 2 * n,
            "snapshot_date": pa.array([d1] * n + [d2] * n, pa.date32()),
            "customer_id": ids * 2, "segment": ["[bold]"] * n + ["Lost"] * n,
            "segment_rank": pa.array([1] * 2 * n, pa.int32()), "run_id": ["r"] * 2 * n}))
    out = _run("migrate", "who", "-p", str(tmp_path), "-s", "rfm", "--from", "[bold]", "--to",
               "Lost", "--limit", "0")
    assert out.exit_code == 0, out.output
    lines = out.stdout.split("\n")
    assert lines[-1] == "" and len(lines) - 1 == len(ids)
    read = [json.loads(x) if x.startswith('"') else x for x in lines[:-1]]
    assert sorted(read) == sorted(ids)
    assert {x for x in lines[:-1] if not x.startswith('"')} == {"plain id", "Müller-7"}
    assert "\r" not in out.stdout and "\u2028" not in out.stdout
    assert f"{len(ids)} customers moved [bold] → Lost" in out.stderr
    assert "note: 7 customer id(s) hold a line break, tab or other control character" in out.stderr
