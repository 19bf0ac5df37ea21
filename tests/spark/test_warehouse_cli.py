"""The CLI on a Spark project (``[engine] kind = "spark"``): the commands that read the store
read the warehouse, or refuse in one line; ``warehouse push|runs|vacuum`` work on the
warehouse [engine] names whatever the project's kind (``runs`` and ``vacuum`` say how to make
one when there is none yet); a Spark run stores the same run notes as the DuckDB run.

The session's demo on the cluster (``cluster_demo``, tests/spark/_cluster_demo.py: a small
demo project plus a rule scheme whose second rule is shadowed by its first, ingested and run
on DuckDB, its loads pushed to the cluster's warehouse and run there once): a copy of its
DuckDB project is the reference, and a second project names the same warehouse (its DuckDB
store empty, as after an ingest on Spark). Every command is then compared between the two
projects. (Before session 59 this module ran the same demo on a ``local[1]`` session of
its own: a minute of the suite's time.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from tests.spark._cluster_demo import DATABASE
from typer.testing import CliRunner


def _cli(*args: str, code: int = 0) -> str:
    """Run ``segflow ARGS`` in process; its stdout (its stderr when ``code`` is not 0)."""
    from segflow.cli import app

    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.stderr


@pytest.fixture(scope="module")
def projects(cluster_demo, tmp_path_factory):
    """``(duck, spark, summary)``: a copy of the cluster demo's DuckDB project (ingested and
    run; no [engine]), a Spark project on its warehouse (whose run it read), and the Spark
    run's summary."""
    import datetime as dt
    import shutil
    import types

    from segflow.project import Project

    demo = cluster_demo
    folder = tmp_path_factory.mktemp("warehouse_cli")
    demo.project.store.raw.execute("CHECKPOINT")
    (folder / "duck").mkdir()
    shutil.copy(demo.project.directory / "segflow.duckdb", folder / "duck" / "segflow.duckdb")
    (folder / "duck" / "segflow.toml").write_text(demo.toml)
    Project.init(folder / "spark", toml_text=demo.toml + _plain(demo.engine)).close()
    summary = types.SimpleNamespace(**{
        **demo.summary,
        "snapshot_dates": [dt.date.fromisoformat(d) for d in demo.summary["snapshot_dates"]]})
    return folder / "duck", folder / "spark", summary


def _plain(engine: str) -> str:
    """The [engine] table ``engine`` with its warehouse a folder, not a URL (as users write
    it; the same folder as the session's)."""
    return re.sub(r'warehouse = "file:/*(/[^"]*)"', r'warehouse = "\1"', engine)


