"""The rule language: precedence, every construct against plain Python, errors with
positions, and injection attempts."""

from __future__ import annotations

import math

import ibis
import numpy as np
import pandas as pd
import pytest

from segflow.config import SchemeSettings
from segflow.errors import SegflowError
from segflow.segments import RuleSyntaxError, assign, compile_condition


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 300
    m = np.round(rng.gamma(2, 300, n), 1)
    m[rng.random(n) < 0.1] = np.nan
    region = rng.choice(["London", "Paris", "Wales", "O'Hara"], n).astype(object)
    region[rng.random(n) < 0.1] = None
    return pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)],
        "monetary_12m": m,
        "frequency": rng.integers(0, 8, n),
        "region": region,
        "flag": rng.random(n) < 0.3,
        "first_purchase_date": pd.to_datetime("2023-01-01")
        + pd.to_timedelta(rng.integers(0, 600, n), unit="D"),
    })


@pytest.fixture(scope="module")
def table(frame):
    con = ibis.duckdb.connect()
    return con.create_table("features", frame)


def _eval(table, text: str) -> list[bool]:
    cond = compile_condition(text, table)
    out = table.select("customer_id", hit=cond).order_by("customer_id").to_pandas()
    return out.hit.tolist()


def _ref(frame: pd.DataFrame, fn) -> list[bool]:
    rows = frame.sort_values("customer_id").to_dict("records")

    def safe(row):
        try:
            return bool(fn(row))
        except TypeError:  # a comparison with a missing value
            return False

    return [safe(row) for row in rows]


def _r(row):
    v = row["region"]
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _m(row):  # missing as None so comparisons raise TypeError (false, as in the language)
    v = row["monetary_12m"]
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


CASES = [
    ("monetary_12m >= 500 and region in ('London','Paris')",
     lambda r: _m(r) >= 500 and r["region"] in ("London", "Paris")),
    # and binds tighter than or
    ("frequency = 1 or frequency = 2 and region = 'Paris'",
     lambda r: r["frequency"] == 1 or (r["frequency"] == 2 and r["region"] == "Paris")),
    ("(frequency = 1 or frequency = 2) and region = 'Paris'",
     lambda r: r["frequency"] in (1, 2) and r["region"] == "Paris"),
    # not binds tighter than and
    ("not frequency > 3 and flag", lambda r: not r["frequency"] > 3 and r["flag"]),
    ("not (frequency > 3 and flag)", lambda r: not (r["frequency"] > 3 and r["flag"])),
    ("frequency between 2 and 4", lambda r: 2 <= r["frequency"] <= 4),
    ("frequency not between 2 and 4 or flag", lambda r: not 2 <= r["frequency"] <= 4 or r["flag"]),
    ("region not in ('Wales')", lambda r: _r(r) is None or _r(r) != "Wales"),
    ("region is null", lambda r: _r(r) is None),
    ("monetary_12m is not null and region is not null",
     lambda r: _m(r) is not None and _r(r) is not None),
    ("region = 'O''Hara'", lambda r: r["region"] == "O'Hara"),
    ('region = "London"', lambda r: r["region"] == "London"),
    ("monetary_12m / frequency > 150", lambda r: r["frequency"] and _m(r) / r["frequency"] > 150),
    ("monetary_12m - 2 * 100 >= -50.5", lambda r: _m(r) - 200 >= -50.5),
    ("-frequency < -3", lambda r: -r["frequency"] < -3),
    ("first_purchase_date >= '2024-01-01'",
     lambda r: r["first_purchase_date"] >= pd.Timestamp("2024-01-01")),
    ("NOT flag OR frequency = 0",
     lambda r: not r["flag"] or r["frequency"] == 0),
    # two-valued logic: a comparison with a missing value is false, its negation true
    ("not (monetary_12m > 500)", lambda r: not (_m(r) is not None and _m(r) > 500)),
    ("1 = 1", lambda r: True),
    ("flag = true", lambda r: r["flag"]),
    ("monetary_12m > 1e3", lambda r: _m(r) > 1000),
]


@pytest.mark.parametrize(("text", "fn"), CASES, ids=[c[0] for c in CASES])
def test_conditions_match_python(table, frame, text, fn):
    assert _eval(table, text) == _ref(frame, fn)


ERRORS = [
    ("monetry > 5", 1, "unknown feature 'monetry'"),
    ("frequency > 5 and regin = 'x'", 19, "did you mean 'region'"),
    ("1; DROP TABLE x", 2, "unexpected character ';'"),
    ("region = 'x'; DROP TABLE features; --", 13, "unexpected character ';'"),
    ("__import__('os')", 1, "function calls"),
    ("__import__('os').system('ls')", 17, "unexpected character '.'"),
    ("eval('1')", 1, "function calls"),
    ("frequency > 1 --", 17, "expected a feature"),
    ("frequency >", 12, "the end of the rule"),
    ("(frequency > 1", 15, "expected ')'"),
    ("frequency > 1)", 14, "unexpected ')'"),
    ("region > 5", 10, "compares text with a number"),
    ("region in ('a', 2)", 17, "compares text with a number"),
    ("frequency = null", 11, "is null"),
    ("frequency and flag", 1, "'and' needs a condition"),
    ("frequency between 1 or 2", 21, "'and' in 'between"),
    ("region = 'open", 10, "unterminated"),
    ("first_purchase_date < '2024-02-30'", 23, "not a date"),
    ("frequency + region > 1", 13, "needs a number"),
    ("", 1, "empty rule"),
    ("monetary_12m >= 500 and region in ('London' 'Paris')", 45, "')' or ','"),
    ("`frequency` > 1", 1, "unexpected character '`'"),
    ("frequency[0] > 1", 10, "unexpected character '['"),
]


