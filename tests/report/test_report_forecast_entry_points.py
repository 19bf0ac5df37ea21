"""One segment-size forecast: the CLI's JSON, the API and its dashboard page (the server
tests' in-process client), the report's data and the run's stored document give the same
numbers and say the same definition on a demo project (18 monthly snapshots)."""

from __future__ import annotations

import html
import json
import shutil

import pytest
from typer.testing import CliRunner

from segflow._result import json_records, jsonable

SCHEMES = ("rfm", "lifecycle")


@pytest.fixture(scope="module")
def served(demo_project, tmp_path_factory):
    """A copy of the demo project with a viewer token (the shared fixture stays untouched),
    and an in-process client of its server."""
    from fastapi.testclient import TestClient

    from segflow.project import Project
    from segflow.server import ServerSettings, create_app
    from segflow.server._tokens import create_token

    directory = tmp_path_factory.mktemp("forecast") / "demo"
    shutil.copytree(demo_project, directory)
    with Project.open(directory) as project, project.store.transaction() as con:
        token = create_token(con, "viewer", name="forecast test")[0]
    app = create_app(ServerSettings(project_dir=directory, allowed_hosts=["testserver"], poll_seconds=0))
    with TestClient(app, base_url="https://testserver", headers={"authorization": f"Bearer {token}"}) as client:
        yield directory, client


def _cli(directory, *args: str) -> dict:
    from segflow.cli import app

    result = CliRunner().invoke(app, ["migrate", "forecast", "-p", str(directory), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _api(client, scheme: str, **params) -> dict:
    r = client.get(f"/api/v1/forecasts/{scheme}", params={"limit": 5000, **params})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_cli_api_dashboard_report_and_stored_forecasts_are_one(served, demo_report, scheme):
    from segflow.project import Project
    from segflow.report._context import ReportContext
    from segflow.report._sections import report_forecast
    from segflow.summaries import stored_result
    from segflow.summaries._results import stored_forecast

    directory, client = served
    cli = _cli(directory, "--scheme", scheme)
    api = _api(client, scheme)
    with Project.open(directory, read_only=True) as project:
        ctx = ReportContext(project)
        dates = ctx.dates(scheme)
        report = report_forecast(ctx, scheme, dates)
        stored = stored_forecast(stored_result(project.store, "forecasts")[1], scheme, dates[-1])
    assert stored is not None  # the run stored it, and the report read it
    # the same rows (period, date, segment, expected customers; JSON floats of 15 digits)
    assert cli["data"] == api["data"] == json_records(report.to_pandas()) == json_records(stored.to_pandas())
    # the same description: the default window (the last 12 of 17 monthly pairs) and inflow
    meta = {k: v for k, v in api["meta"].items() if k not in ("segment", "limit", "offset")}
    assert {k: cli[k] for k in meta} == meta == jsonable(stored.meta) == jsonable(report.meta)
    assert meta["options"] == {} and meta["pairs_pooled"] == 12 == len(dates) - 6
    assert meta["periods"] == 6 and meta["new_customers_per_period"] > 0
    # the dashboard page and the report say it
    page = client.get(f"/forecasts/{scheme}", headers={"accept": "text/html"})
    assert page.status_code == 200 and html.escape(meta["definition"]) in page.text
    assert html.escape(meta["definition"]) in demo_report.read_text()


def test_options_are_the_same_and_stated_in_the_cli_and_the_api(served):
    directory, client = served
    cli = _cli(directory, "--scheme", "rfm", "--start", "first", "--arrivals", "none", "--half-life", "4", "-k", "3")
    api = _api(client, "rfm", start="first", arrivals="none", half_life=4, periods=3)
    default = _api(client, "rfm", periods=3)
    assert cli["data"] == api["data"] != default["data"]
    assert cli["options"] == api["meta"]["options"] == {"start": "first", "half_life": 4.0, "arrivals": "none"}
    assert cli["definition"] == api["meta"]["definition"] != default["meta"]["definition"]
    assert "every pair" in cli["definition"] and "no new customers" in cli["definition"]
    bad = client.get("/api/v1/forecasts/rfm", params={"arrivals": "lots"})
    assert bad.status_code == 422 and "arrivals must be 'mean', 'none' or a number" in bad.text


def test_a_forecast_stored_by_an_older_segflow_is_recomputed_then_replaced(demo_project, tmp_path):
    """A store whose forecasts document predates the one definition (no ``meta``: the last 12
    moves, no arrivals): the report computes the forecast from the stored per-pair counts
    instead of showing the old numbers, and the next run (nothing to compute) stores it."""
    from segflow.migration import segment_forecast
    from segflow.project import Project
    from segflow.report._context import ReportContext
    from segflow.report._sections import report_forecast
    from segflow.summaries import pooled_table, stored_result
    from segflow.summaries._results import dumps, missing_results

    directory = tmp_path / "demo"
    shutil.copytree(demo_project, directory)
    with Project.open(directory) as project:
        doc = stored_result(project.store, "forecasts")[1]
        old = {s: {"last": item["last"], "frame": item["frame"]} for s, item in doc.items()}
        project.store.raw.execute("UPDATE summary_results SET document = ? WHERE name = 'forecasts'", [dumps(old)])
        assert missing_results(project.store) == ("forecasts",)
        ctx = ReportContext(project)
        dates = ctx.dates("rfm")
        want = segment_forecast(pooled_table(project.store, "rfm", dates))
        got = report_forecast(ctx, "rfm", dates)
        assert json_records(got.to_pandas()) == json_records(want.to_pandas()) and got.meta == want.meta
        project.run()
        assert missing_results(project.store) == ()
        assert stored_result(project.store, "forecasts")[1]["rfm"]["meta"] == want.meta
