"""``segflow campaign effect|uplift`` on customer files: how arm values are read (trimmed,
rows without an arm left out, case), missing outcomes and usage errors."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest
from typer.testing import CliRunner

from segflow.cli import app

runner = CliRunner()


def test_effect_on_a_file_without_outcome_is_a_usage_error(tmp_path):
    """A missing --outcome in file mode exited 1 (an error) instead of 2 (a usage error)."""
    path = tmp_path / "r.csv"
    path.write_text("customer_id,arm,converted\nC1,control,1\nC2,treatment,0\n")
    result = runner.invoke(app, ["campaign", "effect", "--responses", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        "segflow campaign effect: invalid value for '--outcome': file mode (--responses) needs "
        "at least one outcome column; see 'segflow campaign effect --help'")


def _rows(n: int = 400) -> list[str]:
    """The review's experiment: conversion 0.3 (treatment) vs 0.2 (control)."""
    rng = random.Random(5)
    rows = []
    for i in range(n):
        arm = rng.choice(["treatment", "control"])
        rows.append(f"C{i},{arm},{int(rng.random() < (0.3 if arm == 'treatment' else 0.2))}")
    return rows


def _effect(tmp_path, extra: list[str]) -> tuple[dict, str]:
    path = tmp_path / "r.csv"
    path.write_text("customer_id,arm,converted\n" + "\n".join(_rows() + extra) + "\n")
    result = runner.invoke(app, ["campaign", "effect", "--responses", str(path), "--outcome",
                                 "converted", "--json"])
    assert result.exit_code == 0, result.output
    rows = [r for r in json.loads(result.stdout)["data"] if r["by"] == "(all)"]
    return {r["arm"]: (r["n"], r["p_adjusted"]) for r in rows}, result.output


def test_blank_and_padded_arms_are_no_extra_arms(tmp_path):
    """A blank arm became a '(missing)' treated arm and padded arms (' control',
    'treatment ') two more: each joined the Holm family, the treatment p-value went from
    0.0197 to 0.0395 and 0.0592. Now a blank arm is left out (counted) and values trimmed."""
    base, _ = _effect(tmp_path, [])
    assert base["treatment"][0] == 209 and round(base["treatment"][1], 4) == 0.0197
    blank, output = _effect(tmp_path, ["C903,,1", "C904,,0"])
    assert blank == base  # the same arms, counts and p-values
    assert "column 'arm': 2 customers have no arm (an empty or missing value) and are left out" in output
    padded, _ = _effect(tmp_path, ["C950,treatment ,1", "C951, control,0"])
    assert set(padded) == {"control", "treatment"}
    assert padded["control"][0] == 192 and padded["treatment"][0] == 210


def test_arms_differing_only_in_case_are_an_error(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("customer_id,arm,converted\n" + "\n".join(_rows(60) + ["C99,Treatment,1"]) + "\n")
    result = runner.invoke(app, ["campaign", "effect", "--responses", str(path), "--outcome",
                                 "converted"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: file {path}, column 'arm': the arm values 'Treatment' and 'treatment' differ "
        "only in case; arms are compared exactly: write each arm one way")


def test_uplift_reads_arms_and_missing_outcomes_by_the_same_rule(tmp_path):
    """uplift pooled a blank arm ('None') and ' control' into the treated customers; an
    empty or NA outcome said 'the outcome has 1 missing values', naming nothing."""
    from sklearn.linear_model import LogisticRegression

    from segflow.campaigns import fit_uplift

    rows = [f"{r},{i % 7}" for i, r in enumerate(_rows(120))]
    frame = pd.DataFrame([r.split(",") for r in [*rows, "C900,,1,3", "C901, control,0,2"]],
                         columns=["customer_id", "arm", "converted", "x"])
    frame.loc[120, "arm"] = None
    frame = frame.astype({"converted": int, "x": int})
    with pytest.warns(UserWarning, match="column 'arm': 1 customer has no arm"):
        res = fit_uplift(frame, arm_col="arm", control="control", outcome="converted",
                         features=["x"], estimator=LogisticRegression())
    # 120 rows + ' control' (a control customer); the blank arm left out, not 'treated'
    assert res.scores["n_train"] + res.scores["n_test"] == 121
    assert res.scores["n_test"] == 37  # 0.3 of 121, stratified: 1 more control customer
    path = tmp_path / "u.csv"
    args = ["campaign", "uplift", "--responses", str(path), "--outcome", "converted",
            "--feature", "x"]
    for cell in ("", "NA", " NA"):
        path.write_text("customer_id,arm,converted,x\n" + "\n".join(
            [*rows[:5], f"C900,control,{cell},3", *rows[5:]]) + "\n")
        result = runner.invoke(app, args)
        assert result.exit_code == 1
        assert result.output.strip() == (
            f"error: file {path}, row 6, column 'converted': the outcome is missing; 1 customer "
            "of the experiment has no numeric outcome: fill or drop those rows")


def test_clean_arms_cost_one_query_and_messy_ones_give_the_same_read_out(monkeypatch):
    """The arm rule runs on the read-out's own aggregation: arms that need no cleaning (the
    store's read-outs) cost one engine query, not a second pass over the responses; arms
    that need trimming or are missing cost a second query and read out as the clean ones."""
    import ibis

    from segflow.campaigns import campaign_effect

    rng = random.Random(11)
    arms = [rng.choice(["treatment", "control"]) for _ in range(300)]
    bought = [int(rng.random() < (0.35 if a == "treatment" else 0.2)) for a in arms]
    clean = pd.DataFrame({"arm": arms, "bought": bought})
    messy = pd.concat([clean.assign(arm=[f" {a}\u00a0" for a in arms]),
                       pd.DataFrame({"arm": [None, "", "  "], "bought": [1, 1, 1]})],
                      ignore_index=True)
    calls = []
    original = ibis.expr.types.Table.to_pandas
    monkeypatch.setattr(ibis.expr.types.Table, "to_pandas",
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    first = campaign_effect(ibis.memtable(clean), arm_col="arm", control="control", outcomes=["bought"]).table
    assert len(calls) == 1
    with pytest.warns(UserWarning, match="3 customers have no arm"):
        second = campaign_effect(ibis.memtable(messy), arm_col="arm", control="control", outcomes=["bought"]).table
    assert len(calls) == 3
    pd.testing.assert_frame_equal(first, second)
    treated = first[first.arm == "treatment"].iloc[0]
    n_t = sum(a == "treatment" for a in arms)
    assert treated["n"] == n_t
    assert treated["value"] == pytest.approx(sum(b for a, b in zip(arms, bought, strict=True) if a == "treatment") / n_t)
