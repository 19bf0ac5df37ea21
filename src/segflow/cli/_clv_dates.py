"""The field order of numeric dates in a transaction file of ``segflow clv fit|score``.

A date written as three numbers (``17/01/23``, ``05.01.2024``, ``2024-01-05 10:00``) can be
read day-first (d/m/y), month-first (m/d/y) or year-first (y/m/d). DuckDB's CSV sniffer
picks one order without a word (year-first for two-digit years: ``17/01/23`` became
2017-01-23), so the file commands decide the order themselves, once per column, by one
rule:

1. A year is two or four digits (``%y`` or ``%Y``; the ingest's rule that ``%Y`` needs four
   digits), a day or month one or two; a two-digit year is 2000-2068 for 00-68 and
   1969-1999 for 69-99 (POSIX ``%y``, as ``--date-format``).
2. The candidate orders are those under which *every* value of the column is a calendar
   date (d/m/y, m/d/y, y/m/d).
3. Of several candidates, those that put a value after today are dropped (the ingest
   quarantines future dates as ``future_date``).
4. One order left, or several that read every value as the same day (``01/01/2024``): the
   dates are read with it. Several that disagree: refused with a one-line error naming the
   file, the column, an example and the ``--date-format`` of each reading (the ingest
   quarantines such values as ``ambiguous_date`` unless ``date_order`` is set). None: an
   error, the dates are not written in one order.

Columns whose numeric dates all start with a four-digit year (ISO ``2024-01-05``) are left
to the reader, which reads them one way only.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from segflow.errors import InputError

#: A date of three numbers with a separator ``.``, ``/`` or ``-`` and an optional time:
#: groups 1, 3, 5 are the numbers, 2 and 4 the separators, 6 the time (with its ``T`` or
#: space).
NUMERIC_DATE = r"^\s*([0-9]{1,4})([./-])([0-9]{1,2})([./-])([0-9]{1,4})([ T].*)?$"

#: The orders tried, as the field positions (0-2) of (year, month, day).
ORDERS: dict[str, tuple[int, int, int]] = {"dmy": (2, 1, 0), "mdy": (2, 0, 1), "ymd": (0, 1, 2)}
_NAMES = {"dmy": "day-first", "mdy": "month-first", "ymd": "year-first"}


def read_date(fields: tuple[str, str, str], order: str) -> dt.date | None:
    """The calendar date of three number texts read in ``order``, or None when they are
    no date that way (a year of one or three digits, a month above 12, 31 February)."""
    yi, mi, di = ORDERS[order]
    year, month, day = fields[yi], fields[mi], fields[di]
    if len(year) not in (2, 4) or len(month) > 2 or len(day) > 2:
        return None
    y = int(year)
    if len(year) == 2:
        y += 2000 if y < 69 else 1900
    try:
        return dt.date(y, int(month), int(day))
    except ValueError:
        return None


def date_order(raw: Any, date_col: str, path: Path, today: dt.date | None = None) -> str | None:
    """The order (``dmy``, ``mdy`` or ``ymd``) of the numeric dates of ``raw[date_col]``
    (an Ibis table read all as text), by the rule of the module notes; None when the column
    holds no such dates or only four-digit-year-first ones. InputError when the dates read
    more than one way or in no one order."""
    if date_col not in raw.columns:
        return None
    x = raw[date_col]
    parts = {f"f{i}": x.re_extract(NUMERIC_DATE, g) for i, g in enumerate((1, 3, 5))}
    rows = (raw.filter(x.re_search(NUMERIC_DATE))
            .group_by(**parts).aggregate(example=x.min()).to_pyarrow().to_pylist())
    if not rows or all(len(r["f0"]) == 4 for r in rows):
        return None
    today = today or _today()
    values = [((r["f0"], r["f1"], r["f2"]), r["example"].strip()) for r in rows]
    values.sort(key=lambda v: v[1])
    read = {o: [read_date(f, o) for f, _ in values] for o in ORDERS}
    fits = [o for o in ORDERS if all(d is not None for d in read[o])]
    if not fits:
        best = max(ORDERS, key=lambda o: sum(d is not None for d in read[o]))
        good = next((ex for (_, ex), d in zip(values, read[best], strict=True) if d is not None), None)
        bad = next(ex for (_, ex), d in zip(values, read[best], strict=True) if d is None)
        shown = f"{good!r} and {bad!r}" if good else repr(bad)
        raise InputError(f"dates such as {shown} are not written in one order of day, month "
                         "and year (d/m/y, m/d/y or y/m/d); correct them or give --date-format",
                         file=str(path), column=date_col)
    if len(fits) > 1:
        past = [o for o in fits if max(read[o]) <= today]  # type: ignore[type-var]
        fits = past or fits
    differ = [i for i in range(len(values)) if len({read[o][i] for o in fits}) > 1]
    if differ:
        example = values[differ[0]][1]
        names = [_NAMES[o] for o in fits]
        readings = " or ".join([", ".join(names[:-1]), names[-1]])
        formats = " or ".join(f"--date-format '{format_of(example, o)}'" for o in fits)
        raise InputError(f"dates such as {example!r} can be read {readings} (no value tells "
                         f"which): give {formats}", file=str(path), column=date_col)
    return fits[0]


def iso_dates(x: Any, order: str) -> Any:
    """Ibis: the text ``x`` with each numeric date (:data:`NUMERIC_DATE`, spaces around it
    dropped) rewritten as ISO ``YYYY-MM-DD`` read in ``order`` (its time kept); other values
    as they are."""
    import ibis

    written, x = x, x.strip()
    fields = [x.re_extract(NUMERIC_DATE, g) for g in (1, 3, 5)]
    yi, mi, di = ORDERS[order]
    y = fields[yi].cast("int64")
    year = ibis.ifelse(fields[yi].length() == 2, ibis.ifelse(y < 69, y + 2000, y + 1900), y)
    text = (year.cast("string").lpad(4, "0") + "-" + fields[mi].lpad(2, "0") + "-"
            + fields[di].lpad(2, "0") + x.re_extract(NUMERIC_DATE, 6))
    return ibis.ifelse(x.re_search(NUMERIC_DATE), text, written)


def _today() -> dt.date:
    """Today's date (local), the latest plausible purchase day of rule 3."""
    return dt.date.today()


