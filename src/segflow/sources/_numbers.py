"""Numbers of a source (amount, quantity, unit price) in DuckDB SQL: what a number's text
may look like, its double, and whether the double keeps it exactly.

- **Number text.** An optional sign, digits with at most one decimal separator (the
  ``decimal`` option, default ``.``; ``5.`` and ``.5`` included) and an optional exponent
  (``1.5e3``). With the ``thousands`` option set, the integer digits may also be grouped:
  a first group of one to three digits, then groups of exactly three digits, each after
  one separator (``1.234.567,89``); digits without any separator stay valid (``1234,5``). A space as
  the separator also stands for the no-break and narrow no-break spaces (``1 234,56`` as
  French settings write it).
  Anything else is no number (NULL): ``1.5`` or ``12.34`` with thousands ``.`` (a decimal
  point in a decimal-comma file, not a thousands separator), ``1,5`` with thousands ``,``,
  ``4.25`` with decimal ``,`` and no thousands, the underscores DuckDB's cast takes
  (``1_000``), ``NaN``, ``inf``, currency signs, spaces inside.
- **Exactness.** The canonical number columns are doubles, which keep 15 significant
  digits exactly and not always more (``1000000000000000.01`` is stored as ``1e15``). A
  value is *exact* when its double, written out to the value's own number of decimal
  places, is the value: the places after the separator up to the last nonzero digit
  (``19.90``: 1), less the exponent (``1.5e-3``: 4), none for a whole number (``1.5e3``,
  ``12345678901234567000``: units). Every value of at most 15 significant digits is exact
  (from about 1e-307, below which doubles get coarser); so is the shortest text of any
  double (``0.30000000000000004``, as pandas writes floats). Typed integer and decimal
  source columns (Parquet ``decimal128``, database ``numeric``, ``BIGINT``) are judged by
  their text the same way; float columns are doubles already.
"""

from __future__ import annotations

from segflow.config import SourceSettings
from segflow.errors import ConfigError
from segflow.sources._readers import lit

#: Magnitude from which a number is out of range (see ``_validate.MAX_ABS_NUMBER``).
_OUT_OF_RANGE = "1e20"
#: Source types whose every value a double holds exactly (at most 15 significant digits).
_SMALL_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "UTINYINT", "USMALLINT", "UINTEGER")
#: Widest decimal type whose every value a double holds exactly.
_EXACT_DIGITS = 15
#: SQL: the middle of the message on an inexact number (its text before, its double after).
IMPRECISE = "' has more significant digits than a double keeps exactly (15): as a double it would be '"
_PARTS = r"^([+-]?)([0-9]*)[.]?([0-9]*)(?:[eE]([+-]?[0-9]+))?$"


def number_format(source: SourceSettings) -> tuple[str, str | None]:
    """(decimal separator, thousands separator or None) of ``source``; ConfigError unless
    each is one character, neither a digit, sign nor exponent letter, and they differ."""
    decimal = str(source.options.get("decimal", "."))
    thousands = source.options.get("thousands")
    thousands = str(thousands) if thousands else None
    for name, sep in (("decimal", decimal), ("thousands", thousands)):
        if sep is not None and (len(sep) != 1 or sep.isdigit() or sep in "+-eE"):
            raise ConfigError(f"source {source.name!r}: option {name} = {sep!r} must be one "
                              "character, not a digit, sign or exponent letter")
    if thousands == decimal:
        raise ConfigError(f"source {source.name!r}: options decimal and thousands are both "
                          f"{decimal!r}")
    return decimal, thousands


#: (RE2 pattern, advice) for the no-number texts whose cause is plain from their form.
_NUMBER_HINTS = (
    (r"[$\x{a3}\x{a5}\x{20ac}\x{20b9}]|^[A-Z]{3} ?[-+.,0-9]|[-+.,0-9] ?[A-Z]{3}$",
     "a currency sign or code: export plain numbers (the currency is [project] currency)"),
    (r"^\(.*[0-9].*\)$", "an accounting negative? write (12.50) as -12.50"),
    (r"^[0-9][0-9.,' ]*-$", "a trailing minus sign? write 12.50- as -12.50"),
)


