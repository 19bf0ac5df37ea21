"""RFM scores (quantile bins with an explicit tie rule) and the named RFM segments.

Scores
------
Among customers with at least one purchase (``recency_days`` not null), each of R, F and M is
the ``ntile(bins)`` of the customer in an ordering by the feature, so each score holds the
same number of customers (the first ``n mod bins`` scores one more). ``bins`` is best:

* ``r_score``: ordered by ``recency_days`` descending (the most recent buyers get ``bins``);
* ``f_score``: ordered by ``frequency`` ascending;
* ``m_score``: ordered by ``monetary`` ascending.

**Tie rule**: customers with equal values are ordered by ``customer_id`` ascending, so the
scores are deterministic and identical on every engine, and a run of equal values may straddle
two scores (the customer with the smaller id gets the lower score). Equal-sized bins are the
point of quantile scoring; keeping ties together would make bins of very unequal size when
most customers bought once. ``fm_score = floor((f_score + m_score) / 2)``.

Customers who never purchased get null scores and the segment ``"No purchase yet"``.

Named segments
--------------
:data:`RFM_SEGMENTS` is the common R x FM grid (5 bins): every cell of the 5 x 5 grid belongs
to exactly one segment, shown in ``docs/segments.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis

from segflow.errors import SegflowError

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


def rfm_scores(
    features: ibis.Table,
    *,
    bins: int = 5,
    group_by: str | None = None,
) -> ibis.Table:
    """Add ``r_score``, ``f_score``, ``m_score`` and ``fm_score`` (1..bins, bins = best).

    Parameters
    ----------
    features : ibis.Table
        Needs ``customer_id``, ``recency_days``, ``frequency`` and ``monetary``.
    bins : int, default=5
        Number of quantile bins per score.
    group_by : str, optional
        Score within each value of this column (nested schemes), instead of over all customers.

    Returns
    -------
    ibis.Table
        ``features`` with the four score columns (int64); null for customers who never
        purchased. See the module notes for the tie rule.

    Examples
    --------
    >>> import ibis
    >>> t = ibis.memtable({"customer_id": ["a", "b", "c"], "recency_days": [3, 30, None],
    ...                    "frequency": [5, 1, 0], "monetary": [100.0, 20.0, 0.0]})
    >>> rfm_scores(t, bins=2).order_by("customer_id").r_score.to_list()
    [2, 1, None]
    """
    if not isinstance(bins, int) or bins < 2:
        raise SegflowError(f"RFM bins must be an integer of at least 2, got {bins!r}")
    for name in ("customer_id", "recency_days", "frequency", "monetary"):
        if name not in features.columns:
            raise SegflowError(f"rfm_scores needs the feature {name!r}")
    buyers = features.filter(features.recency_days.notnull())
    others = features.filter(features.recency_days.isnull())
    part = [group_by] if group_by else None

    def score(order: list[ibis.Value]) -> ibis.IntegerValue:
        return (ibis.ntile(bins).over(group_by=part, order_by=order) + 1).cast("int64")

    cid = buyers.customer_id
    scored = buyers.mutate(
        r_score=score([ibis.desc(buyers.recency_days), cid]),
        f_score=score([buyers.frequency, cid]),
        m_score=score([buyers.monetary, cid]),
    )
    scored = scored.mutate(fm_score=((scored.f_score + scored.m_score) / 2).floor().cast("int64"))
    null = ibis.null("int64")
    others = others.mutate(r_score=null, f_score=null, m_score=null, fm_score=null)
    return scored.union(others)


def rfm_segment_expr(scores: ibis.Table) -> ibis.StringValue:
    """The named segment of each row of :func:`rfm_scores` output (5 bins)."""
    branches = [
        (
            scores.r_score.between(seg.r[0], seg.r[1]) & scores.fm_score.between(*seg.fm),
            ibis.literal(seg.name),
        )
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
