"""The validation rules: every reason a source row can be quarantined, with its message.

Rules are checked in the order of :data:`RULES`; a row is quarantined under the first rule it
fails (one quarantine record per rejected row, so the reconciliation adds up).
Exact duplicates (rows equal on the source's ``duplicate_key``, by default on every value;
never for transaction lines without a transaction id unless a ``duplicate_key`` is named) are
not quarantined: they are counted as ``rows_duplicate`` and listed in
the table ``ingest_duplicates``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from segflow._csv import INVISIBLE_LEAD

#: rule name -> what it means (shown in ``docs/data.md`` and ``segflow sources check``).
RULES: dict[str, str] = {
    "malformed_row": "the row cannot be split into the header's columns (field count, quoting, encoding, or not a JSON object)",
    "field_too_long": "a mapped value is longer than max_field_chars",
    "repeated_header": "every column mapped straight to a source column holds that column's own name: the header line again, e.g. in files concatenated with their headers",
    "totals_row": "an id column (or the file's first column) holds a totals label of totals_labels (Total, Grand total, Subtotal, ...): a totals line, not data",
    "excluded_line": "the row matches an `exclude` rule of the source (e.g. postage, fees)",
    "missing_customer_id": "the customer id is empty or a missing-value token (null_values)",
    "missing_transaction_id": "the transaction id column is mapped but empty or a missing-value token (null_values)",
    "missing_date": "the timestamp is empty or a missing-value token (null_values)",
    "missing_amount": "the amount is empty or a missing-value token (null_values)",
    "missing_event_type": "the event type is empty or a missing-value token (null_values)",
    "missing_campaign_id": "the campaign id is empty or a missing-value token (null_values)",
    "missing_question": "the survey question is empty or a missing-value token (null_values)",
    "missing_answer": "the survey answer is empty or a missing-value token (null_values)",
    "invalid_id": "an identifier is not usable: a float id that is not a whole number below 2^53 (NaN, infinity, a fraction, 2^53 or more: a float cannot tell such ids apart), only invisible characters, a text id with a NUL byte inside it (NULs at its ends are trimmed), or a text id in scientific notation (1.23E+11: rounded by a spreadsheet)",
    "invalid_value": "a column with a value map holds a value that is neither a key nor a target of the map",
    "unparseable_date": "the value matches none of the accepted date formats",
    "ambiguous_date": "the value parses under two accepted formats with different dates, and date_order is not set",
    "non_numeric_amount": "the amount is not a finite number in the source's number format, or its magnitude is 1e20 or more",
    "non_numeric_quantity": "the quantity is not a finite number in the source's number format, or its magnitude is 1e20 or more",
    "non_numeric_unit_price": "the unit price is not a finite number in the source's number format, or its magnitude is 1e20 or more",
    "imprecise_amount": "the amount has more significant digits than a double keeps exactly (15): stored, its value would change",
    "imprecise_quantity": "the quantity has more significant digits than a double keeps exactly (15): stored, its value would change",
    "imprecise_unit_price": "the unit price has more significant digits than a double keeps exactly (15): stored, its value would change",
    "future_date": "the timestamp is later than the time of the load",
    "implausible_date": "the timestamp is before 1900-01-01",
    "zero_amount": "the amount is exactly 0",
    "return_sign": "amount and quantity have opposite signs without a credit-note id or return flag, or a credit note / flagged return has a positive amount",
    "formula_in_text": "a text value starts like a spreadsheet formula (=, @, tab, carriage return, or + / - unless it is a plain number) and formulas = 'quarantine'",
    "unknown_customer": "the customer id is not in the customers table",
    "conflicting_id": "another row of the same load has the same key (transaction_id or customer_id) but different values; the first row is kept",
    "order_customer_conflict": "lines of one order name different customers",
}

def rule_title(rule: str) -> str:
    """A quarantine rule's id in words, from :data:`RULES` (``unknown_customer`` -> ``The
    customer id is not in the customers table``); an unknown id is de-snake-cased."""
    text = RULES.get(rule) or rule.replace("_", " ")
    return text[:1].upper() + text[1:]


#: Columns that must be present, per canonical table (missing -> ``missing_<column>``).
REQUIRED: dict[str, list[str]] = {
    "customers": ["customer_id"],
    "transactions": ["ts", "amount"],
    "events": ["customer_id", "ts", "event_type"],
    "campaign_exposures": ["campaign_id", "customer_id", "ts"],
    "survey_responses": ["customer_id", "ts", "question", "answer"],
}

#: Row identity for late corrections: a new row with the same (source, key) replaces the old.
KEYS: dict[str, str] = {"transactions": "transaction_id", "customers": "customer_id"}


def row_key(source: object, mapped: Collection[str]) -> str | None:
    """The column identifying a row of ``source`` for late corrections, or None.

    ``mapped`` holds the canonical columns the source provides (explicitly or by name).

    None for transactions without a mapped ``transaction_id`` (their lines are grouped into
    one order per customer and timestamp and have no identity of their own) and for customer
    sources with a ``valid_from`` column (attribute history: one customer has several rows).
    """
    table = source.table  # type: ignore[attr-defined]
    if table == "transactions" and "transaction_id" not in mapped:
        return None
    if table == "customers" and "valid_from" in mapped:
        return None
    return KEYS.get(table)


def duplicate_columns(
    source: object, present: list[str], mapped: Collection[str]
) -> list[str] | None:
    """Canonical columns whose equality makes two rows of ``source`` duplicates, or None
    when identical rows are not de-duplicated (transactions without a transaction id and
    without a ``duplicate_key``: identical lines are lines of one basket)."""
    key = list(source.duplicate_key)  # type: ignore[attr-defined]
    if key:
        return key
    if source.table == "transactions" and "transaction_id" not in mapped:  # type: ignore[attr-defined]
        return None
    return list(present)


def missing_rule(column: str) -> str:
    """Rule name for an empty required column."""
    return "missing_date" if column in ("ts", "created_at") else f"missing_{column}"


#: A signed number or phone number (``-12.5``, ``+3``, ``-2e3``, ``+44 20 7946 0000``,
#: ``+1-555-0100``): digits and separators only, not a spreadsheet formula.
_SIGNED_NUMBER = r"^[+-][0-9 .,()/%eE-]*[0-9][0-9 .,()/%eE-]*$"


#: A sign after leading invisible characters (white space and format characters such as a
#: zero-width space or a byte-order mark, :data:`segflow._csv.INVISIBLE_LEAD`) or in
#: full-width or small form (``＝``, ``﹢``...): spreadsheets read these as formulas too (the
#: CSV writer's rule, :func:`segflow._csv.formula_cells`).
_SPACED_SIGN = ("^" + INVISIBLE_LEAD + "*[=@+\\-\\x{ff1d}\\x{ff20}\\x{ff0b}\\x{ff0d}\\x{fe66}"
                "\\x{fe6b}\\x{fe62}\\x{fe63}]")
#: ... unless it is a signed number (as :data:`_SIGNED_NUMBER`).
_SPACED_NUMBER = ("^" + INVISIBLE_LEAD + "*[+\\-\\x{ff0b}\\x{ff0d}\\x{fe62}\\x{fe63}]"
                  "[0-9 .,()/%eE-]*[0-9][0-9 .,()/%eE-]*$")


def formula_condition(text: str) -> str:
    """SQL: the text value ``text`` starts like a spreadsheet formula (OWASP CSV injection):
    ``=``, ``@``, a tab, a carriage return, a line feed or NUL, or ``+``/``-`` unless the
    rest is only digits and number separators (a signed number or a phone number); the same
    signs after leading invisible characters (white space, zero-width space, byte-order
    mark...) or in full-width or small form (``＝``). False for NULL.

    Every such first character sorts before ``A`` or from U+00A0 on, so a value between
    ``'A'`` and U+00A0 (a byte comparison; most values: ids, names, codes) is decided without
    looking further; a CASE (not AND/OR, which DuckDB evaluates on every row) keeps the
    regular expressions to the few values starting with ``+``, ``-``, an invisible
    character or a character from U+3000 on.
    """
    first = f"left({text}, 1)"
    number = f"regexp_matches({text}, '{_SIGNED_NUMBER}')"
    spaced = f"regexp_matches({text}, '{_SPACED_SIGN}')"
    spaced_number = f"regexp_matches({text}, '{_SPACED_NUMBER}')"
    invisible = f"regexp_matches({first}, '^{INVISIBLE_LEAD}')"
    return (f"CASE WHEN {text} >= 'A' AND {text} < chr(160) THEN false "
            f"WHEN {first} IN ('=', '@', chr(9), chr(13), chr(10), chr(0)) THEN true "
            f"WHEN {first} IN ('+', '-') AND length({text}) > 1 THEN NOT {number} "
            f"WHEN ({first} IN (' ', chr(160)) OR {text} >= chr(12288) OR {invisible}) "
            f"AND {spaced} THEN NOT {spaced_number} ELSE false END")


def flags(source: Any, specs: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """Accepted rows worth recording in ``ingest_flags``: (rule, condition, column, value),
    over the validated columns (``v_``, ``r_``, ``e_``) of ``source``'s mapped columns
    ``specs`` (:class:`segflow.sources._validate.Spec` by canonical name)."""
    from segflow.store import CANONICAL_TABLES

    out = []
    ctypes = CANONICAL_TABLES[source.table]
    if source.unmapped_values == "null":
        for c in source.value_maps:
            if c in specs:
                out.append(("invalid_value", f"r_{c} IS NOT NULL AND v_{c} IS NULL",
                            specs[c].label, f"r_{c}"))
    if source.table == "transactions":
        label = specs["customer_id"].label if "customer_id" in specs else "(not mapped)"
        out.append(("anonymous", "v_customer_id IS NULL", label, "NULL"))
    if source.table == "customers" and "valid_from" in specs and "created_at" in specs:
        # accepted: the version is read from created_at (features._attributes.known_from)
        out.append(("valid_from_before_created", "v_valid_from < v_created_at",
                    specs["valid_from"].label, "v_valid_from"))
    for c, spec in specs.items():  # ="00123" read as 00123: noted, not silent
        if spec.excel:
            out.append(("excel_text", f"e_{c} IS NOT NULL", spec.label, f"e_{c}"))
    if source.formulas == "flag":
        for c in specs:
            if ctypes[c] == "VARCHAR":
                # a cheap first-character test keeps the regular expression off most rows
                out.append(("formula_in_text", formula_condition(f"v_{c}"),
                            specs[c].label, f"v_{c}"))
    return out
