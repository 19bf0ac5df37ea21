"""Identifiers: the canonical value of an id column, from text or from a number.

- Text ids lose invisible characters that make equal-looking ids differ: zero-width space,
  joiner and non-joiner (U+200B-U+200D), direction marks and embeddings (U+200E, U+200F,
  U+202A-U+202E, U+2066-U+2069), word joiner (U+2060) and byte-order marks (U+FEFF); a
  non-breaking space (U+00A0) becomes a space; then the value is trimmed. Pure-ASCII values
  (almost all) skip the regular expression.
- Float ids (Parquet, Excel) are kept only when they are exact integers: ``123.0`` -> ``123``.
  NaN, infinity, fractions and values beyond 2^53 (where floats stop being exact; e.g.
  ``1.2345678901234567e+19``) give NULL, and the row is quarantined as ``invalid_id``.
"""

from __future__ import annotations

from segflow.sources._readers import lit, q

#: Canonical columns that identify something (customers, orders, campaigns, sessions).
ID_COLUMNS = ("customer_id", "transaction_id", "campaign_id", "session_id")
_INVISIBLE = "[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
_FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL")


def settled(ref: str) -> str:
    """SQL: true when the text ``ref`` is certainly its own ``trim()`` and not empty: pure
    ASCII (bytes = characters), first byte after the space, last byte not a space.

    DuckDB's ``trim`` removes Unicode space separators (U+0020, U+00A0, U+3000, ...), of
    which only U+0020 is ASCII; so a settled value needs no ``trim``. Almost every value of a
    clean source is settled, and this test costs a fraction of a ``trim`` (which copies the
    string): the expressions below take the ``trim`` path only for the others (false for
    NULL).
    """
    return f"(strlen({ref}) = length({ref}) AND {ref} >= '!' AND NOT ends_with({ref}, ' '))"


def trim_text(ref: str) -> str:
    """SQL: ``NULLIF(trim(ref), '')``, skipping the ``trim`` for :func:`settled` values."""
    return f"CASE WHEN {settled(ref)} THEN {ref} ELSE NULLIF(trim({ref}), '') END"


def id_value(col: str, dtype: str) -> str | None:
    """SQL: the canonical id text of source column ``col`` (None: the default text applies)."""
    ref = q(col)
    up = dtype.upper()
    if up.startswith(_FLOAT_TYPES):
        return (f"CASE WHEN isfinite({ref}) AND {ref} = floor({ref}) AND abs({ref}) <= 9007199254740992 "
                f"THEN CAST(CAST({ref} AS BIGINT) AS VARCHAR) END")
    if up == "VARCHAR":
        clean = f"regexp_replace(replace({ref}, chr(160), ' '), {lit(_INVISIBLE)}, '', 'g')"
        return (f"CASE WHEN {settled(ref)} THEN {ref} WHEN strlen({ref}) = length({ref}) "
                f"THEN NULLIF(trim({ref}), '') ELSE NULLIF(trim({clean}), '') END")
    return None


def id_reason(text: str) -> str:
    """SQL: why the id in ``text`` (the raw value) is refused."""
    return (f"'identifier ''' || left({text}, 80) || ''' is not usable (not an exact integer, "
            "or only invisible characters)'")
