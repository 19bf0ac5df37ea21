"""Migration lift: did the campaign move customers to better segments, or keep them from
lapsing, compared with the control arm?

For every customer of the campaign we look up their segment of one scheme at the snapshot
before the campaign and at the snapshot after it. The counts per (arm, from, to) are computed
in the engine; per arm, the transition matrix (row shares) and the share of customers that
moved up, stayed, moved down or lapsed follow from those counts, with Wilson intervals; the
treated-minus-control difference of each share has a Newcombe interval and a z-test p-value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from ibis import _

from segflow._result import TableResult
from segflow.campaigns._store import (
    GONE,
    NEW,
    TableSource,
    campaign_cohort,
    campaign_window,
    segments_at,
    snapshot_after,
    snapshot_before,
)
from segflow.errors import InputError

if TYPE_CHECKING:
    import ibis
    import plotly.graph_objects as go

MOVEMENTS = ["up", "same", "down", "lapsed", "entered"]

#: Segments of the built-in schemes that mean a customer has lapsed: lifecycle ``inactive``
#: (no purchase in the active window) and RFM ``Lost``. Moving into one (or out of the base,
#: ``(gone)``) from any other segment is the movement ``lapsed``.
LAPSED_SEGMENTS: tuple[str, ...] = ("inactive", "Lost")


class MigrationLift(TableResult):
    """Transitions of treated vs control customers between two snapshots of a scheme.

    Attributes
    ----------
    counts : pandas.DataFrame
        ``arm, from_segment, to_segment, from_rank, to_rank, customers, movement``.
    shares : pandas.DataFrame
        Per arm and movement (``up``: to a better-ranked segment, ``same``, ``down``: to a
        worse-ranked segment, ``lapsed``: into a lapsed segment (:data:`LAPSED_SEGMENTS`,
        e.g. ``inactive``, ``Lost``) or out of the base (``(gone)``) from a segment that is
        not lapsed, ``entered``: not in the base before (``(new)``)): ``customers``, ``n`` (customers of
        the arm), ``share`` with ``share_low``/``share_high`` (Wilson), and for treated
        arms ``diff`` = share minus the control share with ``diff_low``/``diff_high``
        (Newcombe) and ``p_value`` (two-proportion z-test; Fisher's exact test for small
        cells). ``to_pandas()`` returns this table.
    lapsed_into : pandas.DataFrame
        The ``lapsed`` moves by segment they went into: ``arm, to_segment, customers, n,
        share`` (of the arm's customers).
    lapsed_segments : list of str
        The segment names counted as lapsed.
    before, after : datetime.date
        The two snapshots.
    """

    def __init__(self, counts: pd.DataFrame, shares: pd.DataFrame, *, campaign_id: str,
                 scheme: str, control: str, before: dt.date, after: dt.date, level: float,
                 lapsed_segments: list[str] | None = None) -> None:
        self.counts = counts
        self.lapsed_segments = list(lapsed_segments or [])
        lapsed = counts[counts.movement == "lapsed"]
        into = lapsed.groupby(["arm", "to_segment"], as_index=False)["customers"].sum()
        # a count, as `customers` (--json printed 182.0); astype also on an empty frame (nobody
        # lapsed), where map() would keep the arms' string dtype
        into["n"] = into.arm.map(counts.groupby("arm")["customers"].sum()).astype("int64")
        into["share"] = into.customers / into.n
        self.lapsed_into = into
        self.shares = shares
        self.campaign_id = campaign_id
        self.scheme = scheme
        self.control = control
        self.before = before
        self.after = after
        self.level = level

    def to_pandas(self) -> pd.DataFrame:
        return self.shares.copy()

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(campaign_id=self.campaign_id, scheme=self.scheme, control=self.control,
                   before=self.before.isoformat(), after=self.after.isoformat(), level=self.level,
                   lapsed_segments=self.lapsed_segments,
                   lapsed_into=self.lapsed_into.to_dict(orient="records"))
        return out

    def matrices(self) -> dict[str, pd.DataFrame]:
        """Row-normalised transition matrices (share of the from-segment's customers going
        to each to-segment) per arm, and ``"difference (<arm> - control)"`` for each treated
        arm. Rows and columns in segment-rank order."""
        c = self.counts
        order_from = _segment_order(c, "from")
        order_to = _segment_order(c, "to")
        out: dict[str, pd.DataFrame] = {}
        for arm, sub in c.groupby("arm", sort=False):
            m = sub.pivot_table(index="from_segment", columns="to_segment", values="customers",
                                aggfunc="sum", fill_value=0)
            m = m.reindex(index=order_from, columns=order_to, fill_value=0).astype(float)
            totals = m.sum(axis=1).replace(0, np.nan)
            out[str(arm)] = m.div(totals, axis=0)
        for arm in list(out):
            if arm != self.control and self.control in out:
                out[f"difference ({arm} - {self.control})"] = out[arm] - out[self.control]
        return out

    def figure(self) -> go.Figure:
        """Bars of the movement shares per arm with intervals."""
        from segflow.viz._campaigns import migration_lift_bars

        return migration_lift_bars(
            self.shares,
            title=f"Campaign {self.campaign_id}: {self.scheme} movement {self.before} → {self.after}",
        )

    def heatmaps(self) -> go.Figure:
        """Transition matrices per arm and their difference."""
        from segflow.viz._campaigns import transition_heatmaps

        return transition_heatmaps(self.matrices())

    def __repr__(self) -> str:
        return (f"MigrationLift(campaign={self.campaign_id!r}, scheme={self.scheme!r}, "
                f"{self.before} -> {self.after}, customers={int(self.counts.customers.sum())})")


def _segment_order(c: pd.DataFrame, side: str) -> list[str]:
    ranks = c.groupby(f"{side}_segment")[f"{side}_rank"].min()
    special = {NEW: -1e9, GONE: 1e9}
    key = {s: special.get(s, r if pd.notna(r) else 1e8) for s, r in ranks.items()}
    return sorted(key, key=lambda s: (key[s], s))


def migration_lift(
    source: TableSource,
    campaign_id: str,
    scheme: str,
    *,
    control: str = "control",
    before: dt.date | None = None,
    after: dt.date | None = None,
    level: float = 0.95,
    better: Literal["lower", "higher"] = "lower",
    lapsed: Sequence[str] | None = None,
    cohort: ibis.Table | None = None,
) -> MigrationLift:
    """Transition matrices of treated vs control customers around a campaign.

    Parameters
    ----------
    source : Store or Engine
    campaign_id : str
    scheme : str
        The segmentation scheme whose assignments are compared.
    control : str, default="control"
        Arm value of the control group.
    before, after : datetime.date, optional
        Snapshots to compare. Defaults: the latest snapshot on or before the first exposure,
        and the first snapshot strictly after the last exposure.
    level : float, default=0.95
    better : {"lower", "higher"}, default="lower"
        Which ``segment_rank`` is the better segment (segflow's schemes rank 1 = best).
        Moving to a better-ranked segment is ``up``, to a worse-ranked one ``down``.
    lapsed : sequence of str, optional
        Segments that mean "lapsed" (default :data:`LAPSED_SEGMENTS`: ``inactive``,
        ``Lost``); in a nested scheme the parent part counts (``"inactive / top 10%"``).
    cohort : ibis.Table, optional
        :func:`campaign_cohort` of the campaign when the caller has it (read here when None).

    Notes
    -----
    Customers absent from the base at ``before`` come from ``(new)`` (movement
    ``entered``). A move from a segment that is not lapsed into a lapsed one, or out of the
    base (``(gone)``, which segflow's runs rarely produce: customers stay in the base), is
    ``lapsed``; :attr:`MigrationLift.lapsed_into` names the segments.
    A move between two different segments where either rank is missing cannot be called up
    or down: it is counted as ``other``. Customers exposed in more than one arm are left
    out with a warning (see :func:`campaign_cohort`).
    """
    if before is None or after is None:
        start, end = campaign_window(source, campaign_id)
        before = before or snapshot_before(source, scheme, start)
        after = after or snapshot_after(source, scheme, end)
    if after <= before:
        raise InputError(f"the snapshot after ({after}) must come after the snapshot before ({before})")
    if cohort is None:
        cohort = campaign_cohort(source, campaign_id)
    b = segments_at(source, scheme, before).rename(from_segment="segment", from_rank="segment_rank")
    a = segments_at(source, scheme, after).rename(to_segment="segment", to_rank="segment_rank")
    j = cohort.left_join(b, "customer_id")
    j = j.select("customer_id", "arm", "from_segment", "from_rank")
    j = j.left_join(a, "customer_id")
    j = j.select(
        "arm",
        from_segment=j.from_segment.fill_null(NEW),
        to_segment=j.to_segment.fill_null(GONE),
        from_rank=j.from_rank,
        to_rank=j.to_rank,
    )
    counts = (
        j.group_by(["arm", "from_segment", "to_segment"])
        .agg(customers=_.count(), from_rank=_.from_rank.min(), to_rank=_.to_rank.min())
        .to_pandas()
    )
    if control not in set(counts.arm):
        raise InputError(f"campaign {campaign_id!r} has no customers in the control arm {control!r};"
                         f" arms: {sorted(set(counts.arm))}", column="arm")
    lapsed_names = list(LAPSED_SEGMENTS if lapsed is None else lapsed)
    counts["movement"] = _movement(counts, better, lapsed_names)
    counts = counts.sort_values(["arm", "from_segment", "to_segment"]).reset_index(drop=True)
    shares = _shares(counts, control, level)
    return MigrationLift(counts, shares, campaign_id=campaign_id, scheme=scheme, control=control,
                         before=before, after=after, level=level, lapsed_segments=lapsed_names)


def _is_lapsed(segments: pd.Series, lapsed: Sequence[str]) -> np.ndarray:
    names = set(lapsed)
    parent = segments.astype(str).str.split(" / ", n=1).str[0]
    return (segments.isin(names) | parent.isin(names)).to_numpy()


def _movement(c: pd.DataFrame, better: str, lapsed: Sequence[str] = LAPSED_SEGMENTS) -> np.ndarray:
    fr, to = c.from_rank.to_numpy(float), c.to_rank.to_numpy(float)
    sign = 1.0 if better == "lower" else -1.0
    with np.errstate(invalid="ignore"):
        gain = sign * (fr - to)  # > 0: moved to a better segment
    same_seg = (c.from_segment == c.to_segment).to_numpy()
    out = np.where(same_seg | (gain == 0), "same",
                   np.where(gain > 0, "up", np.where(gain < 0, "down", "other")))
    into = _is_lapsed(c.to_segment, lapsed) & ~_is_lapsed(c.from_segment, lapsed)
    out = np.where(into | (c.to_segment.to_numpy() == GONE), "lapsed", out)
    return np.where(c.from_segment.to_numpy() == NEW, "entered", out)


def _shares(counts: pd.DataFrame, control: str, level: float) -> pd.DataFrame:
    from segflow.campaigns import _stats  # SciPy: imported on first use

    arms = sorted(set(counts.arm), key=lambda a: (a != control, a))
    moves = [m for m in [*MOVEMENTS, "other"] if m in set(counts.movement) or m in MOVEMENTS[:4]]
    grid = counts.pivot_table(index="arm", columns="movement", values="customers", aggfunc="sum",
                              fill_value=0).reindex(index=arms, columns=moves, fill_value=0)
    s = grid.stack().rename("customers").reset_index()
    s["n"] = s.arm.map(grid.sum(axis=1))
    x, n = s.customers.to_numpy(float), s.n.to_numpy(float)
    s["share"] = x / n
    s["share_low"], s["share_high"] = _stats.wilson_interval(x, n, level)
    ctrl = s[s.arm == control].set_index("movement")
    x0 = s.movement.map(ctrl.customers).to_numpy(float)
    n0 = s.movement.map(ctrl.n).to_numpy(float)
    s["diff"] = s.share - x0 / n0
    s["diff_low"], s["diff_high"] = _stats.newcombe_interval(x, n, x0, n0, level)
    p = _stats.two_proportion_ztest(x, n, x0, n0)
    small = _stats.fisher_needed(x, n, x0, n0)
    if small.any():
        p[small] = _stats.fisher_pvalues(x[small], n[small], x0[small], n0[small])
    s["p_value"] = p
    is_ctrl = (s.arm == control).to_numpy()
    s.loc[is_ctrl, ["diff", "diff_low", "diff_high", "p_value"]] = np.nan
    return s[["arm", "movement", "customers", "n", "share", "share_low", "share_high", "diff",
              "diff_low", "diff_high", "p_value"]]
