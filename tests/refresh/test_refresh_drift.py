"""PSI drift alerts: the empty-bin share, the minimum sample and the chance level.

Feature tables are built by hand (no refresh), so these tests take milliseconds; the PSI is
checked against a computation with numpy's histogram, not the code under test.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from segflow.refresh import DriftThresholds, psi
from segflow.refresh._drift import (
    MONITORED_FEATURES,
    PSI_EMPTY_BIN_SHARE,
    feature_alerts,
    psi_chance_level,
)

PREVIOUS, LATEST = dt.date(2024, 6, 1), dt.date(2024, 7, 1)


def _features(rng: np.random.Generator, n: int, *, scale: float = 1.0, shift: float = 0.0) -> pa.Table:
    """A feature table of ``n`` customers with every monitored feature (gamma-distributed)."""
    return pa.table({name: rng.gamma(2.0, 30.0 * scale, n) + shift for name in MONITORED_FEATURES})


def _independent_psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI on ten decile bins of ``expected``, with numpy's histogram (no empty bin here)."""
    edges = np.concatenate([[-np.inf], np.quantile(expected, np.arange(1, 10) / 10), [np.inf]])
    e = np.histogram(expected, edges)[0] / len(expected)
    a = np.histogram(actual, edges)[0] / len(actual)
    assert (e > 0).all() and (a > 0).all()
    return float(np.sum((a - e) * np.log(a / e)))


def test_an_empty_bin_counts_as_the_stated_share():
    # two bins cut at the median 4.5; no actual value below it:
    # PSI = (eps - 0.5) ln(eps / 0.5) + (1 - 0.5) ln(1 / 0.5), eps = 0.0001
    expected = np.arange(10.0)
    actual = np.array([5, 6, 7, 8, 9, 5, 6, 7, 8, 9], dtype=float)
    eps = 1e-4
    assert PSI_EMPTY_BIN_SHARE == eps
    want = (eps - 0.5) * np.log(eps / 0.5) + 0.5 * np.log(2.0)
    assert psi(expected, actual, bins=2) == pytest.approx(want)
    assert psi(expected, actual, bins=2, empty_share=1e-3) == pytest.approx(
        (1e-3 - 0.5) * np.log(1e-3 / 0.5) + 0.5 * np.log(2.0))


def test_chance_level_is_yurdakuls_chi_square_quantile():
    # 16.919: the 95th percentile of chi-square on 9 degrees of freedom (published tables)
    assert psi_chance_level(300, 300) == pytest.approx(2 / 300 * 16.919, rel=1e-4)
    assert psi_chance_level(45, 46) == pytest.approx((1 / 45 + 1 / 46) * 16.919, rel=1e-4)


def test_one_order_more_on_45_customers_raises_no_alert():
    # the reported case: a month later every tenure (and most recencies) moved by 30 days
    rng = np.random.default_rng(7)
    before = _features(rng, 45)
    after = pa.table({name: before[name].to_numpy() + (30.0 if name in ("tenure_days", "recency_days") else 0.0)
                      for name in MONITORED_FEATURES})
    alerts = feature_alerts(before, after, PREVIOUS, LATEST, DriftThresholds())
    tenure = [a for a in alerts if a.subject == "tenure_days"]
    assert len(tenure) == 1 and tenure[0].value > 1.0  # a "major shift" by the usual reading
    assert {a.severity for a in alerts} == {"info"}
    assert "on 45 and 45 customers: sample too small to judge (at least 50 customers" in tenure[0].message


def test_chance_sized_psi_on_100_customers_is_info():
    rng = np.random.default_rng(3)
    before, after = _features(rng, 100), _features(rng, 100)  # the same distribution
    alerts = feature_alerts(before, after, PREVIOUS, LATEST, DriftThresholds())
    values = {a.subject: a.value for a in alerts}
    assert values and all(0.1 <= v < 2 / 100 * 16.919 for v in values.values())
    assert {a.severity for a in alerts} == {"info"}
    assert all("chance alone gives up to 0.338" in a.message for a in alerts)


