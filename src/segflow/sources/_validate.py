"""Map a staged source into canonical columns and validate it, column-wise, in DuckDB SQL.

The result is a temporary table with one row per staged row: ``_row``, ``_raw`` (the source
row as a JSON object), ``v_<col>`` (the parsed canonical values) and ``_rule``/``_column``/
``_reason`` (NULL when the row passes every rule). No Python loop touches a row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import sqlglot
from sqlglot import exp

from segflow.config import SourceSettings
from segflow.errors import ConfigError, InputError
from segflow.sources._dates import date_parses, day_first, iso_hint, short_year_hint, to_utc
from segflow.sources._ids import (
    ID_COLUMNS,
    add_id_rules,
    excel_text,
    id_value,
    read_text,
    trim_text,
    trimmed,
    without_null_tokens,
)
from segflow.sources._numbers import (
    inexact_text,
    not_a_number,
    number_of_text,
    typed_inexact,
    typed_number,
)
from segflow.sources._readers import Staged, lit, q
from segflow.sources._rules import REQUIRED, formula_condition, missing_rule
from segflow.sources._stray import stray_rules, totals_extra
from segflow.store import CANONICAL_TABLES

_NUMERIC_TYPES = ("DOUBLE", "FLOAT", "REAL", "DECIMAL", "INTEGER", "BIGINT", "SMALLINT",
                  "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT")
_FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL")
#: The longest text of a typed number or date value ('-170141183460469231731687303715884105728'
#: is 40 characters; a timestamp with time zone and nanoseconds about 40).
_TYPED_TEXT_MAX = 48


@dataclass
class Spec:
    """How one canonical column is computed from the source."""

    text: str  # SQL: the raw value as trimmed text (NULL when empty)
    value: str  # SQL: the parsed canonical value
    label: str  # the source column(s) named in messages
    dates: list[str] | None = None  # per-format parses (date columns given as text)
    date_orders: list[str] | None = None
    #: SQL: the typed source value of a number or date column (Parquet, databases), NULL
    #: exactly when ``text`` is, whose text is at most :data:`_TYPED_TEXT_MAX` characters
    raw: str | None = None
    #: SQL (number columns): the reason when a number's double is not exactly it
    #: (:mod:`segflow.sources._numbers`), else NULL; None when no value can be inexact
    inexact: str | None = None
    #: SQL (a text source column): the text read from Excel-safe text (``="00123"``), else
    #: NULL (:func:`segflow.sources._ids.excel_text`, of the value as written: a column of
    #: :func:`~segflow.sources._ids.without_null_tokens`); None for a typed column
    excel: str | None = None


#: Amounts, quantities and prices at or beyond this magnitude are quarantined as
#: ``non_numeric_*``: features sum money as exact decimal(38, 6) (at most 10^32 in all), and
#: 10^20 a line leaves room for 10^12 lines; no currency's real amounts come near it.
MAX_ABS_NUMBER = 1e20


def _is_numeric(dtype: str) -> bool:
    return dtype.upper().startswith(_NUMERIC_TYPES)


def _text(col: str, dtype: str) -> str:
    """SQL: the value of a source column as trimmed text; NULL when empty.

    Missing-value tokens (``null_values``) are already NULL here: :func:`validate` reads the
    staged table through :func:`segflow.sources._ids.without_null_tokens`, as is
    Excel-safe text (``="00123"``: ``00123``).
    """
    ref = q(col)
    if dtype.upper().startswith(_FLOAT_TYPES):  # 123.0 -> '123' so ids match text sources
        return (f"CASE WHEN {ref} = floor({ref}) AND abs({ref}) < 1e15 "
                f"THEN CAST(CAST({ref} AS BIGINT) AS VARCHAR) ELSE CAST({ref} AS VARCHAR) END")
    if dtype.upper() == "VARCHAR":
        return trim_text(ref)
    return f"CAST({ref} AS VARCHAR)"


def _excel(col: str, dtype: str) -> str | None:
    """SQL: the text read from an Excel-safe text value of a text column, else NULL (the
    ``excel_text`` flag's value); None for a typed column."""
    return excel_text(q(col)) if dtype.upper() == "VARCHAR" else None


def _code_text(col: str, dtype: str, text: str) -> str:
    """SQL: the canonical text of a code (region, category, channel, ...) whose source
    column holds floats: NaN is a missing value (how pandas, polars and Spark write one into
    a float column), not the code ``'nan'``; else ``text`` (:func:`_text`: ``5.0`` -> ``'5'``)."""
    if dtype.upper().startswith(_FLOAT_TYPES):
        return f"CASE WHEN NOT isnan({q(col)}) THEN {text} END"
    return text


def _number(col: str, dtype: str, source: SourceSettings) -> str:
    """SQL: the finite double of a source column (text in the source's number format)."""
    if _is_numeric(dtype):
        return typed_number(q(col))
    return number_of_text(_text(col, dtype), source)


def _inexact(col: str, dtype: str, source: SourceSettings) -> str | None:
    """SQL: the reason when a number's double is not exactly it (see :class:`Spec`)."""
    if _is_numeric(dtype):
        return typed_inexact(q(col), dtype)
    return inexact_text(_text(col, dtype), source)


def _boolean(text: str) -> str:
    return (f"CASE WHEN lower({text}) IN ('1', 'true', 't', 'yes', 'y') THEN true "
            f"WHEN lower({text}) IN ('0', 'false', 'f', 'no', 'n') THEN false END")


def _date_spec(col: str, dtype: str, source: SourceSettings) -> Spec:
    up = dtype.upper()
    if up.startswith("TIMESTAMP WITH TIME ZONE") or up == "TIMESTAMPTZ":
        value = f"timezone('UTC', {q(col)})"
        return Spec(f"CAST({q(col)} AS VARCHAR)", value, col, raw=q(col))
    if up.startswith(("TIMESTAMP", "DATE")):
        value = to_utc(f"CAST({q(col)} AS TIMESTAMP)", source.timezone)
        return Spec(f"CAST({q(col)} AS VARCHAR)", value, col, raw=q(col))
    text = _text(col, dtype)
    return Spec(text, "", col, dates=date_parses(text, source), excel=_excel(col, dtype))


class _Mapper:
    """Resolves the ``columns`` mapping of a source against the staged columns."""

    def __init__(self, source: SourceSettings, staged: Staged) -> None:
        self.source, self.staged = source, staged
        self.lower = {c.lower(): c for c in staged.columns}

    def column(self, name: str, canonical: str) -> str:
        if name in self.staged.columns:
            return name
        if name.lower() in self.lower:
            return self.lower[name.lower()]
        shown = ", ".join(list(self.staged.columns)[:30])
        raise InputError(
            f"mapped column {name!r} (for canonical {canonical!r}) is not in the source; "
            f"its columns are: {shown}",
            file=self.staged.label,
            row=0,
            column=name,
        )

    def spec(self, canonical: str, ctype: str) -> Spec | None:
        mapping = self.source.columns.get(canonical)
        if mapping is None:
            if canonical in self.staged.columns or canonical.lower() in self.lower:
                mapping = canonical  # same name in the source: mapped implicitly
            else:
                return None
        mapping = mapping.strip()
        if mapping.startswith("="):
            return self._expression(mapping[1:].strip(), canonical, ctype)
        if len(mapping) >= 2 and mapping[0] == mapping[-1] == "'":
            const = lit(mapping[1:-1])
            value = const
            if ctype == "DOUBLE":
                number = lit(mapping[1:-1].strip())
                return Spec(const, number_of_text(number, self.source), "(constant)",
                            inexact=inexact_text(number, self.source))
            elif ctype == "TIMESTAMP":
                return Spec(const, "", "(constant)", dates=date_parses(const, self.source))
            elif ctype == "BOOLEAN":
                value = _boolean(const)
            return Spec(const, value, "(constant)")
        col = self.column(mapping, canonical)
        dtype = self.staged.columns[col]
        if ctype == "TIMESTAMP":
            return _date_spec(col, dtype, self.source)
        text, excel = _text(col, dtype), _excel(col, dtype)
        if ctype == "DOUBLE":
            return Spec(text, _number(col, dtype, self.source), col,
                        raw=q(col) if _is_numeric(dtype) else None,
                        inexact=_inexact(col, dtype, self.source), excel=excel)
        if ctype == "BOOLEAN":
            return Spec(text, _boolean(text), col, excel=excel)
        idv = id_value(col, dtype, self.staged.numbers.get(col)) if canonical in ID_COLUMNS else None
        if idv is None:  # a code: NaN is missing for the rules (value maps) and the value
            text = _code_text(col, dtype, text)
        # an id is NULL where its text is (empty, a token): no test of the text needed
        return Spec(text, self._value_map(canonical, idv or text), col, excel=excel)

    def _value_map(self, canonical: str, text: str) -> str:
        vmap = self.source.value_maps.get(canonical)
        if not vmap:
            return text
        whens = " ".join(f"WHEN {text} = {lit(k)} THEN {lit(v)}" for k, v in vmap.items())
        if self.source.unmapped_values == "null":
            targets = ", ".join(lit(v) for v in sorted(set(vmap.values())))
            return f"CASE {whens} WHEN {text} IN ({targets}) THEN {text} END"
        return f"CASE {whens} ELSE {text} END"

    def _expression(self, sql: str, canonical: str, ctype: str) -> Spec:
        try:
            tree = sqlglot.parse_one(sql, read="duckdb")
        except sqlglot.errors.ParseError as exc:
            raise ConfigError(
                f"source {self.source.name!r}: cannot parse expression for {canonical!r}: {exc}"
            ) from exc
        if tree.find(exp.Select, exp.Subquery):
            raise ConfigError(f"source {self.source.name!r}: no subqueries in column expressions")
        used: list[str] = []

        def swap(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column):
                col = self.column(node.name, canonical)
                used.append(col)
                dtype = self.staged.columns[col]
                sub = _number(col, dtype, self.source) if ctype == "DOUBLE" else _text(col, dtype)
                return sqlglot.parse_one(sub, read="duckdb")
            return node

        value = tree.transform(swap).sql(dialect="duckdb")
        texts = ", ".join(_text(c, self.staged.columns[c]) for c in used) or "NULL"
        text = f"NULLIF(concat_ws(', ', {texts}), '')"
        label = "+".join(dict.fromkeys(used)) or "(expression)"
        if ctype == "DOUBLE":
            value = f"CASE WHEN isfinite(CAST(({value}) AS DOUBLE)) THEN CAST(({value}) AS DOUBLE) END"
            parts = [x for c in dict.fromkeys(used)
                     if (x := _inexact(c, self.staged.columns[c], self.source))]
            inexact = f"coalesce({', '.join(parts)})" if parts else None
            return Spec(text, value, label, inexact=inexact)
        if ctype == "TIMESTAMP":
            return Spec(text, "", label, dates=date_parses(f"CAST(({value}) AS VARCHAR)", self.source))
        else:
            value = self._value_map(canonical, f"NULLIF({trimmed(f'CAST(({value}) AS VARCHAR)')}, '')")
        return Spec(text, value, label)


def _personal_hint(unknown: set[str]) -> str:
    """What to do instead, when ``unknown`` mapped columns hold personal data other than an
    e-mail or phone (names, addresses, postcodes: :data:`segflow.exports.PII_COLUMNS`):
    the store keeps none (empty text otherwise)."""
    from segflow.exports import is_personal

    personal = sorted(c for c in unknown if is_personal(c))
    if not personal:
        return ""
    return (f"; the store keeps no names or postal addresses ({', '.join(personal)}), only "
            "email and phone: remove them from [sources.columns] and join them to segflow's "
            "lists where they live (the exports and audiences carry customer_id)")


def resolve(source: SourceSettings, staged: Staged) -> dict[str, Spec]:
    """The spec of every canonical column the source provides (others stay NULL)."""
    mapper = _Mapper(source, staged)
    unknown = set(source.columns) - set(CANONICAL_TABLES[source.table])
    if unknown:
        raise ConfigError(
            f"source {source.name!r}: {sorted(unknown)} are not columns of the canonical table "
            f"{source.table!r} (its columns: {', '.join(CANONICAL_TABLES[source.table])})"
            + _personal_hint(unknown)
        )
    bad_key = set(source.duplicate_key) - set(CANONICAL_TABLES[source.table])
    if bad_key:
        raise ConfigError(
            f"source {source.name!r}: duplicate_key names {sorted(bad_key)}, which are not "
            f"columns of the canonical table {source.table!r}"
        )
    specs = {}
    for canonical, ctype in CANONICAL_TABLES[source.table].items():
        spec = mapper.spec(canonical, ctype)
        if spec is not None:
            specs[canonical] = spec
    for required in REQUIRED[source.table]:
        if required not in specs:
            raise InputError(
                f"source {source.name!r} maps no column to the required canonical column "
                f"{required!r}; add `{required} = \"<source column>\"` under [sources.columns]",
                file=staged.label,
                row=0,
                column=required,
            )
    for col in source.exclude:
        mapper.column(col, "exclude")
    return specs


def check_timezone(con: duckdb.DuckDBPyConnection, source: SourceSettings) -> None:
    try:
        con.execute(f"SELECT timezone({lit(source.timezone)}, TIMESTAMP '2000-01-01')::VARCHAR").fetchone()
    except duckdb.Error as exc:
        raise ConfigError(
            f"source {source.name!r}: unknown time zone {source.timezone!r} (use an IANA name "
            "such as 'Europe/Berlin')"
        ) from exc


def _short(text: str) -> str:
    """SQL: the value in quotes, cut at 80 characters."""
    q4 = "''''"
    return (f"coalesce({q4} || left({text}, 80) || CASE WHEN length({text}) > 80 THEN '…' "
            f"ELSE '' END || {q4}, '')")


class _Rules:
    """Collects (rule, condition, column, reason) in priority order."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str, str]] = []

    def add(self, rule: str, cond: str, column: str, reason: str, *, column_sql: bool = False) -> None:
        """Add a rule; ``column`` is a label (or SQL when ``column_sql``), ``reason`` SQL."""
        self.items.append((rule, cond, column if column_sql else lit(column), reason))


def validate(
    con: duckdb.DuckDBPyConnection,
    source: SourceSettings,
    staged: Staged,
    specs: dict[str, Spec],
    *,
    now: dt.datetime,
    known_customers: str | None,
    out: str,
) -> list[str]:
    """Create temp table ``out`` holding every staged row, parsed and judged.

    Returns the canonical columns present (as ``v_<col>`` in ``out``).
    """
    con.execute(f"CREATE TEMP TABLE {out} AS "
                + judged(source, staged, specs, now=now, known_customers=known_customers))
    return list(CANONICAL_TABLES[source.table])


def judged(source: SourceSettings, staged: Staged, specs: dict[str, Spec], *,
           now: dt.datetime, known_customers: str | None, where: str = "") -> str:
    """SQL query: every staged row (restricted by ``where``, a condition on ``_row``), with
    ``_row``, the ``v_<col>`` values and ``_rule``/``_column``/``_reason`` (NULL: passes)."""
    rules = _rule_list(source, specs, CANONICAL_TABLES[source.table], now, known_customers,
                       staged)
    c_cols = [f"{_case(rules, p)} AS {n}" for p, n in ((0, "_rule"), (2, "_column"), (3, "_reason"))]
    parses = [f"p_{c}_{i}" for c, spec in specs.items() for i in range(len(spec.dates or []))]
    parses += [f"x_{c}" for c, spec in specs.items() if spec.inexact]
    # raw texts are needed after this point only for value-mapped columns (invalid_value flags)
    texts = [f"r_{c}" for c in specs if c not in source.value_maps]
    drop = f" EXCLUDE ({', '.join([*parses, *texts, '_ri'])})"
    return (f"{judging(source, staged, specs, rules, where=where)}\n"
            f"    SELECT d.*{drop}, {', '.join(c_cols)} FROM d")


def typed_raw(source: SourceSettings, canonical: str, spec: Spec) -> bool:
    """Whether the rules and flags of ``source`` can read the typed source value of the
    number or date column ``canonical`` where they read its text ``r_<col>``: they only test
    it for NULL (and for length, which a typed value never exceeds); a value-mapped column
    compares the text. Casting every typed value to text costs a fifth of the judging pass
    of a Parquet transactions file."""
    return (spec.raw is not None and canonical not in source.value_maps
            and int(source.max_field_chars) >= _TYPED_TEXT_MAX)


def judging(source: SourceSettings, staged: Staged, specs: dict[str, Spec], rules: _Rules, *,
            where: str = "", texts: bool = True) -> str:
    """SQL ``WITH`` clause: the staged rows (those meeting ``where``, a condition on ``_row``
    applied before any value is parsed) as ``c`` (``_row``, ``r_<col>`` raw texts,
    ``p_<col>_<i>`` date parses, ``v_<col>`` values, helper flags) and ``d`` (``c`` plus
    ``_ri``: the index in ``rules`` of the first rule the row fails, NULL when none).

    Without ``texts`` (the rows' reasons are not needed: only ``_ri``, the flags and the
    values), ``r_<col>`` of a typed number or date column (:func:`typed_raw`) is its typed
    source value, not its text."""
    need_raw = source.rollup
    extra = [f"{raw_json(staged)} AS _raw"] if need_raw else []
    extra.append(f"{_exclude_condition(source)} AS _excluded")
    totals = totals_extra(source.totals_labels, staged, specs)
    extra += [totals] if totals else []
    a_cols = ["_raw"] if need_raw else []
    for c, spec in specs.items():
        raw = not texts and typed_raw(source, c, spec)
        a_cols.append(f"{spec.raw if raw else spec.text} AS r_{c}")
        if spec.dates is not None:
            for i, parse in enumerate(spec.dates):
                a_cols.append(f"{parse} AS p_{c}_{i}")
        else:
            a_cols.append(f"{spec.value} AS {'f' if c == 'is_return' else 'v'}_{c}")
        if spec.inexact:
            a_cols.append(f"{spec.inexact} AS x_{c}")
        if spec.excel:
            a_cols.append(f"{spec.excel} AS e_{c}")
    a_cols += ["_excluded", "_totals_first"] if totals else ["_excluded"]
    b_cols = []
    for c, spec in specs.items():
        if spec.dates is not None:
            b_cols += _date_value(c, len(spec.dates), source)
    b_select = ", ".join(["a.*", *b_cols]) if b_cols else "a.*"
    extras = _extra_values(source, specs)
    first = ("CASE " + " ".join(f"WHEN {it[1]} THEN {i}" for i, it in enumerate(rules.items))
             + " END") if rules.items else "NULL::INTEGER"
    rows, a_cols = without_null_tokens(source.null_values, staged, a_cols, extra, where)
    return f"""WITH a AS (SELECT _row, {', '.join(a_cols)} FROM {rows}),
         b AS (SELECT {b_select} FROM a),
         c AS (SELECT b.*{''.join(', ' + e for e in extras)} FROM b),
         d AS (SELECT c.*, {first} AS _ri FROM c)"""


def rule_list(source: SourceSettings, specs: dict[str, Spec], *, now: dt.datetime,
              known_customers: str | None, staged: Staged) -> _Rules:
    """The rules of ``source`` in priority order (``.items``: rule, condition, column, reason)."""
    return _rule_list(source, specs, CANONICAL_TABLES[source.table], now, known_customers,
                      staged)


def raw_json(staged: Staged, alias: str = "") -> str:
    """SQL: the staged source row as a JSON object text (what the quarantine keeps)."""
    pre = f"{alias}." if alias else ""
    body = ", ".join(f"{lit(c)}: {pre}{q(c)}" for c in staged.columns)
    return f"CAST(to_json({{{body}}}) AS VARCHAR)"


def _case(rules: _Rules, part: int) -> str:
    if not rules.items:
        return "NULL::VARCHAR"
    # each condition is evaluated once, for _ri (the index of the first failed rule)
    vals = {0: lambda it: lit(it[0]), 2: lambda it: it[2], 3: lambda it: it[3]}[part]
    return "CASE _ri " + " ".join(f"WHEN {i} THEN {vals(it)}" for i, it in enumerate(rules.items)) + " END"


def _date_value(c: str, n: int, source: SourceSettings) -> list[str]:
    parses = [f"p_{c}_{i}" for i in range(n)]
    order = list(range(n))
    if source.date_order and n > 1:
        want = source.date_order == "dayfirst"
        pref = [day_first(f) for f in source.date_formats]
        order = sorted(order, key=lambda i: 0 if pref[i] is want else (1 if pref[i] is None else 2))
    value = f"coalesce({', '.join(parses[i] for i in order)})" if n > 1 else parses[0]
    pairs = [
        f"({parses[i]} IS NOT NULL AND {parses[j]} IS NOT NULL AND {parses[i]} <> {parses[j]})"
        for i in range(n) for j in range(i + 1, n)
    ]
    amb = " OR ".join(pairs) if pairs and not source.date_order else "false"
    return [f"{value} AS v_{c}", f"({amb}) AS amb_{c}"]


def _exclude_condition(source: SourceSettings) -> str:
    parts = []
    for col, values in source.exclude.items():
        plain = [v for v in values if "%" not in v]
        pats = [v for v in values if "%" in v]
        text = read_text(f"CAST({q(col)} AS VARCHAR)")
        if plain:
            parts.append(f"{text} IN ({', '.join(lit(v) for v in plain)})")
        parts += [f"{text} LIKE {lit(p)}" for p in pats]
    return f"coalesce({' OR '.join(parts)}, false)" if parts else "false"


def _extra_values(source: SourceSettings, specs: dict[str, Spec]) -> list[str]:
    """Unmapped canonical columns (NULL), synthetic transaction ids and the return flag."""
    ctypes = CANONICAL_TABLES[source.table]
    out = [f"NULL::{t} AS v_{c}" for c, t in ctypes.items()
           if c not in specs and c not in ("transaction_id", "is_return")]
    if source.table != "transactions":
        return out
    if "transaction_id" not in specs:
        # No id in the source: the lines of one customer and timestamp form one order
        out.append("NULL::VARCHAR AS v_transaction_id")
    flag = "coalesce(f_is_return, false)" if "is_return" in specs else "false"
    credit = (f"coalesce(starts_with(v_transaction_id, {lit(source.credit_note_prefix)}), false)"
              if source.credit_note_prefix else "false")
    out.append(f"({credit} OR {flag}) AS _declared_return")
    out.append(f"(coalesce(v_amount < 0, false) OR {credit} OR {flag}) AS v_is_return")
    return out


def _rule_list(source, specs, ctypes, now, known_customers, staged) -> _Rules:
    r = _Rules()
    text_cols = [c for c in specs if ctypes[c] == "VARCHAR"]
    limit = int(source.max_field_chars)
    # a typed number or date is never longer than the limit: not tested (nor cast to text)
    long = [c for c in specs if not typed_raw(source, c, specs[c])]
    if long:
        cond = " OR ".join(f"length(r_{c}) > {limit}" for c in long)
        which = "CASE " + " ".join(
            f"WHEN length(r_{c}) > {limit} THEN {lit(specs[c].label)}" for c in long) + " END"
        longest = ", ".join(f"coalesce(length(r_{c}), 0)" for c in long)
        longest = f"greatest({longest}, 0)"
        r.add("field_too_long", cond, which,
              f"'a value of ' || {longest} || ' characters is longer than max_field_chars = {limit}'",
              column_sql=True)
    r.items += stray_rules(source.totals_labels, specs, staged)  # columns given as SQL
    if source.exclude:
        r.add("excluded_line", "_excluded", ", ".join(source.exclude),
              lit(f"excluded by the exclude rule on {', '.join(source.exclude)}"))
    for c in REQUIRED[source.table]:
        r.add(missing_rule(c), f"r_{c} IS NULL", specs[c].label,
              lit(f"{c} is empty or a missing-value token of null_values, such as NA "
                  f"(source column {specs[c].label})"))
    if source.table == "transactions" and "customer_id" in specs and source.anonymous == "quarantine":
        r.add("missing_customer_id", "r_customer_id IS NULL", specs["customer_id"].label,
              "'customer id is empty or a missing-value token and anonymous = ''quarantine'''")
    if source.table == "transactions" and "transaction_id" in specs:
        r.add("missing_transaction_id", "r_transaction_id IS NULL", specs["transaction_id"].label,
              "'transaction id is empty'")
    add_id_rules(r, specs, staged)
    for c, spec in specs.items():
        if spec.dates is not None:
            formats = ", ".join(source.date_formats) or "ISO 8601"
            r.add("unparseable_date", f"r_{c} IS NOT NULL AND v_{c} IS NULL", spec.label,
                  f"{_short(f'r_{c}')} || {lit(f' does not match the accepted formats ({formats})')}"
                  f" || {short_year_hint(f'r_{c}', source)} || {iso_hint(f'r_{c}', source)}")
            r.add("ambiguous_date", f"amb_{c}", spec.label,
                  f"{_short(f'r_{c}')} || ' parses under two formats with different dates; set date_order'")
    for c, spec in specs.items():
        if ctypes[c] == "DOUBLE":  # beyond MAX_ABS_NUMBER: outside what features sum exactly
            r.add(f"non_numeric_{c}",
                  f"r_{c} IS NOT NULL AND (v_{c} IS NULL OR abs(v_{c}) >= {MAX_ABS_NUMBER:.0e})",
                  spec.label,
                  f"{_short(f'r_{c}')} || CASE WHEN v_{c} IS NULL THEN {not_a_number(source, f'r_{c}')} "
                  f"ELSE ' is beyond +/-{MAX_ABS_NUMBER:.0e}' END")
    for c, spec in specs.items():  # a double would change the value: not silently
        if spec.inexact:
            r.add(f"imprecise_{c}", f"x_{c} IS NOT NULL", spec.label, f"x_{c}")
    for c, spec in specs.items():
        if ctypes[c] == "TIMESTAMP" and c != "valid_to":  # an end of validity may lie ahead
            if source.max_date:
                cond = f"v_{c} >= TIMESTAMP {lit(source.max_date.isoformat())}"
                why = f" UTC is on or after max_date {source.max_date}"
            else:
                cond, why = f"v_{c} > TIMESTAMP {lit(now.isoformat(sep=' '))}", " UTC is after the load time"
            r.add("future_date", cond, spec.label,
                  f"strftime(v_{c}, '%Y-%m-%d %H:%M:%S') || {lit(why)}")
            # a year below 100 is a two-digit year read as written ('24-01-05': year 24)
            r.add("implausible_date", f"v_{c} < TIMESTAMP '1900-01-01'", spec.label,
                  f"strftime(v_{c}, '%Y-%m-%d') || ' is before 1900-01-01' || CASE WHEN "
                  f"year(v_{c}) < 100 THEN ': a two-digit year? add a format with %y to "
                  f"date_formats (docs/data.md)' ELSE '' END")
    if "amount" in specs and source.zero_amount == "quarantine":
        r.add("zero_amount", "v_amount = 0", specs["amount"].label, "'amount is 0'")
    if source.table == "transactions":
        qty = ("coalesce((v_quantity < 0 AND v_amount > 0) OR (v_quantity > 0 AND v_amount < 0 "
               "AND NOT _declared_return), false)") if "quantity" in specs else "false"
        r.add("return_sign", f"(_declared_return AND v_amount > 0) OR {qty}", specs["amount"].label,
              "CASE WHEN _declared_return THEN 'a credit note or flagged return has a positive "
              "amount ' || v_amount ELSE 'amount ' || v_amount || ' and quantity ' || "
              "coalesce(v_quantity, 0) || ' have opposite signs' END")
    if source.unmapped_values == "quarantine":
        for c, vmap in source.value_maps.items():
            if c in specs:
                allowed = ", ".join(lit(v) for v in sorted(set(vmap) | set(vmap.values())))
                r.add("invalid_value", f"r_{c} IS NOT NULL AND r_{c} NOT IN ({allowed})",
                      specs[c].label,
                      f"{_short(f'r_{c}')} || {lit(' is not one of the mapped values ' + ', '.join(sorted(vmap)))}")
    if source.formulas == "quarantine" and text_cols:
        cond = " OR ".join(formula_condition(f"r_{c}") for c in text_cols)
        which = "CASE " + " ".join(
            f"WHEN {formula_condition(f'r_{c}')} THEN {lit(specs[c].label)}"
            for c in text_cols) + " END"
        r.add("formula_in_text", cond, which,
              "'a text value starts like a spreadsheet formula (=, +, @)'", column_sql=True)
    unknown = unknown_customer_rule(source, specs, known_customers)
    if unknown:
        r.add(*unknown)
    return r


def unknown_customer_rule(source: SourceSettings, specs: dict[str, Spec],
                          known_customers: str | None) -> tuple[str, str, str, str] | None:
    """The last rule (rule, condition, column label, reason SQL): a customer id not in the
    table ``known_customers`` (column ``customer_id``); None when it does not apply."""
    if not (known_customers and "customer_id" in specs and source.check_customers
            and source.table != "customers"):
        return None
    return ("unknown_customer",
            f"v_customer_id IS NOT NULL AND NOT (v_customer_id IN (SELECT customer_id FROM {known_customers} WHERE customer_id IS NOT NULL))",
            specs["customer_id"].label,
            f"'customer id ' || {_short('v_customer_id')} || ' is not in the customers table'")

