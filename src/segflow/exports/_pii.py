"""Personal data in exports: hashed, masked, left out, or (when asked explicitly) in clear.

The canonical ``customers`` table holds two personal columns, ``email`` and ``phone`` (it
has no place for names or addresses: the ingest refuses to map one, saying so); any column
of a customer file a command writes back out (names, addresses, postcodes) is treated the
same way when its name is personal by the name rule below (:func:`pii_kind`,
:func:`is_personal`: the one rule, the server's, the campaign commands' and ``segflow
customers explain``'s too). Policies, applied in the engine (:func:`personal_columns` for the
store's exports, :func:`protect_columns` for any table):

``hash`` (default)
    SHA-256 of the normalised value, as 64 hex digits: the form ad platforms and CRMs match
    customer lists on (e.g. customer-match uploads), without the value itself. An e-mail is
    trimmed and lower-cased as Python's ``str.strip().lower()`` does (Unicode white space;
    full case mapping: ``İ`` is ``i̇``, a final ``Σ`` is ``ς``); a phone number is reduced to its digits, in E.164 form
    (``+`` and the country code) when written internationally (``+44 7700 900123`` and
    ``0044 7700-900123`` are both ``+447700900123``): a number without its country code
    cannot be completed (which country?) and stays its digits. Other columns: trimmed,
    lower-cased.
``mask``
    Enough left to recognise a record by eye, by one rule per kind of value, the rules of
    the server's masked answers too: an e-mail as :func:`mask_email` writes it
    (``j***@example.com``), a phone number as :func:`mask_phone` (``***23``), a name and any
    other personal text as :func:`mask_name` (``J***``); empty stays empty. The rules are
    implemented once, as whole-column Arrow operations (:func:`mask_array`: each batch in the
    engine, the server's rows a column at a time, one value for those functions).
``omit``
    The columns are left out.
``include``
    The values in clear. Only on explicit request (``--pii include``); the export log
    records the policy of every export.

Which columns are personal: the name rule
-----------------------------------------
A column's name is personal when, normalised, it is *exactly* one of the aliases of
:data:`PII_ALIASES` (the whole name, never a part of it), which also give its kind: the
``email`` rule, the ``phone`` rule, or ``text`` (names, addresses, postcodes: any other
personal text). Normalising (:func:`name_tokens`):

1. camelCase and letters next to digits are split (``EmailAddress`` -> ``Email Address``,
   ``addressLine1`` -> ``address Line 1``);
2. lower-cased; every run of characters that are not letters or digits (``-``, ``_``,
   ``.``, spaces) is one separator between tokens;
3. the tokens ``e`` ``mail`` are one token ``email`` (``E-Mail``, ``e_mail``, ``eMail``);
4. leading qualifier tokens (:data:`PII_QUALIFIERS`: ``customer``, ``contact``,
   ``primary``, ``home``, ``work``, ``billing``, ``shipping``...) are dropped, as is one
   trailing number token (``email2``, ``phone_2``, ``address_line_1``), as long as a token
   is left; so are trailing qualifiers (:data:`PII_TRAILING_QUALIFIERS`: ``Email (work)``,
   ``Phone (mobile)``, ``phone_home``). The name is looked up after each step, and a plural
   (``emails``, ``phone_numbers``) as its singular.

What is left, joined by ``_``, is looked up (also ``EmailID``, ``contact_no``, ``mobile phone
no``, ``ip_address``; not ``cell`` or ``mail`` alone, ambiguous: see docs/exports.md). So ``Email``, ``E-Mail``, ``email_address``,
``customer_email``, ``mobile_phone``, ``Telephone``, ``tel``, ``cell_phone``, ``surname``,
``given_name``, ``address_line1``, ``street_address``, ``post_code``, ``zip_code`` are
personal; a column *derived* from a personal one is not, because its name holds a token no
alias has: ``email_sha256`` (the hashes this module writes: never hashed twice),
``phone_hash``, ``email_domain`` (the part after ``@`` is shared by many people; a breakdown
or segment by it is legitimate), ``has_email``, ``email_opt_in``, ``zip_region``, and also
``company_name``, ``product_name`` (``company`` and ``product`` are no qualifiers). The list
is explicit on purpose: a name outside it (another language's ``Telefon``, ``Vorname``; a
date of birth) is not personal by name; rename the column, or add it here. Behind the rule,
:func:`protect_columns` checks the values of the other text columns
(:mod:`segflow.exports._pii_content`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import ibis

from segflow.errors import InputError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

PiiPolicy = Literal["hash", "mask", "omit", "include"]
PiiKind = Literal["email", "phone", "text"]
PII_POLICIES: tuple[str, ...] = ("hash", "mask", "omit", "include")

#: The aliases of the name rule (see the module's notes): a normalised column name (tokens
#: joined by ``_``) -> its kind, ``email`` (hashed and masked by the e-mail rules), ``phone``
#: (the phone rules) or ``text`` (names, addresses, postcodes: the rules for other personal
#: text).
PII_ALIASES: dict[str, PiiKind] = {
    **dict.fromkeys(("email", "email_address", "email_addr", "emailaddress"), "email"),
    **dict.fromkeys(("phone", "phone_number", "phone_no", "phone_nr", "phone_num", "phonenumber",
                     "telephone", "telephone_number", "telephone_no", "tel", "tel_no", "tel_nr",
                     "tel_number", "telno", "mobile", "mobile_phone", "mobile_number", "mobile_no",
                     "mobile_phone_number", "mobilephone", "mobile_tel", "cell_phone", "cellphone",
                     "cell_number", "cell_no", "cell_phone_number", "msisdn", "fax", "fax_number",
                     "fax_no"), "phone"),
    **dict.fromkeys(("name", "first_name", "firstname", "last_name", "lastname", "full_name",
                     "fullname", "surname", "given_name", "givenname", "family_name", "familyname",
                     "middle_name", "forename", "forenames", "maiden_name", "username",
                     "address", "address_line", "addr", "addr_line", "street", "street_address",
                     "street_name", "street_line", "postcode", "post_code", "postal_code",
                     "postalcode", "zip", "zip_code", "zipcode", "ip", "ip_address", "ip_addr",
                     "ipaddress"), "text"),
    # "email ID" (the address, in Indian English) and the German/French "E-Mail-Adresse"
    **dict.fromkeys(("email_id", "emailid", "email_adresse", "adresse_email"), "email"),
    # a number's suffix after a phone-like word: "contact_no", "mobile phone no", "tel_nbr"
    **{f"{base}_{suffix}": "phone"
       for base in ("phone", "telephone", "tel", "mobile", "mobile_phone", "cell", "cell_phone",
                    "contact", "fax")
       for suffix in ("no", "nr", "num", "number", "nbr")},
}
#: Tokens that may stand before an alias and still name the same kind of value
#: (``customer_email``, ``home_phone``, ``billing_address``, ``contact_name``).
PII_QUALIFIERS: frozenset[str] = frozenset((
    "customer", "cust", "contact", "primary", "secondary", "alt", "alternate", "alternative",
    "other", "personal", "private", "home", "work", "billing", "shipping", "delivery", "mailing",
    "main", "user",
))
#: Tokens that may stand after an alias and still name the same kind of value (``Email
#: (work)``, ``Phone (mobile)``, ``phone_home``): the qualifiers, and the kinds of a line.
PII_TRAILING_QUALIFIERS: frozenset[str] = PII_QUALIFIERS | frozenset((
    "mobile", "cell", "landline", "office", "business", "fixed",
))
#: The canonical personal columns (every one an alias of :data:`PII_ALIASES`; kept for the
#: API and the docs): a name the rule finds personal need not be listed here.
PII_COLUMNS: tuple[str, ...] = ("email", "phone", "name", "first_name", "last_name", "full_name",
                                "address", "street", "postcode", "zip")


def name_tokens(column: str) -> tuple[str, ...]:
    """The tokens of ``column``'s name as the name rule compares them (steps 1-3 of the
    module's notes): ``"E-Mail"`` -> ``("email",)``, ``"addressLine1"`` -> ``("address",
    "line", "1")``."""
    import re

    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", column)
    text = re.sub(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])", " ", text)
    tokens = [t for t in re.split(r"[\W_]+", text.lower()) if t]
    out: list[str] = []
    for t in tokens:
        if t == "mail" and out and out[-1] == "e":
            out[-1] = "email"
        else:
            out.append(t)
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def pii_kind(column: str) -> PiiKind | None:
    """The kind of personal data a column of that name holds, by the name rule (see the
    module's notes): ``"email"``, ``"phone"``, ``"text"`` (names, addresses, postcodes), or
    None (not personal). ``E-Mail`` and ``customer_email`` are ``email``, ``mobile_phone`` is
    ``phone``, ``address_line1`` is ``text``; ``email_sha256``, ``email_domain`` and
    ``phone_hash`` are None. Cached per name (a table has few, and the server asks on every
    answer: about 0.1 µs a column, 3 µs uncached)."""
    tokens = list(name_tokens(column))
    if len(tokens) > 1 and tokens[-1].isdigit():
        tokens.pop()
    while True:
        key = "_".join(tokens)
        kind = PII_ALIASES.get(key)
        if kind is None and key.endswith("s"):  # a plural: "emails", "phone_numbers"
            kind = PII_ALIASES.get(key[:-1]) or (PII_ALIASES.get(key[:-2]) if key.endswith("es") else None)
        if kind is not None:
            return kind
        if len(tokens) > 1 and tokens[0] in PII_QUALIFIERS:
            tokens.pop(0)
        elif len(tokens) > 1 and tokens[-1] in PII_TRAILING_QUALIFIERS:
            tokens.pop()
        else:
            return None


#: Normalised names (:func:`name_tokens` joined by ``_``) of a column that identifies each
#: customer: a breakdown or a model feature by it is one group per person.
CUSTOMER_KEYS: frozenset[str] = frozenset((
    "id", "customer_id", "cust_id", "customerid", "customer_no", "customer_number", "customer_key",
    "client_id", "clientid", "user_id", "userid", "member_id", "memberid", "person_id",
))


def is_customer_key(column: str) -> bool:
    """Whether a column of that name identifies each customer (``customer_id``,
    ``CustomerID``, ``client_id``, ``user_id``, ``id``: :data:`CUSTOMER_KEYS`): not personal
    data itself, but one value per person, so no breakdown or model feature."""
    return "_".join(name_tokens(column)) in CUSTOMER_KEYS


def is_personal(column: str) -> bool:
    """Whether a column of that name holds personal data: :func:`pii_kind` is not None
    (``Email``, ``E-Mail``, ``phone_number`` are; ``email_sha256``, ``email_domain`` are not)."""
    return pii_kind(column) is not None


def _kind(column: str) -> PiiKind:
    """The kind of the personal column ``column`` (also given as a kind, ``email``,
    ``phone`` or ``text``): the rules that hash and mask it; ``text`` for a name the rule
    does not know."""
    return pii_kind(column) or "text"


def check_policy(policy: str) -> PiiPolicy:
    """``policy`` if it is one of :data:`PII_POLICIES`, else an :class:`InputError`."""
    if policy not in PII_POLICIES:
        raise InputError(f"unknown personal-data policy {policy!r}; expected one of {', '.join(PII_POLICIES)}")
    return policy  # type: ignore[return-value]


#: White space around a phone number (also the no-break spaces office software writes).
_SPACES = " \t\n\r\f\v\u00a0\u2007\u202f\u3000"
#: An extension at the end of a phone number (``ext. 123``, ``x123``, ``#123``, any case): not
#: dialled as part of the number, so not hashed with it. Its letters in either case are spelt
#: out as Python's ``(?i)`` matched them (``ſ`` is an ``s``, ``ı`` and ``İ`` an ``i``): RE2, the
#: engine's and Arrow's regular expressions, folds case otherwise.
_EXTENSION = r"[ \t]*([eE][xX][tT][eE][nN][sSſ][iIıİ][oO][nN]|[eE][xX][tT]\.?|[xX]|#)[ \t]*[0-9]+$"


def phone_key(value: str) -> str | None:
    """The form a phone number is hashed in: its digits, with ``+`` in front when written
    internationally (``+`` or ``00`` first), and then without a trunk ``(0)`` and an
    extension: E.164 (``+44 (0)20 7946-0000 ext. 12`` and ``0044 20 7946 0000`` are both
    ``+442079460000``). A number without its country code stays its digits (``020 7946
    0000`` -> ``02079460000``); one without digits (``n/a``) is None, not hashed. The
    engine's :func:`_phone_key` is the same rule."""
    import re

    text = re.sub(_EXTENSION, "", value.strip(_SPACES)).strip(_SPACES)
    international = text.startswith(("+", "00"))
    if international:
        text = text.replace("(0)", "")
    digits = "".join(c for c in text if c.isascii() and c.isdigit())
    if international and text.startswith("00"):
        digits = digits[2:]
    if not digits:
        return None
    return "+" + digits if international else digits


#: Digits a masked phone number shows (its last ones), and the fewest digits a number needs
#: to show them: of a shorter one (``555``, ``112``) they would be most of it.
MASK_PHONE_DIGITS = 2
MASK_PHONE_MIN_DIGITS = 6


def mask_array(kind: str, values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """``values`` (text) of a personal column masked, as whole-column operations in Arrow (no
    Python loop over the values); ``kind`` is the column's name or its kind (:func:`pii_kind`):
    :func:`mask_email`'s rule for an ``email`` column (``E-Mail``, ``email_address``...),
    :func:`mask_phone`'s for a ``phone`` one (``mobile``, ``tel``...), :func:`mask_name`'s for
    any other; nulls stay null. The one implementation of the masking rules: the exports' ``mask`` policy calls it on
    each batch in the engine (:func:`_masked`), the server on its rows (:func:`mask_values`),
    and the one-value functions on a one-element array."""
    import pyarrow as pa

    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    kind = _kind(kind)
    if kind == "email":
        return _mask_emails(values)
    if kind == "phone":
        return _mask_phones(values)
    return _mask_names(values)


def _mask_emails(values: pa.Array) -> pa.Array:
    """:func:`mask_email` of each value. Trimmed as ``str.strip()`` trims (Arrow's Unicode white
    space is Python's, as a test checks), then split at its last ``@`` (``str.rpartition``)."""
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(values)
    at = pc.match_substring(text, "@")
    # every value split in two (one without @ as "@": it is no address anyway)
    parts = pc.split_pattern(pc.if_else(at, text, "@"), "@", max_splits=1, reverse=True)
    local, domain = pc.list_element(parts, 0), pc.list_element(parts, 1)
    address = pc.and_(at, pc.and_(pc.not_equal(local, ""), pc.not_equal(domain, "")))
    masked = pc.binary_join_element_wise(pc.utf8_slice_codeunits(local, 0, 1), "***@", domain, "")
    return pc.if_else(pc.equal(text, ""), "", pc.if_else(address, masked, "***"))


def _mask_phones(values: pa.Array) -> pa.Array:
    """:func:`mask_phone` of each value: the digits of :func:`phone_key`, step by step."""
    import pyarrow.compute as pc

    text = pc.utf8_trim(values, characters=_SPACES)
    number = pc.utf8_trim(pc.replace_substring_regex(text, _EXTENSION, ""), characters=_SPACES)
    zeros = pc.starts_with(number, "00")
    international = pc.or_(pc.starts_with(number, "+"), zeros)
    number = pc.if_else(international, pc.replace_substring(number, "(0)", ""), number)
    digits = pc.replace_substring_regex(number, "[^0-9]+", "")
    digits = pc.if_else(zeros, pc.utf8_slice_codeunits(digits, 2), digits)  # without the 00
    shown = pc.binary_join_element_wise("***", pc.utf8_slice_codeunits(digits, -MASK_PHONE_DIGITS), "")
    masked = pc.if_else(pc.greater_equal(pc.utf8_length(digits), MASK_PHONE_MIN_DIGITS), shown, "***")
    return pc.if_else(pc.equal(text, ""), "", masked)


def _mask_names(values: pa.Array) -> pa.Array:
    """:func:`mask_name` of each value."""
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(values)
    masked = pc.binary_join_element_wise(pc.utf8_slice_codeunits(text, 0, 1), "***", "")
    return pc.if_else(pc.equal(text, ""), "", masked)


def mask_values(column: str, values: Sequence[Any]) -> list[Any]:
    """Python values of the personal column ``column`` masked (:func:`mask_array` on their
    text, in one call): a missing value (None, NaN) stays as it is, any other is masked as its
    ``str()``. The server's masked frames and rows."""
    import pyarrow as pa

    missing = [v is None or (isinstance(v, float) and math.isnan(v)) for v in values]
    text = pa.array([None if m else str(v) for v, m in zip(values, missing, strict=True)], pa.string())
    masked = mask_array(column, text).to_pylist()
    return [v if m else x for v, m, x in zip(values, missing, masked, strict=True)]


def mask_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` (pandas) with each personal column (:func:`is_personal`) masked by
    the rules of its kind (:func:`mask_values`, a column at a time); the other columns as
    they are. The server's masked answers, ``segflow customers explain`` and ``segflow
    sources check`` show personal values through it."""
    import pandas as pd

    out = frame.copy()
    for col in out.columns:
        if isinstance(col, str) and is_personal(col):
            out[col] = pd.Series(mask_values(col, out[col].tolist()), index=out.index, dtype=object)
    return out


def mask_value(column: str, value: Any) -> Any:
    """``value`` of the personal column ``column`` masked (:func:`mask_values` of one value):
    :func:`mask_email`, :func:`mask_phone` or :func:`mask_name` (any other column), of its
    text; a missing value (None, NaN) stays as it is. What the exports' ``mask`` policy writes
    (in the engine, :func:`_masked`) and what the server's masked answers show
    (:func:`segflow.server._security.protect`)."""
    return mask_values(column, [value])[0]


def mask_phone(value: str) -> str:
    """A phone number masked: ``***`` and the last two digits of the number as it is hashed
    (:func:`phone_key`: its digits, without a trunk ``(0)`` or an extension), so ``+44 20 7946
    0123``, ``020-7946-0123`` and ``0044 (0)20 7946 0123 ext. 9`` all read ``***23``. A number
    of fewer than six digits and a value without digits (``n/a``) read ``***``; an empty (or
    blank) value stays empty. Always 3 or 5 characters: neither the length nor the format of
    the number shows.

    The one rule for masked phones (:func:`mask_array`): the exports' ``mask`` policy
    (:func:`personal_columns`) and the server's masked answers (:func:`mask_value`)."""
    return mask_value("phone", value)


def mask_email(value: str) -> str:
    """An e-mail masked: its first character, ``***`` and its domain, of the value trimmed as
    it is hashed (``str.strip()``): ``Jane.Doe@Example.com`` -> ``J***@Example.com``. It is
    cut at its last ``@`` (a domain has none; a quoted local part may). A value that is no
    address (no ``@``, or nothing before or after it: ``n/a``, ``jane``, ``@example.com``)
    reads ``***``; an empty (or blank) value stays empty.

    The one rule for masked e-mails (:func:`mask_array`): the exports' ``mask`` policy
    (:func:`personal_columns`) and the server's masked answers (:func:`mask_value`)."""
    return mask_value("email", value)


def mask_name(value: str) -> str:
    """A name (``name``, ``first_name``, ``last_name``, ``full_name``) or other personal text
    (``address``, ``street``, ``postcode``, ``zip``) masked: its first character and ``***``,
    of the value trimmed (``str.strip()``): ``Jane Doe`` -> ``J***``, ``J`` -> ``J***``; an
    empty (or blank) value stays empty. The one rule (:func:`mask_array`), as
    :func:`mask_email`'s."""
    return mask_value("name", value)


@ibis.udf.scalar.pyarrow
def _masked(value: str, column: str) -> str:
    """:func:`mask_array` of each batch of ``column`` (a literal), in the engine (nulls stay null)."""
    import pyarrow as pa

    kind = column[0].as_py() if len(column) else ""
    out = mask_array(kind, value)
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def _phone_key(value: ibis.Value) -> ibis.StringValue:
    """:func:`phone_key` in the engine."""
    space = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in _SPACES) + "]"
    text = value.cast("string").re_replace(f"^{space}+|{space}+$", "")
    text = text.re_replace(_EXTENSION, "").re_replace(f"{space}+$", "")
    plus, zeros = text.startswith("+"), text.startswith("00")
    digits = text.replace("(0)", "").re_replace(r"[^0-9]", "")
    digits = ibis.ifelse(zeros, digits.substr(2), digits)
    plain = text.re_replace(r"[^0-9]", "")
    key = ibis.ifelse(plus | zeros, "+" + digits, plain)
    return ibis.ifelse((plus | zeros) & (digits == "") | ~(plus | zeros) & (plain == ""),
                       ibis.null("string"), key)


@ibis.udf.scalar.pyarrow
def _python_key(value: str) -> str:
    """Python's ``value.strip().lower()`` of each value (the few that are not printable ASCII)."""
    import pyarrow as pa

    return pa.array([None if v is None else v.strip().lower() for v in value.to_pylist()], pa.string())


def hash_key(column: str, value: ibis.Value) -> ibis.StringValue:
    """The text of ``column`` that the ``hash`` policy hashes (see the module's notes):
    exactly Python's ``str.strip().lower()`` (what the server's CSV downloads hash, and what
    the ad platforms' own client libraries do). The engine's TRIM and LOWER agree with it on
    printable ASCII only: around a value they do not strip the no-break and other Unicode
    spaces, and LOWER maps ``İ`` to ``i`` (Python: ``i̇``) and a final ``Σ`` to ``σ``
    (Python: ``ς``), so any other value is normalised by Python (per batch, only those).
    A value that is empty once trimmed is missing (NULL, no hash): the hash of an empty text
    would give every customer without the value one shared identity. ``column``: the
    column's name or its kind (:func:`pii_kind`); a ``phone`` column is hashed by
    :func:`phone_key`'s rule instead."""
    if _kind(column) == "phone":
        return _phone_key(value)
    text = value.cast("string")
    key = ibis.ifelse(text.re_search(r"[^\x20-\x7e]"), _python_key(text), text.strip().lower())
    return key.nullif("")


def hashed_column(column: str) -> str:
    """The name of ``column``'s hashes (``email`` -> ``email_sha256``): the one naming rule of
    the exports' ``hash`` policy and the server's hashed CSV downloads, so that a column's
    name says whether it holds the value or its SHA-256."""
    return f"{column}_sha256"


def _under_policy(column: str, value: ibis.Value, policy: PiiPolicy,
                  kind: PiiKind | None = None) -> dict[str, ibis.Value]:
    """The personal column ``column`` under ``policy``, as the columns it becomes: none
    (``omit``), ``<column>_sha256`` (``hash``), or ``column`` masked or as it is, by the
    rules of its kind (``kind``, else :func:`pii_kind`: ``E-Mail`` by the e-mail rules)."""
    kind = kind or _kind(column)
    if policy == "omit":
        return {}
    if kind == "phone" and value.type().is_floating():  # read as a number: 447700900123.0
        value = ibis.ifelse(value.isnan() | value.isinf(), ibis.null("float64"), value).cast("int64")
    if policy == "hash":
        return {hashed_column(column): hash_key(kind, value).hexdigest("sha256")}
    if policy == "mask":
        return {column: _masked(value.cast("string"), ibis.literal(kind))}
    return {column: value}


def protect_columns(table: ibis.Table, policy: str, *, source: str | None = None) -> ibis.Table:
    """``table`` with its personal columns (:func:`is_personal`) under ``policy``, in the
    engine; the other columns as they are, all in their places. What a command writes when
    it writes back a customer file a user gave it (``segflow campaign audience
    --customers``, ``campaign uplift --scores-out``): the store's exports' rules
    (:func:`personal_columns`), the same names (``email`` hashed is ``email_sha256``).

    A hashed column whose name the table already holds (``email`` next to ``email_sha256``,
    in any case) is an :class:`InputError` naming ``source`` (the file the table was read
    from, if any), the header and that column, not one column silently written over the
    other.

    A text column the name rule does not find but whose values are mostly e-mail addresses
    or phone numbers is treated as personal of that kind too, with a
    :class:`~segflow.exports._pii_content.PersonalContentWarning` naming it and why (the
    content check, :func:`~segflow.exports._pii_content.content_kinds`: one more aggregate
    query over ``table``; not run under ``include``).
    """
    from segflow.exports._pii_content import content_kinds, warn_content

    policy = check_policy(policy)
    if policy == "include":
        return table
    kinds: dict[str, PiiKind] = {c: k for c in table.columns if (k := pii_kind(c)) is not None}
    found = content_kinds(table)
    warn_content(found, policy, source)
    kinds.update({c: kind for c, (kind, _) in found.items()})
    personal = [c for c in table.columns if c in kinds]
    if not personal:
        return table
    if policy == "hash":
        taken = {c.lower(): c for c in table.columns}
        for c in personal:
            if (held := taken.get(hashed_column(c).lower())) is not None:
                what = "file" if source is not None else "table"
                raise InputError(f"the {what} has both {c!r} and {held!r}: the hashes of {c!r} "
                                 "would be written over that column; rename or drop one",
                                 file=source, row=0 if source is not None else None, column=held)
    cols: dict[str, ibis.Value] = {}
    for c in table.columns:
        cols.update(_under_policy(c, table[c], policy, kinds[c]) if c in kinds else {c: table[c]})
    return table.select(**cols)


def personal_columns(customers: ibis.Table, policy: str) -> ibis.Table:
    """``customer_id`` plus the personal columns of ``customers`` (:func:`is_personal`, in
    the table's order) under ``policy``.

    Column names say what they hold: ``email`` (clear or masked) or ``email_sha256``.
    With ``omit`` only ``customer_id`` is returned.
    """
    policy = check_policy(policy)
    present = [c for c in customers.columns if is_personal(c)]
    cols: dict[str, ibis.Value] = {"customer_id": customers.customer_id}
    for c in present:
        v = customers[c] if policy == "hash" else customers[c].cast("string")
        cols.update(_under_policy(c, v, policy))
    # one row per customer; should a store hold two records of one customer, the larger
    # value is taken, so the output does not depend on the order rows are read in
    t = customers.select(**cols)
    others = [c for c in t.columns if c != "customer_id"]
    return t.group_by("customer_id").agg(**{c: t[c].max() for c in others})
