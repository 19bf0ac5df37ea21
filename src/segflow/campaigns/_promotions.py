"""Promotion sensitivity by segment: how much of each segment's buying is done with a
promotion, and how each segment responded to past campaigns.

Transactions made with a promotion are those with ``promo_code`` not NULL (and not empty).
Sums per customer and per segment are computed in the engine.
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pandas as pd
from ibis import _

from segflow._result import TableResult
from segflow.campaigns import _stats
from segflow.campaigns._store import TableSource, segments_at
from segflow.features._purchase_def import is_purchase_line

if TYPE_CHECKING:
    import plotly.graph_objects as go


class PromotionSensitivity(TableResult):
    """Per segment: the share of transactions and of revenue made with a promotion.

    Columns of ``to_pandas()``: ``segment, segment_rank, customers, buyers, transactions,
    promo_transactions, promo_share`` (of transactions) with ``promo_share_low/high``
    (cluster-robust: customers are the sampling unit), ``revenue, promo_revenue,
    promo_revenue_share``, ``promo_buyers`` and ``promo_buyer_share`` (share of buyers with
    at least one promotional purchase, Wilson interval).
    """

    def __init__(self, table: pd.DataFrame, *, scheme: str, snapshot: dt.date,
                 window_days: int) -> None:
        self.table = table
        self.scheme = scheme
        self.snapshot = snapshot
        self.window_days = window_days

    def to_pandas(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "scheme": self.scheme, "snapshot": self.snapshot.isoformat(),
                "window_days": self.window_days}

    def figure(self) -> go.Figure:
        import plotly.graph_objects as go

        t = self.table
        fig = go.Figure()
        fig.add_bar(x=t.segment, y=t.promo_share, name="transactions with a promotion",
                    error_y=dict(type="data", symmetric=False,
                                 array=t.promo_share_high - t.promo_share,
                                 arrayminus=t.promo_share - t.promo_share_low))
        fig.add_bar(x=t.segment, y=t.promo_revenue_share, name="revenue with a promotion")
        fig.update_layout(title=f"Promotion share by {self.scheme} segment, {self.window_days} "
                          f"days before {self.snapshot}", barmode="group",
                          yaxis_tickformat=".0%", height=380)
        return fig

    def __repr__(self) -> str:
        return (f"PromotionSensitivity(scheme={self.scheme!r}, snapshot={self.snapshot}, "
                f"segments={len(self.table)})")


def promotion_sensitivity(
    source: TableSource,
    scheme: str,
    snapshot: dt.date,
    *,
    window_days: int = 365,
    level: float = 0.95,
) -> PromotionSensitivity:
    """Share of each segment's purchases made with a promotion, before ``snapshot``.

    Parameters
    ----------
    source : Store or Engine
    scheme : str
    snapshot : datetime.date
        Segments as assigned at this snapshot; transactions with
        ``snapshot - window_days <= ts < snapshot`` (nothing on or after the snapshot).
    window_days : int, default=365
    level : float, default=0.95

    Notes
    -----
    Transactions are purchase lines (not returns, amount >= 0: segflow's one purchase
    definition); revenue is net of returns.
    The interval of ``promo_share`` treats customers, not transactions, as independent: it
    is the ratio-estimator (delta method) interval
    ``r +- z * sqrt(sum (p_i - r t_i)^2 / (n (n - 1))) / mean(t_i)`` over the segment's
    buyers, where ``p_i`` and ``t_i`` are a buyer's promotional and total transactions.
    """
    a = segments_at(source, scheme, snapshot)
    t = source.table("transactions")
    hi = ibis.timestamp(dt.datetime.combine(snapshot, dt.time()))
    lo = ibis.timestamp(dt.datetime.combine(snapshot - dt.timedelta(days=window_days), dt.time()))
    t = t.filter(t.customer_id.notnull() & (t.ts >= lo) & (t.ts < hi))
    promo = t.promo_code.notnull() & (t.promo_code.strip() != "")
    purchase = is_purchase_line(t)  # the one purchase definition (not a return, amount >= 0)
    t = t.mutate(tx=purchase.cast("float64"), ptx=(purchase & promo).cast("float64"),
                 rev=t.amount.cast("float64"),
                 prev=ibis.ifelse(promo, t.amount.cast("float64"), 0.0))
    per = t.group_by("customer_id").agg(tx=_.tx.sum(), ptx=_.ptx.sum(), rev=_.rev.sum(),
                                        prev=_.prev.sum())
    j = a.left_join(per, "customer_id")
    j = j.mutate(tx=j.tx.fill_null(0.0), ptx=j.ptx.fill_null(0.0), rev=j.rev.fill_null(0.0),
                 prev=j.prev.fill_null(0.0))
    agg = j.group_by("segment").agg(
        segment_rank=_.segment_rank.min(),
        customers=_.count(),
        buyers=(_.tx > 0).cast("int64").sum(),
        promo_buyers=(_.ptx > 0).cast("int64").sum(),
        transactions=_.tx.sum(),
        promo_transactions=_.ptx.sum(),
        revenue=_.rev.sum(),
        promo_revenue=_.prev.sum(),
        s_pp=(_.ptx * _.ptx).sum(),
        s_pt=(_.ptx * _.tx).sum(),
        s_tt=(_.tx * _.tx).sum(),
    ).to_pandas()
    out = _shares(agg, level)
    if out.empty:
        warnings.warn(f"no assignments for scheme {scheme!r} at {snapshot}", UserWarning,
                      stacklevel=2)
    return PromotionSensitivity(out, scheme=scheme, snapshot=snapshot, window_days=window_days)


def _shares(agg: pd.DataFrame, level: float) -> pd.DataFrame:
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + level / 2))
    n = agg.buyers.to_numpy(float)  # customers without transactions add 0 to every sum
    tx, ptx = agg.transactions.to_numpy(float), agg.promo_transactions.to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = ptx / tx
        ss = agg.s_pp - 2 * r * agg.s_pt + r * r * agg.s_tt  # sum over buyers of (p - r t)^2
        se = np.sqrt(np.maximum(ss.to_numpy(float), 0.0) / (n * (n - 1))) / (tx / n)
        revenue_share = agg.promo_revenue / agg.revenue.where(agg.revenue != 0)
        buyer_share = agg.promo_buyers / agg.buyers.where(agg.buyers > 0)
    out = agg.drop(columns=["s_pp", "s_pt", "s_tt"]).copy()
    out["promo_share"] = r
    out["promo_share_low"] = np.clip(r - z * se, 0.0, 1.0)
    out["promo_share_high"] = np.clip(r + z * se, 0.0, 1.0)
    out["promo_revenue_share"] = revenue_share
    out["promo_buyer_share"] = buyer_share
    lo, hi = _stats.wilson_interval(agg.promo_buyers, agg.buyers, level)
    out["promo_buyer_share_low"], out["promo_buyer_share_high"] = lo, hi
    out[["transactions", "promo_transactions"]] = out[["transactions", "promo_transactions"]].astype("int64")
    out = out.sort_values(["segment_rank", "segment"], na_position="last").reset_index(drop=True)
    return out


def promotion_response(
    source: TableSource,
    scheme: str,
    *,
    campaigns: list[str] | None = None,
    control: str = "control",
    window_days: int = 30,
    level: float = 0.95,
) -> pd.DataFrame:
    """How each segment responded to past campaigns: the purchase-rate lift per segment
    (segment at the snapshot before each campaign) for every campaign, one table.

    Columns: ``campaign_id``, ``snapshot`` plus the columns of :class:`EffectReport` (rows of the
    ``purchased`` and ``revenue`` outcomes, treated arms and control). Campaigns without a
    control arm or without a snapshot before them are skipped with a warning.
    """
    from segflow.campaigns._effect import read_out
    from segflow.campaigns._store import campaign_window, exposure_responses, snapshot_before
    from segflow.errors import InputError, Place

    if campaigns is None:
        e = source.table("campaign_exposures")
        campaigns = sorted(e.select("campaign_id").distinct().to_pandas()["campaign_id"].dropna())
    frames = []
    for cid in campaigns:  # one read-out per campaign (few), each aggregated in the engine
        try:
            snap = snapshot_before(source, scheme, campaign_window(source, cid)[0])
            resp = exposure_responses(source, cid, window_days=window_days, scheme=scheme,
                                      snapshot=snap)
            rep = read_out(resp, arm_col="arm", control=control,  # one row per customer
                           outcomes=["purchased", "revenue"], by=["segment"], level=level,
                           source=Place(f"campaign {cid}"))
        except InputError as exc:
            warnings.warn(f"campaign {cid!r} skipped: {exc}", UserWarning, stacklevel=2)
            continue
        frames.append(rep.to_pandas().assign(campaign_id=cid, snapshot=snap))
    if not frames:
        return pd.DataFrame(columns=["campaign_id"])
    out = pd.concat(frames, ignore_index=True)
    first = ["campaign_id", "snapshot"]
    return out[[*first, *[c for c in out.columns if c not in first]]]
