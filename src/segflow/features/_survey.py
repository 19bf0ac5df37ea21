"""Survey answers as features: every question of the survey table becomes one column.

The set of columns is read from the whole ``survey_responses`` table (one small query), so
every snapshot of a run has the same columns (a question first answered after ``s`` is a
column of missing values at ``s``). The *values* use only answers before the snapshot, and so
does the *kind* of a question (number or answer): it is decided by the answers of the
question's first answer day alone (:func:`survey_registry`), which every snapshot that holds
any answer to it sees in full. So answers that arrive later (a refresh adds a month of text
answers to a numeric question) never change a snapshot's values, columns' kinds or segments:
they are read as missing there, with a counted warning.
"""

from __future__ import annotations

import re
import warnings

import ibis

from segflow.features._registry import FEATURES, Feature
from segflow.features._window import Frame

#: Prefix of a survey column whose question would clash with a registered feature or is not
#: a plain name (e.g. a question "frequency" becomes ``survey_frequency``).
SURVEY_PREFIX = "survey_"
#: Columns segflow adds beside the features: the RFM scores a rule scheme derives
#: (:func:`segflow.segments.rule_features`), a run's ``snapshot_date``, an assignment's
#: ``segment`` and ``segment_rank``, a stored row's ``scheme``, ``scheme_version`` and
#: ``run_id``. A survey question of one of these names is prefixed as a registered feature's
#: is, or its answers would replace or shadow them.
DERIVED_COLUMNS = frozenset({"r_score", "f_score", "m_score", "fm_score", "snapshot_date",
                             "segment", "segment_rank", "scheme", "scheme_version", "run_id"})


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
    registered feature name or a derived column (:data:`DERIVED_COLUMNS`). None for a
    question without letters or digits."""
    slug = re.sub(r"[^0-9a-z]+", "_", question.strip().lower()).strip("_")
    if not slug:
        return None
    if (slug[0].isdigit() or slug in FEATURES or slug in DERIVED_COLUMNS
            or slug.startswith(SURVEY_PREFIX)):
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
        name. A question is *numeric* (``kind="numeric"``, unit ``"number"``) when more than
        half of the non-empty answers given on its *first answer day* (the UTC calendar day
        of its earliest answer) are numbers (:data:`NUMBER_PATTERN`); otherwise categorical
        (unit ``"answer"``). Questions that differ only in case, spaces or punctuation
        ("Price sensitivity", "price_sensitivity") are one question, and their first day is
        the earliest of them.

    Warns
    -----
    UserWarning
        When a numeric question has later answers that are not numbers: how many, and that
        they are read as missing (the value at a snapshot whose latest answer is one of them
        is missing).

    Notes
    -----
    Why the first day: a snapshot ``s`` reads answers before ``s`` (midnight), so any
    snapshot that sees an answer to the question sees every answer of its first day, and the
    kind is the same whether the table ends at ``s`` or goes on; snapshots before that day
    have no answer to it (a column of missing values). Read from the whole table instead, one
    text answer arriving next month turned a numeric question into a categorical one at
    every earlier snapshot too. "More than half" rather than "all": a stray "n/a" among the
    first day's numbers does not make a 0-10 score a list of categories.
    """
    r = _usable(responses)
    r = r.mutate(_d=r.ts.date(), _x=answer_number(_trim(r.answer.cast("string"))).notnull())
    # one row per (question, answer day): small (questions x days), read into pandas
    per_day = (r.group_by(["question", "_d"])
               .aggregate(_n=r.count(), _num=r._x.cast("int64").sum())
               .execute())
    pooled: dict[str, list[tuple[str, object, int, int, int, int]]] = {}
    for question, days in per_day.groupby("question", sort=False):
        column = question_column(str(question))
        if column is None:
            continue
        first = days[days["_d"] == days["_d"].min()]
        pooled.setdefault(column, []).append(
            (str(question), days["_d"].min(), int(days["_n"].sum()), int(days["_num"].sum()),
             int(first["_n"].sum()), int(first["_num"].sum())))
    out: dict[str, tuple[Feature, tuple[str, ...]]] = {}
    for column in sorted(pooled):
        rows = pooled[column]
        day0 = min(d for _, d, *_ in rows)
        # the pooled first day: only questions whose own first day it is have answers on it
        n0 = sum(k for _, d, _, _, k, _ in rows if d == day0)
        num0 = sum(k for _, d, _, _, _, k in rows if d == day0)
        numeric = 2 * num0 > n0
        shown = min(q for q, *_ in rows)
        if numeric:
            other = sum(n - num for _, _, n, num, _, _ in rows)
            if other:
                warnings.warn(
                    f"survey question {shown!r} is read as a number (the answers of its first "
                    f"day, {_day_text(day0)}: {num0:,} of {n0:,} numbers); {other:,} of its "
                    f"{sum(n for _, _, n, _, _, _ in rows):,} answers are not numbers and are "
                    "read as missing", UserWarning, stacklevel=2)
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
        out[column] = (feature, tuple(sorted(q for q, *_ in rows)))
    return out


def _day_text(day: object) -> str:
    """A first answer day as ``YYYY-MM-DD`` (a date, a timestamp or a NumPy datetime)."""
    return str(day)[:10]


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