@pytest.mark.parametrize(("text", "column", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_name_the_column(table, text, column, message):
    with pytest.raises(RuleSyntaxError) as info:
        compile_condition(text, table, rule="r1")
    assert info.value.column == column, str(info.value)
    assert message in str(info.value)
    assert "rule 'r1', column" in str(info.value)
    assert isinstance(info.value, SegflowError)


def test_literals_never_reach_sql_as_text(table, frame):
    """A quoted value that looks like SQL is just a value: it matches nothing and runs nothing."""
    text = "region = 'x''; DROP TABLE features; --'"
    assert not any(_eval(table, text))
    assert table.count().execute() == len(frame)


def test_rule_scheme_first_match_wins_and_default(table, frame):
    scheme = SchemeSettings(
        name="value", kind="rules", default="everyone else", ordered=True,
        rules=[
            {"segment": "high value urban", "when": "monetary_12m >= 500 and region in ('London','Paris')"},
            {"segment": "high value", "when": "monetary_12m >= 500"},
            {"segment": "frequent", "when": "frequency >= 5"},
        ],
    )
    got = assign(scheme, table).order_by("customer_id").to_pandas()
    ref = []
    for r in frame.sort_values("customer_id").to_dict("records"):
        m = _m(r)
        if m is not None and m >= 500 and r["region"] in ("London", "Paris"):
            ref.append(("high value urban", 1))
        elif m is not None and m >= 500:
            ref.append(("high value", 2))
        elif r["frequency"] >= 5:
            ref.append(("frequent", 3))
        else:
            ref.append(("everyone else", 4))
    assert list(zip(got.segment, got.segment_rank, strict=True)) == ref
    unordered = assign(scheme.model_copy(update={"ordered": False}), table).to_pandas()
    assert unordered.segment_rank.isna().all()


def test_rule_error_names_the_rule(table):
    scheme = SchemeSettings(name="s", kind="rules", rules=[
        {"segment": "ok", "when": "frequency > 1"},
        {"segment": "broken", "when": "frequency >> 1"},
    ])
    with pytest.raises(RuleSyntaxError, match="rule 'broken', column 12"):
        assign(scheme, table)


def test_rule_error_names_the_scheme_and_segflow_toml(table):
    """Rule names repeat across schemes: an unknown feature names the scheme too, in
    assign and the rule checks (segments._checks), as `segflow run` shows it."""
    from segflow.segments._checks import rule_coverage

    scheme = SchemeSettings(name="tiers", kind="rules", rules=[
        {"segment": "Silver", "when": "x > 1"}])
    want = ("segflow.toml, scheme 'tiers': rule 'Silver', column 1: unknown feature 'x'")
    for call in (assign, rule_coverage):
        with pytest.raises(RuleSyntaxError) as info:
            call(scheme, table)
        assert str(info.value).splitlines()[0].startswith(want), call


def test_empty_rule_scheme_is_an_error(table):
    with pytest.raises(SegflowError, match="has no rules"):
        assign(SchemeSettings(name="s", kind="rules"), table)


@pytest.mark.parametrize("text", [
    "(" * 3000 + "frequency > 1" + ")" * 3000,
    "not " * 3000 + "frequency > 1",
    "-" * 3000 + "frequency > 1",
    "frequency" + " + 1" * 3000 + " > 1",
    "frequency" + " / monetary_12m" * 100 + " > 1",
], ids=["brackets", "not", "signs", "sum", "quotients"])
def test_rules_nested_too_deeply_are_refused_with_a_position(table, text):
    """Deep rules used to exhaust Python's stack in the parser or in the SQL compiler
    (RecursionError: an HTTP 500 from /api/v1/audiences?rule=)."""
    from segflow.segments._rules import MAX_DEPTH

    with pytest.raises(RuleSyntaxError, match=f"nests more than {MAX_DEPTH} levels"):
        compile_condition(text, table)


def test_rules_at_the_depth_limit_and_long_alternatives_compile_and_run(table, frame):
    from segflow.segments._rules import MAX_DEPTH

    parens = "(" * (MAX_DEPTH - 1) + "frequency > 1" + ")" * (MAX_DEPTH - 1)
    assert int(table.filter(compile_condition(parens, table)).count().execute()) == int((frame["frequency"] > 1).sum())
    # 3,000 alternatives: combined as a balanced tree, same answer as `in`
    many = " or ".join(f"frequency = {k % 8}" for k in range(3000))
    assert int(table.filter(compile_condition(many, table)).count().execute()) == len(frame)
    both = " and ".join(["frequency >= 1"] * 3000)
    assert int(table.filter(compile_condition(both, table)).count().execute()) == int((frame["frequency"] >= 1).sum())


@pytest.mark.parametrize("text", ["frequency in (99999999999999999999)", "frequency > 9223372036854775808",
                                  "-9223372036854775809 < frequency"])
def test_integers_beyond_64_bits_are_refused(table, text):
    """An integer literal beyond BIGINT made Ibis raise TypeError (HTTP 500)."""
    with pytest.raises(RuleSyntaxError, match="out of range"):
        compile_condition(text, table)
