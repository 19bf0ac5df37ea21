"""RFM scores (quantile cut points, equal values get equal scores) and the named segments.

Scores
------
Among customers with at least one purchase (``recency_days`` not null), each of R, F and M is
a score from 1 to ``bins`` (``bins`` best):

* ``r_score`` from ``recency_days`` (fewer days is better);
* ``f_score`` from ``frequency`` (more orders is better);
* ``m_score`` from ``monetary`` rounded to cents (more is better).

**Default rule (``method="quantile"``)**: ``score = 1 + floor(bins * w / n)`` where ``w`` is
the number of scored customers with a strictly worse value and ``n`` all scored customers
(see :mod:`segflow.segments._scores`). Equal values get equal scores; a value held by more
than ``1 / bins`` of the customers takes the lowest score its run covers and the scores it
spans stay empty (most one-order buyers: all of them ``f_score = 1``).

**The window population** (``[rfm] window_days``: ``frequency`` and ``monetary`` count the
last ``window_days`` days, ``recency_days`` all history): ``f_score`` and ``m_score`` are
scored among the buyers with at least one order in the window (``frequency > 0``) only, ``n``
and ``w`` above count only them; a buyer whose orders are all before the window gets
``f_score = 1`` and ``m_score = 1`` directly, whatever the method or cut points (``ntile``
bins only the buyers in the window; frozen cut points too: a monetary of 0 would otherwise
beat a negative cut point). ``r_score`` is scored among
all buyers as before. Why: counted with the others, the buyers with nothing in the window
tie at 0 and, once they are more than ``1 / bins`` of the buyers, take score 1 alone and
push every in-window buyer to ``f_score >= 2`` (and ``m_score``), so "New" and "Promising"
(FM 1) could never hold anyone. Without ``window_days`` every buyer has ``frequency >= 1``
(a purchase is an order, zero-value ones included; a customer with only returns has no
purchase, a null ``recency_days`` and null scores), so nothing changes; a null
``frequency`` counts as no order in the window.

**``method="ntile"``** keeps the older rule: ``ntile(bins)`` in an ordering by the value with
ties broken by ``customer_id`` ascending (equal-count bins; identical customers can get
different scores).

**Frozen cut points** (``cut_points=``): scores against fixed cut points per feature
(``recency_days``, ``frequency``, ``monetary``; ``bins - 1`` each): one point is earned for
each cut point the value is strictly better than. :func:`rfm_cut_points` returns the cut
points of a snapshot (they reproduce that snapshot's quantile scores exactly: F and M cut
over the buyers with an order in the window).

``fm_score = floor((f_score + m_score) / 2)``. Customers who never purchased get null scores
and the segment ``"No purchase yet"``.

Named segments
--------------
:data:`RFM_SEGMENTS` is an R x FM grid on 5-point scores: every cell of the 5 x 5 grid belongs
to exactly one segment, shown in ``docs/segments.md``. With ``bins`` other than 5 each score is
placed on the 5-point grid at the middle of its quantile range, ``ceil(5 * (s - 1/2) / bins)``
(bins = 3: 1, 2, 3 -> 1, 3, 5; bins = 10: 1-2 -> 1, ..., 9-10 -> 5); :func:`grid_score`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import ibis

from segflow.errors import SegflowError
from segflow.segments._scores import (
    GroupBy,
    comparable,
    cut_points,
    cut_score,
    group_keys,
    quantile_score,
)

NO_PURCHASE = "No purchase yet"


@dataclass(frozen=True)
class RfmSegment:
    """A named RFM segment: a rectangle of the R x FM grid (inclusive score ranges).

    Attributes
    ----------
    name : str
    r : tuple of (int, int)
        Lowest and highest ``r_score``.
    fm : tuple of (int, int)
        Lowest and highest ``fm_score``.
    description : str
        What the segment means, in marketing terms.
    """

    name: str
    r: tuple[int, int]
    fm: tuple[int, int]
    description: str

    @property
    def condition(self) -> str:
        """The segment's thresholds in the rule language."""
        return (
            f"r_score between {self.r[0]} and {self.r[1]} "
            f"and fm_score between {self.fm[0]} and {self.fm[1]}"
        )


#: The named RFM segments in rank order (1 = best), with visible thresholds on the scores.
RFM_SEGMENTS: tuple[RfmSegment, ...] = (
    RfmSegment("Champions", (4, 5), (4, 5), "Bought recently, buy often and spend the most."),
    RfmSegment("Loyal", (3, 3), (4, 5), "Buy often and spend a lot; a little less recent."),
    RfmSegment("Potential loyalists", (4, 5), (2, 3),
               "Recent customers with average frequency and spend."),
    RfmSegment("New", (5, 5), (1, 1), "Bought very recently, for the first time or little."),
    RfmSegment("Promising", (4, 4), (1, 1), "Recent buyers who have not spent much yet."),
    RfmSegment("Need attention", (3, 3), (3, 3), "Average on recency, frequency and spend."),
    RfmSegment("About to sleep", (3, 3), (1, 2),
               "Below-average recency and value; will be lost without a nudge."),
    RfmSegment("At risk", (1, 2), (3, 4),
               "Spent well and often, but long ago: bring them back."),
    RfmSegment("Can't lose them", (1, 2), (5, 5),
               "Once the best customers; have not bought for a long time."),
    RfmSegment("Hibernating", (1, 2), (2, 2), "Low value; last purchase long ago."),
    RfmSegment("Lost", (1, 2), (1, 1), "Lowest recency, frequency and spend."),
)

