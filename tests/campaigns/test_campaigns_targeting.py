"""Audiences: rules over segments and scores, exact random hold-out, playbook actions, and
CSV/Parquet export with spreadsheet formulas neutralised in CSV."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from segflow.campaigns import (
    build_audience,
    customer_view,
    load_playbook,
    neutralise_formulas,
)
from segflow.errors import ConfigError, InputError

SNAP = dt.date(2024, 2, 1)


def test_customer_view_pivots_segments_and_scores(campaign_store):
    fx = campaign_store
    v = customer_view(fx.store, SNAP).to_pandas().set_index("customer_id")
    a = fx.assignments[fx.assignments.snapshot_date == SNAP].set_index("customer_id")
    assert len(v) == len(a)
    assert (v.loc[a.index, "value"] == a.segment).all()
    assert (v.loc[a.index, "value__rank"] == a.segment_rank).all()
    clv = fx.scores[fx.scores.score == "clv_12m"].set_index("customer_id").value
    assert (v["clv__clv_12m"] == clv.reindex(v.index)).all()
    assert "clv__p_alive" in v.columns


def test_audience_rule_holdout_and_actions(campaign_store, tmp_path):
    fx = campaign_store
    view = customer_view(fx.store, SNAP)
    aud = build_audience(view, segments={"value": ["low", "mid"]}, where="clv__clv_12m > 150",
                         value="clv__clv_12m", holdout=0.2, seed=42, action_from="value",
                         name="at risk, high value")
    # independent: the same selection in pandas
    a = fx.assignments[fx.assignments.snapshot_date == SNAP].set_index("customer_id").segment
    clv = fx.scores[fx.scores.score == "clv_12m"].set_index("customer_id").value
    chosen = a[a.isin(["low", "mid"]) & (clv.reindex(a.index) > 150)].index
    m = aud.members
    assert sorted(m.customer_id) == sorted(chosen)
    s = aud.summary()
    assert s["size"] == len(chosen) and s["holdout"] == round(0.2 * len(chosen))
    assert s["expected_value_total"] == pytest.approx(clv.loc[chosen].sum())
    # the hold-out is reproducible with the seed and changes with it
    again = build_audience(view, segments={"value": ["low", "mid"]}, where="clv__clv_12m > 150",
                           holdout=0.2, seed=42)
    other = build_audience(view, segments={"value": ["low", "mid"]}, where="clv__clv_12m > 150",
                           holdout=0.2, seed=7)
    assert (again.members.group == m.group).all() and (other.members.group != m.group).any()
    # the hold-out is random: its value distribution matches the targets' (no selection)
    grp = m.groupby("group").expected_value.mean()
    assert abs(grp["holdout"] - grp["target"]) < 0.15 * grp["target"]
    # segment names 'low'/'mid' are not in the bundled playbook -> default nurture
    assert set(m.action) == {"nurture"}
    path = aud.export(tmp_path / "aud.parquet")
    assert len(pd.read_parquet(path)) == len(m)
    assert "EffectReport" not in repr(aud) and "size=" in repr(aud)


def test_playbook_matches_builtin_segment_names(tmp_path):
    pb = load_playbook()
    segs = pd.Series(["Champions", "At risk", "At risk", "one-time", "top 1%", "Lost", "weird", None])
    got = pb.suggest(segs).action.tolist()
    assert got == ["retain", "win back", "win back", "convert", "retain", "nurture", "nurture",
                   "nurture"]
    bad = tmp_path / "pb.toml"
    bad.write_text('[[actions]]\naction = "spam"\nsegments = ["*"]\n')
    with pytest.raises(ConfigError, match="action must be one of"):
        load_playbook(bad)
    mine = tmp_path / "mine.toml"
    mine.write_text('[default]\naction = "nurture"\n[[actions]]\naction = "upsell"\nsegments = ["l*"]\n')
    assert load_playbook(mine).suggest(pd.Series(["low", "high"])).action.tolist() == ["upsell", "nurture"]


def test_export_neutralises_formulas(tmp_path):
    frame = pd.DataFrame({"customer_id": ["=HYPERLINK(\"x\")", "+1", "ok", "@SUM(A1)", "-2+3"],
                          "amount": [-1.0, 2.0, 3.0, 4.0, 5.0]})
    with pytest.warns(DeprecationWarning, match="segflow.exports.neutralise_formulas"):
        safe = neutralise_formulas(frame)  # the pandas twin: now a wrapper over the Arrow one
    assert safe.customer_id.tolist() == ["'=HYPERLINK(\"x\")", "+1", "ok", "'@SUM(A1)", "'-2+3"]
    assert safe.amount.tolist() == frame.amount.tolist()
    assert build_audience(frame, where="amount > 2", holdout=0.0).summary()["size"] == 3
    aud = build_audience(frame, holdout=0.0)
    out = pd.read_csv(aud.export(tmp_path / "a.csv"))
    assert set(out.customer_id) == set(safe.customer_id) and (out.group == "target").all()
    with pytest.raises(InputError, match="use a .csv or .parquet"):
        aud.export(tmp_path / "a.xlsx")


def test_bad_rule_is_a_clear_error(campaign_store):
    view = customer_view(campaign_store.store, SNAP)
    with pytest.raises(InputError, match="cannot use the rule"):
        build_audience(view, where="no_such_column > 1")
    with pytest.raises(InputError, match="one condition, without ';'"):  # not the parser's words
        build_audience(view, where="1=1; drop table customers")
    empty = build_audience(view, where="clv__clv_12m < 0", action_from="value")
    assert empty.summary()["size"] == 0 and "action" in empty.members.columns
    with pytest.raises(InputError, match="column 'nope'"):
        build_audience(view, value="nope")


def test_an_unknown_segment_name_is_an_error_not_an_empty_audience(campaign_store):
    """A typo in a segment name (or its case) gave an empty audience and exit code 0; now it
    is an error listing the scheme's segments. A segment the scheme has assigned at another
    snapshot but that is empty at this one is a valid, empty audience."""
    from segflow.campaigns import known_segments

    fx = campaign_store
    view = customer_view(fx.store, SNAP)
    names = known_segments(fx.store)
    assert names["value"] == set(fx.assignments.segment.dropna())  # every snapshot's names
    with pytest.raises(InputError, match=r"no segment 'Nope'; its segments are: high, low, mid"):
        build_audience(view, segments={"value": ["low", "Nope"]}, segment_names=names)
    with pytest.raises(InputError, match=r"no segment 'LOW' \(did you mean 'low'\?\)"):
        build_audience(view, segments={"value": ["LOW"]})  # default: the names held now
    now = fx.assignments[fx.assignments.snapshot_date == SNAP]
    empty = build_audience(view.filter(view.value != "low"), segments={"value": ["low"]},
                           segment_names=names)
    assert empty.summary()["size"] == 0 and (now.segment == "low").any()


def test_segment_names_are_checked_against_every_customer_not_the_filtered_ones():
    """Two schemes' names each exist, in different customers: an empty audience, not an
    error naming the second scheme's segments among the customers the first one kept."""
    frame = pd.DataFrame({"customer_id": ["a", "b"], "rfm": ["Champions", "Lost"],
                          "value": ["Low", "High"]})
    aud = build_audience(frame, segments={"rfm": ["Champions"], "value": ["High"]})
    assert aud.summary()["size"] == 0


