"""The report for viewers (``segflow report --for viewer``): the server's small-cell rule.

A report handed to people who may only read aggregates (the server's ``viewer`` role) must
not show what the dashboard withholds from them: the value figures of segments, migration
cells and campaign arms of fewer than ``[server] min_cell_customers`` customers, and of the
rows withheld with them so that the total less the shown rows gives no small row away
(:mod:`segflow._disclosure`, the same functions the server applies). Counts stay.

Per section (the rest shows counts or whole-base figures only):

* segments: the 12-month revenue, predicted value and revenue share of the withheld segments
  (:func:`withheld_segments`: the segments table's rule at that snapshot) are blank; the
  change in revenue and in predicted value since the previous snapshot is left out for every
  segment (with the revenue of the other snapshot, it would give that snapshot's small
  segments away); the profiles leave out the withheld segments.
* predicted value: the CLV table blanks the same segments (:func:`withheld_segments` takes
  the CLV table's own small rows and complement, on ``clv``, whose total ``clv_share`` gives).
* campaigns: the forest plots of lift by segment draw the read-out as a viewer reads it
  (:func:`segflow._disclosure.withhold_small_arms`), and the transition shares by arm leave
  the same segments' rows blank (:func:`shown_migration`).
* summary: a headline's share of revenue only for a move of ``min_cell_customers`` customers
  or more into a segment not withheld; the revenue and predicted value of a playbook card
  holding a withheld segment blank (the card less its shown segments would be theirs); the
  revenue at stake only when the win-back card shows it; the predicted value moved to a
  worse segment only when those moves hold ``min_cell_customers`` customers or more, and
  never their revenue (the headlines give some of those moves' revenue).
"""

from __future__ import annotations

import copy
import datetime as dt
import html
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from segflow._disclosure import REVENUE_12M_DAYS, WITHHELD, scheme_known_rows, withhold_small_cells

if TYPE_CHECKING:
    from segflow.report._context import ReportContext

#: Columns of a segments or CLV table that are counts (never blanked).
COUNTS = ("segment", "segment_rank", "customers", "size", "share", "change_customers", "change_share", "action")


def rule_text(min_customers: int) -> str:
    """The statement at the top of a report for viewers."""
    return (f"Written for viewers: value figures (revenue, predicted value, profile means, campaign rates, "
            f"lifts and tests) of segments, moves and campaign arms of fewer than {min_customers} customers "
            "are left blank, and so are those of the smallest other segments while the blank ones hold "
            f"fewer than {min_customers} customers together (the total less the shown rows would give them "
            "away), as the dashboard does for its viewers ([server] min_cell_customers). Counts of customers "
            "are exact.")


def withheld_segments(ctx: ReportContext, scheme: str, snapshot: dt.date) -> dict[str, str]:
    """The segments of ``scheme`` at ``snapshot`` whose value figures a report for viewers
    withholds, with the reason; empty for other roles. Those the segments table withholds
    (:func:`segflow._disclosure.withhold_small_cells`, the 12-month revenue the figure that
    adds up to a total), and those the CLV table does (``clv``, whose total follows from
    ``clv_share``): one set for every table, chart and card of the report, since a figure
    shown in one would undo the other's complement."""
    if ctx.min_customers <= 1:
        return {}
    key = ("withheld", scheme, snapshot)
    if key not in ctx._cache:
        sizes = ctx.sizes(scheme, snapshot)
        shown = withhold_small_cells(sizes, "viewer", ctx.min_customers, complement="revenue_12m",
                                     known=scheme_known_rows(ctx.project, scheme, sizes, REVENUE_12M_DAYS))
        hidden = _reasons(shown)
        value = ctx.value(scheme, snapshot)
        if value is not None:
            by_clv = _reasons(withhold_small_cells(value, "viewer", ctx.min_customers, complement="clv"))
            hidden.update({s: w for s, w in by_clv.items() if s not in hidden})
        ctx._cache[key] = hidden
    return ctx._cache[key]


def _reasons(shown: pd.DataFrame) -> dict[str, str]:
    return {str(s): w for s, w in zip(shown["segment"], shown[WITHHELD], strict=True) if isinstance(w, str)}


def blank(frame: pd.DataFrame, hidden: dict[str, str], keep: tuple[str, ...] = COUNTS) -> pd.DataFrame:
    """``frame`` (a ``segment`` column) with every numeric column but ``keep`` blank (null)
    on the rows of the ``hidden`` segments."""
    if not hidden:
        return frame
    rows = frame["segment"].astype(str).isin(set(hidden)).to_numpy()
    out = frame.copy()
    for c in out.columns:
        if c not in keep and pd.api.types.is_numeric_dtype(out[c]) and not pd.api.types.is_bool_dtype(out[c]):
            out[c] = out[c].astype("float64").where(~rows, np.nan)
    return out


