"""Assigning customers to the segments of a scheme, and the built-in schemes."""

from __future__ import annotations

import re
from collections.abc import Sequence

import ibis

from segflow.config import RuleSettings, SchemeSettings
from segflow.errors import SegflowError
from segflow.segments._buckets import (
    BROWSE_BUCKETS,
    BROWSE_DEFAULT,
    LIFECYCLE_ORDER,
    bucket_expr,
    lifecycle_buckets,
    tier_names,
    value_tier_expr,
)
from segflow.segments._builtin_extra import product_breadth_scheme
from segflow.segments._rfm import (
    GRID_BINS,
    RFM_SEGMENT_ORDER,
    rank_expr,
    rfm_scores,
    rfm_segment_expr,
)
from segflow.segments._rules import RuleSyntaxError, compile_rules
from segflow.segments._scores import GroupBy, group_keys

#: Rules naming an RFM score get the scores of :func:`rfm_scores` (the scheme's bins) first.
_SCORES = re.compile(r"\b(?:r|f|m|fm)_score\b")

#: Separator of parent and child segment names in nested schemes ("loyalists / top 10%").
NEST_SEPARATOR = " / "


def builtin_schemes() -> list[SchemeSettings]:
    """The default schemes: ``rfm``, ``lifecycle``, ``value_tiers``, ``browse_no_buy`` and
    ``product_breadth`` (see :mod:`segflow.segments._builtin_extra`).

    Returns
    -------
    list of SchemeSettings
        Fresh objects; changing them does not change later calls.
    """
    return [
        SchemeSettings(name="rfm", kind="rfm"),
        SchemeSettings(name="lifecycle", kind="lifecycle"),
        SchemeSettings(name="value_tiers", kind="value_tiers"),
        SchemeSettings(name="browse_no_buy", kind="browse_no_buy"),
        product_breadth_scheme(),
    ]


def assign(
    scheme: SchemeSettings,
    features: ibis.Table,
    *,
    store: object | None = None,
    schemes: Sequence[SchemeSettings] = (),
    by: str | None = None,
) -> ibis.Table:
    """Assign every customer of ``features`` to one segment of ``scheme``.

    Parameters
    ----------
    scheme : SchemeSettings
        The scheme (``kind`` rfm, lifecycle, value_tiers, browse_no_buy, rules or cluster).
    features : ibis.Table
        Output of :func:`segflow.features.customer_features` (one row per customer).
    store : Store, optional
        Passed to cluster schemes, which keep their fitted model in the store.
    schemes : sequence of SchemeSettings, optional
        Where a nested scheme's ``within`` is looked up; built-in scheme names are always known.
    by : str, optional
        A column of ``features`` that partitions it into independent customer bases, in
        practice ``"snapshot_date"`` with the long table of
        :func:`segflow.features.snapshot_features`: every snapshot is assigned at once, as if
        each were assigned alone (quantile scores, cut points and value tiers are computed
        per snapshot, nested schemes per snapshot and parent segment; frozen cut points,
        rules and clusters are row-wise). A cluster scheme without a stored model is fitted
        on the earliest snapshot of ``features``.

    Returns
    -------
    ibis.Table
        Columns ``customer_id``, ``segment`` (string), ``segment_rank`` (int64; 1 = best in
        ordered schemes, null in unordered ones such as user rules without ``ordered`` or
        browse_no_buy); with ``by``, the column ``by`` first.

    Notes
    -----
    A nested scheme (``within = "lifecycle"``) splits each segment of the parent scheme by
    its own segments, computed within the parent segment (value tiers and RFM scores are
    quantiles within the parent); names are ``"parent / child"`` and, when both are ordered,
    ranks follow the parent first, then the child.

    Examples
    --------
    >>> import datetime as dt
    >>> from segflow.store import Store
    >>> from segflow.features import REQUIRED_TABLES, customer_features
    >>> store = Store(":memory:")
    >>> features = customer_features({n: store.table(n) for n in REQUIRED_TABLES},
    ...                              dt.date(2025, 1, 1))
    >>> assign(SchemeSettings(name="lifecycle", kind="lifecycle"), features).columns
    ('customer_id', 'segment', 'segment_rank')
    """
    if by is not None and by not in features.columns:
        raise SegflowError(f"scheme {scheme.name!r}: by = {by!r} is not a column of the features")
    out, _ = _assign(scheme, features, store=store, schemes=schemes, seen=(), by=by)
    keys = [by] if by else []
    return out.select(*keys, "customer_id", "segment", "segment_rank")