def test_a_library_audience_is_one_row_per_customer():
    """The CLI refused a customer file with a repeated id (the customer was in the target and
    in its hold-out), build_audience from Python did not: now it refuses a frame as the CLI
    does (its rows: positions from 1) and a table's selected customers (by id); no rows is
    an empty audience."""
    import ibis

    frame = pd.DataFrame({"customer_id": ["A", "B", "A", "C"], "v": [1.0, 2.0, 3.0, 4.0]})
    repeated = "expected one row per customer, but 1 id repeats (first 'A', on 2 rows in all)"
    with pytest.raises(InputError) as caught:
        build_audience(frame, holdout=0.5)
    assert str(caught.value) == f"rows 1 and 3, column 'customer_id': {repeated}"
    table = ibis.duckdb.connect().create_table("c", frame)
    with pytest.raises(InputError) as caught:
        build_audience(table, holdout=0.5)
    assert str(caught.value) == f"column 'customer_id': {repeated}"  # a table's order is no row
    # a table's members are checked (no second query of the whole table): A once selected
    assert build_audience(table, where="v > 1").members.customer_id.tolist() == ["A", "B", "C"]
    with pytest.raises(InputError) as caught:
        build_audience(pd.DataFrame({"customer_id": ["A", None, "B"]}))
    assert str(caught.value) == "row 2, column 'customer_id': 1 row has no id; give each row its customer's id"
    assert len(build_audience(frame.iloc[:0]).members) == 0
    assert build_audience(frame.drop_duplicates("customer_id")).members.customer_id.tolist() == ["A", "B", "C"]
