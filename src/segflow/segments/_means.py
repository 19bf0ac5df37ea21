"""Exact means of features: sums any engine takes exactly in any order of rows, so that a
profile's mean is the same double on DuckDB and Spark, at any thread count.

:func:`exact_mean` is the definition. Its general form carries sums that most features never
need (a float mean for a column holding NaN, a decimal sum of amounts of 4,096 or more, a count
of non-null values): :func:`mean_shapes` finds, in one query over the profiled customers'
features, what each column holds, and :func:`exact_mean` given that :class:`MeanShape` leaves
out the sums that would be null or equal to another aggregate. The result is the same double
(the same sums, the same arithmetic on them); at 400k customers x 6 schemes x 37 features the
profiles' means take 3.7 CPU-s instead of 6.9 (docs/benchmarks.md, session 57).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ibis

#: From this magnitude a floating feature's mean is a float64 mean (no decimal holds it).
_EXACT_MEAN_MAX = 1e24
#: Below this magnitude a double is within 4.6e-13 (half its last place) of its decimal, so
#: its fraction rounded to 12 places is the decimal's (the amount as written, up to 12
#: places); from it the value's decimal text is summed (:func:`exact_decimal`).
_SMALL = 2.0**12
#: Integer sums below this magnitude are exact in a 64-bit integer and in a double.
_EXACT_INT = 2.0**53


@dataclass(frozen=True)
class MeanShape:
    """What one column's values hold, found by :func:`mean_shapes` over (at least) the rows
    that :func:`exact_mean` will average; each flag True where the general form is needed.

    Attributes
    ----------
    nulls : bool, default=True
        Some value is null: the count of values is an aggregate of its own (else it is the
        group's row count).
    odd : bool, default=True
        Some float value is NaN, infinite or of magnitude 1e24 or more: the float mean taken
        for a group holding one is computed too.
    large : bool, default=True
        Some float value is of magnitude :data:`_SMALL` or more: such values' decimals are
        summed (through :func:`segflow.features._window.exact_decimal`).
    small_sums : bool, default=False
        An integer column whose sums over any group stay below 2^53 in magnitude: summed as
        64-bit integers instead of 38-digit decimals (the same whole number, the same double).
    """

    nulls: bool = True
    odd: bool = True
    large: bool = True
    small_sums: bool = False


#: The general form of :func:`exact_mean` (nothing known of the values).
ANY_VALUES = MeanShape()


def _float_parts(x: ibis.Value) -> tuple[ibis.Value, ibis.Value]:
    odd = x.isnan() | x.isinf() | (x.abs() >= _EXACT_MEAN_MAX)
    return odd, ~odd & (x.abs() < _SMALL)


def mean_shapes(t: ibis.Table, columns: Sequence[str], rows: int) -> dict[str, MeanShape]:
    """The :class:`MeanShape` of each of ``columns`` (numeric or boolean) of ``t``, in one
    query; ``rows``: at least the rows of any group whose mean will be taken with it (its
    integer sums are bounded by that many times the largest magnitude)."""
    metrics: dict[str, Any] = {"rows": t.count()}
    for i, name in enumerate(columns):
        col = t[name]
        metrics[f"n{i}"] = col.count()
        if col.type().is_boolean():
            continue
        if col.type().is_integer():  # min and max: abs() of the least int64 overflows
            metrics[f"lo{i}"], metrics[f"hi{i}"] = col.min(), col.max()
            continue
        odd, small = _float_parts(col.cast("float64"))
        metrics[f"o{i}"] = odd.any()
        metrics[f"l{i}"] = (~odd & ~small).any()
    row = t.aggregate(**metrics).to_pyarrow().to_pylist()[0]
    shapes: dict[str, MeanShape] = {}
    for i, name in enumerate(columns):
        nulls = int(row[f"n{i}"] or 0) != int(row["rows"] or 0)
        dtype = t[name].type()
        if dtype.is_boolean():
            shapes[name] = MeanShape(nulls=nulls, odd=False, large=False,
                                     small_sums=float(rows) < _EXACT_INT)
        elif dtype.is_integer():
            top = max(abs(int(row[f"lo{i}"] or 0)), abs(int(row[f"hi{i}"] or 0)))
            shapes[name] = MeanShape(nulls=nulls, odd=False, large=False,
                                     small_sums=float(top) * float(rows) < _EXACT_INT)
        else:
            shapes[name] = MeanShape(nulls=nulls, odd=bool(row[f"o{i}"]), large=bool(row[f"l{i}"]))
    return shapes


def exact_mean(col: ibis.Value, shape: MeanShape = ANY_VALUES, size: ibis.Value | None = None,
               ) -> ibis.Value:
    """The mean of ``col`` over its non-null values, as float64, from sums that any engine
    takes exactly in any order of rows: the same double on DuckDB and Spark, at any thread
    count. A float64 sum is not, and where values cancel (a customer's +1e12 order,
    another's -1e12 refund) its error reaches the 7th digit of a mean of 336: 336.406961184
    on DuckDB, 336.406960307 on Spark, beyond :func:`settled`'s 12 digits.

    Integer and boolean columns sum their values (as decimal(38, 0), or as int64 where
    ``shape.small_sums``). A floating value is taken as its decimal rounded to 12 places (as
    :func:`segflow.features.score_sum`): below :data:`_SMALL` in magnitude as its whole part
    ``floor(x)`` and its fraction in units of 1e-12 (``round((x - floor(x)) * 1e12)``, exact
    IEEE operations but the last, whose error is far below half a unit), both summed as
    integers; from it (few values: large amounts) through its decimal text
    (:func:`exact_decimal`). The mean is then ``(sum of whole parts + sum of units / 1e12 +
    sum of large values) / n``. Summing every value's text, as before, cost 39.7 CPU-s for
    the profiles at 1M customers x 6 schemes; this 21-23. A column holding NaN, infinity or
    a value of 1e24 or more keeps the float mean.

    ``shape`` (:func:`mean_shapes`, over at least the rows averaged) leaves out the sums its
    values do not need: the large values' sum when there is none (it would be null, added as
    0.0), the NaN test and float mean when no value is odd, and with ``size`` (the group's
    row count, e.g. ``table.count()``) the count of values when none is null. The result is
    the same double as without it.
    """
    from segflow.features._window import EXACT_SCORE, exact_decimal

    if col.type().is_boolean():
        col = col.cast("int64")
    n = size if size is not None and not shape.nulls else col.count()
    if col.type().is_integer():
        if shape.small_sums:  # exact in int64 and in the double (as the decimal's)
            total = col.cast("int64").sum().cast("float64")
        else:
            total = col.cast("decimal(38, 0)").sum().cast("float64")
        return ibis.ifelse(n == 0, ibis.null("float64"), total / n.cast("float64"))
    x = col.cast("float64")
    odd, small = _float_parts(x)
    if not shape.odd:  # no NaN, infinity nor 1e24: small is |x| < _SMALL, large the rest
        small = x.abs() < _SMALL
    # (odd values are kept out of the integer casts even where no large value is present)
    y = ibis.ifelse(small, x, ibis.null("float64")) if shape.large or shape.odd else x
    whole = y.floor()
    units = ((y - whole) * 1e12 + 0.5).floor()  # the fraction is >= 0: half up is half away
    dec = ibis.dtype("decimal(18, 0)")
    total = (whole.cast("int64").cast(dec).sum().cast("float64").fill_null(0.0)
             + units.cast("int64").cast(dec).sum().cast("float64").fill_null(0.0) / 1e12)
    if shape.large:
        big = ~small if not shape.odd else ~odd & ~small
        large = exact_decimal(ibis.ifelse(big, x, ibis.null("float64")), EXACT_SCORE)
        total = total + large.sum().cast("float64").fill_null(0.0)
    # (without large values their sum is 0.0, and total + 0.0 is total: never -0.0 here)
    exact = ibis.ifelse(n == 0, ibis.null("float64"), total / n.cast("float64"))
    return ibis.ifelse(odd.any(), x.mean(), exact) if shape.odd else exact
