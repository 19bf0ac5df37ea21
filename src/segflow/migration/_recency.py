"""Recency states: the classic Markov-chain segmentation of a non-contractual customer base.

State 1 = bought in the period; state ``i`` = the last purchase was ``i - 1`` periods ago,
capped at ``cap`` (Pfeifer & Carraway 2000, section 3; Berger & Nasr 1998). Periods are
fixed-length windows of ``period_days`` days from ``start``; several purchases in one period
(or one day) count as one purchase occasion for the state.
"""

from __future__ import annotations

import datetime as dt

import ibis
import pyarrow as pa
from ibis import _

from segflow._dates import as_date
from segflow.errors import SegflowError
from segflow.features._purchase_def import is_purchase_line
from segflow.migration._pairs import _require


def recency_states(
    transactions: ibis.Table,
    start: dt.date | str,
    period_days: int = 91,
    n_periods: int | None = None,
    cap: int = 5,
    *,
    scheme: str = "recency",
) -> ibis.Table:
    """Recency state of every acquired customer at the end of each period.

    Parameters
    ----------
    transactions : ibis.Table
        Needs ``customer_id`` and ``ts``; returns (``is_return`` or ``amount < 0``) are ignored.
    start : date
        First day of period 0.
    period_days : int, default=91
        Period length in days (91 = a quarter of 13 weeks).
    n_periods : int
        Number of periods ``k = 0 .. n_periods - 1``; period ``k`` covers
        ``[start + k * period_days, start + (k + 1) * period_days)``.
    cap : int, default=5
        Highest state: customers whose last purchase was ``cap - 1`` or more periods ago.
    scheme : str, default="recency"
        Scheme name written into the output.

    Returns
    -------
    ibis.Table
        In the shape of ``segment_assignments``: ``scheme``, ``scheme_version``,
        ``snapshot_date`` (the end boundary of the period, ``start + (k + 1) * period_days``,
        so the state uses purchases with ``ts < snapshot_date`` only), ``customer_id``,
        ``segment`` ("1" .. str(cap)), ``segment_rank`` (the state number), ``period`` (k).
        A customer appears from the period of their first purchase on.
    """
    if n_periods is None or n_periods < 1:
        raise SegflowError("n_periods must be a positive number of periods")
    if period_days < 1 or cap < 2:
        raise SegflowError(f"need period_days >= 1 and cap >= 2, got {period_days}, {cap}")
    _require(transactions, ("customer_id", "ts"), "the transactions table")
    s = as_date(start)
    end = dt.datetime.combine(s + dt.timedelta(days=period_days * n_periods), dt.time())
    t = transactions.filter(
        transactions.customer_id.notnull()
        & (transactions.ts >= dt.datetime.combine(s, dt.time()))
        & (transactions.ts < end)
    )
    if "amount" in t.columns or "is_return" in t.columns:  # the one purchase definition
        t = t.filter(is_purchase_line(t))
    days = t.ts.date().delta(ibis.date(s), unit="day")
    # floor division on whole days (never month deltas); days >= 0 here
    bought = t.select("customer_id", p=(days // period_days).cast("int64")).distinct()
    w = ibis.window(group_by="customer_id", order_by="p")
    bought = bought.mutate(next_p=bought.p.lead().over(w).fill_null(n_periods))
    periods = ibis.memtable(
        pa.table(
            {
                "k": pa.array(range(n_periods), pa.int64()),
                "snapshot_date": pa.array(
                    [s + dt.timedelta(days=period_days * (k + 1)) for k in range(n_periods)],
                    pa.date32(),
                ),
            }
        )
    )
    # customer is in state k - p + 1 for periods p <= k < next purchase period
    j = bought.join(periods, (periods.k >= bought.p) & (periods.k < bought.next_p))
    state = ibis.least(j.k - j.p + 1, cap).cast("int32")
    return j.select(
        scheme=ibis.literal(scheme),
        scheme_version=ibis.literal(f"{period_days}d-cap{cap}"),
        snapshot_date=_.snapshot_date,
        customer_id=_.customer_id,
        segment=state.cast("string"),
        segment_rank=state,
        period=_.k,
    )
