"""Rows that are no data: a header line repeated inside a file, a totals line.

Exports concatenated by hand (``cat jan.csv feb.csv``, a report pasted under another) carry
the header again in the middle of the file, and spreadsheet exports end with a totals line
(``Total,,2024-01-31,21``). Read as data, a repeated header is a customer called ``id``
whose e-mail is ``email``, and a totals line with a date is an anonymous order worth the
sum of the file (or a best customer called ``Total``): revenue doubled, silently. The
rules here quarantine both (``repeated_header``, ``totals_row``) before any value rule, so
their reason says what the row is rather than that ``date`` is no date.
"""

from __future__ import annotations

import re

from segflow.sources._ids import ID_COLUMNS, read_text
from segflow.sources._readers import Staged, lit, q


def _direct(specs: dict, staged: Staged) -> dict[str, str]:
    """Canonical column -> source column, for the columns mapped straight to a text source
    column (not an expression, a constant or a typed column)."""
    return {c: spec.label for c, spec in specs.items()
            if spec.label in staged.columns and staged.columns[spec.label].upper() == "VARCHAR"}


def header_condition(specs: dict, staged: Staged) -> str | None:
    """SQL over the ``r_<col>`` texts (trimmed): every column mapped straight to a source
    column holds that column's own name (as the header writes it, trimmed), i.e. the row is
    the header again. None when no column is mapped so."""
    direct = _direct(specs, staged)
    if not direct:
        return None
    tests = [f"coalesce(r_{c} = {lit(name)}, false)" for c, name in direct.items()]
    # a CASE: the other columns are compared only on rows whose first one holds its name
    return f"CASE WHEN {tests[0]} THEN {' AND '.join(['true', *tests[1:]])} ELSE false END"


def _labels(labels: list[str]) -> list[str]:
    return sorted({t.strip().rstrip(":").strip().lower() for t in labels} - {""})


def _first_letters(labels: list[str]) -> str | None:
    """SQL over ``{t}``: the text starts within the ranges of the labels' first letters
    (``G``-``T`` or ``g``-``t`` for the defaults), by two string comparisons each; None
    when a label does not start with an ASCII letter."""
    firsts = {t[0] for t in labels}
    if not all(c.isascii() and c.isalpha() for c in firsts):
        return None
    ranges = []
    for case in (str.upper, str.lower):
        cs = sorted(case(c) for c in firsts)
        ranges.append(f"({{t}} >= {lit(cs[0])} AND {{t}} < {lit(chr(ord(cs[-1]) + 1))})")
    return " OR ".join(ranges)


def _is_label(text: str, labels: list[str]) -> str:
    """SQL: the text ``text`` (already trimmed) is one of ``labels`` (see :func:`_labels`),
    in any case, a trailing ``:`` ignored: an anchored regular expression, asked only of the
    values starting in the range of the labels' first letters (most ids start with a digit
    or another letter; the expression would cost several times the comparisons)."""
    pattern = "(?i)^(" + "|".join(re.escape(t) for t in labels) + r")\s*:?$"
    match = f"coalesce(regexp_matches({text}, {lit(pattern)}), false)"
    letters = _first_letters(labels)
    if letters is None:
        return match
    return f"CASE WHEN {letters.format(t=text)} THEN {match} ELSE false END"


def totals_extra(labels: list[str], staged: Staged, specs: dict) -> str | None:
    """SQL ``expr AS _totals_first`` over the staged row: the trimmed value of its first
    column when that is a text column not mapped straight to an id and holds a totals label,
    else NULL (None: no such test)."""
    labels = _labels(labels)
    if not labels or not staged.columns:
        return None
    first, dtype = next(iter(staged.columns.items()))
    ids = {name for c, name in _direct(specs, staged).items() if c in ID_COLUMNS}
    if dtype.upper() != "VARCHAR" or first in ids:
        return None
    text = read_text(q(first))
    return f"CASE WHEN {_is_label(text, labels)} THEN {text} END AS _totals_first"


def totals_rule(labels: list[str], staged: Staged, specs: dict
                ) -> tuple[str, str, str] | None:
    """(condition, column label SQL, reason SQL) of ``totals_row``: a mapped id column (its
    trimmed ``r_<col>``) or the first column (``_totals_first``, :func:`totals_extra`)
    holds a totals label. None when no column is tested."""
    labels = _labels(labels)
    if not labels:
        return None
    cases = [(_is_label(f"r_{c}", labels), lit(name), f"r_{c}")
             for c, name in _direct(specs, staged).items() if c in ID_COLUMNS]
    if totals_extra(labels, staged, specs):
        first = next(iter(staged.columns))
        cases.append(("_totals_first IS NOT NULL", lit(first), "_totals_first"))
    if not cases:
        return None
    cond = " OR ".join(f"({c})" for c, _, _ in cases)
    column = "CASE " + " ".join(f"WHEN {c} THEN {name}" for c, name, _ in cases) + " END"
    value = "CASE " + " ".join(f"WHEN {c} THEN {v}" for c, _, v in cases) + " END"
    reason = (f"'''' || {value} || ''' in column ' || {column} || ': a totals line, not "
              "data (set totals_labels = [] if it is a real value)'")
    return cond, column, reason


def stray_rules(labels: list[str], specs: dict, staged: Staged) -> list[tuple[str, str, str, str]]:
    """The rules of this module, in priority order: (rule, condition, column SQL, reason SQL)
    over the judged columns (``r_<col>``, ``_totals_first``)."""
    out = []
    header = header_condition(specs, staged)
    if header:
        out.append(("repeated_header", header, "NULL::VARCHAR",
                    lit("the row repeats the header (files concatenated with their headers?)")))
    totals = totals_rule(labels, staged, specs)
    if totals:
        out.append(("totals_row", *totals))
    return out
