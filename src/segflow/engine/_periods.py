"""Snapshot dates: calendar week, month or quarter boundaries, or explicit dates.

A snapshot date ``s`` is a period boundary; the snapshot uses rows with ``ts < s`` only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd


def period_start(day: dt.date, granularity: str) -> dt.date:
    """The first day of the calendar week (Monday), month or quarter holding ``day``."""
    if granularity == "week":
        return day - dt.timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    if granularity == "quarter":
        return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    raise ValueError(f"unknown granularity {granularity!r}")


_FREQ = {"week": "W-MON", "month": "MS", "quarter": "QS"}


def snapshot_dates(
    granularity: str,
    first: dt.date,
    last: dt.date,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    dates: Sequence[dt.date] = (),
) -> list[dt.date]:
    """Snapshot dates between the data's first and last day.

    Parameters
    ----------
    granularity : {"week", "month", "quarter", "dates"}
    first, last : date
        First and last transaction day of the data.
    start, end : date, optional
        Bounds; default: the first boundary after ``first`` and the boundary after ``last``
        (so the last snapshot sees every transaction).
    dates : sequence of date
        The explicit dates when ``granularity == "dates"``.

    Returns
    -------
    list of date, ascending and distinct.
    """
    if granularity == "dates":
        return sorted(set(dates))
    lo = start or (period_start(first, granularity) + _one_period(granularity))
    hi = end or (period_start(last, granularity) + _one_period(granularity))
    return [d.date() for d in pd.date_range(lo, hi, freq=_FREQ[granularity])]


def _one_period(granularity: str) -> pd.DateOffset:
    return {
        "week": pd.DateOffset(weeks=1),
        "month": pd.DateOffset(months=1),
        "quarter": pd.DateOffset(months=3),
    }[granularity]
