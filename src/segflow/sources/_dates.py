"""Date and time values of a source: ISO 8601 with or without a zone, strftime formats,
Unix time; SQL that parses a value's text into a UTC timestamp (docs/data.md,
``date_formats`` and ``timezone``)."""

from __future__ import annotations

from segflow.config import SourceSettings
from segflow.sources._readers import lit

#: An ISO 8601 value with its own zone: a time (hh:mm, seconds and fraction optional), then
#: ``Z``, ``UTC``, ``GMT`` or an offset (+hh, +hhmm, +hh:mm, +hh:mm:ss), a space allowed
#: before it. The time must precede it: the day of a date alone (``2024-05-31``) is no
#: offset ``-31``, so such a date is a naive value in the source's time zone.
_OFFSET_RE = (r"(?i)[0-9]:[0-9]{2}(:[0-9]{2}([.][0-9]*)?)? ?"
              r"(Z|UTC|GMT|[+-][0-9]{2}(:?[0-9]{2}(:?[0-9]{2})?)?)$")


def to_utc(ts: str, tz: str) -> str:
    """SQL: the naive timestamp ``ts``, local time in the zone ``tz``, as naive UTC."""
    if tz.upper() in ("UTC", "ETC/UTC", "Z", "GMT"):
        return ts
    return f"timezone('UTC', timezone({lit(tz)}, {ts}))"


def date_parses(text: str, source: SourceSettings) -> list[str]:
    """SQL: one UTC reading of the text ``text`` per accepted format of ``source`` (ISO 8601
    when ``date_formats`` is empty), each NULL where its format does not read the value."""
    if not source.date_formats:
        return [
            f"CASE WHEN regexp_matches({text}, {lit(_OFFSET_RE)}) "
            f"THEN timezone('UTC', TRY_CAST({_joined_offset(text)} AS TIMESTAMPTZ)) "
            f"ELSE {to_utc(f'TRY_CAST({text} AS TIMESTAMP)', source.timezone)} END"
        ]
    out = []
    for fmt in source.date_formats:
        if fmt == EPOCH_FORMAT:  # Unix time: seconds since 1970-01-01 UTC
            out.append(f"CASE WHEN regexp_full_match({text}, '-?[0-9]{{1,12}}([.][0-9]+)?') "
                       f"THEN timezone('UTC', to_timestamp(TRY_CAST({text} AS DOUBLE))) END")
            continue
        parsed = _strptime(text, fmt)
        out.append(f"timezone('UTC', {parsed})" if "%z" in fmt or "%Z" in fmt
                   else to_utc(parsed, source.timezone))
    return out


def _joined_offset(text: str) -> str:
    """SQL: ``text`` with a space before a numeric offset removed (``14:03:00 +0200``, as
    some exports write it: DuckDB reads ``+0200`` after a space as a zone name, and fails)."""
    return f"regexp_replace({text}, {lit(' ([+-][0-9]{2}(:?[0-9]{2}){0,2})$')}, {lit(chr(92) + '1')})"


def _strptime(text: str, fmt: str) -> str:
    """SQL: ``text`` parsed with the strftime format ``fmt``; NULL unless the year is >= 1000.

    DuckDB's ``%Y`` also takes one to three digits ('11' is the year 0011); a four-digit-year
    format must need four digits, so a reading before the year 1000 is no reading at all (and
    never a rival of another format's reading). ``%y`` maps 00-68 to 2000-2068 and 69-99 to
    1969-1999 (POSIX).
    """
    if "%z" in fmt:  # DuckDB's %z takes +hh:mm and +hhmm, not the Z that Python's takes
        text = f"regexp_replace({text}, {lit(_ZULU_RE)}, {lit(chr(92) + '1+00:00')})"
    parsed = try_strptime(text, fmt)
    return f"CASE WHEN year({parsed}) >= 1000 THEN {parsed} END"


