"""``segflow campaign effect|uplift`` (and ``campaign_effect``/``fit_uplift``) take one row
per customer, as ``campaign audience --customers`` does: a repeated id was counted twice and a
row without an id counted as somebody; both are now refused naming file, rows and column."""

from __future__ import annotations

import json
import random

import ibis
import pandas as pd
import pytest
from typer.testing import CliRunner

from segflow.campaigns import campaign_effect, fit_uplift
from segflow.cli import app
from segflow.errors import InputError

runner = CliRunner()
HEADER = "customer_id,arm,converted,x"


def _rows(n: int = 60) -> list[str]:
    rng = random.Random(5)
    return [f"C{i},{rng.choice(['treatment', 'control'])},{int(rng.random() < 0.3)},{i % 7}"
            for i in range(n)]


def _write(path, rows: list[str]):
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def _run(*args: str):
    return runner.invoke(app, ["campaign", *args])


@pytest.mark.parametrize("command", ["effect", "uplift"])
def test_repeated_missing_and_no_ids_are_refused_by_effect_and_uplift(tmp_path, command):
    rows = _rows()
    extra = ["--feature", "x"] if command == "uplift" else []
    # C1 on rows 2 and 4, C10 on rows 12 and 62 (the first data row is row 1)
    dup = _write(tmp_path / "dup.csv", [*rows[:3], rows[1], *rows[3:], rows[10]])
    result = _run(command, "--responses", str(dup), "--outcome", "converted", *extra)
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: file {dup}, rows 2, 4, 12, ... (4 in all), column 'customer_id': expected one "
        "row per customer, but 2 ids repeat (first 'C1', 'C10', on 4 rows in all)")
    missing = _write(tmp_path / "miss.csv", [*rows[:4], ",control,1,3", *rows[4:]])
    result = _run(command, "--responses", str(missing), "--outcome", "converted", *extra)
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: file {missing}, row 5, column 'customer_id': 1 row has no id; give each row "
        "its customer's id")
    empty = _write(tmp_path / "empty.csv", [])
    result = _run(command, "--responses", str(empty), "--outcome", "converted", *extra)
    assert result.exit_code == 1
    assert result.output.strip() == f"error: file {empty}: the file has a header but no data rows"


def test_effect_counts_each_customer_once(tmp_path):
    """The read-out of a clean file counts its 60 customers (a repeated row made it 62)."""
    rows = _rows()
    path = _write(tmp_path / "ok.csv", rows)
    result = _run("effect", "--responses", str(path), "--outcome", "converted", "--json")
    assert result.exit_code == 0, result.output
    n = {r["arm"]: r["n"] for r in json.loads(result.stdout)["data"] if r["by"] == "(all)"}
    arms = [r.split(",")[1] for r in rows]
    assert n == {"control": arms.count("control"), "treatment": arms.count("treatment")}


def test_uplift_refuses_a_score_file_with_repeated_ids(tmp_path):
    rows = _rows()
    responses = _write(tmp_path / "ok.csv", rows)
    score = _write(tmp_path / "score.csv", [*rows[:5], rows[2]])
    result = _run("uplift", "--responses", str(responses), "--outcome", "converted", "--feature",
                  "x", "--score", str(score), "--scores-out", str(tmp_path / "s.csv"))
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: file {score}, rows 3 and 6, column 'customer_id': expected one row per "
        "customer, but 1 id repeats (first 'C2', on 2 rows in all)")
    assert not (tmp_path / "s.csv").exists()


def _frame() -> pd.DataFrame:
    return pd.DataFrame([r.split(",") for r in _rows()], columns=HEADER.split(",")).astype(
        {"converted": int, "x": int})


def test_the_api_refuses_repeated_customers_by_their_id_column():
    frame = _frame()
    dup = pd.concat([frame, frame.iloc[[7]]], ignore_index=True)
    args = dict(arm_col="arm", control="control", outcomes=["converted"])
    # a DataFrame: rows are its positions from 1
    with pytest.raises(InputError) as err:
        campaign_effect(dup, **args)
    assert str(err.value) == ("rows 8 and 61, column 'customer_id': expected one row per customer, "
                              "but 1 id repeats (first 'C7', on 2 rows in all)")
    # an Ibis table without a file: its order means nothing, so no rows
    with pytest.raises(InputError) as err:
        campaign_effect(ibis.memtable(dup), **args)
    assert str(err.value) == ("column 'customer_id': expected one row per customer, but 1 id "
                              "repeats (first 'C7', on 2 rows in all)")
    # another customer-key name, or the one named by id_col
    renamed = dup.rename(columns={"customer_id": "CustomerID"})
    with pytest.raises(InputError, match=r"^rows 8 and 61, column 'CustomerID': "):
        campaign_effect(renamed, **args)
    with pytest.raises(InputError, match=r"^rows 8 and 61, column 'x': expected one row"):
        campaign_effect(frame.assign(x=range(60)).pipe(
            lambda f: pd.concat([f, f.iloc[[7]]], ignore_index=True)).drop(columns="customer_id"),
            id_col="x", **args)
    with pytest.raises(InputError, match=r"^column 'client': no id column; columns are: "):
        campaign_effect(frame, id_col="client", **args)
    with pytest.raises(InputError) as err:
        fit_uplift(dup, arm_col="arm", control="control", outcome="converted", features=["x"],
                   source="past.csv")
    assert str(err.value).startswith("file past.csv, rows 8 and 61, column 'customer_id': ")
    # responses without an id column are read out as before (not checked)
    without = campaign_effect(dup.drop(columns="customer_id"), **args).table
    assert int(without[without.by == "(all)"].n.sum()) == 61
