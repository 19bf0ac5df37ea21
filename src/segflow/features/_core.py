"""``customer_features``: one row per customer known at a snapshot, every registered feature."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Mapping

import ibis

from segflow._dates import as_date
from segflow.errors import InputError
from segflow.features._attributes import customer_base, customer_records
from segflow.features._behaviour import campaign_features, web_features
from segflow.features._breadth import breadth_features
from segflow.features._purchases import (
    interpurchase_features,
    order_table,
    prepare_lines,
    seasonality_features,
    top_share,
    value_features,
)
from segflow.features._registry import FEATURE_GROUPS, FEATURES, Feature
from segflow.features._survey import survey_features, survey_registry
from segflow.features._window import Frame, left_join_all

REQUIRED_TABLES: tuple[str, ...] = (
    "customers",
    "transactions",
    "events",
    "campaign_exposures",
    "survey_responses",
)

#: Features that are 0 (not missing) for a customer without any matching rows.
_ZERO_WHEN_ABSENT: tuple[str, ...] = (
    "frequency",
    "monetary",
    "frequency_12m",
    "monetary_12m",
    "frequency_prev_12m",
    "monetary_prev_12m",
    "orders_total",
    "category_count",
    "channel_count",
    "visits_90d",
    "product_views_90d",
    "cart_adds_90d",
    "campaigns_received_12m",
)


@dataclasses.dataclass(frozen=True)
class KnownSchema:
    """What a run already knows of its features: the survey registry
    (:func:`segflow.features.survey_registry` of the tables, one query) and the schema of
    :func:`customer_features` with every group (building it costs a features expression).
    Either may be None (not known: read or built where needed). Valid for one set of tables
    as they are now: a run passes it down, nothing keeps it longer."""

    survey: Mapping[str, tuple[Feature, tuple[str, ...]]] | None = None
    schema: ibis.Schema | None = None

    @classmethod
    def read(cls, tables: Mapping[str, ibis.Table], *,
             window_days: int | None = None) -> KnownSchema:
        """Both, read from ``tables`` (one survey query) and built."""
        responses = text_columns({"survey_responses": tables["survey_responses"]})
        survey = survey_registry(responses["survey_responses"])
        schema = customer_features(tables, dt.date(2000, 1, 1), window_days=window_days,
                                   survey=survey).schema()
        return cls(survey=survey, schema=schema)

    def of_groups(self, groups: Collection[str] | None) -> ibis.Schema | None:
        """The schema of ``customer_features(..., groups=groups)``: the columns of those
        groups (and ``customer_id``) in their order; None when the schema is not known."""
        if self.schema is None:
            return None
        wanted = _check_groups(groups) | {"id"}
        return ibis.schema({n: t for n, t in self.schema.items() if feature_group(n) in wanted})


def feature_group(column: str) -> str:
    """The registry group of a features column (a column outside the static registry is a
    survey answer, one per question: group ``survey``)."""
    return FEATURES[column].group if column in FEATURES else "survey"


def customer_features(
    tables: Mapping[str, ibis.Table],
    snapshot_date: dt.date,
    *,
    window_days: int | None = None,
    groups: Collection[str] | None = None,
    survey: Mapping[str, tuple[Feature, tuple[str, ...]]] | None = None,
) -> ibis.Table:
    """Per-customer features at a snapshot date, as one lazy Ibis table.

    Parameters
    ----------
    tables : mapping of str to ibis.Table
        The canonical tables ``customers``, ``transactions``, ``events``,
        ``campaign_exposures`` and ``survey_responses`` (columns as in
        ``segflow.store.CANONICAL_TABLES``), on any Ibis backend.
    snapshot_date : date
        The snapshot ``s``. Only rows with ``ts < s`` (00:00 of ``s``) are used: a transaction
        at exactly ``s`` belongs to the next snapshot.
    window_days : int, optional
        Look-back in days of the *window* features (``frequency``, ``monetary`` and the
        purchase patterns): rows with ``s - window_days days <= ts < s``. Default: all history.
        ``recency_days``, ``orders_total``, the ``*_12m`` features and ``tenure_days`` ignore it.
    groups : collection of str, optional
        Compute only the features of these registry groups (``"rfm"``, ``"pattern"``,
        ``"breadth"``, ``"seasonality"``, ``"web"``, ``"campaign"``, ``"attribute"``, ``"survey"``), e.g.
        ``groups={"rfm"}`` for a fast RFM-only table. Default: every feature.
    survey : mapping, optional
        :func:`segflow.features.survey_registry` of ``tables["survey_responses"]`` when the
        caller has it (default: read here, one small query).

    Returns
    -------
    ibis.Table
        One row per customer known at ``s`` (signed up before ``s``, or with any transaction
        before ``s``); the columns of :data:`segflow.features.FEATURES` (of the requested
        groups), in that order, then (group ``survey``) one column per survey question in
        the order of :func:`segflow.features.survey_registry`.
        Counts and spends are 0 for customers without rows; ratios, recency and dates are
        null when undefined (e.g. ``recency_days`` of a customer who never purchased).

    Notes
    -----
    Returns (``is_return`` or a negative amount) reduce ``monetary`` and count in
    ``return_rate`` but are never orders. Day counts are whole calendar days from the day of
    the event to ``s``: a purchase on the day before ``s`` has ``recency_days = 1``.

    Examples
    --------
    >>> from segflow.store import Store
    >>> store = Store(":memory:")
    >>> tables = {name: store.table(name) for name in REQUIRED_TABLES}
    >>> features = customer_features(tables, dt.date(2025, 1, 1))
    >>> features.columns[:4]
    ('customer_id', 'recency_days', 'frequency', 'monetary')
    """
    missing = [name for name in REQUIRED_TABLES if name not in tables]
    if missing:
        raise InputError(f"customer_features needs the tables {', '.join(missing)}")
    tables = text_columns(tables)
    if window_days is not None and window_days <= 0:
        raise InputError(f"window_days must be a positive number of days, got {window_days}")
    frame = Frame(snapshot=as_date(snapshot_date), window_days=window_days)

    wanted = _check_groups(groups)
    records = customer_records(tables["customers"], frame)
    lines = prepare_lines(tables["transactions"], frame)
    base = customer_base(records, tables["transactions"], frame)
    orders = order_table(lines)
    parts = [records, value_features(lines, orders, frame)]
    if "pattern" in wanted:
        parts += [
            interpurchase_features(orders, frame),
            top_share(lines, frame, "category", "top_category", "category_count"),
            top_share(lines, frame, "channel", "main_channel", "channel_count"),
        ]
    if "breadth" in wanted:
        parts.append(breadth_features(lines, frame))
    if "seasonality" in wanted:
        parts.append(seasonality_features(orders))
    if "web" in wanted:
        parts.append(web_features(tables["events"], frame))
    if "campaign" in wanted:
        parts.append(campaign_features(tables["campaign_exposures"], lines, frame))
    if "survey" not in wanted:
        survey = {}
    elif survey is None:
        survey = survey_registry(tables["survey_responses"])
    answers = survey_features(tables["survey_responses"], frame, survey)
    if answers is not None:
        parts.append(answers)
    out = left_join_all(base, parts)
    columns = [name for name, f in FEATURES.items() if f.group in wanted or f.group == "id"]
    columns += list(survey)
    fills = {name: out[name].fill_null(0) for name in _ZERO_WHEN_ABSENT if name in columns}
    if "same_season_flag" in columns:
        fills["same_season_flag"] = out.same_season_flag.fill_null(False)
    out = out.mutate(**fills, tenure_days=_tenure(out, frame))
    return out.select(*columns)


def text_columns(tables: Mapping[str, ibis.Table]) -> dict[str, ibis.Table]:
    """``tables`` with their text columns as text: every column that is ``VARCHAR`` in
    :data:`segflow.store.CANONICAL_TABLES` (ids, codes, categories) and has another type is
    cast to string, as the store holds them, so that tables from other sources join on their
    ids (integer customer ids in one table and text in another; the features then carry
    text ids). Unchanged when every such column is already text (the store's tables).

    A float column is read as the ingest reads it: NaN is missing, a whole number its digits
    (``5.0`` -> ``'5'``). An id column (``*_id``) of floating-point, fractional decimal or true/false type is
    accepted only when it holds no value at all (an empty optional column read by pandas is
    float NaN; one engine query, only for such a column); whole-number decimals
    (``decimal(20, 0)``) are exact and read as their digits.

    Raises
    ------
    InputError
        When an id column of floating-point, fractional decimal or true/false type holds a
        value (a double cannot hold a long id exactly, and ``1042.0`` is not ``1042``): give
        ids as text or whole numbers.
    """
    from segflow.store import CANONICAL_TABLES

    out = dict(tables)
    for name, t in tables.items():
        text = [c for c, kind in CANONICAL_TABLES.get(name, {}).items()
                if kind == "VARCHAR" and c in t.columns and not t[c].type().is_string()]
        for c in (c for c in text if c.endswith("_id")):
            _check_id_type(name, t, c)
        if text:
            out[name] = t.mutate(**{c: _as_text(t[c]) for c in text})
    return out


def _as_text(col: ibis.Value) -> ibis.StringValue:
    """``col`` as the text the ingest stores for it (:mod:`segflow.sources._validate`): a
    float NaN is missing, a whole float below 10^15 its digits (``5.0`` -> ``'5'``, as a
    code read from a float column by pandas), any other value its text."""
    if not col.type().is_floating():
        return col.cast("string")
    wide = col.cast("float64")  # a float32's exact value, as the ingest reads it
    whole = (wide.abs() < 1e15) & (wide % 1 == 0)  # not floor(): Ibis casts it to int64
    text = ibis.ifelse(whole, wide.cast("int64").cast("string"), col.cast("string"))
    return ibis.ifelse(col.isnan(), ibis.null("string"), text)


def _check_id_type(name: str, t: ibis.Table, column: str) -> None:
    """Raise InputError when id column ``column`` of table ``name`` holds values that cannot
    be read as text ids (see :func:`text_columns`); an empty column (nulls, NaN) passes."""
    kind = t[column].type()
    inexact = kind.is_floating() or (kind.is_decimal() and (kind.scale or 0) > 0)
    if not (inexact or kind.is_boolean()):
        return
    values = t[column].notnull()
    if kind.is_floating():
        values &= ~t[column].isnan()
    if int(t.filter(values).count().execute()) > 0:
        raise InputError(f"{name}.{column} is a {kind} column with values: give ids as text "
                         "or whole numbers (integers, decimal(p, 0))")


def _check_groups(groups: Collection[str] | None) -> set[str]:
    known = set(FEATURE_GROUPS)
    if groups is None:
        return known
    wanted = set(groups)
    unknown = wanted - known
    if unknown or not wanted:
        raise InputError(
            f"unknown feature groups {sorted(unknown)}; choose from {sorted(known)}"
            if unknown else f"groups must name at least one of {sorted(known)}"
        )
    return wanted


def _tenure(t: ibis.Table, frame: Frame) -> ibis.IntegerValue:
    """Days from the earlier of sign-up and the first transaction row (any kind) to ``s``."""
    created, first = t._created_day, t._first_any
    start = ibis.ifelse(
        created.isnull(),
        first,
        ibis.ifelse(first.isnull() | (created <= first), created, first),
    )
    return (ibis.literal(frame.day) - start).cast("int64")


def feature_registry(tables: Mapping[str, ibis.Table]) -> dict[str, Feature]:
    """Every feature :func:`customer_features` computes on ``tables``: :data:`FEATURES` and
    one survey feature per question of ``tables["survey_responses"]`` (runs one small query).
    """
    survey = survey_registry(text_columns({"survey_responses": tables["survey_responses"]})
                             ["survey_responses"])
    return {**FEATURES, **{name: feature for name, (feature, _) in survey.items()}}
