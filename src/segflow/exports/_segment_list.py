"""The CRM-style segment list: one row per customer with their current and previous segment.

Built from the stored assignment history as one Ibis expression, so it runs in the engine
and scales with the base. Writers put it into CSV (spreadsheet-safe), Parquet or a table of
the store.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import ibis
import pyarrow as pa
from ibis import _

from segflow._csv import write_csv
from segflow._dates import as_date
from segflow.errors import InputError, SegflowError
from segflow.migration._pairs import _dates_table, scheme_rows, snapshot_list

if TYPE_CHECKING:
    from segflow.store import Store



def segment_list(
    assignments: ibis.Table, scheme: str, as_of: dt.date | str | None = None
) -> ibis.Table:
    """Per customer assigned at ``as_of``: current segment, previous segment, last change.

    Parameters
    ----------
    assignments : ibis.Table
        ``segment_assignments``.
    scheme : str
    as_of : date, optional
        A snapshot date (default: the latest snapshot of the scheme). Later snapshots are
        ignored.

    Returns
    -------
    ibis.Table
        ``customer_id``, ``scheme``, ``snapshot_date`` (= ``as_of``), ``segment`` (current),
        ``segment_rank``, ``previous_segment`` (the segment at the customer's last snapshot
        before the current run began; null when the customer has never been elsewhere and
        was never absent), ``last_change_date`` (the snapshot date the current run began:
        when the customer entered the current segment, or came back after an absence),
        ``periods_in_segment`` (snapshots in the current run, ``as_of`` included); ordered by
        ``customer_id``, so that a file written from it has one row order on every engine
        and run (a join's order is the engine's: two exports of one list differed in it).

    Notes
    -----
    A run is broken by a change of segment or by an absence (a snapshot of the scheme at
    which the customer has no assignment). A returning customer's ``previous_segment`` is
    their segment before the absence.
    """
    a = scheme_rows(assignments, scheme)
    available = snapshot_list(a)
    if not available:
        from segflow._suggest import scheme_hint

        schemes = assignments.select("scheme").distinct().to_pandas()["scheme"].astype(str)
        raise SegflowError(f"scheme {scheme!r} has no assignments; {scheme_hint(scheme, schemes)}")
    day = as_date(as_of) if as_of is not None else available[-1]
    if day not in available:
        raise SegflowError(f"scheme {scheme!r} has no snapshot at {day}; latest is {available[-1]}")
    dates = [d for d in available if d <= day]
    d = _dates_table(dates)
    r = a.join(d, a.snapshot_date == d.d_snapshot).select(
        "customer_id", "segment", "segment_rank", "snapshot_date", idx=_.d_idx
    )
    w = ibis.window(group_by="customer_id", order_by="idx")
    r = r.mutate(prev_seg=r.segment.lag().over(w), prev_idx=r.idx.lag().over(w))
    starts = r.filter(r.prev_seg.isnull() | (r.segment != r.prev_seg) | (r.idx != r.prev_idx + 1))
    last_start = starts.mutate(
        rn=ibis.row_number().over(ibis.window(group_by="customer_id", order_by=ibis.desc("idx")))
    ).filter(_.rn == 0)
    last_start = last_start.select(
        s_cid=_.customer_id,
        previous_segment=_.prev_seg,
        last_change_date=_.snapshot_date,
        s_idx=_.idx,
    )
    current = r.filter(r.idx == len(dates) - 1)
    j = current.join(last_start, current.customer_id == last_start.s_cid)
    return j.select(
        customer_id=j.customer_id,
        scheme=ibis.literal(scheme),
        snapshot_date=j.snapshot_date,
        segment=j.segment,
        segment_rank=j.segment_rank,
        previous_segment=j.previous_segment,
        last_change_date=j.last_change_date,
        periods_in_segment=(j.idx - j.s_idx + 1).cast("int64"),
    ).order_by("customer_id")


#: The comment on a store table written by :func:`write_segment_list`: only such a table is
#: replaced by a later export of the same name (never a table of the store's own).
SEGMENT_LIST_TABLE = "segflow segment list"


def write_segment_list(
    table: ibis.Table | pa.Table,
    target: str | Path,
    *,
    format: Literal["csv", "parquet", "table"] | None = None,
    store: Store | None = None,
    private: bool = False,
) -> int:
    """Write a segment list to a CSV or Parquet file, or to a table of the store.

    Parameters
    ----------
    table : ibis.Table or pyarrow.Table
        Usually :func:`segment_list`.
    target : str or Path
        File path, or the table name when ``format="table"``.
    format : {"csv", "parquet", "table"}, optional
        Default: from the file suffix (``.csv``, ``.parquet``).
    store : Store, optional
        Needed for ``format="table"``: the table is created, or replaced when an earlier
        export wrote it. A name that is not letters, digits and underscores, or that names
        one of the store's own tables (``customers``, ``segment_spells``...), raises
        :class:`InputError`.
    private : bool, default False
        The ids are in clear and may be e-mail addresses or phone numbers (``--pii
        include``): a file is written with mode ``0600`` (:mod:`segflow._private`).

    Returns
    -------
    int
        Rows written.

    Notes
    -----
    CSV output neutralises spreadsheet formulas in text columns (see
    :func:`neutralise_formulas`); Parquet and database tables keep values unchanged.
    """
    data = table if isinstance(table, pa.Table) else table.to_pyarrow()
    fmt = format or _format_from_suffix(Path(target))
    if fmt == "csv":
        write_csv(data, target, private=private)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        from segflow._private import private_target

        Path(target).parent.mkdir(parents=True, exist_ok=True)
        private_target(target, private)
        pq.write_table(data, str(target))
    elif fmt == "table":
        if store is None:
            raise SegflowError("writing to a database table needs store=")
        from segflow.exports._targets import _check_ident

        name = _check_ident(str(target))
        with store.transaction() as con:
            found = con.execute("SELECT comment FROM duckdb_tables() WHERE schema_name = 'main' "
                                "AND lower(table_name) = lower(?)", [name]).fetchone()
            if found is not None and found[0] != SEGMENT_LIST_TABLE:
                raise InputError(f"table {name!r} is one of the store's own tables, or was not "
                                 "written by this version's segflow export: choose another "
                                 f"name (a list an older segflow wrote: DROP TABLE {name} first)")
            store.replace(name, data, con=con)
            con.execute(f"COMMENT ON TABLE \"{name}\" IS '{SEGMENT_LIST_TABLE}'")
    else:
        raise SegflowError(f"unknown export format {fmt!r}; expected csv, parquet or table")
    return data.num_rows


def _format_from_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise SegflowError(
        f"cannot tell the export format from {path.name!r}; use .csv or .parquet, or pass format="
    )
