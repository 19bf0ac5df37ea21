"""Row-wise Ibis expressions evaluated on one Python dict, compiled once to closures.

The rule language (:mod:`segflow.segments._rules`) compiles a condition to an Ibis
expression over an unbound features table; real-time scoring reuses that compiler (so the
language, its checks and its error messages are the same) and evaluates the expression on
one customer's feature row with SQL semantics: null propagates through arithmetic and
comparisons, ``and``/``or`` are three-valued, ``coalesce`` takes the first non-null value,
division by zero does not occur (the compiler guards it). Only the operations a rule can
produce are supported; anything else raises :class:`UnsupportedExpression` when compiled,
never at request time.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

import ibis.expr.operations as ops

Row = Mapping[str, Any]
Fn = Callable[[Row], Any]


class UnsupportedExpression(Exception):
    """An Ibis operation the row evaluator does not know."""


_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ops.Equals: operator.eq, ops.NotEquals: operator.ne, ops.Less: operator.lt,
    ops.LessEqual: operator.le, ops.Greater: operator.gt, ops.GreaterEqual: operator.ge,
}
_ARITH: dict[type, Callable[[Any, Any], Any]] = {
    ops.Add: operator.add, ops.Subtract: operator.sub, ops.Multiply: operator.mul,
}


def _cast(value: Any, to: Any) -> Any:
    if value is None:
        return None
    if to.is_float64() or to.is_floating():
        return float(value)
    if to.is_integer():
        return int(value)
    if to.is_date():
        return value.date() if isinstance(value, dt.datetime) else value
    if to.is_string():
        return str(value)
    if to.is_boolean():
        return bool(value)
    raise UnsupportedExpression(f"cast to {to}")


def round_half_away(value: float, digits: int) -> float:
    """DuckDB's ``round(x, digits)`` of a DOUBLE: ``x * 10^digits`` rounded half away from
    zero, divided back (not Python's round-half-even of the exact decimal value)."""
    scale = 10.0 ** digits
    y = value * scale
    a = abs(y)
    r = math.floor(a)
    if a - r >= 0.5:
        r += 1.0
    out = math.copysign(r, y) / scale
    return value if math.isinf(out) or math.isnan(out) else out


def compile_row(expr: Any) -> Fn:
    """A function of a feature row returning the value of ``expr`` (an Ibis expression or
    operation over one table's columns)."""
    op = expr.op() if hasattr(expr, "op") else expr
    kind = type(op)
    if isinstance(op, ops.Field):
        name = op.name
        if isinstance(op.rel, ops.Project):  # a column defined by a projection: its expression
            return compile_row(op.rel.values[name])
        return lambda row: row.get(name)
    if isinstance(op, ops.Literal):
        value = op.value
        return lambda row: value
    if kind in _COMPARE:
        f, a, b = _COMPARE[kind], compile_row(op.left), compile_row(op.right)

        def compare(row: Row) -> Any:
            x, y = a(row), b(row)
            return None if x is None or y is None else f(x, y)
        return compare
    if kind in _ARITH:
        f, a, b = _ARITH[kind], compile_row(op.left), compile_row(op.right)

        def arith(row: Row) -> Any:
            x, y = a(row), b(row)
            return None if x is None or y is None else f(x, y)
        return arith
    if isinstance(op, ops.FloorDivide):
        a, b = compile_row(op.left), compile_row(op.right)

        def floor_divide(row: Row) -> Any:
            x, y = a(row), b(row)
            return None if x is None or y is None or y == 0 else x // y
        return floor_divide
    if isinstance(op, ops.Floor | ops.Ceil):
        a, f = compile_row(op.arg), (math.floor if isinstance(op, ops.Floor) else math.ceil)
        return lambda row: None if (v := a(row)) is None else f(v)
    if isinstance(op, ops.Between):
        a, lo, hi = compile_row(op.arg), compile_row(op.lower_bound), compile_row(op.upper_bound)

        def between(row: Row) -> Any:
            v, x, y = a(row), lo(row), hi(row)
            return None if v is None or x is None or y is None else x <= v <= y
        return between
    if isinstance(op, ops.Divide):
        a, b = compile_row(op.left), compile_row(op.right)

        def divide(row: Row) -> Any:
            x, y = a(row), b(row)
            return None if x is None or y is None or y == 0 else float(x) / float(y)
        return divide
    if isinstance(op, ops.Negate):
        a = compile_row(op.arg)
        return lambda row: None if (v := a(row)) is None else -v
    if isinstance(op, ops.Not):
        a = compile_row(op.arg)
        return lambda row: None if (v := a(row)) is None else not v
    if isinstance(op, ops.And):
        a, b = compile_row(op.left), compile_row(op.right)

        def and_(row: Row) -> Any:
            x, y = a(row), b(row)
            if x is False or y is False:
                return False
            return None if x is None or y is None else True
        return and_
    if isinstance(op, ops.Or):
        a, b = compile_row(op.left), compile_row(op.right)

        def or_(row: Row) -> Any:
            x, y = a(row), b(row)
            if x is True or y is True:
                return True
            return None if x is None or y is None else False
        return or_
    if isinstance(op, ops.IsNull):
        a = compile_row(op.arg)
        return lambda row: a(row) is None
    if isinstance(op, ops.NotNull):
        a = compile_row(op.arg)
        return lambda row: a(row) is not None
    if isinstance(op, ops.Coalesce):
        parts = [compile_row(x) for x in op.arg]

        def coalesce(row: Row) -> Any:
            for p in parts:
                v = p(row)
                if v is not None:
                    return v
            return None
        return coalesce
    if isinstance(op, ops.IfElse):
        c, t, f = compile_row(op.bool_expr), compile_row(op.true_expr), compile_row(op.false_null_expr)
        return lambda row: t(row) if c(row) is True else f(row)
    if isinstance(op, ops.SearchedCase):
        cases = [compile_row(x) for x in op.cases]
        results = [compile_row(x) for x in op.results]
        default = compile_row(op.default)

        def case(row: Row) -> Any:
            for c, r in zip(cases, results, strict=True):
                if c(row) is True:
                    return r(row)
            return default(row)
        return case
    if isinstance(op, ops.InValues):
        a = compile_row(op.value)
        options = [compile_row(x) for x in op.options]

        def isin(row: Row) -> Any:
            v = a(row)
            if v is None:
                return None
            values = [o(row) for o in options]
            if v in values:
                return True
            return None if any(x is None for x in values) else False
        return isin
    if isinstance(op, ops.Round):
        a = compile_row(op.arg)
        digits = 0 if op.digits is None else op.digits.value

        def round_(row: Row) -> Any:
            v = a(row)
            return None if v is None else round_half_away(float(v), digits)
        return round_
    if isinstance(op, ops.Ln):
        a = compile_row(op.arg)
        return lambda row: None if (v := a(row)) is None or v <= 0 else math.log(v)
    if isinstance(op, ops.Cast):
        a, to = compile_row(op.arg), op.to
        return lambda row: _cast(a(row), to)
    raise UnsupportedExpression(f"{kind.__name__} is not supported by the real-time scorer")
