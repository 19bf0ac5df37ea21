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
