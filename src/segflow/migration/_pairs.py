"""Engine-side work: who was where at consecutive snapshots (Ibis expressions).

Everything here is table in, table out; only the small per-cell aggregates reach pandas.
A *pair* is two consecutive snapshot dates of the chosen list. Customers present at the
first date but not at the second move to ``(gone)``; customers present at the second but
not at the first come from ``(new)`` (never seen, or returning after an absence).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import ibis
import pandas as pd
import pyarrow as pa
from ibis import _

from segflow._dates import as_date
from segflow.errors import InputError, SegflowError

NEW = "(new)"
GONE = "(gone)"

ASSIGNMENT_COLUMNS = ("scheme", "snapshot_date", "customer_id", "segment", "segment_rank")


def _require(table: ibis.Table, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(
            f"{what} lacks column(s) {missing}; expected columns {list(columns)}",
            column=missing[0],
        )


def scheme_rows(assignments: ibis.Table, scheme: str) -> ibis.Table:
    """The assignments of one scheme (validated to have the columns migration needs)."""
    _require(assignments, ASSIGNMENT_COLUMNS, "the assignments table")
    return assignments.filter(assignments.scheme == scheme)


def snapshot_list(
    a: ibis.Table,
    *,
    dates: Sequence[dt.date | str] | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
) -> list[dt.date]:
    """Snapshot dates of the scheme rows ``a`` (ascending), optionally bounded or given."""
    available = sorted(
        as_date(d)
        for d in a.select("snapshot_date").distinct().to_pyarrow()["snapshot_date"].to_pylist()
    )
    if dates is not None:
        wanted = sorted({as_date(d) for d in dates})
        absent = [d for d in wanted if d not in set(available)]
        if absent:
            raise SegflowError(
                f"no assignments at snapshot date(s) {[d.isoformat() for d in absent]}; "
                f"available: {_show_dates(available)}"
            )
        return wanted
    lo = as_date(start) if start is not None else None
    hi = as_date(end) if end is not None else None
    return [d for d in available if (lo is None or d >= lo) and (hi is None or d <= hi)]


def _show_dates(dates: Sequence[dt.date]) -> str:
    if not dates:
        return "none (run the pipeline first)"
    text = ", ".join(d.isoformat() for d in dates[:6])
    return text + (f", ... ({len(dates)} in all)" if len(dates) > 6 else "")


def check_one_row_per_customer(a: ibis.Table, dates: Sequence[dt.date]) -> None:
    """Raise if any customer has more than one assignment at one of ``dates``."""
    stats = (
        a.filter(a.snapshot_date.isin(list(dates)))
        .group_by("snapshot_date")
        .agg(rows=_.count(), customers=_.customer_id.nunique())
        .filter(_.rows != _.customers)
        .execute()
    )
    if len(stats):
        row = stats.iloc[0]
        raise InputError(
            f"{int(row['rows']) - int(row['customers'])} customer(s) have more than one segment "
            f"at snapshot {pd.Timestamp(row['snapshot_date']).date()}; expected one row per "
            "customer per snapshot per scheme",
            column="customer_id",
        )


def _dates_table(dates: Sequence[dt.date]) -> ibis.Table:
    return ibis.memtable(
        pa.table(
            {
                "d_snapshot": pa.array(list(dates), pa.date32()),
                "d_idx": pa.array(range(len(dates)), pa.int64()),
            }
        )
    )


def pair_rows(a: ibis.Table, dates: Sequence[dt.date]) -> ibis.Table:
    """One row per customer and consecutive pair ``(dates[k], dates[k+1])``.

    Columns: ``pair`` (k), ``customer_id``, ``from_segment``, ``from_rank``, ``to_segment``,
    ``to_rank``. A customer absent at one side gets ``(new)`` / ``(gone)`` there (rank null).
    """
    n = len(dates)
    d = _dates_table(dates)
    tagged = a.join(d, a.snapshot_date == d.d_snapshot).select(
        "customer_id", "segment", "segment_rank", "d_idx"
    )
    left = tagged.filter(_.d_idx < n - 1).select(
        l_cid=_.customer_id, l_pair=_.d_idx, from_segment=_.segment, from_rank=_.segment_rank
    )
    right = tagged.filter(_.d_idx >= 1).select(
        r_cid=_.customer_id, r_pair=_.d_idx - 1, to_segment=_.segment, to_rank=_.segment_rank
    )
    j = left.outer_join(right, [left.l_cid == right.r_cid, left.l_pair == right.r_pair])
    return j.select(
        pair=ibis.coalesce(j.l_pair, j.r_pair),
        customer_id=ibis.coalesce(j.l_cid, j.r_cid),
        from_segment=j.from_segment.fill_null(NEW),
        from_rank=j.from_rank,
        to_segment=j.to_segment.fill_null(GONE),
        to_rank=j.to_rank,
    )


def pair_revenue(transactions: ibis.Table, dates: Sequence[dt.date]) -> ibis.Table:
    """Net revenue per customer and pair: sum of ``amount`` with ``dates[k] <= ts < dates[k+1]``.

    Returns are netted: they are negative lines in the canonical ``transactions`` table.
    Columns: ``rv_cid``, ``rv_pair``, ``revenue`` (currency units).
    """
    _require(transactions, ("customer_id", "ts", "amount"), "the transactions table")
    bounds = ibis.memtable(
        pa.table(
            {
                "rv_pair": pa.array(range(len(dates) - 1), pa.int64()),
                "rv_lo": pa.array([_midnight(x) for x in dates[:-1]], pa.timestamp("us")),
                "rv_hi": pa.array([_midnight(x) for x in dates[1:]], pa.timestamp("us")),
            }
        )
    )
    t = transactions.filter(transactions.customer_id.notnull())
    j = t.join(bounds, (t.ts >= bounds.rv_lo) & (t.ts < bounds.rv_hi))
    return j.group_by(rv_cid=j.customer_id, rv_pair=j.rv_pair).agg(
        revenue=j.amount.cast("float64").sum()
    )


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


def cell_counts(
    a: ibis.Table,
    dates: Sequence[dt.date],
    *,
    transactions: ibis.Table | None = None,
    value: ibis.Table | None = None,
) -> pd.DataFrame:
    """Per pair and cell: customers, the segments' ranks, revenue and value of the movers.

    Parameters
    ----------
    a : ibis.Table
        Assignments of one scheme.
    dates : sequence of date
        Ascending snapshot dates; pairs are consecutive dates.
    transactions : ibis.Table, optional
        Adds ``revenue``: the cell's net revenue in ``[dates[k], dates[k+1])``.
    value : ibis.Table, optional
        ``customer_id, value`` (e.g. CLV per customer); adds ``value``, the cell's sum.

    Returns
    -------
    pandas.DataFrame
        ``pair, from_date, to_date, from_segment, to_segment, customers, from_rank, to_rank``
        and, when asked, ``revenue`` and ``value``. Only non-empty cells appear.
    """
    if len(dates) < 2:
        raise SegflowError("a transition needs two snapshot dates; got " + _show_dates(dates))
    p = pair_rows(a, dates).view()
    # ranks are looked up afterwards from a tiny per-segment table: carrying them through
    # the outer join made it about a third slower on 22M rows
    aggs = {"customers": _.count()}
    if transactions is not None:
        rv = pair_revenue(transactions, dates)
        aggs["revenue"] = _.revenue.fill_null(0.0).sum()
        p = p.left_join(rv, [("customer_id", "rv_cid"), ("pair", "rv_pair")])
    if value is not None:
        _require(value, ("customer_id", "value"), "the value table")
        v = value.select(v_cid=value.customer_id, value=value.value.cast("float64"))
        aggs["value"] = _.value.fill_null(0.0).sum()
        p = p.left_join(v, [("customer_id", "v_cid")])
    out = p.group_by("pair", "from_segment", "to_segment").agg(**aggs).execute()
    ranks = (
        a.filter(a.snapshot_date.isin(list(dates)))
        .group_by("segment")
        .agg(rank=_.segment_rank.min())
        .execute()
        .set_index("segment")["rank"]
    )
    out["from_rank"] = out["from_segment"].map(ranks)
    out["to_rank"] = out["to_segment"].map(ranks)
    out["pair"] = out["pair"].astype(int)
    out["from_date"] = [dates[k] for k in out["pair"]]
    out["to_date"] = [dates[k + 1] for k in out["pair"]]
    out["customers"] = out["customers"].astype(int)
    return out.sort_values(["pair", "from_segment", "to_segment"]).reset_index(drop=True)