def _assign(
    scheme: SchemeSettings,
    features: ibis.Table,
    *,
    store: object | None,
    schemes: Sequence[SchemeSettings],
    seen: tuple[str, ...],
    by: str | None = None,
) -> tuple[ibis.Table, int | None]:
    """Features plus ``segment`` and ``segment_rank`` (and ``by``); and the number of
    ranked segments."""
    if scheme.kind == "cluster":
        if scheme.within:
            raise SegflowError(f"scheme {scheme.name!r}: cluster schemes cannot be nested")
        from segflow.segments._cluster_scheme import assign_cluster_scheme

        return assign_cluster_scheme(scheme, features, store=store, by=by), None
    if scheme.within:
        return _nested(scheme, features, store=store, schemes=schemes, seen=seen, by=by)
    return _flat(scheme, features, group_by=[by] if by else [], by=by)


def scheme_bins(scheme: SchemeSettings) -> int:
    """Number of RFM score bins of ``scheme`` (its ``bins``, else 5)."""
    return scheme.bins if scheme.bins is not None else GRID_BINS


def _rfm_cuts(scheme: SchemeSettings) -> dict[str, list[float]] | None:
    if scheme.cutoffs == "per_snapshot":
        return None
    if scheme.cutoffs == "reference" and not scheme.cut_points:
        raise SegflowError(
            f"scheme {scheme.name!r}: cutoffs = 'reference' but the cut points of "
            f"{scheme.reference_snapshot} were not computed; resolve the scheme with "
            "segflow.segments.freeze_cutoffs first"
        )
    return scheme.cut_points


def rfm_scores_for(
    scheme: SchemeSettings, features: ibis.Table, *, group_by: GroupBy = None,
    by: str | None = None,
) -> ibis.Table:
    """:func:`rfm_scores` with the scheme's bins, score method and (frozen) cut points.

    ``by`` (one of ``group_by``) partitions independent customer bases (snapshots): frozen
    cut points apply to every one of them alike.
    """
    cuts = _rfm_cuts(scheme)
    if cuts is not None:
        group_by = _row_wise(group_by, by)
    return rfm_scores(features, bins=scheme_bins(scheme), group_by=group_by,
                      method=scheme.score_method, cut_points=cuts)


def _row_wise(group_by: GroupBy, by: str | None) -> list[str] | None:
    """``group_by`` without ``by``: scoring against fixed cut points needs no partition by
    snapshot (a parent segment is kept, so nested frozen scores are still refused)."""
    return [k for k in group_keys(group_by) if k != by] or None


def _flat(
    scheme: SchemeSettings, features: ibis.Table, *, group_by: list[str], by: str | None
) -> tuple[ibis.Table, int | None]:
    kind = scheme.kind
    if kind == "rfm":
        scored = rfm_scores_for(scheme, features, group_by=group_by, by=by)
        segment = rfm_segment_expr(scored, bins=scheme_bins(scheme))
        return _label(scored, segment, RFM_SEGMENT_ORDER)
    if kind == "lifecycle":
        buckets, default = lifecycle_buckets(
            active_days=scheme.active_days, loyal_orders_12m=scheme.loyal_orders_12m,
            decline_ratio=scheme.decline_ratio, min_prior_orders=scheme.min_prior_orders,
            seasonal=scheme.seasonal,
        )
        segment = bucket_expr(buckets, default.name, features)
        order = tuple(n for n in LIFECYCLE_ORDER if scheme.seasonal or n != "seasonal")
        return _label(features, segment, order)
    if kind == "value_tiers":
        thresholds = None
        if scheme.cutoffs != "per_snapshot":
            if "value" not in scheme.cut_points:
                raise SegflowError(
                    f"scheme {scheme.name!r}: cutoffs = {scheme.cutoffs!r} needs cut_points.value "
                    "(resolve a reference snapshot with segflow.segments.freeze_cutoffs)"
                )
            thresholds = list(scheme.cut_points["value"])
        out = value_tier_expr(
            features, tiers=scheme.tiers, value=scheme.value_feature,
            group_by=group_by if thresholds is None else _row_wise(group_by, by),
            method=scheme.score_method, thresholds=thresholds,
        )
        return _label(out, out.segment, tier_names(scheme.tiers))
    if kind == "browse_no_buy":
        segment = bucket_expr(BROWSE_BUCKETS, BROWSE_DEFAULT.name, features)
        return _label(features, segment, None)
    if kind == "rules":
        if not scheme.rules:
            raise SegflowError(f"scheme {scheme.name!r} (kind 'rules') has no rules")
        pairs = [(r.segment, r.when) for r in scheme.rules]
        features = rule_features(scheme, features, group_by=group_by, by=by)
        try:
            segment = compile_rules(pairs, features, default=scheme.default)
        except RuleSyntaxError as exc:  # name the scheme: rule names repeat across schemes
            raise exc.in_scheme(scheme.name) from None
        order = _rule_order(scheme.rules, scheme.default) if scheme.ordered else None
        return _label(features, segment, order)
    raise SegflowError(f"scheme {scheme.name!r}: unknown kind {kind!r}")


