"""Float literals mean the same double on every engine (segflow._literals.float_literal)."""

from __future__ import annotations

import math
import random

import ibis
import pytest

from segflow._literals import float_literal

#: Values whose DECIMAL literal comes back off by a unit in the last place through Arrow's
#: decimal cast (19.99 -> 19.990000000000002), and others of every magnitude.
VALUES = [19.99, 0.07, 1.1, 39 / 7, 20 / 7, 1e-7, 123456.789, 1e15 + 0.5, -19.99, 0.0]


def _rows(values: list[float], make) -> list[float]:
    """Each value as a column of its own (a literal alone, as a constant spend is)."""
    con = ibis.duckdb.connect()
    t = con.create_table("t", ibis.memtable({"i": [0]}))
    row = t.select(**{f"c{i}": make(v) for i, v in enumerate(values)}).to_pyarrow()
    return [row[f"c{i}"][0].as_py() for i in range(len(values))]


def test_float_literals_come_back_as_the_same_doubles_on_duckdb():
    rng = random.Random(7)
    values = VALUES + [round(rng.uniform(0, 10_000), rng.randint(0, 6)) for _ in range(300)]
    assert _rows(values, float_literal) == values
    # single literals too (no CASE around them): the spend of a one-price shop
    con = ibis.duckdb.connect()
    t = con.create_table("one", ibis.memtable({"a": [1.5, 2.0]}))
    for v in VALUES:
        got = t.mutate(s=float_literal(v), c=0.5 * float_literal(v) * t.a).to_pyarrow()
        assert got["s"].to_pylist() == [v, v]
        assert got["c"].to_pylist() == [0.5 * v * 1.5, 0.5 * v * 2.0]


def test_ibis_float_literal_alone_is_not_exact():
    """Why float_literal exists: Ibis's own float64 literal is a DECIMAL in DuckDB's SQL."""
    con = ibis.duckdb.connect()
    t = con.create_table("one", ibis.memtable({"a": [1.0]}))
    got = t.mutate(s=ibis.literal(19.99, type="float64")).to_pyarrow()["s"][0].as_py()
    if got == 19.99:  # a later Ibis or Arrow that renders or casts exactly
        pytest.skip("this Ibis/Arrow returns 19.99 exactly for its own literal")
    assert got == pytest.approx(19.99, rel=1e-15)


def test_non_finite_values_keep_ibis_literals():
    con = ibis.duckdb.connect()
    t = con.create_table("one", ibis.memtable({"a": [1.0]}))
    got = t.mutate(p=float_literal(math.inf), n=float_literal(-math.inf)).to_pyarrow()
    assert got["p"][0].as_py() == math.inf and got["n"][0].as_py() == -math.inf
