"""Net revenue per customer at every snapshot, in one pass over the transactions (Ibis).

For each snapshot ``s`` and customer: ``revenue_all_time`` (every line with ``ts < s``) and
``revenue_12m`` (lines with ``s - 365 days <= ts < s``), returns netted (negative lines), in
the store's currency, anonymous lines (no customer id) left out. These are the definitions of
:func:`segflow.report._queries.segment_sizes` and of the transition matrices' revenue
(``revenue between s1 and s2 = all_time(s2) - all_time(s1)``).

How: the snapshot dates and the dates 365 days before them are the sorted *boundaries*
``B_0 < ... < B_m-1``; each transaction falls in the bucket ``b`` = number of boundaries at or
before its timestamp. Per customer and bucket the amounts are summed once, a running sum over
buckets gives the revenue before each boundary, and each boundary reads the running sum of the
customer's last bucket at or before it (no per-snapshot scan of the transactions); the
12-month revenue is the difference of two such reads, both taken in one join and group-by.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import ibis
import pyarrow as pa
from ibis import _

REVENUE_WINDOW_DAYS = 365


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


def revenue_at_snapshots(transactions: ibis.Table, dates: Sequence[dt.date]) -> ibis.Table:
    """One row per (customer with a line before the snapshot, snapshot): ``customer_id``,
    ``snapshot_date``, ``revenue_all_time``, ``revenue_12m`` (float64, currency units).

    Customers without any line before a snapshot have no row for it (their revenue is 0).
    """
    snaps = sorted(set(dates))
    bounds = sorted(set(snaps) | {d - dt.timedelta(days=REVENUE_WINDOW_DAYS) for d in snaps})
    m = len(bounds)
    index = {d: i for i, d in enumerate(bounds)}
    t = transactions.filter(transactions.customer_id.notnull())
    # bucket b holds B_{b-1} <= ts < B_b; b = m is after the last boundary (never counted)
    bucket = ibis.cases(*[(t.ts < ibis.timestamp(_midnight(d)), i) for i, d in enumerate(bounds)], else_=m)
    per_bucket = (
        t.mutate(bucket=bucket)
        .filter(_.bucket < m)
        .group_by("customer_id", "bucket")
        .agg(amount=_.amount.cast("float64").sum())
    )
    w = ibis.window(group_by="customer_id", order_by="bucket")
    running = per_bucket.mutate(
        cum=_.amount.sum().over(ibis.window(group_by="customer_id", order_by="bucket", rows=(None, 0))),
        next_bucket=_.bucket.lead().over(w).fill_null(m + 1),
    )
    # revenue before boundary B_i is the running sum of the last bucket b <= i
    grid = ibis.memtable(pa.table({"g_i": pa.array(range(m), pa.int64())}))
    at = running.join(grid, (running.bucket <= grid.g_i) & (grid.g_i < running.next_bucket)).select(
        "customer_id", i="g_i", cum="cum"
    )
    # each boundary row serves the snapshots it is the "now" or the "a year before" index of
    # (one join, one group-by: the running sums are computed once)
    snap_rows = [(d, index[d], True) for d in snaps]
    snap_rows += [(d, index[d - dt.timedelta(days=REVENUE_WINDOW_DAYS)], False) for d in snaps]
    snap_idx = ibis.memtable(pa.table({
        "snapshot_date": pa.array([r[0] for r in snap_rows], pa.date32()),
        "s_i": pa.array([r[1] for r in snap_rows], pa.int64()),
        "is_now": pa.array([r[2] for r in snap_rows], pa.bool_()),
    }))
    j = at.join(snap_idx, at.i == snap_idx.s_i)
    out = j.group_by("customer_id", "snapshot_date").agg(
        revenue_all_time=j.cum.max(where=j.is_now),
        before_year=j.cum.max(where=~j.is_now),
    )
    out = out.filter(out.revenue_all_time.notnull())
    return out.select(
        "customer_id",
        "snapshot_date",
        "revenue_all_time",
        revenue_12m=out.revenue_all_time - out.before_year.fill_null(0.0),
    )
