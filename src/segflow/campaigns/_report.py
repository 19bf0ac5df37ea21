"""One call for the report and the dashboard: a campaign's lift by segment and its
migration lift, read from the store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from segflow.campaigns._effect import EffectReport, read_out, refuse_personal_breakdown
from segflow.campaigns._migration import MigrationLift, migration_lift
from segflow.campaigns._store import (
    TableSource,
    campaign_cohort,
    campaign_window,
    check_window,
    exposure_responses,
    scheme_snapshots,
    snapshot_after,
    snapshot_before,
)
from segflow.errors import InputError, Place

if TYPE_CHECKING:
    import plotly.graph_objects as go


@dataclass
class CampaignReport:
    """A campaign's read-out on the store.

    Attributes
    ----------
    campaign_id, scheme : str
    window_days : int
        Outcome window after each customer's exposure, in days.
    start, end : datetime.datetime
        First and last exposure.
    effect : EffectReport
        Outcomes ``purchased`` (rate) and ``revenue`` (mean, net, store currency), overall
        and by ``segment`` (the customer's segment of ``scheme`` before the campaign).
    migration : MigrationLift or None
        ``None`` when the scheme has no snapshot after the campaign yet (see ``notes``).
    notes : list of str
    """

    campaign_id: str
    scheme: str | None
    window_days: int
    start: dt.datetime
    end: dt.datetime
    effect: EffectReport
    migration: MigrationLift | None
    notes: list[str] = field(default_factory=list)

    def to_pandas(self) -> pd.DataFrame:
        """The effect table (lift by arm and segment)."""
        return self.effect.to_pandas()

    def to_arrow(self) -> Any:
        return self.effect.to_arrow()

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "scheme": self.scheme,
            "window_days": self.window_days,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "effect": self.effect.to_dict(),
            "migration": self.migration.to_dict() if self.migration is not None else None,
            "notes": self.notes,
        }

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_dict(), default=str)

    def figure(self) -> go.Figure:
        """Lift of the purchase rate by segment (forest plot)."""
        return self.effect.figure("purchased")

    def figures(self) -> dict[str, go.Figure]:
        """All figures, keyed by a short name: ``lift_purchased``, ``lift_revenue`` and, when
        there is a snapshot after the campaign, ``migration`` and ``transitions``."""
        figs = {f"lift_{o}": self.effect.figure(o) for o in self.effect.outcomes}
        if self.migration is not None:
            figs["migration"] = self.migration.figure()
            figs["transitions"] = self.migration.heatmaps()
        return figs

    def _repr_html_(self) -> str:
        """Notebook view: the campaign, its window and notes over the lift table (arms and
        segments; ``figures()`` has the charts)."""
        import html

        from segflow.report._format import table_html

        cols = [c for c in ("by", "segment", "arm", "outcome", "n", "value", "lift_abs", "lift_abs_low",
                            "lift_abs_high", "p_adjusted", "significant") if c in self.effect.table]
        head = (f"<p><b>Campaign {html.escape(self.campaign_id)}</b> ({self.start:%Y-%m-%d} … {self.end:%Y-%m-%d}), "
                f"outcomes in the {self.window_days} days after exposure"
                + (f", by {html.escape(self.scheme)} segment" if self.scheme else "") + ".</p>")
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)
        labels = {"by": "Breakdown", "n": "Customers", "value": "Result", "lift_abs": "Lift vs control",
                  "lift_abs_low": "Lift, low", "lift_abs_high": "Lift, high", "p_adjusted": "Adjusted p"}
        return head + notes + table_html(self.effect.table[cols], digits=3, labels=labels)

    def __repr__(self) -> str:
        return (f"CampaignReport({self.campaign_id!r}, scheme={self.scheme!r}, "
                f"window_days={self.window_days}, migration={self.migration is not None})")


def campaign_report(
    source: TableSource,
    campaign_id: str,
    scheme: str | None = None,
    *,
    control: str = "control",
    window_days: int = 30,
    level: float = 0.95,
    correction: Literal["holm", "bh", "none"] = "holm",
    by: Sequence[str] = (),
    window: tuple[dt.datetime, dt.datetime] | None = None,
    snapshots: Sequence[dt.date] | None = None,
    expected_split: Mapping[str, float] | None = None,
) -> CampaignReport:
    """Lift by segment and migration lift of one campaign in the store.

    Parameters
    ----------
    source : Store or Engine
    campaign_id : str
    scheme : str, optional
        Segment scheme for the breakdown and the migration lift; without it only the overall
        lift is computed.
    control : str, default="control"
    window_days : int, default=30
        Outcome window after exposure, in days (see :func:`exposure_responses`).
    level, correction
        As in :func:`campaign_effect`.
    by : sequence of str, default=()
        More breakdowns: other schemes, columns of ``customers`` or ``"tenure"`` (see
        :func:`exposure_responses`). Segments of every breakdown are ranked together by
        ``report.effect.ranked()``.
    window : (datetime, datetime), optional
        The campaign's first and last exposure when the caller read them
        (:func:`campaign_window`; read here when None).
    snapshots : sequence of datetime.date, optional
        The snapshot dates of ``scheme``, ascending, when the caller read them
        (:func:`segflow.campaigns._store.scheme_snapshots`; read here when None).
    expected_split : mapping, optional
        The designed arm shares (e.g. ``{"treatment": 0.8, "control": 0.2}``): the whole
        campaign and every segment are tested against them, as :func:`campaign_effect` does
        for a customer file (same checks, same tests); without it each segment's split is
        compared with the rest of the campaign's.

    A ``by`` entry naming a personal column (``email``, ``phone``...) is an
    :class:`InputError` before any query (:func:`refuse_personal_breakdown`).
    """
    refuse_personal_breakdown(by, Place(f"campaign {campaign_id}"))
    start, end = window if window is not None else campaign_window(source, campaign_id)
    notes: list[str] = []
    if scheme and snapshots is None:
        snapshots = scheme_snapshots(source, scheme)
    snapshot = snapshot_before(source, scheme, start, dates=snapshots) if scheme else None
    check_window(window_days)
    # the cohort's checks (no exposures, customers in two arms) run once, for both read-outs
    cohort = campaign_cohort(source, campaign_id)
    responses = exposure_responses(source, campaign_id, window_days=window_days, scheme=scheme,
                                   snapshot=snapshot, by=by, cohort=cohort)
    effect = read_out(  # one row per customer by construction: no id check
        responses, arm_col="arm", control=control, outcomes=["purchased", "revenue"],
        by=(["segment"] if scheme else []) + list(by), level=level, correction=correction,
        expected_split=expected_split, source=Place(f"campaign {campaign_id}"),
    )
    migration = None
    if scheme:
        try:  # the snapshots around the campaign from its window, read once above
            migration = migration_lift(source, campaign_id, scheme, control=control,
                                       before=snapshot, level=level, cohort=cohort,
                                       after=snapshot_after(source, scheme, end, dates=snapshots))
        except InputError as exc:
            notes.append(f"no migration lift: {exc}")
    return CampaignReport(campaign_id, scheme, window_days, start, end, effect, migration, notes)


def campaign_reports(
    source: TableSource,
    scheme: str | None = None,
    *,
    control: str = "control",
    window_days: int = 30,
    level: float = 0.95,
) -> list[CampaignReport]:
    """:func:`campaign_report` for every campaign in the store that has a control arm, in
    order of first exposure. Campaigns that cannot be read out (no control arm, no
    snapshot before them) are skipped with a warning naming the reason."""
    import warnings

    from segflow.campaigns._store import campaigns_summary

    summary = campaigns_summary(source)
    with_control = summary[summary.arm == control]
    order = with_control.sort_values("first_exposure").campaign_id.tolist()
    for cid in sorted(set(summary.campaign_id) - set(order)):
        warnings.warn(f"campaign {cid!r} skipped: no {control!r} arm", UserWarning, stacklevel=2)
    reports = []
    for cid in order:  # one read-out per campaign (few)
        try:
            reports.append(campaign_report(source, cid, scheme, control=control,
                                           window_days=window_days, level=level))
        except InputError as exc:
            warnings.warn(f"campaign {cid!r} skipped: {exc}", UserWarning, stacklevel=2)
    return reports