def not_a_number(source: SourceSettings, text: str) -> str:
    """SQL: the end of the message on ``text`` (SQL), a text that is no number in the source's
    number format, with advice when its form shows why (a currency sign or code, an
    accounting negative, a trailing minus; a decimal comma in a file whose options do not
    say so)."""
    decimal, thousands = number_format(source)
    if decimal == "." and not thousands:
        end = " is not a number"
        hints = [*_NUMBER_HINTS,
                 (r"^[-+]?[0-9]{1,3}(\.[0-9]{3})+,[0-9]+$|^[-+]?[0-9]*,[0-9]{1,2}$",
                  "a decimal comma? set options.decimal = ',' (and thousands = '.' for "
                  "1.234,56; docs/data.md, Numbers)"),
                 (r"^[-+]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?$",
                  "grouped digits? set options.thousands = ',' (docs/data.md, Numbers)")]
    else:
        end = (f" is not a number with decimal {decimal!r}"
               + (f" and thousands {thousands!r} (between groups of three digits)" if thousands else ""))
        hints = list(_NUMBER_HINTS)
    whens = " ".join(f"WHEN regexp_matches({text}, {lit(p)}) THEN {lit(': ' + h)}" for p, h in hints)
    return f"{lit(end)} || CASE {whens} ELSE '' END"


#: Spaces that group digits: a thousands separator that is one of them stands for all
#: (locales and spreadsheets write 1 234,56 with a no-break or narrow no-break space).
_SPACES = " \u00a0\u202f"


def _seps(thousands: str) -> str:
    """The characters read as the thousands separator ``thousands``."""
    return _SPACES if thousands in _SPACES else thousands


def _cls(sep: str) -> str:
    """A regular-expression character class of the characters of ``sep``."""
    return "[" + "".join("\\" + c if c in "\\]^-[" else c for c in sep) + "]"


def pattern(source: SourceSettings) -> str:
    """The regular expression (RE2) a number text of ``source`` fully matches."""
    decimal, thousands = number_format(source)
    whole = "[0-9]+"
    if thousands:
        whole = f"[0-9]{{1,3}}(?:{_cls(_seps(thousands))}[0-9]{{3}})+|[0-9]+"
    dec = _cls(decimal)
    return f"[+-]?(?:(?:{whole})(?:{dec}[0-9]*)?|{dec}[0-9]+)(?:[eE][+-]?[0-9]+)?"


def normal_text(text: str, source: SourceSettings) -> str:
    """SQL: the number text ``text`` without thousands separators and with a ``.`` for the
    decimal separator (a text DuckDB casts exactly as written); NULL when it is no number
    text of ``source``."""
    decimal, thousands = number_format(source)
    norm = text
    for sep in _seps(thousands) if thousands else "":
        norm = f"replace({norm}, {lit(sep)}, '')"
    if decimal != ".":
        norm = f"replace({norm}, {lit(decimal)}, '.')"
    return f"CASE WHEN regexp_full_match({text}, {lit(pattern(source))}) THEN {norm} END"


def finite(value: str) -> str:
    """SQL: the double ``value`` when finite, else NULL; a zero is +0.0 (``-0.00`` is 0).

    A negative zero is no refund (``v < 0`` is false for it) and must not be stored: DuckDB's
    storage compresses a column's equal values together, and -0.0 equals 0.0, so once the
    table is written every zero of a block would come back with the sign of its first zero
    (``-0.00``, ``0``, ``0.0`` read back as -0.0 three times)."""
    return f"CASE WHEN {value} = 0 THEN 0.0::DOUBLE WHEN isfinite({value}) THEN {value} END"


