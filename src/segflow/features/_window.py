"""The time frame of one snapshot: cut-offs as literals and the row filters that use them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
from ibis.common.deferred import deferrable

from segflow.errors import SegflowError

EPOCH = dt.date(1970, 1, 1)
DAYS_12M = 365
DAYS_WEB = 90


@dataclass(frozen=True)
class Frame:
    """Cut-offs of a snapshot ``s``: everything is computed from rows with ``ts < s``.

    Attributes
    ----------
    snapshot : date
        The snapshot date ``s``.
    day : int
        ``s`` as days since 1970-01-01 (feature day arithmetic is in whole calendar days).
    window_days : int or None
        Look-back of the *window* features; None = all history.
    """

    snapshot: dt.date
    window_days: int | None

    @property
    def day(self) -> int:
        return (self.snapshot - EPOCH).days

    def ts(self, days_back: int = 0) -> ibis.Scalar:
        """The timestamp ``s - days_back`` days at 00:00 (a literal)."""
        try:
            moment = dt.datetime.combine(self.snapshot - dt.timedelta(days=days_back), dt.time())
        except OverflowError:  # a snapshot such as 0001-01-01: a traceback before
            raise SegflowError(f"snapshot {self.snapshot} is too early: the features look {days_back} "
                               "days back from it, before the year 1") from None
        return ibis.literal(moment, type="timestamp")

    def before(self, ts: ibis.Column) -> ibis.BooleanValue:
        """``ts < s``: the snapshot rule."""
        return ts < self.ts(0)

    def within(self, ts: ibis.Column, days: int | None) -> ibis.BooleanValue:
        """``s - days <= ts`` (always true when ``days`` is None); combine with :meth:`before`."""
        if days is None:
            return ibis.literal(True)
        return ts >= self.ts(days)

    def in_window(self, ts: ibis.Column) -> ibis.BooleanValue:
        return self.within(ts, self.window_days)


#: Money (amounts, quantities) is summed exactly as decimals of six places (a millionth of the
#: currency unit) with 38 digits in all: sums up to 10^32 currency units, in any order of
#: summation, with no drift when a window's amounts leave it (64-bit integer millionths
#: overflowed at 9.2e12, floating-point sums drift: 0.1 + 0.2 is not 0.3).
EXACT_MONEY = ibis.dtype("decimal(38, 6)")


def money(value: ibis.NumericValue) -> ibis.DecimalValue:
    """``value`` as :data:`EXACT_MONEY` (rounded to a millionth; null stays null), by
    :func:`exact_decimal`. A value of 10^32 or more in magnitude is a conversion error on
    DuckDB (null on Spark without ANSI)."""
    return exact_decimal(value, EXACT_MONEY)


#: :func:`exact_decimal` takes the engine's own cast below this many units of the last place
#: (2^44: the product and the double's distance from its decimal text stay within 1/256 of a
#: unit, so a product more than :data:`_TIE_MARGIN` from a half unit rounds alike).
_PLAIN_UNITS = 2.0**44
_TIE_MARGIN = 0.02
#: From 2^53 every double is a whole number (and the ingest keeps only such amounts that are
#: exactly what the file says: ``imprecise_amount``).
_WHOLE = 2.0**53


@deferrable
def exact_decimal(value: ibis.NumericValue, dtype: ibis.expr.datatypes.Decimal) -> ibis.DecimalValue:
    """``value`` as the decimal type ``dtype``, the same on every engine: a double below 2^53
    in magnitude is its shortest decimal text (what Python's ``repr`` and DuckDB write: the
    amount as the export wrote it) rounded to the type's places, half away from zero; a
    double of 2^53 or more is its whole number exactly; other types are cast.

    Spark casts a double through Java's ``Double.toString``: the shortest text below 2^53
    (checked on 220,000 values from 1e-6 to 1e16), but from 2^53 often longer, and not always
    the number (``8.5965848407352992E16``). DuckDB's own cast multiplies by 10^places in
    double arithmetic: right for small values, but from about 1e8 the product has no digit to
    spare (``8675193777.2`` became ``8675193777.200001``, ``3358590236660``
    ``3358590236659.999744``, ``1e19`` ``10000000000000000905.969664``), and a seventh
    decimal 5 (``8.0778635``) was rounded down. So the engine's cast is used only where both
    are right (below :data:`_PLAIN_UNITS` units of the last place and not within
    :data:`_TIE_MARGIN` of a half unit: nearly every amount); a whole number from 2^53 is
    built from two 64-bit integers (``x = 2048 h + l``, both exact); other values go through
    their text (DuckDB reads text into an 18-digit decimal about 5x slower than its own cast,
    into a 38-digit one about 100x: that only from 10^(17 - places)). Null stays null.

    ``value`` may be deferred (``_.clv``): the result is then deferred too.
    """
    if not value.type().is_floating():
        return value.cast(dtype)
    places = dtype.scale
    scaled = value * float(10**places)
    plain = (scaled.abs() < _PLAIN_UNITS) & (((scaled % 1).abs() - 0.5).abs() > _TIE_MARGIN)
    high = (value / 2048.0).cast("int64")
    low = (value - high.cast("float64") * 2048.0).cast("int64")
    whole = (high.cast("decimal(38, 0)") * 2048 + low).cast(dtype)
    text = value.cast("string")
    short = ibis.dtype(f"decimal(18, {places})")
    return ibis.cases(
        (plain, value.cast(dtype)),
        (value.abs() >= _WHOLE, whole),
        (value.abs() < float(10 ** (17 - places)), text.cast(short).cast(dtype)),
        else_=text.cast(dtype),
    )


def money_sum(value: ibis.NumericValue, where: ibis.BooleanValue | None = None) -> ibis.FloatingScalar:
    """The sum of ``value`` summed exactly as :data:`EXACT_MONEY` (each value rounded to a
    millionth first), returned as float64: the double nearest the exact decimal sum, so the
    same on any engine, thread count or order of rows (a float64 sum is not: on two engines
    the same revenue summed to 85,425.49999999997 and 85,425.50000000001, printed 85,425 and
    85,426). Null when no value is summed, as ``sum``."""
    return money(value).sum(where=where).cast("float64")


#: Model outputs (CLV, expected purchases, P(alive)) are summed as decimals of twelve places:
#: as order-independent as money, with a rounding of each value (5e-13) far below a model's
#: precision; |sums| up to 10^26.
EXACT_SCORE = ibis.dtype("decimal(38, 12)")


def score_sum(value: ibis.NumericValue) -> ibis.FloatingScalar:
    """As :func:`money_sum` for a model's per-customer output (each value rounded to 1e-12,
    summed as :data:`EXACT_SCORE`), as float64; null when no value is summed."""
    return exact_decimal(value, EXACT_SCORE).sum().cast("float64")


def safe_ratio(num: ibis.NumericValue, den: ibis.NumericValue) -> ibis.NumericValue:
    """``num / den`` as float, null when ``den`` is 0 or null (Spark raises on x / 0)."""
    den_f = den.cast("float64")
    return ibis.ifelse(den_f == 0, ibis.null("float64"), num.cast("float64") / den_f)


def left_join_all(base: ibis.Table, parts: list[ibis.Table], key: str = "customer_id") -> ibis.Table:
    """Left-join per-customer tables onto ``base`` by ``key`` in one join chain (a flat
    multi-way join compiles much faster than nested joins), dropping the duplicate keys."""
    out = base
    keys = []
    for i, part in enumerate(parts):
        alias = f"_key{i}"
        part = part.rename({alias: key})
        out = out.left_join(part, base[key] == part[alias])
        keys.append(alias)
    return out.drop(*keys)
