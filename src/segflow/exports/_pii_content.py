"""The content check: a safety net behind the name rule of personal columns.

The name rule (:func:`segflow.exports.pii_kind`) is the first test and decides alone for a
column it knows. A text column whose name it does not know (``Mail``, ``Cell``, ``Telefon``,
``contact``) is then looked at, as a whole column in the engine (one aggregate query over
the table, no Python loop over rows): when at least :data:`CONTENT_SHARE` of its non-empty
values (trimmed) are

* e-mail addresses (:data:`EMAIL_PATTERN`: something, ``@``, a domain with a dot, no white
  space), the column is personal of the ``email`` kind;
* phone numbers (:data:`PHONE_PATTERN`: 7 to 15 digits with only ``+`` first, spaces,
  dashes and parentheses between; not a bare run of digits starting with 1-9, such as
  ``10002345``, an id as often as a number, nor an ISO date ``2024-01-15``), the column is
  personal of the ``phone`` kind,

and is put under the policy as a column the name rule found would be, with a warning naming
the column and why. ``customer_id`` is never checked (the key of every output; a file keyed
by e-mail address must name the id column so), nor a column whose name ends in ``sha256``
(the hashes the exports write) or that is not text.
"""

from __future__ import annotations

import warnings

import ibis

from segflow.exports._pii import PiiKind, is_personal

#: The share of a column's non-empty values that must look like addresses (or numbers).
CONTENT_SHARE = 0.5
#: An e-mail address, as the content check recognises it (RE2 syntax, as DuckDB's).
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
#: A phone number's characters (RE2): ``+`` first, then digits, spaces, dashes, parentheses.
PHONE_PATTERN = r"^\+?[0-9 ()\-]+$"
#: An ISO date (or the start of a timestamp), never a phone number.
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
#: :data:`PHONE_PATTERN` with 7 to 15 digits, in one regular expression (RE2).
_PHONE_DIGITS = r"^\+?[ ()\-]*(?:[0-9][ ()\-]*){7,15}$"
#: What matches :data:`_PHONE_DIGITS` but is no phone number: an ISO date, a bare run of
#: digits not starting with 0 (an id as often as a number).
_NO_PHONE = _ISO_DATE + r"|^[1-9][0-9]*$|^000[0-9]*$"


class PersonalContentWarning(UserWarning):
    """A column the name rule does not know was treated as personal by its content."""


def _looks_like_phone(text: ibis.StringValue) -> ibis.BooleanValue:
    """Whether each trimmed ``text`` is a phone number by :data:`PHONE_PATTERN`'s rule: one
    regular expression counting the digits (:data:`_PHONE_DIGITS`), then, for the few that
    match, not a date nor a bare run of digits without a leading 0."""
    return ibis.cases((text.re_search(_PHONE_DIGITS), ~text.re_search(_NO_PHONE)), else_=False)


def is_phone_like(text: str) -> bool:
    """Whether one (trimmed) text is a phone number by the content check's rule
    (:func:`_looks_like_phone`, the same regular expressions in Python: the server's audit of
    a search text)."""
    import re

    return re.search(_PHONE_DIGITS, text) is not None and re.search(_NO_PHONE, text) is None


def content_kinds(table: ibis.Table) -> dict[str, tuple[PiiKind, str]]:
    """The text columns of ``table`` that the name rule does not find personal but whose
    values are mostly e-mail addresses or phone numbers (see the module's notes): column ->
    (kind, why: e.g. ``"3 of 4 non-empty values (75 %) are e-mail addresses"``). One
    aggregate query over the whole table; an empty table finds none."""
    candidates = [c for c, t in table.schema().items()
                  if t.is_string() and c != "customer_id" and not is_personal(c)
                  and not c.lower().endswith("sha256")]
    if not candidates:
        return {}
    aggs: dict[str, ibis.Value] = {}
    for i, c in enumerate(candidates):
        # each test in a CASE, so that the costly parts (trimming, regular expressions) run
        # only on the few values that can match (DuckDB evaluates both sides of an AND on
        # every value): a value sorting before "!" starts with white space, one sorting before
        # ":" with white space, a sign, a parenthesis or a digit (a byte comparison; trimming
        # every value, or comparing its first character, took 0.1 s a column per million)
        raw = table[c]
        text = raw.strip()
        aggs[f"n{i}"] = ibis.cases((raw.isnull(), False), (raw == "", False), (raw < "!", text != ""),
                                   else_=True).sum()  # non-empty once trimmed (NULL: not counted)
        aggs[f"e{i}"] = ibis.cases((raw.contains("@"), text.re_search(EMAIL_PATTERN)), else_=False).sum()
        aggs[f"p{i}"] = ibis.cases((raw < ":", _looks_like_phone(text)), else_=False).sum()
    counts = table.aggregate(**aggs).to_pyarrow().to_pylist()[0]
    found: dict[str, tuple[PiiKind, str]] = {}
    for i, c in enumerate(candidates):
        n = counts[f"n{i}"] or 0
        for key, kind, what in (("e", "email", "e-mail addresses"), ("p", "phone", "phone numbers")):
            k = counts[f"{key}{i}"] or 0
            if n and k >= CONTENT_SHARE * n:
                found[c] = (kind, f"{k} of {n} non-empty values ({100 * k / n:.0f} %) are {what}")
                break
    return found


def warn_content(found: dict[str, tuple[PiiKind, str]], policy: str, source: str | None) -> None:
    """One :class:`PersonalContentWarning` per column of ``found`` (:func:`content_kinds`),
    naming the file (if any), the column, why, and what the policy does with it."""
    where = f"{source}: " if source else ""
    for c, (kind, why) in found.items():
        warnings.warn(f"{where}column {c!r} is treated as personal ({kind}) under the {policy!r} "
                      f"policy: its name is not a personal one, but {why}; rename it to say so "
                      "(e.g. 'email', 'phone'), or pass --pii include to write it in clear",
                      PersonalContentWarning, stacklevel=3)
