"""`segflow refresh`: new files in, drift alerts out; one at a time; all or nothing.

The store is compared before and after with an order-independent checksum of every table a
refresh writes (tests/refresh/_project.py: store_state).
"""

from __future__ import annotations

import shutil
import signal
import time

import numpy as np
import pandas as pd
import pytest
from tests.refresh._project import add_month, segflow_process, store_state

from segflow.refresh import DriftThresholds, psi, read_alerts, refresh
from segflow.store import Store

pytestmark = pytest.mark.slow


def test_psi_worked_example():
    # expected: half the customers on each side of the median (4.5); actual: 80 % below it.
    # PSI = (0.8 - 0.5) ln(0.8 / 0.5) + (0.2 - 0.5) ln(0.2 / 0.5) = 0.41589...
    expected = np.arange(10.0)
    actual = np.array([0, 1, 2, 3, 4, 0, 1, 2, 8, 9], dtype=float)
    assert psi(expected, actual, bins=2) == pytest.approx(0.3 * np.log(1.6) - 0.3 * np.log(0.4))
    assert psi(expected, expected) == 0.0


@pytest.fixture(scope="module")
def refreshed(refreshed_shop):
    """A project after its first refresh (five months of orders; tests/refresh/conftest.py,
    shared with the re-delivery tests): read only, ``project`` is a copy."""
    directory, result = refreshed_shop
    assert result.status == "refreshed" and len(result.new_inputs) == 6
    return directory, result


@pytest.fixture()
def project(refreshed, tmp_path):
    directory = tmp_path / "shop"
    shutil.copytree(refreshed[0], directory)
    return directory


def test_first_refresh(refreshed):
    directory, result = refreshed
    assert [d.isoformat() for d in result.snapshot_dates] == [
        "2024-02-01", "2024-03-01", "2024-04-01", "2024-05-01", "2024-06-01"]
    with Store(directory / "segflow.duckdb", read_only=True) as store:
        runs = store.sql("SELECT command, status FROM runs WHERE command = 'refresh'").to_pylist()
        assert runs == [{"command": "refresh", "status": "ok"}]
        n = store.sql("SELECT count(*) AS n FROM segment_assignments")["n"][0].as_py()
        assert n == result.assignments_written
    assert not (directory / "segflow.duckdb.refresh-work").exists()


def test_nothing_new_is_a_cheap_no_op_and_a_new_month_raises_alerts(project):
    store_file = project / "segflow.duckdb"
    before = store_state(store_file)
    again = refresh(project)
    assert again.status == "nothing new"
    after = store_state(store_file)
    assert {k: v for k, v in after.items() if k != "runs"} == {k: v for k, v in before.items() if k != "runs"}
    assert after["runs"][0] == before["runs"][0] + 1  # the check is logged

    new = add_month(project, 5, shock=True)
    thresholds = DriftThresholds(share_pp=1.2)  # shares move in steps of 1/3 point
    result = refresh(project, thresholds=thresholds)
    assert result.status == "refreshed" and result.new_inputs == [f"data/orders/{new.name}"]
    assert result.snapshot_dates[-1].isoformat() == "2024-07-01"
    with Store(store_file, read_only=True) as store:
        a = store.sql("SELECT scheme, snapshot_date, segment FROM segment_assignments "
                      "WHERE snapshot_date IN ('2024-06-01', '2024-07-01')").to_pandas()
        alerts = read_alerts(store, run_id=result.run_id).to_pandas()
        message = store.sql("SELECT message FROM runs WHERE run_id = ?", [result.run_id])["message"][0].as_py()
        orders_july = store.sql("SELECT count(*) AS n FROM transactions WHERE ts >= '2024-06-01'")["n"][0].as_py()
    # segment shares by hand (pandas) against the stored alerts
    shares = (a.groupby(["scheme", "snapshot_date"]).segment.value_counts(normalize=True)
              .unstack("snapshot_date").fillna(0.0) * 100)
    change = (shares.iloc[:, 1] - shares.iloc[:, 0])
    want = {f"{s}: {g}": v for (s, g), v in change.items() if abs(v) >= 1.2}
    got = alerts[alerts.kind == "segment_share"].set_index("subject")["value"].to_dict()
    assert want and got.keys() == want.keys()
    for k, v in want.items():
        assert got[k] == pytest.approx(v)
    # the shock (85 % stop buying) shows in recency and in the model's calibration
    shift = alerts[alerts.kind == "feature_shift"].set_index("subject")
    assert shift.loc["recency_days", "severity"] == "critical" and shift.loc["recency_days", "value"] >= 0.25
    calib = alerts[alerts.kind == "model_calibration"]
    assert len(calib) == 1 and calib["severity"].iloc[0] == "critical"
    assert result.calibration["actual_total"] < 0.5 * result.calibration["predicted_total"]
    assert f"{len(alerts)} drift alert(s)" in message
    assert orders_july == result.rows_loaded
    # read_alerts filters
    with Store(store_file, read_only=True) as store:
        assert read_alerts(store, latest_run=True).num_rows == len(alerts)
        assert read_alerts(store, kind="model_calibration").num_rows == 1
        assert read_alerts(store, since=pd.Timestamp("2100-01-01").to_pydatetime()).num_rows == 0
    # and on the command line, as JSON on stdout
    import json

    from typer.testing import CliRunner

    from segflow.cli import app

    shown = CliRunner().invoke(app, ["alerts", "-p", str(project), "--latest", "--json"])
    assert shown.exit_code == 0, shown.output
    payload = json.loads(shown.stdout)
    assert payload["count"] == len(alerts)
    assert {r["alert_id"] for r in payload["data"]} == set(alerts["alert_id"])


