"""`segflow campaign ...` on a customer-level file and on a project store."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from segflow.cli import app

runner = CliRunner()


@pytest.fixture
def responses_csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 4000
    arm = rng.choice(["A", "B"], n)
    seg = rng.choice(["x", "y"], n)
    buy = (rng.random(n) < np.where((arm == "B") & (seg == "y"), 0.25, 0.10)).astype(int)
    path = tmp_path / "resp.csv"
    pd.DataFrame({"arm": arm, "seg": seg, "buy": buy, "spend": buy * rng.gamma(2, 20, n)}).to_csv(path, index=False)
    return path


def test_effect_on_file_json(responses_csv):
    res = runner.invoke(app, ["campaign", "effect", "--responses", str(responses_csv), "--arm-col",
                              "arm", "--control", "A", "--outcome", "buy", "--outcome", "spend",
                              "--by", "seg", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    rows = pd.DataFrame(out["data"])
    df = pd.read_csv(responses_csv)
    y = rows[(rows.segment == "y") & (rows.arm == "B") & (rows.outcome == "buy")].iloc[0]
    sub = df[df.seg == "y"]
    expect = sub[sub.arm == "B"].buy.mean() - sub[sub.arm == "A"].buy.mean()
    assert y["lift_abs"] == pytest.approx(expect) and y["significant"]
    assert out["control"] == "A" and set(rows.by) == {"(all)", "seg"}


def test_effect_human_output_and_errors(responses_csv):
    res = runner.invoke(app, ["campaign", "effect", "--responses", str(responses_csv),
                              "--control", "A", "--outcome", "buy"])
    assert res.exit_code == 0 and "lift vs 'A'" in res.output
    res = runner.invoke(app, ["campaign", "effect", "--responses", str(responses_csv),
                              "--control", "Z", "--outcome", "buy"])
    assert res.exit_code == 1 and "no customer has the control arm 'Z'" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["campaign", "effect", "--outcome", "buy"])
    assert res.exit_code == 1 and "give --responses FILE" in res.output


def test_effect_and_audience_on_project(campaign_project, tmp_path):
    res = runner.invoke(app, ["campaign", "effect", "--project", str(campaign_project),
                              "--campaign", "c1", "--scheme", "value", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["campaign_id"] == "c1" and out["migration"]["after"] == "2024-02-01"
    assert "exposed in more than one arm" in res.stderr
    # the fixture flips the arm of its first 2 of 3,000 customers: the JSON says so too
    assert out["warnings"] == ["left out 2 of 3000 customers of campaign 'c1' who were "
                               "exposed in more than one arm"]
    assert out["currency"] == "GBP" and out["window_days"] == 30
    res = runner.invoke(app, ["campaign", "effect", "--project", str(campaign_project),
                              "--campaign", "c1", "--scheme", "value", "--by", "region"])
    assert res.exit_code == 0 and "Migration value" in res.output and "by region" in res.output
    _check_revenue_table(campaign_project, res.stdout)
    res = runner.invoke(app, ["campaign", "promotions", "--project", str(campaign_project),
                              "--scheme", "value", "--snapshot", "2024-02-01", "--json"])
    assert res.exit_code == 0, res.output
    promo = pd.DataFrame(json.loads(res.stdout)["data"])
    assert set(promo.segment) == {"high", "mid", "low"} and promo.promo_share.between(0, 1).all()
    res = runner.invoke(app, ["campaign", "promotions", "--project", str(campaign_project),
                              "--scheme", "value", "--snapshot", "2024-02-01"])
    assert res.exit_code == 0 and "Promotion share by value segment" in res.output
    most = int(promo.transactions.max())
    assert f"{most:,}" in res.output and f"{int(promo.buyers.max()):,}" in res.output
    res = runner.invoke(app, ["campaign", "list", "--project", str(campaign_project), "--json"])
    listed = pd.DataFrame(json.loads(res.stdout)["data"])
    assert set(listed.campaign_id) == {"c0", "c1"}
    c1 = listed[listed.campaign_id == "c1"].set_index("arm").customers
    assert c1.sum() == 3000 + 2  # two customers appear in both arms
    target = tmp_path / "aud.csv"
    res = runner.invoke(app, ["campaign", "audience", "--project", str(campaign_project),
                              "--snapshot", "2024-02-01",
                              "--segment", "value=low", "--where", "clv__clv_12m > 100",
                              "--value", "clv__clv_12m", "--holdout", "0.25", "--out",
                              str(target), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    members = pd.read_csv(target)
    assert summary["size"] == len(members) > 0
    assert (members.value == "low").all() and (members.clv__clv_12m > 100).all()
    assert summary["holdout"] == round(0.25 * len(members))
    res = runner.invoke(app, ["campaign", "audience", "--project", str(campaign_project),
                              "--segment", "value=low", "--out", str(target)])
    assert res.exit_code == 0 and "no customer scores at snapshot 2024-03-01" in res.output


def _check_revenue_table(folder, printed: str) -> None:
    """The overall revenue table names the project's currency and the 30-day window, and
    shows each arm's mean net revenue and the lift to 2 decimals, as computed here with
    pandas from the store's exposures and transactions."""
    import duckdb

    with duckdb.connect(str(folder / "segflow.duckdb"), read_only=True) as con:
        exp = con.sql("SELECT customer_id, ts, arm FROM campaign_exposures "
                      "WHERE campaign_id = 'c1'").df()
        tx = con.sql("SELECT customer_id, ts, amount FROM transactions").df()
    arms = exp.groupby("customer_id").arm.nunique()
    first = exp[exp.customer_id.isin(arms[arms == 1].index)].groupby("customer_id").agg(
        exposed=("ts", "min"), arm=("arm", "first"))
    t = tx.join(first, on="customer_id", how="inner")
    inside = t[(t.ts >= t.exposed) & (t.ts < t.exposed + pd.Timedelta(days=30))]
    first["revenue"] = inside.groupby("customer_id").amount.sum()
    means = first.fillna({"revenue": 0.0}).groupby("arm").revenue.mean()
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith("revenue (GBP, mean per customer, 30 days after exposure), all"))
    block = "\n".join(lines[start:start + 9])
    assert "mean (GBP)" in block and "lift (GBP) [interval]" in block and "MDE (GBP)" in block
    cells = {r.split("│")[2].strip(): [c.strip() for c in r.split("│")[3:-1]]
             for r in block.splitlines() if r.startswith("│")}
    assert cells["control"][:2] == [f"{(first.arm == 'control').sum():,}",
                                    f"{means['control']:,.2f}"]
    assert cells["treatment"][1] == f"{means['treatment']:,.2f}"
    lift = cells["treatment"][2]  # "+2.04 [+0.42, +3.67]": every number to 2 decimals
    assert lift.startswith(f"{means['treatment'] - means['control']:+,.2f} [")
    assert re.fullmatch(r"[+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]", lift)
    assert re.fullmatch(r"\d+\.\d\d", cells["treatment"][5])  # MDE (GBP)


