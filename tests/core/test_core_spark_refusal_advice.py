"""A command that reads the DuckDB store refuses a Spark project with advice that works:
the churn model is trained once the sources are ingested into the DuckDB store too, with
``--engine duckdb``. No Spark needed: the refusal happens before any session starts."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

SPARK = '\n[engine]\nkind = "spark"\nmaster = "local[1]"\nwarehouse = "wh"\n'


def _cli(*args: str | Path) -> tuple[int, str, str]:
    from segflow.cli import app

    r = CliRunner().invoke(app, [str(a) for a in args])
    return r.exit_code, r.stdout, r.stderr


def test_churn_train_advice_on_a_spark_project_leads_to_a_trained_model(tmp_path: Path) -> None:
    from segflow.datasets import demo_project_toml, generate_demo
    from segflow.project import Project

    ds = generate_demo(tmp_path / "data", customers=300, months=14, seed=3, formats=("parquet",))
    toml = demo_project_toml(tmp_path / "data", file_format="parquet", max_date=ds.end)
    project = tmp_path / "p"
    Project.init(project, toml_text=toml + SPARK).close()

    code, _, err = _cli("churn", "train", "-p", project)
    assert code == 1
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "not available on Spark yet" in lines[0]
    assert "`segflow ingest --engine duckdb`" in lines[0] and "add --engine duckdb" in lines[0]

    # the advice, followed: ingest into the DuckDB store, then the command with --engine duckdb
    assert _cli("ingest", "-p", project, "--engine", "duckdb")[0] == 0
    code, out, err = _cli("churn", "train", "-p", project, "--engine", "duckdb")
    assert code == 0, err
    assert (project / "models" / "churn_90d.joblib").exists()

    # identity resolution has no --engine: its refusal says it needs a DuckDB project
    code, _, err = _cli("customers", "resolve", "-p", project)
    assert code == 1 and '[engine] kind = "duckdb"' in err and "--engine duckdb" not in err
