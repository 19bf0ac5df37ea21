"""Migration read from the stored change rows (``segment_spells``) instead of per-snapshot rows.

A spell is one customer in one segment over consecutive computed snapshots (see
:mod:`segflow.store._spells`). Between two consecutive snapshots of a list ``dates`` a
customer either stays inside one spell (a diagonal cell), or one spell ends and the next
begins (a move, an exit ``(gone)`` or an entry ``(new)``). So all-pair transition counts
need the spells only: stays are counted from where spells start and end on the list (a
running sum over a few rows per segment), moves by joining the spells that end at pair
``k`` with those that start at ``k + 1``. Nothing is expanded to one row per snapshot.

The results equal those of the per-snapshot functions on the view ``segment_assignments``
(tests compare them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

import ibis
import pandas as pd
from ibis import _

from segflow._dates import as_date
from segflow.errors import SegflowError
from segflow.migration._pairs import GONE, NEW, _show_dates

if TYPE_CHECKING:
    from segflow.store import Store


def has_spells(source: object) -> bool:
    """Whether ``source`` is a store holding change rows (schema version 5 or later)."""
    tables = getattr(source, "tables", None)
    return callable(tables) and "segment_spells" in tables()


def spell_snapshots(store: Store, scheme: str) -> list[dt.date]:
    """The snapshot dates of ``scheme`` at which at least one customer is assigned."""
    from segflow.store._spells import assigned_snapshots

    return assigned_snapshots(store.raw, scheme)


def _indexed(spells: ibis.Table, dates: Sequence[dt.date]) -> ibis.Table:
    """Spells with ``i0``/``i1``: the first and last index in ``dates`` they cover (spells
    covering none of them are left out)."""
    far = ibis.literal(dt.date(9999, 12, 31), "date")
    end = spells.valid_to.fill_null(far)
    i0 = sum((spells.valid_from > ibis.literal(d, "date")).cast("int64") for d in dates)
    covered = sum((end > ibis.literal(d, "date")).cast("int64") for d in dates)
    out = spells.mutate(i0=i0, i1=covered - 1)
    return out.filter(out.i0 <= out.i1)


def spell_cell_counts(store: Store, scheme: str, dates: Sequence[dt.date]) -> pd.DataFrame:
    """Per consecutive pair of ``dates`` and cell: customers, and the segments' ranks.

    The same frame as :func:`segflow.migration._pairs.cell_counts` without revenue or value
    (columns ``pair, from_date, to_date, from_segment, to_segment, customers, from_rank,
    to_rank``; non-empty cells only), computed from ``segment_spells``.
    """
    dates = sorted({as_date(d) for d in dates})
    if len(dates) < 2:
        raise SegflowError("a transition needs two snapshot dates; got " + _show_dates(dates))
    n = len(dates)
    sp = store.table("segment_spells")
    sp = _indexed(sp.filter(sp.scheme == scheme), dates).select(
        "customer_id", "segment", "segment_rank", "i0", "i1"
    )
    # stays: a spell covering indexes i0..i1 stays in its segment at pairs i0 .. i1 - 1
    starts = sp.group_by("segment", k=sp.i0).agg(n=_.count()).execute()
    ends = sp.group_by("segment", k=sp.i1).agg(n=_.count()).execute()
    grid = pd.MultiIndex.from_product(
        [sorted(set(starts["segment"]) | set(ends["segment"])), range(n)], names=["segment", "k"]
    )
    began = starts.set_index(["segment", "k"])["n"].reindex(grid, fill_value=0)
    ended = ends.set_index(["segment", "k"])["n"].reindex(grid, fill_value=0)
    active = began.groupby(level=0).cumsum() - ended.groupby(level=0).cumsum()  # spells i0<=k<i1
    stays = active.rename("customers").reset_index()
    stays = stays[(stays["customers"] > 0) & (stays["k"] < n - 1)]
    stays = pd.DataFrame({"pair": stays["k"], "from_segment": stays["segment"],
                          "to_segment": stays["segment"], "customers": stays["customers"]})
    # moves: the spell ending at k against the one starting at k + 1 (or none: gone / new)
    left = sp.filter(sp.i1 < n - 1).select(l_cid=_.customer_id, pair=_.i1, from_segment=_.segment)
    right = sp.filter(sp.i0 >= 1).select(r_cid=_.customer_id, r_pair=_.i0 - 1, to_segment=_.segment)
    j = left.outer_join(right, [left.l_cid == right.r_cid, left.pair == right.r_pair])
    moves = j.select(
        pair=ibis.coalesce(j.pair, j.r_pair),
        from_segment=j.from_segment.fill_null(NEW),
        to_segment=j.to_segment.fill_null(GONE),
    ).group_by("pair", "from_segment", "to_segment").agg(customers=_.count()).execute()
    out = pd.concat([stays, moves], ignore_index=True)
    out = out.groupby(["pair", "from_segment", "to_segment"], as_index=False)["customers"].sum()
    ranks = sp.group_by("segment").agg(rank=_.segment_rank.min()).execute()
    ranks = ranks.set_index("segment")["rank"]
    out["pair"] = out["pair"].astype("int64")
    out["customers"] = out["customers"].astype("int64")
    out["from_rank"] = out["from_segment"].map(ranks)
    out["to_rank"] = out["to_segment"].map(ranks)
    out.insert(1, "from_date", [dates[k] for k in out["pair"]])
    out.insert(2, "to_date", [dates[k + 1] for k in out["pair"]])
    return out.sort_values(["pair", "from_segment", "to_segment"]).reset_index(drop=True)


def spell_segment_list(store: Store, scheme: str, day: dt.date) -> ibis.Table | None:
    """:func:`segflow.exports.segment_list` at ``day`` read from the spells, or ``None`` when
    the scheme's snapshots up to ``day`` were computed under more than one scheme version
    (a version change starts a new spell even where the segment is unchanged; the view
    gives the exact answer then).

    Current segment: the spell covering ``day``; ``last_change_date``: its ``valid_from``;
    ``previous_segment``: the segment of the customer's spell before it (before an absence,
    too); ``periods_in_segment``: the scheme's computed snapshots from ``valid_from`` to
    ``day``.
    """
    versions = store.raw.execute(
        "SELECT count(DISTINCT scheme_version) FROM segment_snapshots WHERE scheme = ? AND "
        "snapshot_date <= ?", [scheme, day]
    ).fetchone()[0]
    if versions > 1:
        return None
    snaps = store.table("segment_snapshots")
    snaps = snaps.filter((snaps.scheme == scheme) & (snaps.snapshot_date <= day))
    sp = store.table("segment_spells")
    sp = sp.filter((sp.scheme == scheme) & (sp.valid_from <= day))
    w = ibis.window(group_by="customer_id", order_by="valid_from")
    sp = sp.mutate(previous_segment=sp.segment.lag().over(w))
    far = ibis.literal(dt.date(9999, 12, 31), "date")
    cur = sp.filter(sp.valid_to.fill_null(far) > day)
    counted = cur.join(snaps, snaps.snapshot_date >= cur.valid_from).group_by(
        c_cid=cur.customer_id).agg(periods=_.count())
    j = cur.join(counted, cur.customer_id == counted.c_cid)
    return j.select(
        customer_id=j.customer_id,
        scheme=ibis.literal(scheme),
        snapshot_date=ibis.literal(day, "date"),
        segment=j.segment,
        segment_rank=j.segment_rank,
        previous_segment=j.previous_segment,
        last_change_date=j.valid_from,
        periods_in_segment=j.periods.cast("int64"),
    )


def spell_runs(
    store: Store, scheme: str
) -> tuple[list[dt.date], ibis.Table, ibis.Table] | None:
    """The runs of :func:`segflow.migration.customer_paths` over all snapshots of ``scheme``,
    from the spells: the snapshot dates, the runs (``customer_id, run_no, segment, length,
    first, last``) and one row per run for the path strings (``customer_id, idx, gap,
    segment, run_no, last_idx``). ``None`` when the scheme's snapshots span several scheme
    versions (the view is exact then)."""
    versions = store.raw.execute(
        "SELECT count(DISTINCT scheme_version) FROM segment_snapshots WHERE scheme = ?", [scheme]
    ).fetchone()[0]
    if versions > 1:
        return None
    dates = spell_snapshots(store, scheme)
    if not dates:
        from segflow._suggest import scheme_hint
        from segflow.store._spells import assigned_schemes

        schemes = assigned_schemes(store.raw)
        raise SegflowError(f"scheme {scheme!r} has no assignments; {scheme_hint(scheme, schemes)}")
    sp = store.table("segment_spells")
    sp = _indexed(sp.filter(sp.scheme == scheme), dates)
    w = ibis.window(group_by="customer_id", order_by="i0")
    sp = sp.mutate(
        run_no=ibis.row_number().over(w) + 1,
        prev_last=sp.i1.lag().over(w),
        last_idx=sp.i1.max().over(ibis.window(group_by="customer_id")),
    )
    runs = sp.select("customer_id", "run_no", "segment", length=(sp.i1 - sp.i0 + 1),
                     first=sp.i0, last=sp.i1)
    starts = sp.select("customer_id", "segment", "run_no", "last_idx", idx=sp.i0,
                       gap=sp.prev_last.notnull() & (sp.i0 != sp.prev_last + 1))
    return dates, runs, starts
