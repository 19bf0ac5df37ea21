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
  ``10002345``, an id as often as a number, nor one starting with ``000``, a zero-padded id
  (no country code starts with 0), nor an ISO date ``2024-01-15``), the column is
  personal of the ``phone`` kind,

and is put under the policy as a column the name rule found would be, with a warning naming
the column and why. A whole-number column is checked for phone numbers read as numbers
(:func:`_numeric_phones`: 10 to 15 digits shaped like one; not a counter, an epoch time, nor
a column named as a code: :data:`_CODE_TOKENS`). ``customer_id`` is never checked here (the
key of every output: an id that is an e-mail or phone number becomes a pseudonymous key
instead, :mod:`segflow.exports._pseudonym`), nor a column whose name ends in ``sha256`` (the
hashes the exports write).
"""

from __future__ import annotations

import warnings

import ibis

from segflow.exports._pii import PiiKind, is_customer_key, is_personal

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
    """The columns of ``table`` that the name rule does not find personal but whose values
    are mostly e-mail addresses or phone numbers (see the module's notes): text columns by
    their text, whole-number columns by :func:`_numeric_phones`; column -> (kind, why: e.g.
    ``"3 of 4 non-empty values (75 %) are e-mail addresses"``). One aggregate query over the
    whole table; an empty table finds none."""
    schema = table.schema()
    candidates = [c for c, t in schema.items()
                  if t.is_string() and c != "customer_id" and not is_personal(c)
                  and not c.lower().endswith("sha256")]
    numeric = [c for c, t in schema.items()
               if (t.is_integer() or t.is_floating() or t.is_decimal()) and c != "customer_id"
               and not is_personal(c) and not is_customer_key(c) and not _names_a_code(c)]
    if not candidates and not numeric:
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
    for i, c in enumerate(numeric):
        aggs.update({f"{k}_num{i}": v for k, v in _numeric_phones(table[c]).items()})
    counts = table.aggregate(**aggs).to_pyarrow().to_pylist()[0]
    found: dict[str, tuple[PiiKind, str]] = {}
    for i, c in enumerate(candidates):
        n = counts[f"n{i}"] or 0
        for key, kind, what in (("e", "email", "e-mail addresses"), ("p", "phone", "phone numbers")):
            k = counts[f"{key}{i}"] or 0
            if n and k >= CONTENT_SHARE * n:
                found[c] = (kind, f"{k} of {n} non-empty values ({100 * k / n:.0f} %) are {what}")
                break
    for i, c in enumerate(numeric):
        n, k = counts[f"n_num{i}"] or 0, counts[f"p_num{i}"] or 0
        low, high = counts[f"lo_num{i}"], counts[f"hi_num{i}"]
        dense = low is not None and high is not None and high - low < _DENSE * n
        if n and k >= CONTENT_SHARE * n and not dense:
            found[c] = ("phone", f"{k} of {n} values ({100 * k / n:.0f} %) are whole numbers of 10 to 15 "
                        "digits, as phone numbers read as numbers are")
    return found


#: Name tokens of a numeric column that holds codes, references or times, not phone numbers
#: (``order_id``, ``order_number``, ``sku``, ``ean_code``, ``created_ts``, ``account_no``):
#: such a column is never checked as phone numbers.
_CODE_TOKENS = frozenset(("id", "ids", "key", "ref", "reference", "code", "sku", "ean", "upc", "gtin",
                          "isbn", "ts", "timestamp", "time", "epoch", "date", "seq", "serial", "account",
                          "order", "invoice", "transaction", "product", "item", "ticket", "tracking"))
#: A whole-number column whose values span less than this many times its count is a
#: counter (``1000000001``, ``1000000002``, ...), never phone numbers, which are scattered.
_DENSE = 2


def _names_a_code(column: str) -> bool:
    """Whether a numeric column's name says it holds codes or times (:data:`_CODE_TOKENS`)."""
    from segflow.exports._pii import name_tokens

    return any(t in _CODE_TOKENS for t in name_tokens(column))


def _numeric_phones(value: ibis.NumericValue) -> dict[str, ibis.Value]:
    """The aggregates of the numeric content check of one column: non-null values (``n``),
    those that look like a phone number read as a number (``p``), and the least and greatest
    (``lo``, ``hi``: a dense range is a counter). A phone number read as a number lost its
    ``+`` and leading zeros and is a whole number of 10 to 15 digits (E.164 has at most 15):
    of 10 digits not starting with 0 or 1 (a national number: no area code starts so; an epoch
    time in seconds does), of 11 (``1`` and 10 digits in North America, a Chinese mobile), or
    of 12 to 15 not starting with 1 (country code 1 numbers have 11 digits; an epoch time in
    milliseconds starts with 1). Amounts and counters are smaller; a fraction is no number."""
    whole = value.cast("float64")
    integral = (whole % 1 == 0) if not value.type().is_integer() else ibis.literal(True)
    v = whole
    ranges = [(2e9, 1e10), (1e10, 1e11), (2e11, 1e12), (2e12, 1e13), (2e13, 1e14), (2e14, 1e15)]
    phone = ibis.or_(*[(v >= lo) & (v < hi) for lo, hi in ranges]) & integral
    return {"n": value.notnull().sum(), "p": ibis.cases((value.isnull(), False), else_=phone).sum(),
            "lo": whole.min(), "hi": whole.max()}


def warn_content(found: dict[str, tuple[PiiKind, str]], policy: str, source: str | None) -> None:
    """One :class:`PersonalContentWarning` per column of ``found`` (:func:`content_kinds`),
    naming the file (if any), the column, why, and what the policy does with it."""
    where = f"{source}: " if source else ""
    for c, (kind, why) in found.items():
        warnings.warn(f"{where}column {c!r} is treated as personal ({kind}) under the {policy!r} "
                      f"policy: its name is not a personal one, but {why}; rename it to say so "
                      "(e.g. 'email', 'phone'), or pass --pii include to write it in clear",
                      PersonalContentWarning, stacklevel=3)