def _same(a: object, b: object, where: str = "") -> None:
    """``a == b``, floats to 1e-9 relative (JSON documents of the two engines)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, nan_ok=True), where
    else:
        assert a == b, where


@pytest.mark.spark
@pytest.mark.slow
def test_segment_on_spark_computes_from_the_warehouse_as_duckdb(projects, tmp_path):
    duck, spark, summary = projects
    snapshot = str(summary.snapshot_dates[-2])  # an earlier snapshot, as in the trial
    for scheme, args in (("rfm", ["--snapshot", snapshot]), ("my_rfm", [])):
        out = {}
        for name, folder in (("duck", duck), ("spark", spark)):
            path = tmp_path / f"{scheme}-{name}.csv"
            doc = json.loads(_cli("segment", "-p", str(folder), "--scheme", scheme, *args,
                                  "--out", str(path), "--json"))
            rows = pd.read_csv(path).sort_values("customer_id", ignore_index=True)
            out[name] = doc, rows
        (d_doc, d_rows), (s_doc, s_rows) = out["duck"], out["spark"]
        assert len(d_rows) > 50 and d_rows["segment"].nunique() > 1  # not an empty result
        pd.testing.assert_frame_equal(s_rows, d_rows)
        d_doc["out"] = s_doc["out"] = None
        _same(s_doc, d_doc, scheme)
    # --save would write to the DuckDB store: refused, in one line
    err = _cli("segment", "-p", str(spark), "--scheme", "rfm", "--save", code=1)
    assert "not available on Spark yet" in err and len(err.strip().splitlines()) == 1


@pytest.mark.spark
@pytest.mark.slow
def test_migrate_and_campaign_list_on_spark_read_the_warehouse_as_duckdb(projects):
    duck, spark, _ = projects
    for args in (["migrate", "--scheme", "rfm"], ["migrate", "stability", "--scheme", "my_rfm"],
                 ["migrate", "paths", "--scheme", "rfm"], ["campaign", "list"]):
        d = json.loads(_cli(*args, "-p", str(duck), "--json"))
        s = json.loads(_cli(*args, "-p", str(spark), "--json"))
        assert d and d != {"data": [], "count": 0}, args  # the reference is not empty
        _same(s, d, " ".join(args))
    # a command that would read the DuckDB store (empty on Spark) refuses in one line
    err = _cli("churn", "train", "-p", str(spark), code=1)
    assert "`segflow churn train` is not available on Spark yet" in err
    assert len(err.strip().splitlines()) == 1


def _notes(message: str | None) -> list[str]:
    return (message or "").splitlines()


@pytest.mark.spark
@pytest.mark.slow
def test_spark_run_stores_the_run_notes_of_the_duckdb_run(projects):
    from segflow.config import Settings
    from segflow.project import Project
    from segflow.store._spark import SparkStore
    from segflow.warehouse import aggregates_store

    duck, spark, summary = projects
    with Project.open(duck, read_only=True) as project:
        expected = project.store.raw.execute(
            "SELECT message FROM runs WHERE command = 'run' ORDER BY started_at DESC LIMIT 1"
        ).fetchone()[0]
    warehouse = SparkStore.open(Settings.load(spark).engine, spark)
    stored = (warehouse.runs().where(f"run_id = '{summary.run_id}' AND status = 'ok'")
              .collect()[0].message)
    checks = [n for n in _notes(expected) if n.startswith("scheme ")]
    assert any("'my_rfm'" in n and "rule 2 ('Champions') names no customer" in n for n in checks)
    assert any("min_segment_share" in n for n in checks)
    assert [n for n in _notes(stored) if n.startswith("scheme ")] == checks
    assert summary.notes == _notes(stored)  # printed by `segflow run` (run_on_spark)
    # what the report reads ("Notes from the latest run")
    copy = aggregates_store(warehouse)
    assert copy.raw.execute("SELECT message FROM runs WHERE run_id = ?",
                            [summary.run_id]).fetchone()[0] == stored


@pytest.mark.spark
@pytest.mark.slow
def test_warehouse_runs_prints_a_table(projects):
    _, spark, summary = projects
    out = _cli("warehouse", "runs", "-p", str(spark))
    lines = [line for line in out.splitlines() if summary.run_id in line]
    assert len(lines) == 1 and " ok " in lines[0] and "running" not in lines[0]
    assert "—" not in lines[0]  # a committed run has its finish time
    log = _cli("warehouse", "runs", "--log", "-p", str(spark))
    lines = [line for line in log.splitlines() if summary.run_id in line]
    assert [("running" in line, " ok " in line) for line in lines] == [(True, False), (False, True)]
    assert "—" in lines[0]  # the running row has no finish time
    for raw in ("NaT", "None", "Empty DataFrame", "Index: []"):
        assert raw not in out and raw not in log


def test_one_row_per_run_keeps_each_runs_last_state():
    import pandas as pd

    from segflow.cli._warehouse import NOT_COMMITTED, one_row_per_run

    t = pd.Timestamp
    log = pd.DataFrame({
        "run_id": ["b", "a", "b", "c", "a"],
        "command": ["run", "ingest", "run", "run", "ingest"],
        "status": ["running", "running", "failed", "running", "ok"],
        "started_at": [t("2026-01-02"), t("2026-01-01"), t("2026-01-02"), t("2026-01-03"),
                       t("2026-01-01")],
        "finished_at": [pd.NaT, pd.NaT, t("2026-01-02 01:00"), pd.NaT, t("2026-01-01 02:00")],
        "message": [None, None, "boom", None, None],
    })
    out = one_row_per_run(log)
    assert list(out.columns) == list(log.columns)
    assert out.run_id.tolist() == ["a", "b", "c"]
    assert out.status.tolist() == ["ok", "failed", NOT_COMMITTED]
    assert out.finished_at.tolist()[:2] == [t("2026-01-01 02:00"), t("2026-01-02 01:00")]
    assert pd.isna(out.finished_at.iloc[2])
    assert out.message.tolist()[1] == "boom"
    assert one_row_per_run(log.iloc[:0]).empty


def test_warehouse_runs_and_vacuum_without_a_warehouse_say_how_to_make_one(tmp_path):
    """The warehouse of a project is the one [engine] names, whatever its kind: before
    anything was pushed or ingested there, `runs` and `vacuum` say so in one line (naming
    `warehouse push`; on Spark also `ingest`), start no Spark session and create nothing."""
    from segflow.project import Project

    for kind in ("duckdb", "spark"):
        project = tmp_path / kind
        toml = f'[engine]\nkind = "{kind}"\nwarehouse = "wh"\ndatabase = "shop"\n'
        Project.init(project, toml_text=toml).close()
        root = f"file://{(project / 'wh').resolve()}/shop.db"
        for command in ("runs", "vacuum"):
            err = _cli("warehouse", command, "-p", str(project), code=1)
            assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
            assert f"has no warehouse yet at {root} ([engine] warehouse and database" in " ".join(err.split())
            assert f"`segflow warehouse push -p {project}` copies its DuckDB store there" in " ".join(err.split())
            assert (f"`segflow ingest -p {project}` loads its sources there" in " ".join(err.split())) == (kind == "spark")
        assert sorted(p.name for p in project.iterdir()) == ["segflow.duckdb", "segflow.toml"]


def test_warehouse_runs_json_without_a_warehouse_follows_the_error_convention(tmp_path):
    """`--json` errors are those of every command: exit 1, nothing on stdout (no half
    document for a script to parse), the one error line on stderr."""
    from segflow.cli import app
    from segflow.project import Project

    Project.init(tmp_path / "p", toml_text='[engine]\nwarehouse = "wh"\n').close()
    result = CliRunner().invoke(app, ["warehouse", "runs", "-p", str(tmp_path / "p"), "--json"])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith("error: the project in ") and "has no warehouse yet" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


class _PushedWarehouse:
    """A warehouse that already holds the loads ``load_ids`` (what push_to_warehouse reads
    of a SparkStore); opening a run or a session fails: nothing may be written."""

    def __init__(self, load_ids: list[str]) -> None:
        self.ids = load_ids

    def tables(self) -> list[str]:
        return ["loads", "transactions"]

    def dataframe(self, name: str):  # noqa: ANN201
        rows = [type("Row", (), {"load_id": i}) for i in self.ids]
        return type("Frame", (), {"select": lambda self, *c: self, "collect": lambda self: rows})()

    def run(self, *args: object) -> object:
        raise AssertionError("a push with nothing new opened a run")


def test_a_push_with_nothing_new_writes_no_run():
    """The second push of an unchanged store copies nothing and logs no empty run; a load
    the warehouse lacks is still pushed."""
    from segflow.store import Store
    from segflow.warehouse import push_to_warehouse

    store = Store(":memory:")
    store.raw.execute("INSERT INTO loads (load_id, source, target_table) VALUES "
                      "('L1', 'orders', 'transactions'), ('L2', 'orders', 'transactions')")
    store.raw.execute("INSERT INTO transactions (transaction_id, customer_id, ts, amount, load_id) "
                      "VALUES ('t1', 'c1', TIMESTAMP '2024-01-02', 5, 'L1'), "
                      "('t2', 'c1', TIMESTAMP '2024-02-02', 7, 'L2')")
    assert push_to_warehouse(store, _PushedWarehouse(["L1", "L2"])) == {}
    assert "_segflow_pushed" not in store.tables()  # the temporary list is dropped
    with pytest.raises(AssertionError, match="opened a run"):  # L2 is new: a run is opened
        push_to_warehouse(store, _PushedWarehouse(["L1"]))


@pytest.mark.spark
@pytest.mark.slow
def test_warehouse_push_runs_and_vacuum_agree_on_a_duckdb_project(cluster_demo):
    """A DuckDB project's warehouse ([engine] without ``kind``: the cluster demo's, before
    its runs on Spark): `runs` refuses before the push; `push` copies every row of the
    DuckDB store as one run; `runs` then lists that run and `vacuum` finds nothing to
    remove. (The push is the cluster demo's own: tests/spark/_cluster_demo.py records what
    each command said, test_warehouse_pipeline.py runs on what it pushed.)"""
    said = cluster_demo.cli_push
    wh = Path(re.search(r'warehouse = "([^"]*)"', _plain(cluster_demo.engine)).group(1))
    code, _, err = said["before"]
    assert code == 1 and "has no warehouse yet" in err
    assert not said["existed"]  # ... and created none
    pushed = said["pushed"]
    assert pushed["warehouse"] == f"file://{wh}/{DATABASE}.db"
    assert pushed["rows"] == said["expected"] and said["expected"]["transactions"] > 0
    code, out, _ = said["runs"]
    assert code == 0
    runs = json.loads(out)
    assert [(r["command"], r["status"]) for r in runs] == [("push", "ok")]
    assert [r["run_id"] for r in runs] == cluster_demo.pushed
    code, _, err = said["vacuum"]
    assert code == 0 and "removed the partitions of 0 uncommitted run(s)" in err


def _app():  # noqa: ANN202
    from segflow.cli import app

    return app


@pytest.mark.spark
@pytest.mark.slow
def test_report_on_spark_names_the_warehouse_and_leaves_no_duckdb_file(projects, tmp_path):
    """The report's figures come from the warehouse: its header says so, and the project's
    DuckDB file is neither needed nor created (it used to appear, empty, and the header
    named it)."""
    _, spark, summary = projects
    store = spark / "segflow.duckdb"
    held = tmp_path / "held.duckdb"
    store.rename(held)
    try:
        out = tmp_path / "report.html"
        _cli("report", "-p", str(spark), "--out", str(out))
        assert not store.exists()
        html = out.read_text(encoding="utf-8")
        assert "· warehouse file://" in html and f"/{DATABASE}.db</p>" in html
        assert "store segflow.duckdb" not in html
        assert summary.run_id and "Notes from the latest run" in html
    finally:
        store.unlink(missing_ok=True)
        held.rename(store)


def test_push_says_when_there_is_nothing_new(tmp_path, monkeypatch):
    """The CLI of a push that copied nothing: one line saying so (no "0 customers, ..."),
    and under --json the same document with an empty `rows` and that `message`."""
    import segflow.warehouse
    from segflow.cli import _warehouse
    from segflow.project import Project

    Project.init(tmp_path / "p", toml_text='[engine]\nwarehouse = "wh"\n').close()
    root = "file:///somewhere/wh/segflow.db"
    monkeypatch.setattr(_warehouse, "open_warehouse",
                        lambda *a, **k: (None, type("W", (), {"root": root})()))
    monkeypatch.setattr(segflow.warehouse, "push_to_warehouse", lambda store, wh: {})
    message = (f"nothing new to push: {root} already holds every load of the DuckDB store "
               "(no run logged)")
    out = CliRunner().invoke(_app(), ["warehouse", "push", "-p", str(tmp_path / "p")])
    assert (out.exit_code, out.stdout, out.stderr.strip()) == (0, "", message)
    out = CliRunner().invoke(_app(), ["warehouse", "push", "-p", str(tmp_path / "p"), "--json"])
    assert json.loads(out.stdout) == {"warehouse": root, "rows": {}, "message": message}
