"""A date given to the library, read one way in every package.

Imports nothing of segflow but :mod:`segflow.errors` (which imports nothing), so that any
module may use it without an import cycle.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from segflow.errors import InputError

#: The one text form of a date: ISO ``YYYY-MM-DD`` (ASCII digits).
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def as_date(value: Any, name: str | None = None) -> dt.date:
    """``value`` as a calendar date: a date as it is; a datetime or pandas Timestamp as the
    date it shows (a time zone is not converted); text as ISO ``YYYY-MM-DD`` only
    (not the basic ``20240331`` nor a week date ``2024-W13-7``, which Python 3.11 reads too).

    Raises
    ------
    InputError
        Anything else (None, NaT, other text), in one line: ``'June 2025' is not a date;
        expected YYYY-MM-DD``; with the argument's ``name``, ``calibration_end: expected a
        date YYYY-MM-DD, got 'June 2025'`` (as the CLI says it of an option).
    """
    if isinstance(value, dt.datetime):
        day = value.date()
        if not isinstance(day, dt.datetime):  # NaT (a datetime) has NaT as its date
            return day
    elif isinstance(value, dt.date):
        return value
    elif value is not None and _ISO_DAY.fullmatch(str(value)):
        try:  # the pattern first: Python 3.11 also reads 20240331 and 2024-W13-7 (a week day)
            return dt.date.fromisoformat(str(value))
        except ValueError:
            pass
    if name:
        raise InputError(f"{name}: expected a date YYYY-MM-DD, got {value!r}")
    raise InputError(f"{value!r} is not a date; expected YYYY-MM-DD")
