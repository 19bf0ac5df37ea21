"""The rule language: conditions over features, compiled to Ibis expressions (never ``eval``).

Grammar (keywords are case-insensitive)::

    condition  := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := sum [ op sum
                      | ["not"] "in" "(" literal ("," literal)* ")"
                      | ["not"] "between" sum "and" sum
                      | "is" ["not"] "null" ]
    op         := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := "-" unary | primary
    primary    := NUMBER | STRING | "true" | "false" | FEATURE | "(" condition ")"

Precedence, loosest first: ``or``, ``and``, ``not``, comparisons, ``+ -``, ``* /``. Strings are
quoted with ``'`` or ``"`` (double the quote to include it). A feature is any column of the
features table. Logic is two-valued: a comparison involving a missing value is *false* (so
``not (recency_days > 365)`` holds for a customer who never purchased); test for missing
values with ``is null``. Division by zero gives a missing value.

A rule nests at most :data:`MAX_DEPTH` levels (brackets, ``not``, signs and chains of
arithmetic), and integers lie within 64 bits: deeper rules are refused with a
:class:`RuleSyntaxError` before they reach the engine (whose compilers recurse once per
level: a rule of a few thousand brackets exhausted Python's stack, an HTTP 500 in
``/api/v1/audiences``). Chains of ``and`` / ``or`` are combined as balanced trees, so a long
list of alternatives adds only a few levels.

The parser builds Ibis expressions directly; literals become typed Ibis literals, so no text
of a rule ever reaches SQL. Every error is a :class:`segflow.SegflowError` that names the
1-based column of the problem and shows it with a caret.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import operator
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir

from segflow.errors import SegflowError

KEYWORDS = frozenset({"and", "or", "not", "in", "between", "is", "null", "true", "false"})
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|<>|!=|==|=|<|>|\+|-|\*|/|\(|\)|,)
    """,
    re.VERBOSE,
)
_COMPARE = {"=", "==", "!=", "<>", "<", "<=", ">", ">="}
#: Deepest nesting of a rule (each level is at most three operations of the compiled
#: expression; the SQL compilers recurse per operation and fail at about 200).
MAX_DEPTH = 40
_INT64 = 2**63 - 1


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, name, keyword, op, end
    text: str
    pos: int  # 0-based offset in the rule text


@dataclass
class Typed:
    """A compiled sub-expression with its rule-language type and start position."""

    expr: ir.Value
    kind: str  # "bool", "num", "str", "date", "null"
    pos: int
    literal: object = None
    is_literal: bool = False
    is_feature: bool = False
    depth: int = 0


class RuleSyntaxError(SegflowError):
    """A rule that cannot be read or refers to an unknown feature; names the column."""

    def __init__(self, message: str, text: str, pos: int, rule: str | None = None,
                 scheme: str | None = None) -> None:
        where = f"rule {rule!r}" if rule else "rule"
        if scheme is not None:  # a scheme of segflow.toml (:meth:`in_scheme`)
            where = f"segflow.toml, scheme {scheme!r}: {where}"
        caret = " " * pos + "^"
        super().__init__(f"{where}, column {pos + 1}: {message}\n  {text}\n  {caret}")
        self.column = pos + 1
        self.text = text
        self.reason, self.pos, self.rule = message, pos, rule

    def in_scheme(self, scheme: str) -> RuleSyntaxError:
        """The same error naming the scheme of segflow.toml whose rule it is."""
        return RuleSyntaxError(self.reason, self.text, self.pos, self.rule, scheme=scheme)


