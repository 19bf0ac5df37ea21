"""Segment sizes and value for one scheme at one snapshot (a result object)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import ibis

from segflow._result import TableResult

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go


class SegmentSizes(TableResult):
    """Customers, share, 12-month revenue and revenue share per segment.

    Attributes
    ----------
    scheme : str
    snapshot_date : date or None
    frame : pandas.DataFrame
        Columns ``segment``, ``segment_rank``, ``customers``, ``share`` (0-1),
        ``revenue_12m`` (sum of ``monetary_12m``, currency), ``revenue_share`` (of the
        base's total 12-month revenue; null when that total is not positive), ``avg_revenue_12m``; ordered by rank, then size.
    """

    def __init__(self, frame: pd.DataFrame, scheme: str, snapshot_date: object = None) -> None:
        self.frame = frame
        self.scheme = scheme
        self.snapshot_date = snapshot_date

    def to_pandas(self) -> pd.DataFrame:
        return self.frame.copy()

    def to_dict(self) -> dict[str, object]:
        out = super().to_dict()
        out["scheme"] = self.scheme
        out["snapshot_date"] = str(self.snapshot_date) if self.snapshot_date else None
        return out

    def figure(self) -> go.Figure:
        """Horizontal bars: share of customers and share of 12-month revenue per segment."""
        import plotly.graph_objects as go

        f = self.frame.iloc[::-1]
        fig = go.Figure()
        fig.add_bar(y=f["segment"], x=f["share"], name="customers", orientation="h")
        fig.add_bar(y=f["segment"], x=f["revenue_share"], name="revenue (12 months)",
                    orientation="h")
        fig.update_layout(barmode="group", title=f"{self.scheme}: size and value",
                          xaxis_tickformat=".0%", height=max(300, 40 * len(f) + 120))
        return fig

    def __repr__(self) -> str:
        return (f"SegmentSizes(scheme={self.scheme!r}, snapshot={self.snapshot_date}, "
                f"segments={len(self.frame)}, customers={int(self.frame['customers'].sum())})")


def segment_sizes(
    assignments: ibis.Table,
    features: ibis.Table,
    *,
    scheme: str = "",
    snapshot_date: object = None,
    segments: Sequence[tuple[str, int | None]] = (),
) -> SegmentSizes:
    """Size and value of each segment (aggregated in the engine; only the summary is pulled).

    Parameters
    ----------
    assignments : ibis.Table
        ``customer_id``, ``segment``, ``segment_rank`` (output of :func:`assign`).
    features : ibis.Table
        The features the assignments were made from (for ``monetary_12m``).
    scheme, snapshot_date : optional
        Labels carried by the result.
    segments : sequence of (segment, rank), optional
        Segments the scheme can name; those nobody is in are listed with 0 customers (e.g.
        a rule that earlier rules pre-empt).
    """
    from segflow.features import money_sum

    joined = assignments.join(features.select("customer_id", "monetary_12m"), "customer_id")
    agg = joined.group_by("segment").aggregate(
        segment_rank=joined.segment_rank.min(),
        customers=joined.count(),
        revenue_12m=money_sum(joined.monetary_12m),
    )
    frame = agg.to_pandas()
    missing = [(name, rank) for name, rank in segments if name not in set(frame["segment"])]
    if missing:
        import pandas as pd

        empty = pd.DataFrame({"segment": [m[0] for m in missing],
                              "segment_rank": [m[1] for m in missing],
                              "customers": 0, "revenue_12m": 0.0})
        frame = pd.concat([frame, empty], ignore_index=True)
    total = frame["customers"].sum()
    revenue = frame["revenue_12m"].sum()
    frame["share"] = frame["customers"] / total if total else 0.0
    frame["revenue_share"] = frame["revenue_12m"] / revenue if revenue > 0 else None
    frame["avg_revenue_12m"] = frame["revenue_12m"] / frame["customers"]
    frame = frame.sort_values(["segment_rank", "customers", "segment"],
                              ascending=[True, False, True], na_position="last")
    cols = ["segment", "segment_rank", "customers", "share", "revenue_12m", "revenue_share",
            "avg_revenue_12m"]
    return SegmentSizes(frame[cols].reset_index(drop=True), scheme, snapshot_date)