def with_fraction(fmt: str) -> str | None:
    """``fmt`` with its ``%S`` followed by a fraction of a second (``%S.%f``), or None when
    ``fmt`` has no ``%S`` or already reads a fraction after it.

    DuckDB's ``%S`` reads whole seconds only and its ``%f`` (microseconds) reads one to six
    digits after the point, so ``%S`` formats also accept ``12:00:00.5`` and
    ``12:00:00.123456`` (not seven digits or more, nor a decimal comma).
    """
    if "%S" not in fmt or any(f"%S.%{c}" in fmt for c in "fgn"):
        return None
    return fmt.replace("%S", "%S.%f", 1)


def try_strptime(text: str, fmt: str) -> str:
    """SQL: DuckDB's ``try_strptime`` of ``text`` with ``fmt``, and with ``fmt``'s ``%S``
    taking a fraction of a second (:func:`with_fraction`) where ``fmt`` does not read it."""
    whole = f"try_strptime({text}, {lit(fmt)})"
    fraction = with_fraction(fmt)
    return f"coalesce({whole}, try_strptime({text}, {lit(fraction)}))" if fraction else whole


#: A ``Z`` (UTC, ISO 8601's "Zulu") after a digit at the end of a value, read by ``%z`` as
#: ``+00:00`` (as Python's ``strptime`` reads it).
_ZULU_RE = r"([0-9])[Zz]$"


def iso_hint(text: str, source: SourceSettings) -> str:
    """SQL: a hint for a value that none of the source's ``date_formats`` reads but ISO 8601
    does (a ``Z``, a fraction of a second, `` UTC``, a ``T`` or not: ``date_formats = []``
    reads them all); ``''`` otherwise, or when the formats are ISO 8601 already. Years
    before 1000 are not offered (``24-01-05`` is a two-digit year, not ISO 8601)."""
    if not source.date_formats:
        return "''"
    iso = date_parses(text, source.model_copy(update={"date_formats": []}))[0]
    return (f"CASE WHEN regexp_matches({text}, '^[0-9]{{4}}-') AND year({iso}) >= 1000 THEN "
            "'; it is valid ISO 8601: date_formats = [] reads ISO 8601 (Z, offsets, fractions "
            "of a second)' ELSE '' END")


#: The ``date_formats`` entry for Unix time (seconds since 1970-01-01 UTC, a fraction
#: allowed), as Python's and GNU's ``strftime`` write it; DuckDB's ``strptime`` lacks it.
EPOCH_FORMAT = "%s"


def short_year_hint(text: str, source: SourceSettings) -> str:
    """SQL: a hint for a value that a ``%Y`` format reads with fewer than four year digits,
    or that looks like Unix time in seconds (9-11 digits: 1973-5138) or an Excel serial date
    (20000-79999, a fraction allowed) when no format reads it (milliseconds, 12-13 digits,
    are not read: ``%s`` takes seconds)."""
    # an Excel serial date: days since 1899-12-30, 20000-79999 is 1954-2118 (45292: 2024-01-01)
    serial = (f"WHEN regexp_full_match({text}, '[2-7][0-9]{{4}}([.,][0-9]+)?') THEN '; an Excel "
              "serial date (days since 1899-12-30)? format the column as a date before "
              "exporting' ")
    epoch = ("''" if EPOCH_FORMAT in source.date_formats else  # it reads every digit string
             f"CASE WHEN regexp_full_match({text}, '[0-9]{{9,11}}') THEN '; Unix time? add ''%s'' "
             f"(seconds since 1970) to date_formats' {serial}ELSE '' END")
    fours = [f for f in source.date_formats if "%Y" in f]
    if not fours:
        return epoch
    short = " OR ".join(f"year({try_strptime(text, f)}) < 1000" for f in fours)
    return (f"CASE WHEN coalesce({short}, false) THEN '; %Y reads its year as before 1000 "
            f"(%Y needs four digits): for two-digit years add a format with %y' ELSE {epoch} END")


def day_first(fmt: str) -> bool | None:
    d, m = fmt.find("%d"), max(fmt.find("%m"), fmt.find("%b"), fmt.find("%B"))
    if d < 0 or m < 0:
        return None
    return d < m
