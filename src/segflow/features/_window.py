"""The time frame of one snapshot: cut-offs as literals and the row filters that use them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis

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
    """``value`` as :data:`EXACT_MONEY` (rounded to a millionth; null stays null). A value of
    10^32 or more in magnitude is a conversion error on DuckDB (null on Spark without ANSI)."""
    return value.cast(EXACT_MONEY)


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
    return value.cast(EXACT_SCORE).sum().cast("float64")


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