def format_of(example: str, order: str) -> str:
    """The strptime format of a date written like ``example`` (matching
    :data:`NUMERIC_DATE`) read in ``order``: its separators, a two- or four-digit year, and
    its time (hours and minutes, seconds when written)."""
    m = re.match(NUMERIC_DATE, example)
    assert m is not None
    fields, time = (m.group(1), m.group(3), m.group(5)), m.group(6)
    yi, mi, di = ORDERS[order]
    codes = ["", "", ""]
    codes[yi] = "%Y" if len(fields[yi]) == 4 else "%y"
    codes[mi], codes[di] = "%m", "%d"
    fmt = f"{codes[0]}{m.group(2)}{codes[1]}{m.group(4)}{codes[2]}"
    if time:
        fmt += time[0] + ("%H:%M:%S" if time.count(":") >= 2 else "%H:%M")
    return fmt


#: A ``Z`` (UTC) after a digit at the end of a value: read by ``%z`` as ``+00:00``, as
#: Python's ``strptime`` and the ingest's ``date_formats`` read it (sources._dates).
_ZULU_RE = r"([0-9])[Zz]$"


def strftime_dates(column: Any, fmt: str) -> Any:
    """The text ``column`` (Ibis) read with ``--date-format`` ``fmt`` by the ingest's
    ``date_formats`` rule (:func:`segflow.sources._dates._strptime`): NULL where it does not
    read the value (so the caller names the rows), a trailing ``Z`` is ``+00:00`` for ``%z``,
    ``%S`` also reads a fraction of a second, and a value with an offset (``%z``) is
    converted to UTC (a naive timestamp)."""
    import ibis

    @ibis.udf.scalar.builtin(name="try_strptime", signature=(("string", "string"), "timestamp"))
    def _try_strptime(text, format):  # type: ignore[no-untyped-def]  # noqa: A002, ANN001, ANN202
        """DuckDB's ``try_strptime``."""

    @ibis.udf.scalar.builtin(name="timezone", signature=(("string", "timestamp"), "timestamp"))
    def _in_zone(zone, ts):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
        """DuckDB's ``timezone``: a TIMESTAMPTZ as the naive time in ``zone``."""

    from segflow.sources._dates import with_fraction

    text = column.cast("string")
    if "%z" in fmt:
        text = text.re_replace(_ZULU_RE, r"\1+00:00")
    parsed = _try_strptime(text, fmt)
    fraction = with_fraction(fmt)  # %S also takes a fraction of a second, as in the ingest
    if fraction is not None:
        parsed = ibis.coalesce(parsed, _try_strptime(text, fraction))
    return _in_zone("UTC", parsed) if "%z" in fmt or "%Z" in fmt else parsed
