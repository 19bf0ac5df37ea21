"""segflow._dates.as_date: the one reading of a date argument (features, migration, models,
campaigns, exports and Project take dates through it)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from segflow._dates import as_date
from segflow.errors import InputError


@pytest.mark.parametrize("value", [
    dt.date(2024, 3, 31), dt.datetime(2024, 3, 31, 23, 59), "2024-03-31",
    pd.Timestamp("2024-03-31 23:30", tz="America/Los_Angeles"),  # the date shown, not UTC's
])
def test_dates_datetimes_timestamps_and_iso_text_are_read(value):
    assert as_date(value) == dt.date(2024, 3, 31)


def test_anything_else_is_a_one_line_input_error():
    with pytest.raises(InputError, match="^'June 2025' is not a date; expected YYYY-MM-DD$"):
        as_date("June 2025")
    for value in (pd.NaT, None, "2024-02-30"):
        with pytest.raises(InputError, match=f"^{value!r} is not a date"):
            as_date(value)
    with pytest.raises(InputError, match="^calibration_end: expected a date YYYY-MM-DD, got 'April'$"):
        as_date("April", "calibration_end")


@pytest.mark.parametrize("value", ["20240331", "2024-W13-7", "2024W137", "２０２４-03-31", " 2024-03-31"])
def test_only_the_extended_iso_form_is_text_of_a_date(value):
    """Python 3.11's date.fromisoformat also reads the basic form and ISO week dates
    (2024-W13-7 is 2024-03-31): the CLI said "expected YYYY-MM-DD" of 2025-1-1 but took
    20250101 and read 2025-W01-1 as 2024-12-30 silently."""
    with pytest.raises(InputError, match="is not a date; expected YYYY-MM-DD$"):
        as_date(value)