def _wait_for(proc, text: str, timeout: float = 300.0) -> list[str]:
    """Read the process's stderr lines until one contains ``text``."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"never saw {text!r}; stderr: {''.join(lines)}")


def test_two_refreshes_at_once_one_refuses_one_waits(project):
    add_month(project, 5)
    first = segflow_process("refresh", "-p", str(project))
    try:
        _wait_for(first, "refresh: copying the store")  # the lock is held from here on
        refused = segflow_process("refresh", "-p", str(project))
        out, err = refused.communicate(timeout=300)
        assert refused.returncode == 1
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "another refresh of" in lines[0] and "is running (pid" in lines[0]
        waiting = segflow_process("refresh", "-p", str(project), "--wait", "600")
        assert first.wait(timeout=600) == 0
        out, err = waiting.communicate(timeout=600)
        assert waiting.returncode == 0, err
        assert "nothing new" in err  # it waited for the first and found its work done
    finally:
        for p in (first,):
            if p.poll() is None:
                p.kill()


def test_killed_refresh_leaves_the_store_as_before(project):
    store_file = project / "segflow.duckdb"
    before = store_state(store_file)
    add_month(project, 5, shock=True)
    proc = segflow_process("refresh", "-p", str(project))
    _wait_for(proc, "refresh: computing snapshots")
    time.sleep(2.0)  # half-way through the pipeline
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert store_state(store_file) == before
    assert (project / "segflow.duckdb.refresh-work").exists()  # the abandoned copy
    result = refresh(project)
    assert result.status == "refreshed" and result.snapshot_dates[-1].isoformat() == "2024-07-01"
    assert not (project / "segflow.duckdb.refresh-work").exists()
    after = store_state(store_file)
    assert after["transactions"][0] > before["transactions"][0]


def test_failure_is_one_line_and_changes_nothing_but_the_log(project):
    store_file = project / "segflow.duckdb"
    before = store_state(store_file)
    (project / "data" / "orders" / "orders-2024-06.csv").write_text("order_id,customer\nX1,C0001\n")
    # a file of a folder lacking mapped columns is refused alone (a warning, the refresh goes
    # on: tests/sources/test_sources_binary_in_folder.py); binary_files = "fail" stops on it
    toml = project / "segflow.toml"
    toml.write_text(toml.read_text().replace('path = "data/orders"\n',
                                             'path = "data/orders"\nbinary_files = "fail"\n', 1))
    proc = segflow_process("refresh", "-p", str(project))
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "refresh failed, the store is unchanged" in errors[0]
    assert "orders-2024-06.csv" in errors[0] and "Traceback" not in err
    after = store_state(store_file)
    assert {k: v for k, v in after.items() if k != "runs"} == {k: v for k, v in before.items() if k != "runs"}
    with Store(store_file, read_only=True) as store:
        last = store.sql("SELECT status, message FROM runs ORDER BY started_at DESC LIMIT 1").to_pylist()[0]
    assert last["status"] == "failed" and "orders-2024-06.csv" in last["message"]


def test_a_saved_churn_model_is_re_applied(project):
    from typer.testing import CliRunner

    from segflow.cli import app

    trained = CliRunner().invoke(app, ["churn", "train", "-p", str(project), "--horizon-days", "30",
                                       "--threads", "1", "--json"])
    assert trained.exit_code == 0, trained.output
    # no new file, but a new model: the fingerprint changed, so the refresh runs
    result = refresh(project)
    assert result.status == "refreshed" and result.new_inputs == []
    latest = result.snapshot_dates[-1]
    with Store(project / "segflow.duckdb", read_only=True) as store:
        stored = store.sql(
            "SELECT customer_id, value FROM customer_scores WHERE model = 'churn_30d' AND "
            "score = 'churn_probability' AND snapshot_date = ? ORDER BY customer_id", [latest]
        ).to_pandas()
    # the same model scored by `segflow churn score` on the refreshed store
    scored = CliRunner().invoke(app, ["churn", "score", "-p", str(project), "--horizon-days", "30",
                                      "--threads", "1"])
    assert scored.exit_code == 0, scored.output
    with Store(project / "segflow.duckdb", read_only=True) as store:
        direct = store.sql(
            "SELECT customer_id, value FROM customer_scores WHERE model = 'churn_30d' AND "
            "score = 'churn_probability' AND snapshot_date = ? ORDER BY customer_id", [latest]
        ).to_pandas()
    assert len(stored) > 0
    pd.testing.assert_frame_equal(stored, direct)
    assert refresh(project).status == "nothing new"


def test_refresh_while_a_reader_holds_the_store(project):
    """A dashboard keeps the store open read-only; the refresh still runs and swaps."""
    import subprocess
    import sys

    store_file = project / "segflow.duckdb"
    reader = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time\n"
         f"con = duckdb.connect({str(store_file)!r}, read_only=True)\n"
         "print(con.execute('SELECT count(*) FROM transactions').fetchone()[0], flush=True)\n"
         "sys.stdin.readline()\n"
         "print(con.execute('SELECT count(*) FROM transactions').fetchone()[0], flush=True)\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        before = int(reader.stdout.readline())
        add_month(project, 5)
        result = refresh(project)
        assert result.status == "refreshed" and result.rows_loaded > 0
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert int(reader.stdout.readline()) == before  # the reader still sees its version
    finally:
        reader.kill()
        reader.wait()
    with Store(store_file, read_only=True) as store:
        n = store.sql("SELECT count(*) AS n FROM transactions")["n"][0].as_py()
    assert n == before + result.rows_loaded


def test_a_store_that_is_a_symbolic_link_stays_one(project, tmp_path):
    """A store kept on a larger disk behind a link (`segflow.duckdb -> /data/shop.duckdb`):
    the refresh renamed its copy over the link, so the project's folder then held the store
    and the linked file stayed as before the refresh. Now the linked file is copied and
    replaced beside itself, and the link stays; the next refresh reads what this one wrote."""
    disk = tmp_path / "disk"
    disk.mkdir()
    real, link = disk / "shop.duckdb", project / "segflow.duckdb"
    shutil.move(link, real)
    link.symlink_to(real)
    before = store_state(real)
    add_month(project, 5)
    result = refresh(project)
    assert result.status == "refreshed" and result.snapshot_dates[-1].isoformat() == "2024-07-01"
    assert link.is_symlink() and link.resolve() == real
    after = store_state(real)
    assert after["transactions"][0] > before["transactions"][0]
    assert sorted(p.name for p in disk.iterdir()) == ["shop.duckdb"]
    assert not (project / "segflow.duckdb.refresh-work").exists()
    assert refresh(project).status == "nothing new"


def _alert_rows(store_file) -> list[dict]:
    with Store(store_file, read_only=True) as store:
        return store.sql(
            "SELECT run_id, snapshot_date, previous_snapshot_date, kind, subject, metric, value, "
            "severity FROM alerts ORDER BY kind, subject, created_at").to_pylist()


def test_the_same_snapshots_measured_again_record_no_alert_twice(project):
    """A refresh that computes no new snapshot (web events only, or --force) recorded the same
    alerts of the same pair of snapshots again, so `segflow alerts` and cron mail showed them
    twice. Now an alert is recorded once while unchanged; a lower threshold's new alerts, and
    those whose severity it changes, are recorded."""
    import json

    from typer.testing import CliRunner

    from segflow.cli import app

    store_file = project / "segflow.duckdb"
    first = _alert_rows(store_file)
    assert first and {(r["snapshot_date"].isoformat(), r["previous_snapshot_date"].isoformat())
                      for r in first} == {("2024-06-01", "2024-05-01")}
    out = CliRunner().invoke(app, ["refresh", "-p", str(project), "--force", "--json"])
    assert out.exit_code == 0, out.output
    again = json.loads(out.stdout)
    assert again["alerts"] == [] and len(again["alerts_unchanged"]) == len(first)
    assert _alert_rows(store_file) == first
    # `alerts --latest`: this refresh's alerts, recorded by the first (it showed them only
    # because no refresh in between had recorded others)
    with Store(store_file, read_only=True) as store:
        latest = read_alerts(store, latest_run=True).to_pylist()
    assert sorted((r["kind"], r["subject"]) for r in latest) == sorted((r["kind"], r["subject"]) for r in first)
    assert {r["last_seen_run_id"] for r in latest} == {again["run_id"]}
    with Store(store_file, read_only=True) as store:
        message = store.sql("SELECT message FROM runs WHERE run_id = ?", [again["run_id"]])["message"][0].as_py()
    assert message.startswith(f"0 new input(s); 0 drift alert(s) (0 critical, 0 warning, 0 info: "
                              f"sample too small to judge); {len(first)} unchanged, recorded before")

    third = refresh(project, force=True, thresholds=DriftThresholds(share_pp=1.2))
    measured = third.alerts + third.alerts_unchanged
    old = {(r["subject"], r["severity"]) for r in first}
    want = {(a.subject, a.severity) for a in measured} - old
    after = _alert_rows(store_file)
    assert want and {(r["subject"], r["severity"]) for r in after if r["run_id"] == third.run_id} == want
    assert len(after) == len(first) + len(want) and [r for r in after if r["run_id"] != third.run_id] == first