def tokenize(text: str, rule: str | None = None) -> list[Token]:
    """Split a rule into tokens; an unexpected character raises :class:`RuleSyntaxError`."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None and text[pos] in "'\"":
            raise RuleSyntaxError("unterminated string", text, pos, rule)
        if m is None:
            raise RuleSyntaxError(f"unexpected character {text[pos]!r}", text, pos, rule)
        kind = m.lastgroup or ""
        value = m.group()
        if kind == "name" and value.lower() in KEYWORDS:
            tokens.append(Token("keyword", value.lower(), pos))
        elif kind != "ws":
            tokens.append(Token(kind, value, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


class _Parser:
    """Recursive-descent parser that compiles straight to Ibis over ``table``."""

    def __init__(self, text: str, table: ibis.Table, rule: str | None) -> None:
        self.text = text
        self.table = table
        self.rule = rule
        self.tokens = tokenize(text, rule)
        self.i = 0
        self.level = 0  # recursion of brackets, "not" and signs
        self.schema = table.schema()

    # -- helpers ---------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, message: str, pos: int | None = None) -> RuleSyntaxError:
        return RuleSyntaxError(message, self.text, self.tok.pos if pos is None else pos, self.rule)

    def accept(self, kind: str, text: str | None = None) -> Token | None:
        tok = self.tok
        if tok.kind == kind and (text is None or tok.text == text):
            self.i += 1
            return tok
        return None

    def expect(self, kind: str, text: str, what: str) -> Token:
        tok = self.accept(kind, text)
        if tok is None:
            raise self.error(f"expected {what}, found {self.describe(self.tok)}")
        return tok

    @staticmethod
    def describe(tok: Token) -> str:
        return "the end of the rule" if tok.kind == "end" else repr(tok.text)

    def need(self, node: Typed, kind: str, context: str) -> Typed:
        if node.kind == kind or (node.kind == "null" and kind != "bool"):
            return node
        names = {"bool": "a condition", "num": "a number", "str": "text", "date": "a date"}
        raise self.error(f"{context} needs {names[kind]}, found {names.get(node.kind, node.kind)}",
                         node.pos)

    def node(self, expr: ir.Value, kind: str, pos: int, *parts: Typed) -> Typed:
        """A compiled operation over ``parts``, one level deeper than the deepest of them."""
        depth = 1 + max((p.depth for p in parts), default=0)
        if depth > MAX_DEPTH:
            raise self.error(f"the rule nests more than {MAX_DEPTH} levels deep; split it", pos)
        return Typed(expr, kind, pos, depth=depth)

    @contextlib.contextmanager
    def nested(self, pos: int) -> Iterator[None]:
        """One more level of recursion (a bracket, ``not`` or a sign), refused beyond
        :data:`MAX_DEPTH` before the parser recurses further."""
        self.level += 1
        if self.level > MAX_DEPTH:
            raise self.error(f"the rule nests more than {MAX_DEPTH} levels deep; split it", pos)
        try:
            yield
        finally:
            self.level -= 1

    def number(self, tok: Token, sign: int = 1) -> Typed:
        value = sign * _number(tok.text)
        if isinstance(value, int) and abs(value) > _INT64:
            raise self.error(f"the integer {tok.text} is out of range (at most {_INT64:,} in size)", tok.pos)
        return Typed(ibis.literal(value), "num", tok.pos, value, True)

    def condition(self, node: Typed, context: str) -> ir.BooleanValue:
        """``node`` as a two-valued condition (missing counts as false)."""
        return self.need(node, "bool", context).expr.fill_null(False)

    # -- grammar ---------------------------------------------------------------------
    def parse(self) -> ir.BooleanValue:
        if self.tok.kind == "end":
            raise self.error("empty rule: expected a condition")
        node = self.parse_or()
        if self.tok.kind != "end":
            raise self.error(f"unexpected {self.describe(self.tok)} after a complete condition")
        return self.condition(node, "a rule")

    def parse_or(self) -> Typed:
        terms = [self.parse_and()]
        while self.accept("keyword", "or") is not None:
            terms.append(self.parse_and())
        return self.balanced(terms, "'or'", operator.or_)

    def parse_and(self) -> Typed:
        terms = [self.parse_not()]
        while self.accept("keyword", "and") is not None:
            terms.append(self.parse_not())
        return self.balanced(terms, "'and'", operator.and_)

    def balanced(self, terms: list[Typed], context: str, combine: Callable[[Any, Any], Any]) -> Typed:
        """``t1 op t2 op ...`` as a balanced tree (``and`` / ``or`` are associative on
        two-valued conditions): a list of n alternatives nests log2(n) levels, not n."""
        if len(terms) == 1:
            return terms[0]
        for t in terms:
            self.condition(t, context)  # type errors name the first offending term
        while len(terms) > 1:
            paired = []
            for k in range(0, len(terms) - 1, 2):
                a, b = terms[k], terms[k + 1]
                paired.append(self.node(combine(self.condition(a, context), self.condition(b, context)),
                                        "bool", a.pos, a, b))
            if len(terms) % 2:
                paired.append(terms[-1])
            terms = paired
        return terms[0]

    def parse_not(self) -> Typed:
        tok = self.accept("keyword", "not")
        if tok is not None:
            with self.nested(tok.pos):
                node = self.parse_not()
            inner = self.condition(node, "'not'")
            return self.node(~inner, "bool", tok.pos, node)
        return self.parse_comparison()

    def parse_comparison(self) -> Typed:
        left = self.parse_sum()
        tok = self.tok
        if tok.kind == "op" and tok.text in _COMPARE:
            self.i += 1
            right = self.parse_sum()
            return self.compare(left, tok, right)
        negate = False
        if tok.kind == "keyword" and tok.text == "not" and self.tokens[self.i + 1].text in (
            "in",
            "between",
        ):
            self.i += 1
            negate = True
        if self.accept("keyword", "in"):
            node = self.parse_in(left)
        elif self.accept("keyword", "between"):
            node = self.parse_between(left)
        elif not negate and self.accept("keyword", "is"):
            is_not = self.accept("keyword", "not") is not None
            self.expect("keyword", "null", "'null' after 'is'")
            self.need_value(left, "'is null'")
            expr = left.expr.notnull() if is_not else left.expr.isnull()
            return self.node(expr, "bool", left.pos, left)
        else:
            return left
        if negate:
            node = self.node(~node.expr, "bool", node.pos, node)
        return node

    def need_value(self, node: Typed, context: str) -> None:
        if node.kind == "bool" and not node.is_feature:
            raise self.error(f"{context} needs a value, found a condition", node.pos)

    def parse_in(self, left: Typed) -> Typed:
        self.expect("op", "(", "'(' after 'in'")
        items = [self.parse_literal()]
        while self.accept("op", ","):
            items.append(self.parse_literal())
        self.expect("op", ")", "')' or ',' in the list")
        self.need_value(left, "'in'")
        values = [self.coerce(item, left, "'in'").literal for item in items]
        return self.node(left.expr.isin(values).fill_null(False), "bool", left.pos, left)

    def parse_between(self, left: Typed) -> Typed:
        low = self.parse_sum()
        self.expect("keyword", "and", "'and' in 'between ... and ...'")
        high = self.parse_sum()
        ge = self.compare(left, Token("op", ">=", low.pos), low)
        le = self.compare(left, Token("op", "<=", high.pos), high)
        return self.node(ge.expr & le.expr, "bool", left.pos, ge, le)

    def parse_literal(self) -> Typed:
        tok = self.tok
        sign = 1
        if tok.kind == "op" and tok.text == "-":
            self.i += 1
            sign = -1
            tok = self.tok
        if tok.kind == "number":
            self.i += 1
            return self.number(tok, sign)
        if tok.kind == "string" and sign == 1:
            self.i += 1
            value = _unquote(tok.text)
            return Typed(ibis.literal(value), "str", tok.pos, value, True)
        raise self.error(f"expected a number or a quoted text in the list, found "
                         f"{self.describe(tok)}")

    def parse_sum(self) -> Typed:
        left = self.parse_product()
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            op = self.tok
            self.i += 1
            right = self.parse_product()
            lhs = self.need(left, "num", f"'{op.text}'")
            rhs = self.need(right, "num", f"'{op.text}'")
            expr = lhs.expr + rhs.expr if op.text == "+" else lhs.expr - rhs.expr
            left = self.node(expr, "num", left.pos, lhs, rhs)
        return left

    def parse_product(self) -> Typed:
        left = self.parse_unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/"):
            op = self.tok
            self.i += 1
            right = self.parse_unary()
            lhs = self.need(left, "num", f"'{op.text}'")
            rhs = self.need(right, "num", f"'{op.text}'")
            if op.text == "*":
                expr = lhs.expr * rhs.expr
            else:
                den = rhs.expr.cast("float64")
                expr = ibis.ifelse(den == 0, ibis.null("float64"), lhs.expr.cast("float64") / den)
            left = self.node(expr, "num", left.pos, lhs, rhs)
        return left

    def parse_unary(self) -> Typed:
        tok = self.accept("op", "-")
        if tok is not None:
            with self.nested(tok.pos):
                inner = self.need(self.parse_unary(), "num", "'-'")
            if inner.is_literal:
                return Typed(ibis.literal(-inner.literal), "num", tok.pos, -inner.literal, True)
            return self.node(-inner.expr, "num", tok.pos, inner)
        return self.parse_primary()

    def parse_primary(self) -> Typed:
        tok = self.tok
        if tok.kind == "number":
            self.i += 1
            return self.number(tok)
        if tok.kind == "string":
            self.i += 1
            value = _unquote(tok.text)
            return Typed(ibis.literal(value), "str", tok.pos, value, True)
        if tok.kind == "keyword" and tok.text in ("true", "false"):
            self.i += 1
            return Typed(ibis.literal(tok.text == "true"), "bool", tok.pos, tok.text == "true", True)
        if tok.kind == "keyword" and tok.text == "null":
            self.i += 1
            return Typed(ibis.null(), "null", tok.pos, None, True)
        if tok.kind == "name":
            self.i += 1
            if self.tok.kind == "op" and self.tok.text == "(":
                raise self.error(f"function calls are not part of the rule language "
                                 f"({tok.text!r}(...))", tok.pos)
            return self.feature(tok)
        if self.accept("op", "(") is not None:
            with self.nested(tok.pos):
                node = self.parse_or()
            self.expect("op", ")", "')'")
            return Typed(node.expr, node.kind, tok.pos, node.literal, node.is_literal, False, node.depth)
        raise self.error(f"expected a feature, a number, a quoted text or '(', found "
                         f"{self.describe(tok)}")

    # -- semantics -------------------------------------------------------------------
    def feature(self, tok: Token) -> Typed:
        name = tok.text
        if name not in self.schema:
            close = difflib.get_close_matches(name, list(self.schema), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise self.error(f"unknown feature {name!r}{hint}", tok.pos)
        dtype = self.schema[name]
        col = self.table[name]
        if dtype.is_numeric():
            kind = "num"
        elif dtype.is_boolean():
            kind = "bool"
        elif dtype.is_string():
            kind = "str"
        elif dtype.is_date() or dtype.is_timestamp():
            kind = "date"
            col = col.cast("date") if dtype.is_timestamp() else col
        else:
            raise self.error(f"feature {name!r} has type {dtype}, which rules cannot compare",
                             tok.pos)
        return Typed(col, kind, tok.pos, is_feature=True)

    def coerce(self, value: Typed, like: Typed, context: str) -> Typed:
        """Make ``value`` comparable with ``like`` (text -> date for date features)."""
        if like.kind == "date" and value.kind == "str" and value.is_literal:
            try:
                day = dt.date.fromisoformat(str(value.literal))
            except ValueError:
                raise self.error(f"{value.literal!r} is not a date (expected 'YYYY-MM-DD')",
                                 value.pos) from None
            return Typed(ibis.literal(day), "date", value.pos, day, True)
        if like.kind in ("num", "str", "date", "bool") and value.kind not in (like.kind, "null"):
            raise self.error(f"{context} compares {_NAMES[like.kind]} with {_NAMES[value.kind]}",
                             value.pos)
        return value

    def compare(self, left: Typed, op: Token, right: Typed) -> Typed:
        if left.kind == "null" or right.kind == "null":
            raise self.error("compare with null using 'is null' or 'is not null'", op.pos)
        if left.is_literal and not right.is_literal:
            left = self.coerce(left, right, f"'{op.text}'")
        else:
            right = self.coerce(right, left, f"'{op.text}'")
        if left.kind == "bool" and op.text not in ("=", "==", "!=", "<>"):
            raise self.error(f"'{op.text}' cannot order conditions", op.pos)
        a, b = left.expr, right.expr
        expr = {
            "=": lambda: a == b,
            "==": lambda: a == b,
            "!=": lambda: a != b,
            "<>": lambda: a != b,
            "<": lambda: a < b,
            "<=": lambda: a <= b,
            ">": lambda: a > b,
            ">=": lambda: a >= b,
        }[op.text]()
        return self.node(expr.fill_null(False), "bool", left.pos, left, right)


_NAMES = {"bool": "a condition", "num": "a number", "str": "text", "date": "a date",
          "null": "null"}


def _number(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)


def _unquote(text: str) -> str:
    quote = text[0]
    return text[1:-1].replace(quote * 2, quote)


def compile_condition(text: str, table: ibis.Table, *, rule: str | None = None) -> ir.BooleanValue:
    """Compile one condition of the rule language to a boolean Ibis expression over ``table``.

    Parameters
    ----------
    text : str
        The condition, e.g. ``"monetary_12m >= 500 and region in ('London', 'Paris')"``.
    table : ibis.Table
        The features table; its columns are the features a rule may name.
    rule : str, optional
        Name of the rule, used in error messages.

    Returns
    -------
    ibis.BooleanValue
        Never null: a condition that cannot be decided (missing values) is false.

    Raises
    ------
    RuleSyntaxError
        With the 1-based column of the problem: syntax errors, unknown features (with a
        suggestion), type mismatches, function calls and any character outside the language
        (``;``, ``[``, ...).

    Examples
    --------
    >>> import ibis
    >>> t = ibis.table({"monetary_12m": "float64", "region": "string"}, name="features")
    >>> cond = compile_condition("monetary_12m >= 500 and region in ('London', 'Paris')", t)
    >>> compile_condition("monetary >= 500", t)
    Traceback (most recent call last):
    ...
    segflow.segments._rules.RuleSyntaxError: rule, column 1: unknown feature 'monetary'; did you mean 'monetary_12m'?
      monetary >= 500
      ^
    """
    if not isinstance(text, str):
        raise SegflowError(f"rule {rule!r}: the condition must be text, got {type(text).__name__}")
    return _Parser(text, table, rule).parse()


def compile_rules(
    rules: Sequence[tuple[str, str]],
    table: ibis.Table,
    *,
    default: str,
) -> ir.StringValue:
    """Ordered rules to one CASE expression: the first rule whose condition holds names the
    segment; customers no rule matches get ``default``.

    Parameters
    ----------
    rules : sequence of (segment, condition)
    table : ibis.Table
    default : str

    Returns
    -------
    ibis.StringValue
    """
    if not rules:
        return ibis.literal(default)
    branches = [(compile_condition(cond, table, rule=seg), ibis.literal(seg)) for seg, cond in rules]
    return ibis.cases(*branches, else_=ibis.literal(default))
