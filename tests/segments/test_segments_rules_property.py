"""Property test: random conditions, printed with the fewest parentheses the precedence rules
allow, evaluate like a direct Python evaluation of the same tree."""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segflow.segments import compile_condition

COLS = ("a", "b", "c")
OPS = {"=": lambda x, y: x == y, "!=": lambda x, y: x != y, "<": lambda x, y: x < y,
       "<=": lambda x, y: x <= y, ">": lambda x, y: x > y, ">=": lambda x, y: x >= y}
PREC = {"or": 1, "and": 2, "not": 3, "cmp": 4}

rng = np.random.default_rng(0)
FRAME = pd.DataFrame({c: rng.integers(0, 5, 60).astype(float) for c in COLS})
FRAME.loc[rng.random(60) < 0.15, "b"] = np.nan  # missing values: comparisons are false
FRAME["row"] = np.arange(60)
TABLE = ibis.duckdb.connect().create_table("t", FRAME)

leaf = st.tuples(st.just("cmp"), st.sampled_from(COLS), st.sampled_from(sorted(OPS)),
                 st.integers(0, 4))
tree = st.recursive(
    leaf,
    lambda kids: st.one_of(
        st.tuples(st.just("not"), kids),
        st.tuples(st.sampled_from(["and", "or"]), kids, kids),
    ),
    max_leaves=8,
)


def render(node, parent: int, upper: bool) -> str:
    kind = node[0]
    if kind == "cmp":
        text = f"{node[1]} {node[2]} {node[3]}"
    elif kind == "not":
        text = f"{'NOT' if upper else 'not'} {render(node[1], PREC['not'], upper)}"
    else:
        word = kind.upper() if upper else kind
        # left child may sit at the same level (left-associative); right child needs more
        text = f"{render(node[1], PREC[kind], upper)} {word} {render(node[2], PREC[kind] + 1, upper)}"
    return f"({text})" if PREC[kind] < parent else text


def evaluate(node, row) -> bool:
    kind = node[0]
    if kind == "cmp":
        value = row[node[1]]
        return False if pd.isna(value) else bool(OPS[node[2]](value, node[3]))
    if kind == "not":
        return not evaluate(node[1], row)
    if kind == "and":
        return evaluate(node[1], row) and evaluate(node[2], row)
    return evaluate(node[1], row) or evaluate(node[2], row)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree, st.booleans())
def test_random_conditions_follow_precedence(node, upper):
    text = render(node, 0, upper)
    got = TABLE.select("row", hit=compile_condition(text, TABLE)).order_by("row").to_pandas()
    want = [evaluate(node, row) for row in FRAME.to_dict("records")]
    assert got.hit.tolist() == want, text
