"""Small read-only summaries of the store used by the report and the CLI (Ibis on the store)."""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
from ibis import _

from segflow.features import money_sum, score_sum
from segflow.store import Store

REVENUE_WINDOW_DAYS = 365


def revenue_totals(store: Store) -> dict[str, object]:
    """Totals of the ``transactions`` table as the report's overview shows them.

    ``net_revenue`` is the sum of every accepted transaction in the store's currency:
    returns netted (negative lines) and **anonymous lines included** (no customer id; they
    are real revenue, see docs/data.md), so it reconciles with finance. It splits into
    ``identified_revenue`` (lines with a customer id, the revenue segments share) and
    ``anonymous_revenue``. Counts: ``transactions`` (all), ``anonymous_transactions``,
    ``customers`` (distinct ids with a transaction); ``first``/``last``: the dates of the
    earliest and latest transaction (UTC). Amounts are summed exactly
    (:func:`segflow.features.money_sum`), so the totals are the same on any engine and
    thread count.
    """
    t = store.table("transactions")
    anon = t.customer_id.isnull()
    row = t.aggregate(
        net_revenue=money_sum(t.amount),
        anonymous_revenue=money_sum(t.amount, where=anon),
        identified_revenue=money_sum(t.amount, where=~anon),
        transactions=t.count(),
        anonymous_transactions=t.count(where=anon),
        customers=t.customer_id.nunique(),
        first=t.ts.min().date(),
        last=t.ts.max().date(),
    ).to_pyarrow().to_pylist()[0]
    row["net_revenue"] = float(row["net_revenue"] or 0.0)
    row["anonymous_revenue"] = float(row["anonymous_revenue"] or 0.0)
    row["identified_revenue"] = float(row["identified_revenue"] or 0.0)
    return row


def segment_sizes(store: Store, scheme: str, snapshot: dt.date) -> pd.DataFrame:
    """Per segment of ``scheme`` at ``snapshot``: customers, share of customers, net revenue
    in the 365 days before the snapshot (``snapshot - 365 days <= ts < snapshot``, returns
    netted, in the store's currency) and revenue share. Sorted by segment rank, then size.
    Segments with no customers do not appear (a scheme's empty segments have no rows)."""
    a = store.table("segment_assignments")
    a = a.filter((a.scheme == scheme) & (a.snapshot_date == snapshot))
    t = store.table("transactions")
    lo = ibis.timestamp(dt.datetime.combine(snapshot - dt.timedelta(days=REVENUE_WINDOW_DAYS), dt.time()))
    hi = ibis.timestamp(dt.datetime.combine(snapshot, dt.time()))
    revenue = (
        t.filter(t.customer_id.notnull() & (t.ts >= lo) & (t.ts < hi))
        .group_by("customer_id")
        .agg(revenue=money_sum(_.amount))
    )
    joined = a.left_join(revenue, a.customer_id == revenue.customer_id)
    sizes = (
        joined.group_by("segment")
        .agg(
            customers=_.count(),
            revenue_12m=money_sum(_.revenue).fill_null(0.0),
            segment_rank=_.segment_rank.min(),
        )
        .execute()
    )
    total_customers = float(sizes["customers"].sum()) or 1.0
    total_revenue = float(sizes["revenue_12m"].sum())
    sizes["share"] = sizes["customers"] / total_customers
    sizes["revenue_share"] = sizes["revenue_12m"] / total_revenue if total_revenue else 0.0
    sizes = sizes.sort_values(["segment_rank", "customers", "segment"], ascending=[True, False, True])
    return sizes[["segment", "segment_rank", "customers", "share", "revenue_12m", "revenue_share"]].reset_index(drop=True)


#: Scheme kinds computed from web events (``events``): without events every customer lands
#: in their "no visits" segment for lack of data, not of visits.
EVENT_KINDS = frozenset({"browse_no_buy"})


def missing_events_note(store: Store, kind: str) -> str | None:
    """A note for a scheme of ``kind`` computed from web events when the store holds none
    (every customer then reads "no recent visits"); None otherwise."""
    tables = store.tables()
    if kind not in EVENT_KINDS or "transactions" not in tables:  # a warehouse's copy: no tables
        return None
    if "events" in tables and store.raw.execute("SELECT count(*) FROM events").fetchone()[0]:
        return None
    return ("No web events are stored (no [[sources]] table = \"events\", or an empty one): this "
            "scheme puts every customer in its no-visit segment for lack of data, not of visits.")


def reconciliation(store: Store) -> pd.DataFrame:
    """Rows read, accepted, quarantined and de-duplicated per source and file (latest load
    of each file), with a check column that is True when the counts add up."""
    loads = store.table("loads").execute()
    if loads.empty:
        return loads
    loads = loads.sort_values("started_at").groupby(["source", "source_file"], as_index=False).last()
    loads["reconciles"] = loads["rows_read"] == (
        loads["rows_accepted"] + loads["rows_quarantined"] + loads["rows_duplicate"]
    )
    return loads[
        ["source", "source_file", "target_table", "rows_read", "rows_accepted",
         "rows_quarantined", "rows_duplicate", "reconciles", "status"]
    ]


def quarantine_reasons(store: Store) -> pd.DataFrame:
    """Quarantined rows per source and rule, with one example reason (the first row's of
    the rule in its source file, so the same store always shows the same example)."""
    q = store.table("quarantine")
    return (
        q.group_by(["source", "rule"])
        .agg(rows=_.count(), example=_.reason.argmin(ibis.struct(
            {"f": _.source_file, "r": _.row_number, "x": _.reason})))
        .order_by([ibis.desc("rows"), "source", "rule"])
        .execute()
    )


def value_by_segment(store: Store, scheme: str, snapshot: dt.date, model: str = "bgnbd_gg") -> pd.DataFrame:
    """Per segment of ``scheme`` at ``snapshot``: customers, mean P(alive), expected purchases
    and predicted CLV (sum, mean and share) from the customer scores of ``model`` written at
    the same snapshot. Customers without a score (no purchase before the snapshot) count as
    customers but add no value."""
    a = store.table("segment_assignments")
    a = a.filter((a.scheme == scheme) & (a.snapshot_date == snapshot))
    s = store.table("customer_scores")
    s = s.filter((s.snapshot_date == snapshot) & (s.model == model))
    wide = s.group_by("customer_id").agg(
        p_alive=s.value.max(where=s.score == "p_alive"),
        expected_purchases=s.value.max(where=s.score == "expected_purchases"),
        clv=s.value.max(where=s.score == "clv"),
    )
    joined = a.left_join(wide, a.customer_id == wide.customer_id)
    out = (
        joined.group_by("segment")
        .agg(
            segment_rank=_.segment_rank.min(),
            customers=_.count(),
            mean_p_alive=score_sum(_.p_alive) / _.p_alive.count(),
            expected_purchases=score_sum(_.expected_purchases).fill_null(0.0),
            clv=score_sum(_.clv).fill_null(0.0),
        )
        .execute()
    )
    total = float(out["clv"].sum())
    out["mean_clv"] = out["clv"] / out["customers"]
    out["clv_share"] = out["clv"] / total if total else 0.0
    out = out.sort_values(["segment_rank", "customers", "segment"], ascending=[True, False, True])
    return out[["segment", "segment_rank", "customers", "mean_p_alive", "expected_purchases",
                "clv", "mean_clv", "clv_share"]].reset_index(drop=True)