#: Segment names in rank order, the no-purchase bucket last.
RFM_SEGMENT_ORDER: tuple[str, ...] = (*(s.name for s in RFM_SEGMENTS), NO_PURCHASE)


#: The three RFM inputs: score column, feature, whether a higher value is better.
RFM_INPUTS: tuple[tuple[str, str, bool], ...] = (
    ("r_score", "recency_days", False),
    ("f_score", "frequency", True),
    ("m_score", "monetary", True),
)
#: Grid size of :data:`RFM_SEGMENTS`.
GRID_BINS = 5
#: Features scored among the buyers with an order in the window only (module notes).
WINDOW_SCORED: frozenset[str] = frozenset({"frequency", "monetary"})


def in_window(features: ibis.Table) -> ibis.BooleanValue:
    """True for a customer with at least one order in the feature window (``frequency > 0``);
    null where ``frequency`` is null (treated as no order in the window)."""
    return features.frequency > 0


def window_score(in_window: ibis.BooleanValue, score: ibis.IntegerValue) -> ibis.IntegerValue:
    """``score`` for a customer with an order in the window, else 1 (f_score, m_score of a
    buyer whose orders are all before the window, whatever the rule or cut points)."""
    return ibis.ifelse(in_window, score, ibis.literal(1, "int64"))


def rfm_scores(
    features: ibis.Table,
    *,
    bins: int = 5,
    group_by: GroupBy = None,
    method: Literal["quantile", "ntile"] = "quantile",
    cut_points: Mapping[str, Sequence[float]] | None = None,
) -> ibis.Table:
    """Add ``r_score``, ``f_score``, ``m_score`` and ``fm_score`` (1..bins, bins = best).

    Parameters
    ----------
    features : ibis.Table
        Needs ``customer_id``, ``recency_days``, ``frequency`` and ``monetary``.
    bins : int, default=5
        Number of score bins.
    group_by : str or sequence of str, optional
        Score within each value of this column, or each combination of these columns
        (snapshot date, parent segment of a nested scheme), instead of over all customers.
    method : {"quantile", "ntile"}, default="quantile"
        ``"quantile"``: equal values, equal scores (module notes); ``"ntile"``: equal-count
        bins, ties split by ``customer_id``.
    cut_points : mapping, optional
        Fixed cut points per feature (``recency_days``, ``frequency``, ``monetary``), each
        ``bins - 1`` values in the feature's unit; overrides ``method``.

    Returns
    -------
    ibis.Table
        ``features`` with the four score columns (int64); null for customers who never
        purchased.

    Raises
    ------
    SegflowError
        ``bins`` below 2, a missing feature, cut points of the wrong length, or cut points
        combined with ``group_by``.

    Examples
    --------
    >>> import ibis
    >>> t = ibis.memtable({"customer_id": ["a", "b", "c", "d"], "recency_days": [3, 30, 30, None],
    ...                    "frequency": [5, 1, 1, 0], "monetary": [100.0, 20.0, 20.0, 0.0]})
    >>> rfm_scores(t, bins=2).order_by("customer_id").f_score.to_list()
    [2, 1, 1, None]
    """
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 2:
        raise SegflowError(f"RFM bins must be an integer of at least 2, got {bins!r}")
    for name in ("customer_id", "recency_days", "frequency", "monetary"):
        if name not in features.columns:
            raise SegflowError(f"rfm_scores needs the feature {name!r}")
    if method not in ("quantile", "ntile"):
        raise SegflowError(f"RFM score method must be 'quantile' or 'ntile', got {method!r}")
    if cut_points is not None:
        _check_cuts(cut_points, bins, group_by)
    buyers = features.filter(features.recency_days.notnull())
    others = features.filter(features.recency_days.isnull())
    values = {col: f"_v_{col}" for _, col, _ in RFM_INPUTS}
    flag = "_v_in_window"
    scored = buyers.mutate(**{flag: in_window(buyers)})
    # F and M are compared among the buyers with an order in the window only (module notes):
    # the others' values are null here (left out of every count) and their scores 1 below
    scored = scored.mutate(**{
        tmp: comparable(scored, col) if col not in WINDOW_SCORED
        else ibis.ifelse(scored[flag], comparable(scored, col), ibis.null("float64"))
        for col, tmp in values.items()
    })
    part = group_keys(group_by)
    for score, col, higher in RFM_INPUTS:
        v = scored[values[col]]
        if cut_points is not None:
            scored = scored.mutate(**{score: cut_score(v, cut_points[col], higher_is_better=higher)})
        elif method == "ntile":
            keys = [*part, flag] if col in WINDOW_SCORED else part
            order = [v if higher else ibis.desc(v), scored.customer_id]
            tile = (ibis.ntile(bins).over(group_by=keys or None, order_by=order) + 1).cast("int64")
            scored = scored.mutate(**{score: tile})
        else:
            scored = quantile_score(scored, values[col], score, bins=bins,
                                    higher_is_better=higher, group_by=group_by)
        if col in WINDOW_SCORED:
            scored = scored.mutate(**{score: window_score(scored[flag], scored[score])})
    scored = scored.drop(*values.values(), flag)
    scored = scored.mutate(fm_score=((scored.f_score + scored.m_score) / 2).floor().cast("int64"))
    null = ibis.null("int64")
    others = others.mutate(r_score=null, f_score=null, m_score=null, fm_score=null)
    return scored.select(*others.columns).union(others)


