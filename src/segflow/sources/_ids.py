"""Identifiers and text: the canonical value of an id column, from text or from a number; the
staged rows with missing-value tokens set to NULL.

- Every text value is trimmed (:func:`trimmed`) of the characters up to the space at both
  ends: the ASCII control characters U+0000-U+001F (NUL, tab, line feed, vertical tab, form
  feed, carriage return, ...) and the space, plus the Unicode space separators DuckDB's
  ``trim`` knows (U+00A0, U+1680, U+2000-U+200A, U+202F, U+205F, U+3000). Characters inside
  a value are kept: ``A``, tab, ``B`` stays so (DEL, U+007F, is not trimmed either); but a
  NUL inside an id quarantines the row as ``invalid_id`` (:func:`nul_id_reason`).
- Text ids first lose invisible characters that make equal-looking ids differ: zero-width
  space, joiner and non-joiner (U+200B-U+200D), direction marks and embeddings (U+200E,
  U+200F, U+202A-U+202E, U+2066-U+2069), word joiner (U+2060) and byte-order marks (U+FEFF);
  a non-breaking space (U+00A0) becomes a space; then the value is trimmed. Pure-ASCII values
  (almost all) skip that regular expression.
- Float ids (Parquet, Excel number cells) are kept only when they are whole numbers below
  2^53 in size: ``123.0`` -> ``123``. NaN, infinity, fractions and values from 2^53 up give
  NULL, and the row is quarantined as ``invalid_id``: from 2^53 a double no longer tells
  neighbouring integers apart (2^53 + 1 is stored as 2^53; ``1.2345678901234567e+19``
  stands for 2,048 different ids), so such an id may not be the one the source system wrote.
  An Excel column may hold number cells and text cells: each cell follows its own rule
  (``Staged.numbers``), so a text ``00123`` stays ``00123``.
- A text id in scientific notation (``1.23E+11``, ``1,23E+11``) is what a spreadsheet shows
  of a long number id, rounded: NULL, quarantined as ``invalid_id`` with its own reason.
- **Excel-safe text.** Exports meant for Excel write a text that must keep its leading zeros
  as a formula returning it: ``="00123"`` (Excel shows ``00123``). A value of a mapped text
  column that is, once trimmed, a formula of one string literal as Excel reads it (``=``,
  optional spaces, ``"``, the text with each double quote doubled, ``"``: :data:`EXCEL_TEXT`)
  is read as that literal's text (:func:`excel_text`): ``= "00123"`` is ``00123``,
  ``="a""b"`` is ``a"b``; before every other rule: ids, codes, and numbers and dates read
  from text alike; trimmed like any value (``=" 00123"`` is ``00123``, ``=""`` is empty, a
  missing-value token inside the quotes is missing). Each such value is noted in
  ``ingest_flags`` (rule ``excel_text``, the text read); the quarantine keeps the row as
  written. Other text starting with ``=`` (``="0"&B2``, ``=A1``, ``="a"b"``) is kept as
  written (and flagged ``formula_in_text``). A CSV header name written so is read likewise
  (:func:`excel_name`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from segflow.sources._readers import Staged, lit, q

#: Canonical columns that identify something (customers, orders, campaigns, sessions).
ID_COLUMNS = ("customer_id", "transaction_id", "campaign_id", "session_id")
_INVISIBLE = "[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
_FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL")
#: An id a spreadsheet wrote in scientific notation (``1.23E+11``; ``1,23E+11`` in a
#: decimal-comma locale): the number it shows is rounded to a few digits, so the id the
#: source system wrote is lost and distinct ids look alike.
_SCIENTIFIC = r"^[0-9]([.,][0-9]+)?[eE]\+[0-9]{1,3}$"


#: The characters :func:`trimmed` removes at both ends (RE2 class): ASCII controls and the
#: space (U+0000-U+0020), and the Unicode space separators of DuckDB's ``trim``.
_TRIM_CLASS = r"[\x00-\x20\x{a0}\x{1680}\x{2000}-\x{200a}\x{202f}\x{205f}\x{3000}]"
#: the same characters, for ``str.strip``
TRIM_CHARS = "".join(map(chr, [*range(0x21), 0xA0, 0x1680, *range(0x2000, 0x200B), 0x202F,
                               0x205F, 0x3000]))


def settled(ref: str) -> str:
    """SQL: true when the text ``ref`` is certainly its own :func:`trimmed` and not empty:
    pure ASCII (bytes = characters), first and last byte after the space (so neither a space
    nor a control character).

    Almost every value of a clean source is settled, and this test costs a fraction of a
    trim (which copies the string): the expressions below take the trim path only for the
    others (false for NULL).
    """
    return f"(strlen({ref}) = length({ref}) AND {ref} >= '!' AND {ref}[-1] >= '!')"


def _ends_clean(ref: str) -> str:
    """SQL: true when DuckDB's ``trim`` (the spaces of :data:`_TRIM_CLASS`) leaves a value
    that neither starts nor ends with a character before ``!`` (a control character); then
    ``trim`` is the whole trim. Repeated rather than nested: DuckDB evaluates a nested CASE
    at twice the cost, and ``trim`` is cheap (``trim(ref, chars)`` with the 33 ASCII
    characters costs ten times more)."""
    return f"trim({ref}) >= '!' AND trim({ref})[-1] >= '!'"


def _trim_re(ref: str) -> str:
    return f"regexp_replace({ref}, {lit(f'^{_TRIM_CLASS}+|{_TRIM_CLASS}+$')}, '', 'g')"


def trimmed(ref: str) -> str:
    """SQL: the text ``ref`` without the characters of :data:`_TRIM_CLASS` at either end: by
    ``trim`` when that suffices (:func:`_ends_clean`), else by a regular expression."""
    return f"CASE WHEN {_ends_clean(ref)} THEN trim({ref}) ELSE {_trim_re(ref)} END"


def trim_text(ref: str) -> str:
    """SQL: ``NULLIF(trimmed(ref), '')``, skipping the trim for :func:`settled` values."""
    return (f"CASE WHEN {settled(ref)} THEN {ref} WHEN {_ends_clean(ref)} THEN trim({ref}) "
            f"ELSE NULLIF({_trim_re(ref)}, '') END")


#: Excel-safe text, once trimmed: a formula of one string literal, as Excel parses it: ``=``,
#: optional spaces, ``"``, the text (a double quote inside written twice), ``"``.
EXCEL_TEXT = r'^= *"((?:[^"]|"")*)"$'


def excel_text(ref: str) -> str:
    """SQL: the text of the literal of the text ``ref`` when it is Excel-safe text
    (:data:`EXCEL_TEXT`: ``="00123"`` and ``= "00123"`` -> ``00123``, ``="a""b"`` -> ``a"b``,
    trimmed; ``=""`` -> ``''``), else NULL. A substring test first keeps the trims and
    regular expressions off values without a double quote (nearly all): a CASE, not AND,
    which DuckDB evaluates on every row."""
    inner = f"replace(regexp_extract({trimmed(ref)}, {lit(EXCEL_TEXT)}, 1), '\"\"', '\"')"
    return (f"CASE WHEN contains({ref}, '\"') THEN CASE WHEN regexp_matches({trimmed(ref)}, "
            f"{lit(EXCEL_TEXT)}) THEN {trimmed(inner)} END END")


def excel_name(name: str) -> str:
    """A header name (trimmed) as Excel-safe text reads it (:data:`EXCEL_TEXT`, trimmed):
    ``="customer"`` -> ``customer``; any other name as it is."""
    import re

    found = re.fullmatch(EXCEL_TEXT[1:-1], name)
    return found.group(1).replace('""', '"').strip(TRIM_CHARS) if found else name


def read_text(ref: str) -> str:
    """SQL: the text ``ref`` as the rules read it, trimmed: the text inside Excel-safe text
    (:func:`excel_text`), else the value. For the tests on a row's values as written (the
    ``exclude`` rule, the totals label of a first column), which see no column's value as
    read otherwise: ``="POST"`` is the excluded code ``POST``."""
    return f"coalesce({excel_text(ref)}, {trimmed(ref)})"


def _float_id(ref: str) -> str:
    """SQL: the id text of the double ``ref``: a whole number below 2^53, else NULL."""
    return (f"CASE WHEN isfinite({ref}) AND {ref} = floor({ref}) AND abs({ref}) < 9007199254740992 "
            f"THEN CAST(CAST({ref} AS BIGINT) AS VARCHAR) END")


def id_value(col: str, dtype: str, number: str | None = None) -> str | None:
    """SQL: the canonical id text of source column ``col`` (None: the default text applies).

    ``number`` (Excel): a staged DOUBLE column holding the value of each number cell of
    ``col`` (NULL for a text cell); a number cell follows the float rule, a text cell the
    text rule.
    """
    ref = q(col)
    up = dtype.upper()
    if up.startswith(_FLOAT_TYPES):
        return _float_id(ref)
    if up == "VARCHAR":
        clean = f"regexp_replace(replace({ref}, chr(160), ' '), {lit(_INVISIBLE)}, '', 'g')"
        is_ascii = f"strlen({ref}) = length({ref})"
        text = (f"CASE WHEN {settled(ref)} THEN {ref} "
                f"WHEN {is_ascii} AND {_ends_clean(ref)} THEN trim({ref}) "
                f"WHEN {is_ascii} THEN NULLIF({_trim_re(ref)}, '') "
                f"ELSE NULLIF({trimmed(clean)}, '') END")
        # a cheap test first: the regular expression only for values holding a '+'
        sci = f"contains({ref}, '+') AND {_scientific(text)}"
        text = f"CASE WHEN {sci} THEN NULL ELSE {text} END"
        if number:
            return f"CASE WHEN {q(number)} IS NOT NULL THEN {_float_id(q(number))} ELSE {text} END"
        return text
    return None


def _scientific(text: str) -> str:
    """SQL: the id text ``text`` is a number in scientific notation (:data:`_SCIENTIFIC`)."""
    return f"regexp_matches({text}, {lit(_SCIENTIFIC)})"


def id_reason(text: str, *, text_id: bool = True) -> str:
    """SQL: why the id in ``text`` (the raw value) is refused; ``text_id``: the source
    column is text (a float column's ``1e+20`` is a float, not a spreadsheet's rounding)."""
    floats = (f"'identifier ''' || left({text}, 80) || ''' is not usable (a float id must be "
              "a whole number below 2^53, where floats stop telling ids apart; or it is only "
              "invisible characters)'")
    if not text_id:
        return floats
    return (f"CASE WHEN {_scientific(text)} THEN 'identifier ''' || {text} || ''' is in "
            "scientific notation: a spreadsheet rounded it, so the id the source wrote is lost "
            f"(format the column as text before exporting)' ELSE {floats} END")


def nul_id_reason(value: str) -> str:
    """SQL: why the id ``value`` (trimmed, so a NUL in it is inside) is refused: NUL bytes at
    a value's ends are trimmed (:mod:`segflow.sources._binary`), but one inside an id would
    make it another customer or order (``C0<NUL>00`` beside ``C000``), so the row is
    quarantined, the NUL shown as ``<NUL>``."""
    return (f"'identifier ''' || replace(left({value}, 80), chr(0), '<NUL>') || ''' holds a "
            f"NUL byte inside it (character ' || strpos({value}, chr(0)) || '): stored, it "
            "would be another id than the one without it; fix the export'")


def add_id_rules(rules: Any, specs: Mapping[str, Any], staged: Staged) -> None:
    """Add the ``invalid_id`` rules of every id column of ``specs`` (the validation's column
    specs, by canonical name) to ``rules`` (the validation's rule list): a raw id whose typed
    value is null (:func:`id_reason`), and a NUL inside a trimmed id (:func:`nul_id_reason`)."""
    for c in ID_COLUMNS:
        if c in specs:
            text = staged.columns.get(specs[c].label, "").upper() == "VARCHAR"
            rules.add("invalid_id", f"r_{c} IS NOT NULL AND v_{c} IS NULL", specs[c].label,
                      id_reason(f"r_{c}", text_id=text))
            rules.add("invalid_id", f"contains(v_{c}, chr(0))", specs[c].label,
                      nul_id_reason(f"v_{c}"))


def without_null_tokens(null_values: Iterable[str], staged: Staged, exprs: list[str],
                        extra: list[str], where: str = "") -> tuple[str, list[str]]:
    """The staged rows with every text column's Excel-safe text read as the text inside
    (:func:`excel_text`) and missing-value tokens set to NULL, for the SQL expressions
    ``exprs`` (over the source columns) to read.

    Returns the SQL relation and ``exprs`` rewritten to read the :func:`settled` test of
    each text column from a column of the relation, computed once per value (a column's
    many expressions would otherwise repeat it: the repeats cost a sixth of the judging
    pass of the demo events file). The test is of the value before the tokens are set to
    NULL, which the expressions only read for a value that is not NULL (a NULL gives NULL
    either way). ``excel_text(q(c))`` in ``exprs`` likewise reads a column holding the text
    read from the value as written (the ``excel_text`` flag).

    ``null_values`` are compared with the trimmed value, exactly (case-sensitive); typed
    columns (Parquet, databases) carry real NULLs and are left alone. Each value is tested
    once, here. ``extra`` (SQL ``expr AS name``) is computed from the original values (the
    raw row for the quarantine, the exclude rule). ``where`` (SQL, optional) selects the
    staged rows. Only the columns that ``exprs`` name are cleaned (a file of 500 unmapped
    columns would otherwise cost seconds of query planning).
    """
    sel = f" WHERE {where}" if where else ""
    used = " ".join(exprs)
    texts = [c for c, t in staged.columns.items() if t.upper() == "VARCHAR" and q(c) in used]
    taken = set(staged.columns)

    def fresh(stem: str) -> str:
        while stem in taken:
            stem += "_"
        taken.add(stem)
        return q(stem)

    flag = {c: fresh(f"_sf_settled_{i}") for i, c in enumerate(texts)}
    excel = {c: fresh(f"_sf_excel_{i}") for i, c in enumerate(texts)}
    out = list(exprs)
    for c in texts:
        out = [e.replace(excel_text(q(c)), excel[c]).replace(settled(q(c)), flag[c]) for e in out]
    more = "".join(", " + e for e in extra)
    # the extras from the values as written; then Excel-safe text read, then the tests
    rows = f"(SELECT *{more} FROM {staged.table}{sel})"
    if texts:
        found = "".join(f", {excel_text(q(c))} AS {excel[c]}" for c in texts)
        inside = ", ".join(f"coalesce({excel[c]}, {q(c)}) AS {q(c)}" for c in texts)
        rows = f"(SELECT * REPLACE ({inside}) FROM (SELECT *{found} FROM {rows}))"
    tests = "".join(f", {settled(q(c))} AS {flag[c]}" for c in texts)
    inner = f"(SELECT *{tests} FROM {rows})"
    tokens = sorted({t.strip(TRIM_CHARS) for t in null_values} - {""})
    if not tokens or not texts:
        return inner, out
    longest = max(len(t.encode()) for t in tokens)

    def token(text: str) -> str:  # equalities, not IN: DuckDB turns IN into a join on every row
        return " OR ".join(f"{text} = {lit(t)}" for t in tokens)

    # a settled value (its own trim) longer than every token is no token: no trim, no lookup;
    # trim() is the whole trim unless a control character ends the value (tokens have none)
    reps = ", ".join(
        f"CASE WHEN strlen({q(c)}) > {longest} AND {flag[c]} THEN {q(c)} "
        f"WHEN {flag[c]} THEN CASE WHEN {token(q(c))} THEN NULL ELSE {q(c)} END "
        f"WHEN {token(f'trim({q(c)})')} THEN NULL WHEN {_ends_clean(q(c))} THEN {q(c)} "
        f"WHEN {token(_trim_re(q(c)))} THEN NULL ELSE {q(c)} END AS {q(c)}" for c in texts)
    return f"(SELECT * REPLACE ({reps}) FROM {inner})", out
