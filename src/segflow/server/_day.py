"""The type of every date the API and the pages take (a query parameter, the score body's
``as_of``): read as the CLI reads a date option, by :func:`segflow._dates.as_date`.

Pydantic's own date read ``20250701`` and ``1751328000`` as Unix times (the second as
2025-07-01) and worded a bad value otherwise than the CLI and the forecasts' ``start``
("Input should be a valid date or datetime, month value is outside expected range of 1-12").
Now a bad value answers 422 with ``snapshot: '2025-13-01' is not a date; expected YYYY-MM-DD``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from segflow._dates import as_date
from segflow.errors import InputError


def _day(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        if not isinstance(value, str):  # a number in a JSON body: no Unix time
            raise InputError(f"{value!r} is not a date; expected YYYY-MM-DD")
        return as_date(value)
    except InputError as exc:
        raise PydanticCustomError("date", "{message}", {"message": str(exc)}) from None


#: A date parameter: ``snapshot: Day | None = None``.
Day = Annotated[dt.date, BeforeValidator(_day)]
