"""``segflow.Project`` in a notebook: wrong names, types and dates are one line of segflow's
own error, a date may be given as an analyst has it, and results print short.

Found by the session-50 notebook trial: ``segment_sizes`` answered a date that is no snapshot
(or a future one) with an empty frame, a ``"YYYY-MM-DD"`` date with a TypeError from inside
the report's queries, a scheme given as a number with DuckDB's ConversionException; a closed
project answered with DuckDB's "Connection already closed"; ``campaigns("nope")`` warned twice
and returned []; the summary and CLV diagnostics printed 1,700 and 3,900 characters.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from segflow.errors import InputError, SegflowError
from segflow.project import Project


@pytest.fixture()
def project(demo_project):
    with Project.open(demo_project, read_only=True) as p:
        yield p


def _customers_at(project: Project, scheme: str, day: dt.date) -> int:
    return project.store.raw.execute(
        "SELECT count(*) FROM segment_assignments WHERE scheme = ? AND snapshot_date = ?", [scheme, day]
    ).fetchone()[0]


def test_a_date_is_taken_as_an_analyst_has_it(project):
    dates = project.snapshot_dates("rfm")
    day = dates[-3]
    want = project.segment_sizes("rfm", day)
    assert int(want["customers"].sum()) == _customers_at(project, "rfm", day)
    for other in (day.isoformat(), pd.Timestamp(day), dt.datetime.combine(day, dt.time()),
                  # the calendar date as written: 01:00 in Paris is that day, not the day before in UTC
                  dt.datetime.combine(day, dt.time(1), tzinfo=dt.timezone(dt.timedelta(hours=2)))):
        pd.testing.assert_frame_equal(project.segment_sizes("rfm", other), want)


def test_a_date_that_is_no_snapshot_is_an_error_naming_the_nearest(project):
    dates = project.snapshot_dates("rfm")
    between = dates[-2] + dt.timedelta(days=14)
    assert dates[-2] < between < dates[-1]
    with pytest.raises(SegflowError, match=(f"^scheme 'rfm' has no snapshot at {between}; the nearest: "
                                            f"{dates[-2]} and {dates[-1]} \\({len(dates)} snapshots")):
        project.segment_sizes("rfm", between)
    with pytest.raises(SegflowError, match=f"no snapshot at 2030-01-01; the nearest: {dates[-1]} "):
        project.segment_sizes("rfm", "2030-01-01")
    with pytest.raises(SegflowError, match="^'June 2025' is not a date; expected YYYY-MM-DD$"):
        project.segment_sizes("rfm", "June 2025")
    with pytest.raises(SegflowError, match="^NaT is not a date"):
        project.segment_sizes("rfm", pd.NaT)


@pytest.mark.parametrize("call", ["segment_sizes", "transitions", "clv", "campaigns"])
@pytest.mark.parametrize("scheme", [3, None, ["rfm"]])
def test_a_scheme_that_is_not_text_is_named_in_one_line(project, call, scheme):
    if call in ("clv", "campaigns") and scheme is None:
        pytest.skip("None is the documented default there")
    with pytest.raises(SegflowError, match=f"^a scheme is named by text, not {type(scheme).__name__} "
                                           r".*\(schemes of this project: rfm, "):
        getattr(project, call)(scheme)


def test_unknown_schemes(project):
    with pytest.raises(SegflowError, match=r"^no scheme 'RFM'; did you mean 'rfm'\? \(schemes"):
        project.transitions("RFM")
    with pytest.raises(SegflowError, match=r"^no scheme 'nope' \(schemes of this project"):
        project.campaigns("nope")  # warned twice and returned [] before
    assert [c.scheme for c in project.campaigns("rfm")] == ["rfm"] * len(project.campaigns())
    with pytest.raises(SegflowError, match=r"^no scheme 'RFM'; did you mean 'rfm'\? \(schemes"):
        project.snapshot_dates("RFM")  # returned [] (session 59), as a scheme not run yet


def test_a_closed_project_says_so(demo_project):
    project = Project.open(demo_project, read_only=True)
    assert repr(project) == f"Project({str(demo_project)!r}, store='segflow.duckdb')"
    project.close()
    assert repr(project) == f"Project({str(demo_project)!r}, store='segflow.duckdb', closed)"
    for call in (lambda: project.segment_sizes("rfm"), lambda: project.transitions("rfm"),
                 project.summary, project.churn_scores, lambda: project.snapshot_dates()):
        with pytest.raises(SegflowError, match="^the project '.*' is closed; open it again"):
            call()


def test_a_past_to_date_compares_it_with_the_snapshot_before_it(project):
    """``transitions(scheme, to_date=X)`` compares X with the snapshot before it, as
    ``segflow migrate --to X`` does (one rule: Project.snapshot_pair); it took the
    second-latest snapshot and refused any past X. The counts are checked against SQL."""
    from typer.testing import CliRunner

    from segflow.cli import app

    dates = project.snapshot_dates("rfm")
    to = dates[-4]
    matrix = project.transitions("rfm", to_date=to.isoformat())
    assert (matrix.from_date, matrix.to_date) == (dates[-5], to)
    got = matrix.to_pandas().query("customers > 0").set_index(["from_segment", "to_segment"]).customers
    want = project.store.raw.execute(
        "SELECT coalesce(a.segment, '(new)') AS f, coalesce(b.segment, '(gone)') AS t, count(*) AS n "
        "FROM (SELECT * FROM segment_assignments WHERE scheme = 'rfm' AND snapshot_date = ?) a "
        "FULL JOIN (SELECT * FROM segment_assignments WHERE scheme = 'rfm' AND snapshot_date = ?) b "
        "USING (customer_id) GROUP BY 1, 2", [dates[-5], to]).df().set_index(["f", "t"]).n
    assert got.sort_index().to_dict() == want.sort_index().to_dict()
    res = CliRunner().invoke(app, ["migrate", "-p", str(project.directory), "-s", "rfm", "--to",
                                   to.isoformat(), "--json"])
    assert res.exit_code == 0, res.output
    assert (res.stdout.count(f'"from_date": "{dates[-5]}"'), res.stdout.count(f'"to_date": "{to}"')) == (1, 1)
    # a from_date alone goes to the latest (the --to help), the first snapshot has no predecessor
    assert project.snapshot_pair("rfm", from_date=dates[2]) == (dates[2], dates[-1])
    with pytest.raises(SegflowError, match=f"^to_date \\({dates[0]}\\) is the first snapshot of scheme 'rfm'"):
        project.transitions("rfm", to_date=dates[0])
    with pytest.raises(SegflowError, match=f"^from_date \\({dates[-1]}\\) must be before to_date"):
        project.snapshot_pair("rfm", from_date=dates[-1])


def test_flows_top_is_a_count(project):
    matrix = project.transitions("rfm")
    movers = matrix.to_pandas().query("from_segment != to_segment and customers > 0")
    assert len(matrix.flows(top=3)) == 3 and len(matrix.flows(top=0)) == 0
    assert len(matrix.flows(top=10_000)) == len(movers)
    for bad in (-1, "5", 2.5, True):  # -1 dropped the smallest cell; "5" a pandas TypeError
        with pytest.raises(InputError, match="top must be a whole number of cells >= 0"):
            matrix.flows(top=bad)


def test_results_print_in_one_short_line(project):
    summary, diagnostics = project.summary(), project.clv_diagnostics()
    dates = project.snapshot_dates("rfm")
    texts = {"summary": repr(summary), "diagnostics": repr(diagnostics)}
    assert texts["summary"] == (f"ExecutiveSummary(scheme='rfm', {dates[-2]}→{dates[-1]}, "
                                f"{len(summary.headlines)} headlines, {len(summary.kpis)} KPIs, "
                                f"{len(summary.actions)} actions)")
    assert texts["diagnostics"].startswith(f"ClvDiagnostics(snapshot={diagnostics.snapshot}, BetaGeoModel on ")
    assert all("\n" not in t and len(t) < 160 for t in texts.values()), texts
    assert "What changed" in summary._repr_html_()  # the notebook view is the HTML one


def test_run_summary_prints_in_one_line():
    from segflow.pipeline import RunSummary

    days = [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)]
    run = RunSummary(run_id="abc", engine="duckdb", snapshot_dates=days, schemes=["rfm", "lifecycle"],
                     assignments_written=12_345, seconds={"features": 1.25, "segments": 0.5},
                     snapshots_computed=days[-1:], notes=["a long note " * 40])
    assert repr(run) == ("RunSummary(run_id='abc', duckdb, 1 of 3 snapshots computed "
                         "(2024-01-01→2024-03-01), 2 schemes, 12,345 assignments, 1.8 s)")


def test_migrate_says_a_wrong_pair_in_its_options_terms(project):
    """`migrate --from` the latest snapshot said "from_date (...) must be before to_date
    (...)": the CLI names its options and says why."""
    from typer.testing import CliRunner

    from segflow.cli import app

    dates = project.snapshot_dates("rfm")
    base = ["migrate", "-p", str(project.directory), "-s", "rfm"]
    cases = [
        (["--from", str(dates[-1])], f"--from {dates[-1]} is the latest snapshot of scheme 'rfm': "
         "there is no later one to compare with (--to defaults to the latest); give an earlier --from"),
        (["--from", str(dates[3]), "--to", str(dates[2])],
         f"--from ({dates[3]}) must be before --to ({dates[2]})"),
        (["--to", str(dates[0])], f"--to {dates[0]} is the first snapshot of scheme 'rfm': there "
         "is no earlier one to compare with (--from defaults to the one before --to); give a later --to"),
    ]
    for args, said in cases:
        res = CliRunner().invoke(app, [*base, *args])
        assert (res.exit_code, res.output) == (1, f"error: {said}\n"), args


@pytest.mark.parametrize("role", ["Viewer", "viewers", "admin", ""])
def test_a_report_for_an_unknown_role_is_refused_not_written_in_full(project, tmp_path, role):
    """``Project.report(role="Viewer")`` (a capital, a plural) wrote the analyst's report,
    every small segment's revenue in it, for readers who were to see none: only "viewer"
    withheld anything. Now a role other than "analyst" and "viewer" is an ArgumentError and
    no file is written."""
    from segflow.errors import ArgumentError

    out = tmp_path / "report.html"
    with pytest.raises(ArgumentError) as err:
        project.report(out, role=role)
    assert str(err.value) == f"report: argument 'role': expected one of 'analyst', 'viewer'; got {role!r}"
    assert not out.exists()
