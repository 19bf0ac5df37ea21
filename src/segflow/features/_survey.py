"""Survey answers as features: every question of the survey table becomes one column.

The set of columns and their kinds is read from the whole ``survey_responses`` table (one
small query), so every snapshot of a run has the same columns; the *values* use only answers
before the snapshot.
"""

from __future__ import annotations

import re

import ibis

from segflow.features._registry import FEATURES, Feature
from segflow.features._window import Frame

#: Prefix of a survey column whose question would clash with a registered feature or is not
#: a plain name (e.g. a question "frequency" becomes ``survey_frequency``).
SURVEY_PREFIX = "survey_"



#: A numeric answer (trimmed): ASCII digits with an optional sign, point and exponent, or
#: inf / infinity / nan (any case). The engine's own cast also reads ``1_5`` as 15 and
#: ``+-5`` as -5; `/score` (:mod:`segflow.server._fast_features`) reads answers by this same
#: pattern, so both agree.
NUMBER_PATTERN = (r"[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?"
                  r"|[iI][nN][fF]|[iI][nN][fF][iI][nN][iI][tT][yY]|[nN][aA][nN])")


def answer_number(text: ibis.StringValue) -> ibis.FloatingValue:
    """A trimmed answer as a float64 when it is a number (:data:`NUMBER_PATTERN`), else null."""
    return ibis.ifelse(text.re_search(f"^(?:{NUMBER_PATTERN})$"), text.try_cast("float64"),
                       ibis.null("float64"))

def question_column(question: str) -> str | None:
    """The column name of a survey question: lower-case, runs of other characters than
    ``a-z0-9`` as one ``_``; prefixed with ``survey_`` when it starts with a digit or equals a
    registered feature name. None for a question without letters or digits."""
    slug = re.sub(r"[^0-9a-z]+", "_", question.strip().lower()).strip("_")
    if not slug:
        return None
    if slug[0].isdigit() or slug in FEATURES or slug.startswith(SURVEY_PREFIX):
        return SURVEY_PREFIX + slug
    return slug


def _trim(value: ibis.StringValue) -> ibis.StringValue:
    """Leading and trailing white space removed (a regular expression: Ibis's ``strip`` on
    Spark also strips the letter ``f``)."""
    return value.re_replace(r"^\s+|\s+$", "")


def _usable(responses: ibis.Table) -> ibis.Table:
    r = responses
    return r.filter(
        r.customer_id.notnull(),
        r.ts.notnull(),
        r.question.notnull(),
        r.answer.notnull(),
        _trim(r.answer.cast("string")) != "",
    )


def survey_registry(responses: ibis.Table) -> dict[str, tuple[Feature, tuple[str, ...]]]:
    """The survey features of a ``survey_responses`` table (runs one small query).

    Returns
    -------
    dict
        Column name -> (:class:`Feature`, the raw question texts it pools), sorted by column
        name. A question is *numeric* (``kind="numeric"``, unit ``"number"``) when every
        non-empty answer to it, in the whole table, is a number; otherwise categorical
        (unit ``"answer"``). Questions that differ only in case, spaces or punctuation
        ("Price sensitivity", "price_sensitivity") are one question.
    """
    r = _usable(responses)
    value = answer_number(_trim(r.answer.cast("string")))
    stats = (
        r.group_by(r.question)
        .aggregate(_n=r.count(), _num=value.notnull().cast("int64").sum())
        .execute()
    )
    pooled: dict[str, list[tuple[str, int, int]]] = {}
    for question, n, num in stats.itertuples(index=False):
        column = question_column(str(question))
        if column is not None:
            pooled.setdefault(column, []).append((str(question), int(n), int(num)))
    out: dict[str, tuple[Feature, tuple[str, ...]]] = {}
    for column in sorted(pooled):
        rows = pooled[column]
        numeric = all(num == n for _, n, num in rows)
        shown = min(q for q, _, _ in rows)
        definition = (
            f"Latest answer before s to the survey question '{shown}'"
            + (" (a number)." if numeric else ".")
        )
        feature = Feature(
            column,
            "number" if numeric else "answer",
            definition,
            "survey",
            "numeric" if numeric else "categorical",
        )
        out[column] = (feature, tuple(sorted(q for q, _, _ in rows)))
    return out


def survey_features(
    responses: ibis.Table,
    frame: Frame,
    registry: dict[str, tuple[Feature, tuple[str, ...]]],
) -> ibis.Table | None:
    """The latest answer before ``s`` to each question of ``registry``, one column per
    question (ties in ``ts``: the alphabetically last answer); None without questions."""
    if not registry:
        return None
    r = _usable(responses).filter(frame.before(responses.ts))
    column = ibis.literal(None, type="string")
    for name, (_, raws) in registry.items():
        column = ibis.ifelse(r.question.isin(list(raws)), ibis.literal(name), column)
    r = r.mutate(_q=column, _a=_trim(r.answer.cast("string"))).filter(ibis._._q.notnull())
    rn = ibis.row_number().over(
        group_by=["customer_id", "_q"], order_by=[ibis.desc("ts"), ibis.desc("_a")]
    )
    latest = r.mutate(_rn=rn)
    latest = latest.filter(latest._rn == 0)
    values = {}
    for name, (feature, _) in registry.items():
        answer = latest._a.max(where=latest._q == name)
        values[name] = answer_number(answer) if feature.kind == "numeric" else answer
    return latest.group_by("customer_id").aggregate(**values)