def rule_features(
    scheme: SchemeSettings, features: ibis.Table, *, group_by: GroupBy = None,
    by: str | None = None,
) -> ibis.Table:
    """``features`` plus RFM scores when a rule of ``scheme`` names one."""
    if "r_score" not in features.columns and any(_SCORES.search(r.when) for r in scheme.rules):
        return rfm_scores_for(scheme, features, group_by=group_by, by=by)
    return features


def _rule_order(rules: Sequence[RuleSettings], default: str) -> tuple[str, ...]:
    names: list[str] = []
    for name in [r.segment for r in rules] + [default]:
        if name not in names:
            names.append(name)
    return tuple(names)


def _label(
    table: ibis.Table, segment: ibis.StringValue, order: tuple[str, ...] | None
) -> tuple[ibis.Table, int | None]:
    out = table.mutate(segment=segment)
    if order is None:
        return out.mutate(segment_rank=ibis.null("int64")), None
    return out.mutate(segment_rank=rank_expr(out.segment, order)), len(order)


def _nested(
    scheme: SchemeSettings,
    features: ibis.Table,
    *,
    store: object | None,
    schemes: Sequence[SchemeSettings],
    seen: tuple[str, ...],
    by: str | None = None,
) -> tuple[ibis.Table, int | None]:
    parent = _resolve(scheme.within or "", scheme, schemes, seen)
    parent_table, parent_n = _assign(
        parent, features, store=store, schemes=schemes, seen=(*seen, scheme.name), by=by
    )
    keys = [by] if by else []
    parents = parent_table.select(
        *keys, "customer_id", _parent=parent_table.segment,
        _parent_rank=parent_table.segment_rank,
    )
    joined = features.join(parents, [*keys, "customer_id"])
    child = scheme.model_copy(update={"within": None})
    out, child_n = _flat(child, joined, group_by=[*keys, "_parent"], by=by)
    segment = out._parent + NEST_SEPARATOR + out.segment
    if parent_n is None or child_n is None:
        rank = ibis.null("int64")
        total = None
    else:
        rank = (out._parent_rank - 1) * child_n + out.segment_rank
        total = parent_n * child_n
    out = out.mutate(segment=segment, segment_rank=rank.cast("int64"))
    return out.drop("_parent", "_parent_rank"), total


def _resolve(
    name: str, scheme: SchemeSettings, schemes: Sequence[SchemeSettings], seen: tuple[str, ...]
) -> SchemeSettings:
    if name == scheme.name or name in seen:
        chain = " -> ".join((*seen, scheme.name, name))
        raise SegflowError(f"scheme {scheme.name!r}: nesting loops back on itself ({chain})")
    for candidate in [*schemes, *builtin_schemes()]:
        if candidate.name == name:
            return candidate
    known = ", ".join(sorted({s.name for s in [*schemes, *builtin_schemes()]}))
    raise SegflowError(
        f"scheme {scheme.name!r}: within = {name!r} names no scheme (known: {known})"
    )


def segment_names(scheme: SchemeSettings) -> list[tuple[str, int | None]]:
    """(segment, rank) of every segment a flat rule scheme can name, in rule order; empty
    for other kinds of scheme."""
    from segflow.segments._checks import expected_segments

    names = expected_segments(scheme)
    return [(n, i + 1 if scheme.ordered else None) for i, n in enumerate(names)]