def number_of_text(text: str, source: SourceSettings) -> str:
    """SQL: the finite double of the number text ``text`` (NULL: no number of ``source``)."""
    return finite(f"TRY_CAST({normal_text(text, source)} AS DOUBLE)")


def _quoted(text: str) -> str:
    """SQL: the text in quotes, cut at 80 characters."""
    return f"('''' || left({text}, 80) || CASE WHEN length({text}) > 80 THEN '…' ELSE '' END || '''')"


def _inexact(shown: str, norm: str, value: str) -> str:
    """SQL: the reason (quoting ``shown``) when the double ``value`` of the number text
    ``shown`` (``norm``: without thousands separators, ``.`` as the decimal separator) is
    not exactly it (see the module), else NULL (also when there is no value, or one out of
    range: other rules judge those).

    Texts of at most 15 characters without exponent have at most 15 significant digits:
    exact without looking further (almost all; a few nanoseconds a value). The others are
    split into digits ``m`` (leading zeros and the fraction's trailing zeros dropped) and
    decimal places ``d``: the value is m * 10^-d. A nonzero value whose double is 0 (below
    the smallest double) is inexact; else the double is written with max(d, 0) places and
    its digits compared with m (and -d zeros when d < 0). Both lengths are bounded by the
    text's: a nonzero double is at least 4.9e-324 and the value below 1e20. The reason
    shows the double so written (its shortest text beyond 40 places)."""
    p = f"regexp_extract({norm}, {lit(_PARTS)}, ['s', 'i', 'f', 'e'])"
    m = f"ltrim({p}.i || rtrim({p}.f, '0'), '0')"
    d = f"(length(rtrim({p}.f, '0')) - coalesce(TRY_CAST(NULLIF({p}.e, '') AS BIGINT), 0))"
    places = f"greatest({d}, 0)"
    written = f"format('{{:.{{}}f}}', abs({value}), {places})"
    same = f"ltrim(replace({written}, '.', ''), '0') = {m} || repeat('0', greatest(-{d}, 0))"
    shows = (f"CASE WHEN {places} <= 40 THEN format('{{:.{{}}f}}', {value}, {places}) "
             f"ELSE CAST({value} AS VARCHAR) END")
    return (f"CASE WHEN strlen({shown}) <= {_EXACT_DIGITS} "
            f"AND NOT (contains({shown}, 'e') OR contains({shown}, 'E')) THEN NULL "
            f"WHEN {value} IS NULL OR abs({value}) >= {_OUT_OF_RANGE} THEN NULL "
            f"WHEN {m} = '' THEN NULL "
            f"WHEN {value} = 0 THEN {_quoted(shown)} || ' is too small for a double: it would be 0' "
            f"WHEN coalesce({same}, false) THEN NULL "
            f"ELSE {_quoted(shown)} || {IMPRECISE} || {shows} END")


def inexact_text(text: str, source: SourceSettings) -> str:
    """SQL: the reason when the double of the number text ``text`` is not exactly its
    value, else NULL."""
    norm = normal_text(text, source)
    return _inexact(text, norm, finite(f"TRY_CAST({norm} AS DOUBLE)"))


def typed_number(ref: str) -> str:
    """SQL: the finite double of the typed (numeric) source value ``ref``, else NULL."""
    return finite(f"CAST({ref} AS DOUBLE)")


def typed_inexact(ref: str, dtype: str) -> str | None:
    """SQL: the reason when the double of the typed source value ``ref`` is not exactly it,
    else NULL; None when no value of the type can be inexact (floats, narrow integers and
    decimals of at most 15 digits)."""
    up = dtype.upper().replace(" ", "")
    if up.startswith(("DOUBLE", "FLOAT", "REAL", *_SMALL_TYPES)):
        return None
    if up.startswith("DECIMAL(") and int(up[8:].split(",")[0].rstrip(")")) <= _EXACT_DIGITS:
        return None
    text = f"CAST({ref} AS VARCHAR)"
    return _inexact(text, text, typed_number(ref))