def withheld_note(hidden: dict[str, str]) -> str:
    """A note naming the withheld segments and why (empty when none is)."""
    if not hidden:
        return ""
    reasons: dict[str, list[str]] = {}
    for segment, why in hidden.items():
        reasons.setdefault(why, []).append(segment)
    text = " ".join(f"{', '.join(segments)}: {why}." for why, segments in reasons.items())
    return f'<p class="note withheld">Blank for viewers. {html.escape(text)}</p>'


def shown_profile(profile: Any, hidden: dict[str, str]) -> Any:
    """A copy of a :class:`~segflow.segments.SegmentProfile` without the ``hidden``
    segments (their means, medians and differences from the base are theirs)."""
    if not hidden:
        return profile
    out = copy.copy(profile)
    out.table = profile.table[~profile.table["segment"].astype(str).isin(set(hidden))].reset_index(drop=True)
    for name in ("means", "medians", "std_diff"):
        frame = getattr(profile, name)
        setattr(out, name, frame[~frame.index.astype(str).isin(set(hidden))])
    if getattr(profile, "makeup", None) is not None and "segment" in profile.makeup:
        out.makeup = profile.makeup[~profile.makeup["segment"].astype(str).isin(set(hidden))]
    return out


def shown_value(ctx: ReportContext, scheme: str, snapshot: dt.date,
                value: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The CLV table of ``scheme`` at ``snapshot`` as a viewer may read it (the segments of
    :func:`withheld_segments` blank), and those segments."""
    hidden = withheld_segments(ctx, scheme, snapshot)
    return blank(value, hidden), hidden


def campaign_figures(ctx: ReportContext, report: Any) -> dict[str, Any]:
    """A campaign's figures (:meth:`~segflow.campaigns.CampaignReport.figures`), the lift
    by segment drawn as a viewer may read it in a report for viewers."""
    figures = report.figures()
    if ctx.min_customers <= 1:
        return figures
    from segflow._disclosure import shown_effect, withhold_small_arms

    effect = report.effect
    shown = withhold_small_arms(effect.to_pandas(), "viewer", ctx.min_customers, correction=effect.correction,
                                level=effect.level)
    drawn = shown_effect(effect, shown)
    figures.update({f"lift_{o}": drawn.figure(o) for o in effect.outcomes})
    if getattr(report, "migration", None) is not None:
        for key in ("migration", "transitions"):
            figures.pop(key, None)
        figures.update(shown_migration(report.migration, shown, ctx.min_customers))
    return figures


def shown_migration(migration: Any, shown: pd.DataFrame, min_customers: int) -> dict[str, Any]:
    """A campaign's migration figures (:class:`~segflow.campaigns.MigrationLift`: movement
    bars per arm, transition shares per arm by segment before the campaign) as a viewer may
    read them: the rows of the segments the lift by segment withholds (``shown``, as
    :func:`segflow._disclosure.withhold_small_arms` gave it), of segments with an arm of 1 to
    ``min_customers - 1`` customers, and of the other segments withheld with them
    (:func:`segflow._disclosure._arm_complement`) blank, named "<segment> (withheld)"; none
    of them when an arm of the campaign is that small. The shares of a segment's arms are
    its customers' own figures, and its lift: a lifecycle's two-time moving to loyalists is
    their third purchase, so the difference of the arms' shares was the withheld lift itself."""
    from segflow._disclosure import ALL, _arm_complement
    from segflow.viz._campaigns import transition_heatmaps

    arms = migration.counts.pivot_table(index="from_segment", columns="arm", values="customers",
                                        aggfunc="sum", fill_value=0, observed=True)
    totals = arms.sum(axis=0).to_numpy(dtype=float)
    if ((totals > 0) & (totals < min_customers)).any():
        return {}
    values = arms.to_numpy(dtype=float)
    names = arms.index.astype(str)
    lift = (shown[shown[WITHHELD].notna() & (shown["by"].astype(str) != ALL)]["segment"].astype(str)
            if WITHHELD in shown.columns else pd.Series([], dtype=str))  # (an empty read-out: as given)
    small = ((values > 0) & (values < min_customers)).any(axis=1) | names.isin(set(lift))
    hidden = set(names[small | _arm_complement(values, values.sum(axis=1), small, min_customers)])
    figures = {"migration": migration.figure()}
    if not hidden:
        figures["transitions"] = migration.heatmaps()
        return figures
    matrices = {}
    for name, m in migration.matrices().items():
        rows = m.index.astype(str).isin(hidden)
        blanked = m.astype(float).mask(np.repeat(rows[:, None], m.shape[1], axis=1))
        matrices[name] = blanked.rename(index={s: f"{s} (withheld)" for s in m.index[rows]})
    figures["transitions"] = transition_heatmaps(matrices)
    return figures
