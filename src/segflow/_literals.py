"""Literals that mean the same double on every engine."""

from __future__ import annotations

import math
from typing import Any

import ibis


def float_literal(value: float) -> Any:
    """``value`` as a float64 Ibis expression that every engine evaluates to the same double.

    Ibis renders a Python float as a SQL number (``19.99``), which DuckDB and Spark read as a
    DECIMAL; turned back into a double on the way out (Arrow's decimal cast) it can come back
    one unit in the last place off (19.990000000000002), and two such literals multiply as
    decimals. The shortest text that round-trips (``repr``) cast to DOUBLE is parsed exactly
    (correctly rounded) by both engines. Non-finite values keep Ibis's own literal.
    """
    value = float(value)
    if not math.isfinite(value):
        return ibis.literal(value, type="float64")
    return ibis.literal(repr(value)).cast("float64")