def test_a_shifted_large_sample_is_still_critical():
    rng = np.random.default_rng(11)
    before, after = _features(rng, 2000), _features(rng, 2000, scale=1.6)
    alerts = {a.subject: a for a in feature_alerts(before, after, PREVIOUS, LATEST, DriftThresholds())}
    assert alerts.keys() == set(MONITORED_FEATURES)
    for name, alert in alerts.items():
        want = _independent_psi(before[name].to_numpy(), after[name].to_numpy())
        assert alert.value == pytest.approx(want, rel=1e-12)
        assert want >= 0.25 and alert.severity == "critical"


def test_the_refresh_line_counts_info_rows_apart_from_alerts(monkeypatch, tmp_path):
    """`segflow refresh` said "6 drift alert(s)" for 2 warnings and 4 info rows that each
    end "no alert"; the info rows are now counted apart. Alerts measured again unchanged
    (recorded by an earlier refresh) are counted after them and not listed."""
    from typer.testing import CliRunner

    import segflow.refresh
    from segflow.cli import app
    from segflow.project import Project
    from segflow.refresh import Alert
    from segflow.refresh._refresh import RefreshResult

    alerts = [Alert("segment_share", "rfm:Lost", "share_pp", 7.0, 5.0, "warning", "w [bold]", LATEST),
              *(Alert("feature_shift", f, "psi", 1.0, 0.1, "info", f"i {f}", LATEST)
                for f in ("monetary", "frequency"))]
    monkeypatch.setattr(segflow.refresh, "refresh", lambda *a, **k: RefreshResult(
        "r1", "refreshed", ["x.csv"], alerts=alerts, seconds={"all": 1.0}, notes=["n\tx"],
        alerts_unchanged=[Alert("feature_shift", "recency_days", "psi", 0.3, 0.1, "critical",
                                "seen before", LATEST)]))
    Project.init(tmp_path).close()
    result = CliRunner().invoke(app, ["refresh", "-p", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert ("1 drift alert(s) and 2 info row(s): sample too small to judge (1 unchanged, "
            "recorded before: segflow alerts --latest)") in result.output
    assert "seen before" not in result.output
    # an alert's or a note's text as written: no Rich markup (a segment '[bold]'), no tab
    assert "  warning: w [bold]\n" in result.output and "  note: n\\tx\n" in result.output


def test_segment_shares_of_a_tiny_scheme_are_info_and_of_a_large_one_alerts(tmp_path):
    # a 2-customer project went from 100 % to 50 % in a segment: two critical share alerts
    import pandas as pd

    from segflow.refresh._drift import SHARE_MIN_CUSTOMERS, share_alerts
    from segflow.store import Store

    rows = []
    for day, tiny in ((PREVIOUS, ["A", "A"]), (LATEST, ["A", "B"])):
        rows += [("tiny", day, f"t{i}", seg) for i, seg in enumerate(tiny)]
    for day, moved in ((PREVIOUS, 0), (LATEST, 60)):  # 60 of 300 move from A to B
        rows += [("big", day, f"b{i}", "B" if i < moved or i >= 240 else "A") for i in range(300)]
    frame = pd.DataFrame(rows, columns=["scheme", "snapshot_date", "customer_id", "segment"])
    frame["segment_rank"] = frame["segment"].map({"A": 1, "B": 2})
    with Store(tmp_path / "s.duckdb") as store:
        store.append("segment_assignments", pa.Table.from_pandas(frame, preserve_index=False))
        alerts = share_alerts(store, PREVIOUS, LATEST, DriftThresholds())
    got = {a.subject: (a.severity, round(a.value, 9)) for a in alerts}
    # by hand: big A 240/300 -> 180/300 (-20 points), B +20; tiny A 100 % -> 50 %, B 0 -> 50 %
    shares = frame.groupby(["scheme", "snapshot_date"]).segment.value_counts(normalize=True)
    change = (shares.xs(LATEST, level="snapshot_date") - shares.xs(PREVIOUS, level="snapshot_date")
              .reindex(shares.xs(LATEST, level="snapshot_date").index, fill_value=0.0)) * 100
    assert got == {f"{s}: {g}": ("info" if s == "tiny" else "critical", round(v, 9))
                   for (s, g), v in change.items()}
    assert got["big: A"] == ("critical", -20.0) and got["tiny: B"] == ("info", 50.0)
    tiny = next(a for a in alerts if a.subject == "tiny: A")
    assert f"at least {SHARE_MIN_CUSTOMERS} customers" in tiny.message and "no alert" in tiny.message


def test_a_scheme_new_at_the_latest_snapshot_is_info_saying_so_not_a_small_sample(tmp_path):
    # a new scheme of 100 customers said "sample too small ... one customer is 100.0 points"
    import pandas as pd

    from segflow.refresh._drift import share_alerts
    from segflow.store import Store

    rows = [("old", day, f"o{i}", "A") for day in (PREVIOUS, LATEST) for i in range(60)]
    rows += [("new", LATEST, f"n{i}", "A" if i < 70 else "B") for i in range(100)]
    frame = pd.DataFrame(rows, columns=["scheme", "snapshot_date", "customer_id", "segment"])
    frame["segment_rank"] = frame["segment"].map({"A": 1, "B": 2})
    with Store(tmp_path / "s.duckdb") as store:
        store.append("segment_assignments", pa.Table.from_pandas(frame, preserve_index=False))
        alerts = share_alerts(store, PREVIOUS, LATEST, DriftThresholds())
    assert {a.subject: (a.severity, round(a.value, 9)) for a in alerts} == {
        "new: A": ("info", 70.0), "new: B": ("info", 30.0)}  # 70/100 and 30/100 from nothing
    for a in alerts:
        assert f"no assigned customers at {PREVIOUS}, nothing to compare; no alert" in a.message
        assert "too small" not in a.message and "100.0 points" not in a.message


def test_the_alerts_table_counts_info_rows_apart_from_alerts(monkeypatch, tmp_path):
    """`segflow alerts` titled "6 drift alert(s)" a table of 6 info rows that each end
    "no alert" (refresh's summary line counted them apart already)."""
    from typer.testing import CliRunner

    import segflow.refresh
    from segflow.cli import app
    from segflow.project import Project

    created = dt.datetime(2024, 7, 1, 12, 0)
    rows = pa.Table.from_pylist([
        {"created_at": created, "severity": s, "kind": "segment_share", "message": f"m{i}"}
        for i, s in enumerate(["critical", "info", "info", "warning", "info"])])
    monkeypatch.setattr(segflow.refresh, "read_alerts", lambda *a, **k: rows)
    Project.init(tmp_path).close()
    result = CliRunner().invoke(app, ["alerts", "-p", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    title = " ".join(result.output.split())  # the title wraps at the (narrow) table's width
    assert "2 drift alert(s) and 3 info row(s): sample too small to judge" in title
    assert "5 drift alert(s)" not in title


def test_an_alert_is_recorded_before_only_for_the_same_pair_severity_and_value(tmp_path):
    """The rule that keeps a refresh from recording an alert twice: same pair of snapshots,
    kind, subject and metric, same severity and value; a row an older segflow wrote (no
    previous snapshot) matches by its message, which names both dates."""
    from segflow.refresh import Alert
    from segflow.refresh._drift import new_alerts, write_alerts
    from segflow.store import Store

    msg = "rfm segment 'Lost': 10.0% of customers at 2024-06-01, 17.0% at 2024-07-01 (+7.0 points)"
    alert = Alert("segment_share", "rfm: Lost", "share_change_pp", 7.0, 5.0, "warning", msg,
                  LATEST, PREVIOUS)
    with Store(tmp_path / "s.duckdb") as store, store.transaction() as con:
        write_alerts(con, [alert], "r1", dt.datetime(2024, 7, 2))
        same = Alert(**{**alert.__dict__, "value": 7.0 + 1e-12})
        other_pair = Alert(**{**alert.__dict__, "previous_date": dt.date(2024, 5, 1)})
        more = Alert(**{**alert.__dict__, "value": 7.5})
        critical = Alert(**{**alert.__dict__, "severity": "critical"})
        other_segment = Alert(**{**alert.__dict__, "subject": "rfm: Champions"})
        assert new_alerts(con, [same, other_pair, more, critical, other_segment]) == (
            [other_pair, more, critical, other_segment], [same])
        # a row of an older segflow: previous_snapshot_date is null
        con.execute("UPDATE alerts SET previous_snapshot_date = NULL")
        assert new_alerts(con, [same, other_pair]) == ([], [same, other_pair])
        reworded = Alert(**{**alert.__dict__, "message": msg.replace("2024-06-01", "2024-05-01")})
        assert new_alerts(con, [reworded]) == ([reworded], [])


def _refresh_run(con, run_id: str, at: dt.datetime, message: str = "1 new input(s)") -> None:
    con.execute("INSERT INTO runs VALUES (?, 'refresh', '{}', 'test', ?, ?, 'ok', ?)",
                [run_id, at, at, message])


def test_latest_lists_every_alert_of_the_latest_refresh_also_those_recorded_before(tmp_path):
    """`segflow alerts --latest` showed the alerts of the latest refresh that recorded any:
    after a refresh whose alerts were all unchanged (recorded once, by an earlier refresh) it
    showed the earlier refresh's list, with alerts the latest no longer measured, and after
    one with a new pair and no alert at all, the alerts of an older pair. Now it lists the
    alerts the latest refresh measured (as its summary counts them), whichever recorded them."""
    import json

    from typer.testing import CliRunner

    from segflow.cli import app
    from segflow.project import Project
    from segflow.refresh import Alert, read_alerts
    from segflow.refresh._drift import new_alerts, seen_again, write_alerts

    def alert(subject: str, value: float, latest: dt.date = LATEST) -> Alert:
        return Alert("segment_share", subject, "share_change_pp", value, 5.0, "warning",
                     f"{subject} {value}", latest, PREVIOUS)

    a, b, c = alert("rfm: A", 7.0), alert("rfm: B", 6.0), alert("rfm: C", 8.0)
    Project.init(tmp_path).close()
    with Project.open(tmp_path) as project, project.store.transaction() as con:
        _refresh_run(con, "r1", dt.datetime(2024, 7, 2))
        write_alerts(con, [a, b], "r1", dt.datetime(2024, 7, 2))
        # r2: the same pair; A unchanged, B under its threshold now, C new
        _refresh_run(con, "r2", dt.datetime(2024, 7, 3))
        recorded, unchanged = new_alerts(con, [a, c])
        assert (recorded, unchanged) == ([c], [a])
        write_alerts(con, recorded, "r2", dt.datetime(2024, 7, 3))
        seen_again(con, unchanged, "r2")
        # a refresh that found nothing new measured nothing: r2's alerts stay the latest
        _refresh_run(con, "r3", dt.datetime(2024, 7, 4), "nothing new")
    shown = CliRunner().invoke(app, ["alerts", "-p", str(tmp_path), "--latest", "--json"])
    assert shown.exit_code == 0, shown.output
    assert sorted(r["subject"] for r in json.loads(shown.stdout)["data"]) == ["rfm: A", "rfm: C"]
    with Project.open(tmp_path) as project:
        assert read_alerts(project.store).num_rows == 3  # every alert recorded, once each
        with project.store.transaction() as con:  # r4: a new pair, under every threshold
            _refresh_run(con, "r4", dt.datetime(2024, 8, 2))
        assert read_alerts(project.store, latest_run=True).num_rows == 0


def test_alerts_an_older_segflow_recorded_twice_are_kept_once(tmp_path):
    """Before session 59 each refresh of the same pair recorded its alerts again; such a
    store listed them twice. The store migration (schema 14) keeps the first row of each run
    of equal rows (same pair, kind, subject, metric, severity, value to one part in a
    million), seen last by the latest of them; a changed value stays a row of its own."""
    from segflow.refresh import Alert, read_alerts
    from segflow.refresh._drift import write_alerts
    from segflow.store import SCHEMA_VERSION, Store

    alert = Alert("feature_shift", "recency_days", "psi", 0.3, 0.1, "critical", "psi 0.3",
                  LATEST, PREVIOUS)
    path = tmp_path / "s.duckdb"
    with Store(path) as store, store.transaction() as con:
        for i, value in enumerate([0.3, 0.3 * (1 + 1e-9), 0.3, 0.4, 0.4]):
            run = f"r{i + 1}"
            _refresh_run(con, run, dt.datetime(2024, 7, 2 + i))
            write_alerts(con, [Alert(**{**alert.__dict__, "value": value})], run,
                         dt.datetime(2024, 7, 2 + i))
        # the store as schema 13 left it
        con.execute("ALTER TABLE alerts DROP COLUMN last_seen_run_id")
        con.execute("ALTER TABLE export_log DROP COLUMN status")
        con.execute("DELETE FROM schema_info WHERE version = ?", [SCHEMA_VERSION])
    with Store(path) as store:
        rows = store.sql("SELECT run_id, last_seen_run_id, value FROM alerts ORDER BY created_at").to_pylist()
        assert [(r["run_id"], r["last_seen_run_id"]) for r in rows] == [("r1", "r3"), ("r4", "r5")]
        assert [r["value"] for r in read_alerts(store, latest_run=True).to_pylist()] == [0.4]


def test_an_older_refresh_that_measured_its_alerts_again_keeps_listing_them(tmp_path):
    """Schema 13's refresh recorded an alert once and, measuring it again unchanged, wrote and
    marked nothing; its `--latest` listed the alerts of the latest refresh that recorded any.
    After the upgrade those stay listed (as seen by the latest refresh), not none until the
    next refresh; a refresh that recorded alerts of its own keeps its own list."""
    from segflow.refresh import Alert, read_alerts
    from segflow.refresh._drift import write_alerts
    from segflow.store import SCHEMA_VERSION, Store

    alert = Alert("feature_shift", "recency_days", "psi", 0.3, 0.1, "critical", "psi 0.3",
                  LATEST, PREVIOUS)
    for recorded_by_r2, expected in [(False, [("r1", "r2")]), (True, [("r2", "r2")])]:
        path = tmp_path / f"s{recorded_by_r2}.duckdb"
        with Store(path) as store, store.transaction() as con:
            _refresh_run(con, "r1", dt.datetime(2024, 7, 2))
            write_alerts(con, [alert], "r1", dt.datetime(2024, 7, 2))
            _refresh_run(con, "r2", dt.datetime(2024, 7, 3))
            if recorded_by_r2:
                write_alerts(con, [Alert(**{**alert.__dict__, "value": 0.5})], "r2",
                             dt.datetime(2024, 7, 3))
            _refresh_run(con, "r3", dt.datetime(2024, 7, 4), message="nothing new")
            con.execute("ALTER TABLE alerts DROP COLUMN last_seen_run_id")
            con.execute("ALTER TABLE export_log DROP COLUMN status")
            con.execute("DELETE FROM schema_info WHERE version = ?", [SCHEMA_VERSION])
        with Store(path) as store:
            latest = read_alerts(store, latest_run=True).to_pylist()
            assert [(r["run_id"], r["last_seen_run_id"]) for r in latest] == expected
