"""``segflow demo``: the whole chain on generated data, whatever warnings the run raises."""

from __future__ import annotations

import json

import duckdb
from typer.testing import CliRunner

from segflow.cli import app


def test_demo_writes_its_report_when_the_run_raises_no_warning(tmp_path):
    # 100 customers over 4 months: a run without warnings (the report used to be written
    # only inside the loop over the run's warnings, so this demo ended in a traceback)
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--customers", "100", "--months", "4",
                                      "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    report = out / "report.html"
    assert summary["report"] == str(report.resolve()) and report.stat().st_size > 10_000
    # every source row counted once, against an independent count of the files written
    files = sorted((out / "data").glob("*.csv"))
    assert files
    con = duckdb.connect()
    read = {f"data/{f.name}": con.execute(
        f"SELECT count(*) FROM read_csv('{f}', all_varchar=true, strict_mode=false, "
        "null_padding=true)").fetchone()[0] for f in files}
    recon = summary["reconciliation"]
    assert {r["source_file"]: r["rows_read"] for r in recon} == read
    for r in recon:
        assert r["rows_read"] == r["rows_accepted"] + r["rows_quarantined"] + r["rows_duplicate"]

    # run again in the same folder with other options: a fresh store (it kept the first
    # demo's rows beside the new ones, and the report showed rows no generated file held),
    # without the churn models trained on the first demo's data
    (out / "models").mkdir()
    (out / "models" / "churn_90d.joblib").write_bytes(b"a model of the first demo")
    result = CliRunner().invoke(app, ["demo", "--customers", "30", "--months", "3", "--seed", "2",
                                      "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    tx = out / "data" / "transactions.csv"
    read = con.execute(f"SELECT count(*) FROM read_csv('{tx}', all_varchar=true, "
                       "strict_mode=false, null_padding=true)").fetchone()[0]
    recon = {r["source_file"]: r for r in summary["reconciliation"]}
    assert recon["data/transactions.csv"]["rows_read"] == read
    store = duckdb.connect(str(out / "segflow.duckdb"), read_only=True)
    assert store.execute("SELECT count(*) FROM transactions").fetchone()[0] == \
        recon["data/transactions.csv"]["rows_accepted"]
    assert len(summary["run"]["snapshot_dates"]) == 3
    assert list((out / "models").iterdir()) == []


def test_the_demo_refuses_a_folder_holding_another_project(tmp_path):
    out = tmp_path / "mine"
    assert CliRunner().invoke(app, ["init", str(out)]).exit_code == 0
    before = (out / "segflow.toml").read_text()
    result = CliRunner().invoke(app, ["demo", "--customers", "30", "--months", "3", "--out", str(out)])
    assert result.exit_code != 0
    assert "is not a demo's project file" in result.output and "Traceback" not in result.output
    assert (out / "segflow.toml").read_text() == before
    assert not (out / "data").exists()


def test_the_demo_refuses_other_files_and_a_store_outside_its_folder(tmp_path):
    from segflow.datasets import demo_project_toml

    # a folder of another (not segflow) project: its data/customers.csv was overwritten
    other = tmp_path / "other"
    (other / "data").mkdir(parents=True)
    (other / "data" / "customers.csv").write_text("id,name\n1,mine\n")
    result = CliRunner().invoke(app, ["demo", "--customers", "30", "--months", "3", "--out", str(other)])
    assert result.exit_code == 1 and "holds files and no demo project file" in result.output
    assert (other / "data" / "customers.csv").read_text() == "id,name\n1,mine\n"
    assert sorted(p.name for p in other.rglob("*")) == ["customers.csv", "data"]

    # a demo's project file edited to name a store elsewhere: that store was deleted
    demo = tmp_path / "demo"
    demo.mkdir()
    precious = tmp_path / "precious.duckdb"
    precious.write_bytes(b"not the demo's")
    text = demo_project_toml("data").replace('store = "segflow.duckdb"', f'store = "{precious}"', 1)
    assert str(precious) in text
    (demo / "segflow.toml").write_text(text)
    result = CliRunner().invoke(app, ["demo", "--customers", "30", "--months", "3", "--out", str(demo)])
    assert result.exit_code == 1 and "names a store outside" in result.output
    assert precious.read_bytes() == b"not the demo's"
    assert not (demo / "data").exists()


def test_the_demo_refuses_a_models_folder_linked_outside_its_folder(tmp_path):
    from segflow.datasets import demo_project_toml

    # a re-run deleted models/churn_*.joblib through a link to a shared folder of models
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "churn_90d.joblib").write_bytes(b"not the demo's")
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "segflow.toml").write_text(demo_project_toml("data"))
    (demo / "segflow.duckdb").write_bytes(b"an earlier demo's store")
    (demo / "models").symlink_to(shared, target_is_directory=True)
    result = CliRunner().invoke(app, ["demo", "--customers", "30", "--months", "3", "--out", str(demo)])
    assert result.exit_code == 1 and "models leads outside" in result.output
    assert "Traceback" not in result.output
    assert (shared / "churn_90d.joblib").read_bytes() == b"not the demo's"
    assert (demo / "segflow.duckdb").read_bytes() == b"an earlier demo's store"
    assert not (demo / "data").exists()