def test_playbook_command():
    res = runner.invoke(app, ["campaign", "playbook", "--json"])
    assert res.exit_code == 0
    actions = {row["action"] for row in json.loads(res.stdout)["data"]}
    assert actions == {"retain", "win back", "upsell", "convert", "nurture"}
    assert sys.version_info >= (3, 11)


def test_uplift_command_scores_and_feeds_audience(tmp_path):
    rng = np.random.default_rng(5)
    n = 6000
    x = rng.normal(size=n)
    t = rng.random(n) < 0.5
    y = (rng.random(n) < 0.1 + 0.2 * t * (x > 0)).astype(int)
    src = tmp_path / "exp.parquet"
    pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "arm": np.where(t, "T", "C"),
                  "x": x, "y": y}).to_parquet(src)
    scored = tmp_path / "scored.parquet"
    res = runner.invoke(app, ["campaign", "uplift", "--responses", str(src), "--control", "C",
                              "--outcome", "y", "--feature", "x", "--scores-out", str(scored),
                              "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["scores"]["qini_coefficient"] > 0 and len(out["deciles"]) == 10
    s = pd.read_parquet(scored)
    assert s[s.x > 0.5].uplift.mean() > s[s.x < -0.5].uplift.mean() + 0.1
    aud = tmp_path / "aud.csv"
    res = runner.invoke(app, ["campaign", "audience", "--customers", str(scored), "--where",
                              "uplift > 0.05", "--out", str(aud), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["size"] == int((s.uplift > 0.05).sum())


def test_effect_store_mode_tests_the_designed_split(campaign_project):
    """Store mode checks the arms against --split as file mode does: the whole campaign and
    each segment (of the snapshot before the campaign) by an exact binomial test, here
    against scipy on counts read from the store with SQL."""
    import duckdb
    from scipy import stats

    with duckdb.connect(str(campaign_project / "segflow.duckdb"), read_only=True) as con:
        counts = con.sql(
            "WITH c AS (SELECT customer_id, min(arm) AS arm FROM campaign_exposures "
            "WHERE campaign_id = 'c1' GROUP BY 1 HAVING count(DISTINCT arm) = 1) "
            "SELECT a.segment, c.arm, count(*) AS n FROM c JOIN segment_assignments a "
            "USING (customer_id) WHERE a.scheme = 'value' AND a.snapshot_date = DATE '2024-01-01' "
            "GROUP BY 1, 2").df()
    n = counts.pivot_table(index="segment", columns="arm", values="n", aggfunc="sum")
    n.loc["(all)"] = n.sum()
    for share in (0.7, 0.5):
        res = runner.invoke(app, ["campaign", "effect", "--project", str(campaign_project),
                                  "--campaign", "c1", "--scheme", "value", "--json",
                                  "--split", f"treatment={share}",
                                  "--split", f"control={1 - share:.1f}"])
        assert res.exit_code == 0, res.output
        rows = pd.DataFrame(json.loads(res.stdout)["effect"]["data"])
        rows = rows[(rows.outcome == "purchased") & rows.is_control].set_index("segment")
        for seg, r in n.iterrows():
            expect = stats.binomtest(int(r.treatment), int(r.sum()), share).pvalue
            assert rows.balance_p[seg] == pytest.approx(expect, rel=1e-9, abs=1e-300), (share, seg)
    res = runner.invoke(app, ["campaign", "effect", "--project", str(campaign_project),
                              "--campaign", "c1", "--split", "treatment=0.7", "--split", "ctrl=0.3"])
    assert res.exit_code == 1 and "not arms of the data: 'ctrl'" in res.output


@pytest.mark.parametrize(("args", "said"), [
    (["--campaign", "c1", "--outcome", "buy"], "--outcome: file mode only"),
    (["--campaign", "c1", "--arm-col", "group", "--outcome", "x"], "--arm-col, --outcome: file mode only"),
    (["--responses", "RESP", "--outcome", "buy", "--scheme", "seg"], "--scheme: store mode only"),
    (["--responses", "RESP", "--outcome", "buy", "--window-days", "7"], "--window-days: store mode only"),
    (["--responses", "RESP", "--outcome", "buy", "--project", "P"], "--project: store mode only"),
    (["--responses", "RESP", "--outcome", "buy", "--campaign", "c1"], "not both"),
])
def test_effect_refuses_the_other_modes_options(args, said, responses_csv, campaign_project):
    """An option the chosen mode does not read is a one-line error, not silently ignored."""
    args = [{"RESP": str(responses_csv), "P": str(campaign_project)}.get(a, a) for a in args]
    if "--project" not in args:
        args += ["--project", str(campaign_project)] if "--campaign" in args[:1] else []
    res = runner.invoke(app, ["campaign", "effect", "--control", "A", *args])
    assert res.exit_code == 1, res.output
    assert said in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_uplift_refuses_score_options_without_scores_out(responses_csv):
    for extra in (["--score", str(responses_csv)], ["--pii", "mask"]):
        res = runner.invoke(app, ["campaign", "uplift", "--responses", str(responses_csv),
                                  "--control", "A", "--outcome", "buy", "--feature", "seg", *extra])
        assert res.exit_code == 1, res.output
        assert f"{extra[0]}: only with --scores-out" in res.output


@pytest.mark.parametrize("splits", [["treatment=0.8", "control=0.2", "treatment=0.8"],
                                    ["treatment=0.8", " treatment =0.2"]], ids=["last", "trimmed"])
@pytest.mark.parametrize("mode", ["file", "store"])
def test_effect_refuses_an_arm_split_twice(splits, mode, responses_csv, tmp_path):
    """A repeated --split arm was taken last-wins, or made the other arm 'without a share':
    refused naming the arm, in both modes, before any data is read."""
    where = (["--responses", str(responses_csv), "--outcome", "buy"] if mode == "file"
             else ["--campaign", "c1", "--project", str(tmp_path)])
    args = [a for s in splits for a in ("--split", s)]
    res = runner.invoke(app, ["campaign", "effect", *where, *args])
    assert res.exit_code == 1
    assert res.output == "error: --split gives the arm 'treatment' twice; give each arm once\n"


def test_campaign_effect_refuses_a_split_arm_twice_after_trimming():
    """The library's check: 'treatment' and 'treatment ' are one arm given twice."""
    from segflow.campaigns._effect import _check_split
    from segflow.errors import InputError

    with pytest.raises(InputError) as info:
        _check_split({"treatment": 0.5, "treatment\t": 0.5}, ["control", "treatment"], "r.csv", "arm")
    assert str(info.value) == ("file r.csv, column 'arm': the designed split gives the arm "
                               "'treatment' twice; give each arm once")
