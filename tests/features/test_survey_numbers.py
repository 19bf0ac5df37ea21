"""A numeric survey answer is read by one rule in the engine and in ``/score``: ASCII digits
with an optional sign, point and exponent (or inf / nan), never the engine cast's extras
(``1_5`` read as 15, ``+-5`` as -5) nor other scripts' digits."""

from __future__ import annotations

import math

import ibis
import pytest

from segflow.features._survey import answer_number
from segflow.server._fast_features import _to_float

CASES = {"7": 7.0, "-2.5": -2.5, "+3": 3.0, "5.": 5.0, ".5": 0.5, "1e3": 1000.0,
         "2E-2": 0.02, "inf": math.inf, "-Infinity": -math.inf, "1_5": None, "1_000": None,
         "+-5": None, "\u0661\u0662": None, "1.2.3": None, "abc": None, "": None, "0x1F": None}


@pytest.mark.parametrize("text", list(CASES))
def test_the_engine_and_score_read_an_answer_alike(text):
    con = ibis.duckdb.connect()
    value = answer_number(ibis.literal(text, "string"))
    want = CASES[text]
    if want is None:
        assert con.execute(value.isnull()) and _to_float(text) is None
    else:
        assert con.execute(value) == want and _to_float(text) == want
    nan = con.execute(answer_number(ibis.literal("NaN", "string")))
    assert math.isnan(nan) and math.isnan(_to_float("NaN"))