def test_an_interrupted_demo_is_started_afresh_and_other_folders_still_refused(tmp_path,
                                                                            monkeypatch):
    """A demo stopped after writing data but before its project file (Ctrl-C) left a folder
    that the next demo refused ("holds files and no demo project file"): its marker, written
    first, tells the next demo the folder is its own."""
    import segflow.datasets
    import segflow.project

    out = tmp_path / "demo"

    def interrupted(data_dir, **_):
        assert (out / ".segflow-demo").is_file()  # written before any data
        (data_dir / "truth").mkdir(parents=True)
        (data_dir / "customers.csv").write_text("customer_id\nC1\n")  # half written
        raise KeyboardInterrupt

    monkeypatch.setattr(segflow.datasets, "generate_demo", interrupted)
    result = CliRunner().invoke(app, ["demo", "--customers", "30", "--months", "3", "--out", str(out)])
    assert result.exit_code != 0 and not (out / "segflow.toml").exists()
    assert sorted(p.name for p in out.iterdir()) == [".segflow-demo", "data"]

    class Stop(Exception):
        pass

    def fresh(data_dir, **_):  # the next demo: the earlier data gone before it writes
        assert not data_dir.exists()
        raise Stop

    monkeypatch.setattr(segflow.datasets, "generate_demo", fresh)
    result = CliRunner().invoke(app, ["demo", "--customers", "30", "--months", "3", "--out", str(out)])
    assert isinstance(result.exception, Stop), result.output
    assert not (out / "data").exists() and (out / ".segflow-demo").is_file()

    # a data folder that is a link elsewhere is not deleted; no marker: still refused
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mine.csv").write_text("id\n1\n")
    (out / "data").symlink_to(elsewhere, target_is_directory=True)
    result = CliRunner().invoke(app, ["demo", "--customers", "30", "--months", "3", "--out", str(out)])
    assert result.exit_code == 1 and "data leads outside" in result.output
    assert (elsewhere / "mine.csv").read_text() == "id\n1\n"
    (out / ".segflow-demo").unlink()
    (out / "data").unlink()
    (out / "data").mkdir()
    (out / "data" / "customers.csv").write_text("id\n1\n")
    result = CliRunner().invoke(app, ["demo", "--customers", "30", "--months", "3", "--out", str(out)])
    assert result.exit_code == 1 and "holds files and no demo project file" in result.output
    assert (out / "data" / "customers.csv").read_text() == "id\n1\n"


def test_a_demo_marker_beside_other_files_deletes_nothing(tmp_path, monkeypatch):
    """A marker copied or planted into a folder of someone's files (no project file): the
    demo deleted its whole data folder and any store there. It deletes only the files the
    generator writes, and refuses (deleting nothing) a data folder holding anything else or a
    store."""
    import segflow.datasets

    class Stop(Exception):
        pass

    def fresh(data_dir, **_):
        assert not data_dir.exists()
        raise Stop

    monkeypatch.setattr(segflow.datasets, "generate_demo", fresh)
    out = tmp_path / "theirs"
    (out / "data" / "truth").mkdir(parents=True)
    (out / ".segflow-demo").write_text("planted\n")
    (out / "data" / "customers.csv").write_text("a demo name\n")
    (out / "data" / "truth" / "defects.csv").write_text("a demo name\n")
    (out / "data" / "truth" / "notes.txt").write_text("mine\n")
    args = ["demo", "--customers", "30", "--months", "3", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{out / 'data' / 'truth' / 'notes.txt'} was not written by the demo (1 such" in \
        " ".join(result.output.split())
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        ".segflow-demo", "data", "data/customers.csv", "data/truth", "data/truth/defects.csv",
        "data/truth/notes.txt"]
    (out / "data" / "truth" / "notes.txt").unlink()
    (out / "segflow.duckdb").write_bytes(b"their store")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "holds a segflow store without a segflow.toml" in result.output
    assert (out / "segflow.duckdb").read_bytes() == b"their store" and (out / "data" / "customers.csv").exists()
    (out / "segflow.duckdb").unlink()
    result = CliRunner().invoke(app, args)  # only the demo's own files: removed, a fresh start
    assert isinstance(result.exception, Stop), result.output
    assert sorted(p.name for p in out.iterdir()) == [".segflow-demo"]