def rfm_cut_points(features: ibis.Table, *, bins: int = 5) -> dict[str, list[float]]:
    """Cut points of the quantile rule per RFM feature over the buyers of ``features``.

    Scoring ``features`` with ``rfm_scores(features, bins=bins, cut_points=...)`` gives the
    same scores as ``method="quantile"``; later snapshots scored against them move a
    customer only when their own values cross a cut point. ``recency_days`` is cut over all
    buyers, ``frequency`` and ``monetary`` over the buyers with an order in the window (the
    others score 1 on F and M against any cut points; module notes). Without such a buyer
    (every buyer's orders are before the window) the F and M cut points are ``inf``: no value
    is better than them, so every score is 1, as the quantile rule gives a lone customer.

    Returns
    -------
    dict
        ``{"recency_days": [...], "frequency": [...], "monetary": [...]}``, ``bins - 1``
        values each (days, orders, currency rounded to cents).

    Raises
    ------
    SegflowError
        No customer of ``features`` has a purchase.
    """
    buyers = features.filter(features.recency_days.notnull())
    active = buyers.filter(in_window(buyers))
    out: dict[str, list[float]] = {}
    for _, col, higher in RFM_INPUTS:
        base = active if col in WINDOW_SCORED else buyers
        t = base.select(**{col: comparable(base, col)})
        out[col] = cut_points(t, col, bins=bins, higher_is_better=higher)
        if col not in WINDOW_SCORED and len(out[col]) != bins - 1:
            raise SegflowError("RFM cut points need at least one customer with a purchase")
        if not out[col]:
            out[col] = [math.inf] * (bins - 1)
    return out


def _check_cuts(cuts: Mapping[str, Sequence[float]], bins: int, group_by: GroupBy) -> None:
    if group_by:
        raise SegflowError("frozen RFM cut points cannot be used in a nested scheme (within)")
    for _, col, _ in RFM_INPUTS:
        got = cuts.get(col)
        if got is None or len(got) != bins - 1:
            raise SegflowError(
                f"RFM cut_points.{col} needs {bins - 1} values for {bins} bins, got "
                f"{None if got is None else list(got)}"
            )
    extra = sorted(set(cuts) - {col for _, col, _ in RFM_INPUTS})
    if extra:
        raise SegflowError(f"RFM cut_points: unknown feature(s) {extra}; use recency_days, "
                           "frequency, monetary")


def grid_score(score: ibis.IntegerValue, bins: int) -> ibis.IntegerValue:
    """A score of ``bins`` bins on the 5-point grid: ``ceil(5 * (s - 1/2) / bins)``."""
    if bins == GRID_BINS:
        return score
    # integer form of ceil((10 s - 5) / (2 bins))
    return ((score * 10 - 5 + 2 * bins - 1) // (2 * bins)).cast("int64")


def rfm_segment_expr(scores: ibis.Table, *, bins: int = 5) -> ibis.StringValue:
    """The named segment of each row of :func:`rfm_scores` output (scores of ``bins`` bins,
    placed on the 5-point grid by :func:`grid_score`)."""
    r = grid_score(scores.r_score, bins)
    fm = ((grid_score(scores.f_score, bins) + grid_score(scores.m_score, bins)) / 2).floor()
    branches = [
        (r.between(seg.r[0], seg.r[1]) & fm.between(*seg.fm), ibis.literal(seg.name))
        for seg in RFM_SEGMENTS
    ]
    return ibis.cases(
        (scores.r_score.isnull(), ibis.literal(NO_PURCHASE)), *branches, else_=ibis.null("string")
    )


def rank_expr(segment: ibis.StringValue, order: tuple[str, ...]) -> ibis.IntegerValue:
    """1-based position of ``segment`` in ``order`` (null when not listed)."""
    return ibis.cases(
        *((segment == name, ibis.literal(i + 1, "int64")) for i, name in enumerate(order)),
        else_=ibis.null("int64"),
    )
