"""Read the stored aggregates back in the shapes the report and the library use.

Every reader returns the same columns as the direct computation it replaces (named in its
docstring), so a caller can switch between them; a test compares the two on demo data.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from segflow.store import Store
from segflow.summaries._write import cell_direction

if TYPE_CHECKING:
    from segflow.migration import TransitionMatrix
    from segflow.segments import SegmentProfile


def summaries_run(store: Store) -> str | None:
    """The run whose aggregates are stored, when they describe the stored results: that run is
    the latest successful ``run``, or every successful ``run`` since computed nothing (their
    run log says ``snapshots_computed: 0``). Else None: the aggregates are missing or older
    than the assignments (a later run changed them, or a run failed or was killed after
    committing its segments: the next run computes those again), so callers compute."""
    names = store.tables()
    if "summary_segments" not in names:
        return None
    row = store.raw.execute("SELECT any_value(run_id) FROM summary_segments").fetchone()
    stored = row[0] if row else None
    if stored is None:
        return None
    later = store.raw.execute(
        "SELECT run_id, params FROM runs WHERE command = 'run' AND status = 'ok' AND started_at >= "
        "(SELECT max(started_at) FROM runs WHERE run_id = ? AND status = 'ok') ORDER BY started_at",
        [stored],
    ).fetchall()
    if not later or later[0][0] != stored:
        return None  # the aggregates' run is not a successful run of the log
    for _, params in later[1:]:
        if json.loads(params or "{}").get("snapshots_computed") != 0:
            return None  # a later run changed the results
    if "segment_snapshots" in names and store.raw.execute(
        "SELECT count(*) FROM segment_snapshots WHERE run_id IN "
        "(SELECT run_id FROM runs WHERE status <> 'ok')"
    ).fetchone()[0]:
        return None  # a run that failed after committing its segments changed them
    return stored


def _sql(store: Store, query: str, params: list[Any]) -> pd.DataFrame:
    return store.sql(query, params).to_pandas()


def segment_table(store: Store, scheme: str, snapshot: dt.date) -> pd.DataFrame:
    """As :func:`segflow.report._queries.segment_sizes`: ``segment, segment_rank, customers,
    share, revenue_12m, revenue_share`` (plus ``revenue_all_time``), by rank then size."""
    out = _sql(store, "SELECT segment, segment_rank, customers, share, revenue_12m, revenue_share, "
               "revenue_all_time FROM summary_segments WHERE scheme = ? AND snapshot_date = ?",
               [scheme, snapshot])
    out = out.sort_values(["segment_rank", "customers", "segment"], ascending=[True, False, True])
    return out.reset_index(drop=True)


def value_table(store: Store, scheme: str, snapshot: dt.date) -> pd.DataFrame | None:
    """As :func:`segflow.report._queries.value_by_segment` (``segment, segment_rank,
    customers, mean_p_alive, expected_purchases, clv, mean_clv, clv_share``); None when no
    CLV scores are stored at ``snapshot``."""
    out = _sql(store, "SELECT segment, segment_rank, customers, mean_p_alive, expected_purchases, clv, "
               "mean_clv, clv_share FROM summary_segments WHERE scheme = ? AND snapshot_date = ? "
               "AND scored_customers IS NOT NULL", [scheme, snapshot])
    if out.empty:
        return None
    out = out.sort_values(["segment_rank", "customers", "segment"], ascending=[True, False, True])
    return out.reset_index(drop=True)


def _cells(store: Store, scheme: str, pairs: Sequence[tuple[dt.date, dt.date]]) -> pd.DataFrame:
    if not pairs:
        return pd.DataFrame()
    cond = " OR ".join("(from_date = ? AND to_date = ?)" for _ in pairs)
    params: list[Any] = [scheme] + [d for p in pairs for d in p]
    return _sql(store, "SELECT from_date, to_date, from_segment, to_segment, from_rank, to_rank, customers, "
                f"revenue, revenue_12m, clv FROM summary_transitions WHERE scheme = ? AND ({cond})", params)


def movement_table(store: Store, scheme: str, from_date: dt.date, to_date: dt.date) -> pd.DataFrame:
    """As :func:`segflow.report._movement.movement_cells`: one row per cell with
    ``from_segment, to_segment, from_rank, to_rank, customers, revenue_12m, clv, direction``."""
    out = _cells(store, scheme, [(from_date, to_date)])
    out = out.drop(columns=["from_date", "to_date", "revenue"])
    out["clv"] = out["clv"].fillna(0.0)
    out["direction"] = [cell_direction(r) for r in out.itertuples()]
    out = out.sort_values(["customers", "from_segment", "to_segment"], ascending=[False, True, True])
    return out.reset_index(drop=True)


def value_moved_table(store: Store, scheme: str, from_date: dt.date, to_date: dt.date) -> pd.DataFrame | None:
    """Per transition cell from ``from_date`` to ``to_date``: ``from_segment, to_segment,
    customers, clv_moved, mean_clv`` (the sum and mean of the 52-week CLV of the cell's scored
    customers; null when none is scored), sorted by ``clv_moved`` (descending, nulls last),
    then the segments: the answer of the dashboard's CLV moved, which takes the CLV at the
    latest scored snapshot. None when the stored cells cannot give it: ``to_date`` is not the
    latest snapshot with scores (model ``bgnbd_gg``), or the pair is not stored, or its cells
    lack scored counts (written by an older segflow)."""
    from segflow.summaries._write import CLV_MODEL

    latest = store.raw.execute("SELECT max(snapshot_date) FROM customer_scores WHERE model = ?",
                               [CLV_MODEL]).fetchone()[0]
    if latest is None or latest != to_date:
        return None
    cells = _sql(store, "SELECT from_segment, to_segment, customers, clv, scored_customers FROM "
                 "summary_transitions WHERE scheme = ? AND from_date = ? AND to_date = ?",
                 [scheme, from_date, to_date])
    if cells.empty or cells["scored_customers"].isna().any():
        return None
    scored = cells.pop("scored_customers").astype("int64")
    clv = cells.pop("clv").astype(float)
    cells["customers"] = cells["customers"].astype("int64")
    cells["clv_moved"] = clv.where(scored > 0)
    cells["mean_clv"] = (clv / scored).where(scored > 0)
    out = cells.sort_values(["clv_moved", "from_segment", "to_segment"], ascending=[False, True, True],
                            na_position="last")
    return out.reset_index(drop=True)


def transition_table(store: Store, scheme: str, from_date: dt.date, to_date: dt.date, *,
                     interval: str = "dirichlet", level: float = 0.95) -> TransitionMatrix:
    """As :func:`segflow.migration.transition_matrix` with transactions (counts and each
    cell's net revenue between the two snapshots), from the stored cells; ``interval`` and
    ``level`` as there. ``from_date``/``to_date`` must be a stored pair: consecutive
    snapshots, or any snapshot and the latest (SegflowError otherwise)."""
    from segflow.errors import SegflowError
    from segflow.migration import TransitionMatrix

    cells = _cells(store, scheme, [(from_date, to_date)])
    if cells.empty:
        raise SegflowError(f"no stored transitions of {scheme!r} from {from_date} to {to_date}")
    cells = cells.drop(columns=["revenue_12m", "clv"])
    cells["customers"] = cells["customers"].astype(int)
    return TransitionMatrix(cells, scheme=scheme, from_date=from_date, to_date=to_date, order=None,
                            interval=interval, level=level)  # type: ignore[arg-type]


def pooled_table(store: Store, scheme: str, dates: Sequence[dt.date]) -> TransitionMatrix:
    """As :func:`segflow.migration.pooled_transition_matrix` over ``dates`` (consecutive
    stored snapshots, unweighted), with ``pair_cells`` for the alluvial chart."""
    from segflow.migration import TransitionMatrix

    dates = sorted(dates)
    pairs = list(zip(dates[:-1], dates[1:], strict=True))
    cells = _cells(store, scheme, pairs).drop(columns=["revenue", "revenue_12m", "clv"])
    index = {d: k for k, d in enumerate(dates)}
    cells["pair"] = cells["from_date"].map(index).astype(int)
    cells["customers"] = cells["customers"].astype(int)
    # the same ranks for every pair (the best rank a segment has in the range)
    ranks = pd.concat([cells[["from_segment", "from_rank"]].set_axis(["s", "r"], axis=1),
                       cells[["to_segment", "to_rank"]].set_axis(["s", "r"], axis=1)]).groupby("s")["r"].min()
    cells["from_rank"] = cells["from_segment"].map(ranks)
    cells["to_rank"] = cells["to_segment"].map(ranks)
    cells = cells.sort_values(["pair", "from_segment", "to_segment"]).reset_index(drop=True)
    cols = ["pair", "from_date", "to_date", "from_segment", "to_segment", "customers", "from_rank", "to_rank"]
    cells = cells[cols]
    return TransitionMatrix(cells, scheme=scheme, from_date=dates[0], to_date=dates[-1], order=None,
                            interval="dirichlet", level=0.95, pairs=len(dates) - 1, pair_cells=cells)


def profile_table(store: Store, scheme: str) -> SegmentProfile | None:
    """The stored :class:`~segflow.segments.SegmentProfile` of ``scheme`` (latest features
    snapshot): table, means, medians, standardised differences and base statistics (no
    categorical make-up). None when none is stored."""
    from segflow.segments import SegmentProfile

    seg = _sql(store, "SELECT snapshot_date, segment, name, suggested_name, distinguishing FROM "
               "summary_profile_segments WHERE scheme = ?", [scheme])
    if seg.empty:
        return None
    snapshot = seg["snapshot_date"].iloc[0]
    long = _sql(store, "SELECT segment, feature, mean, median, std_diff, base_mean, base_std, base_median "
                "FROM summary_profiles WHERE scheme = ? AND snapshot_date = ?", [scheme, snapshot])
    sizes = segment_table(store, scheme, snapshot).set_index("segment")
    features = list(dict.fromkeys(long["feature"]))
    table = seg.drop(columns="snapshot_date").set_index("segment")
    table = table.join(sizes[["segment_rank", "customers", "share"]]).rename(columns={"customers": "size"})
    table = table.sort_values(["segment_rank", "segment"]).reset_index()
    order = list(table["segment"])

    def wide(col: str) -> pd.DataFrame:
        w = long.pivot(index="segment", columns="feature", values=col).reindex(index=order, columns=features)
        return w.rename_axis("segment").rename_axis(None, axis=1).astype(float)

    first = long.drop_duplicates("feature").set_index("feature").reindex(features)
    base = pd.DataFrame(np.vstack([first["base_mean"], first["base_std"], first["base_median"]]),
                        index=["mean", "std", "median"], columns=features).astype(float)
    table["value"] = np.nan
    table["revenue_share"] = np.nan
    table = table[["segment", "segment_rank", "size", "share", "value", "revenue_share", "suggested_name",
                   "name", "distinguishing"]]
    makeup = pd.DataFrame(columns=["segment", "column", "level", "count", "share", "base_share"])
    return SegmentProfile(table, wide("mean"), wide("median"), wide("std_diff"), base, makeup, None)


def audit_table(store: Store) -> pd.DataFrame | None:
    """The audit stored by the latest run (columns of :meth:`AuditReport.to_pandas`), or None."""
    if "summary_audit" not in store.tables():
        return None
    out = _sql(store, 'SELECT "check", "table", severity, count, total, share, examples, advice '
               "FROM summary_audit", [])
    return out if not out.empty else None

