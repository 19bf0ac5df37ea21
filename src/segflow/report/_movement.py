"""Movement of customers between two snapshots of a scheme, with their value (Ibis on the
store): the numbers behind the report's headline sentences and segment-change tables."""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
from ibis import _

from segflow.features import money_sum, score_sum
from segflow.store import Store
from segflow.summaries._write import cell_direction as _direction

NEW, GONE = "(new)", "(gone)"
REVENUE_WINDOW_DAYS = 365


def _revenue_12m(store: Store, snapshot: dt.date) -> ibis.Table:
    """Net revenue per customer in the 365 days before ``snapshot`` (returns netted)."""
    t = store.table("transactions")
    lo = ibis.timestamp(dt.datetime.combine(snapshot - dt.timedelta(days=REVENUE_WINDOW_DAYS), dt.time()))
    hi = ibis.timestamp(dt.datetime.combine(snapshot, dt.time()))
    return (
        t.filter(t.customer_id.notnull() & (t.ts >= lo) & (t.ts < hi))
        .group_by("customer_id")
        .agg(revenue=money_sum(_.amount))
    )


def _clv(store: Store, snapshot: dt.date, model: str) -> ibis.Table:
    s = store.table("customer_scores")
    s = s.filter((s.snapshot_date == snapshot) & (s.model == model) & (s.score == "clv"))
    return s.group_by("customer_id").agg(clv=s.value.max())


def movement_cells(
    store: Store, scheme: str, from_date: dt.date, to_date: dt.date, *, model: str = "bgnbd_gg"
) -> pd.DataFrame:
    """One row per (from segment, to segment) of ``scheme`` between two snapshots.

    Columns: ``from_segment``, ``to_segment`` (``(new)`` / ``(gone)`` for customers in only
    one snapshot), ``from_rank``, ``to_rank``, ``customers``, ``revenue_12m`` (their net
    revenue in the 365 days before ``to_date``, in the store's currency) and ``clv`` (their
    predicted value stored at ``to_date`` by ``model``; 0 when no scores are stored).
    """
    a = store.table("segment_assignments")
    a = a.filter(a.scheme == scheme)
    frm = a.filter(a.snapshot_date == from_date).select(
        cid_from="customer_id", from_segment="segment", from_rank="segment_rank"
    )
    to = a.filter(a.snapshot_date == to_date).select(
        cid_to="customer_id", to_segment="segment", to_rank="segment_rank"
    )
    both = frm.outer_join(to, frm.cid_from == to.cid_to)
    both = both.mutate(
        customer_id=ibis.coalesce(both.cid_from, both.cid_to),
        from_segment=both.from_segment.fill_null(NEW),
        to_segment=both.to_segment.fill_null(GONE),
    )
    rev = _revenue_12m(store, to_date)
    both = both.left_join(rev, both.customer_id == rev.customer_id).drop("customer_id_right")
    clv = _clv(store, to_date, model)
    both = both.left_join(clv, both.customer_id == clv.customer_id).drop("customer_id_right")
    out = (
        both.group_by(["from_segment", "to_segment"])
        .agg(
            from_rank=_.from_rank.min(),
            to_rank=_.to_rank.min(),
            customers=_.count(),
            revenue_12m=money_sum(_.revenue).fill_null(0.0),
            clv=score_sum(_.clv).fill_null(0.0),
        )
        .execute()
    )
    out["direction"] = [_direction(r) for r in out.itertuples()]
    return out.sort_values(["customers", "from_segment", "to_segment"], ascending=[False, True, True]).reset_index(
        drop=True
    )


def segment_changes(cells: pd.DataFrame) -> pd.DataFrame:
    """Per segment: customers at both snapshots, the change and the change in share of the
    base (from :func:`movement_cells`)."""
    before = cells[cells.from_segment != NEW].groupby("from_segment")["customers"].sum()
    after = cells[cells.to_segment != GONE].groupby("to_segment")["customers"].sum()
    segs = sorted(set(before.index) | set(after.index))
    out = pd.DataFrame({"segment": segs})
    out["customers_before"] = out["segment"].map(before).fillna(0).astype(int)
    out["customers_after"] = out["segment"].map(after).fillna(0).astype(int)
    out["change"] = out["customers_after"] - out["customers_before"]
    tb, ta = float(before.sum()) or 1.0, float(after.sum()) or 1.0
    out["share_change"] = out["customers_after"] / ta - out["customers_before"] / tb
    return out
