"""The executive summary: the first screen of the report.

Three to five headline movements of the headline scheme since the previous snapshot, in words
and numbers; revenue and predicted value at stake; data health in one line; and the
playbook's suggested action per segment with its audience size.

Definitions (also written under the numbers in the report):

* *base*: customers assigned a segment at the latest snapshot.
* *revenue, last 12 months*: net revenue (returns netted) in the 365 days before the latest
  snapshot, of customers in the base.
* *at stake*: customers whose segment's playbook action is "win back" (lapsing customers).
  Two figures with their bases in their names: *revenue at stake, last 12 months* (what they
  spent in the 365 days before the latest snapshot) and *predicted value at stake, next 52
  weeks* (what BG/NBD + Gamma-Gamma expects them to spend after it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from collections.abc import Collection

import numpy as np
import pandas as pd

from segflow.report._context import ReportContext
from segflow.report._format import count, money, pct, scheme_title
from segflow.report._movement import GONE, NEW, segment_changes
from segflow.report._viewer import withheld_segments

MAX_HEADLINES = 5


@dataclasses.dataclass
class ExecutiveSummary:
    """The numbers of the first screen (all computed from the store; see the module doc)."""

    scheme: str | None
    before: object | None
    now: object | None
    headlines: list[str]
    kpis: list[tuple[str, str, str]]
    health: str
    actions: pd.DataFrame
    currency: str = ""

    def _repr_html_(self) -> str:
        return summary_html(self, self.currency)

    def __repr__(self) -> str:
        return (f"ExecutiveSummary(scheme={self.scheme!r}, {self.before}→{self.now}, "
                f"{len(self.headlines)} headlines, {len(self.kpis)} KPIs, {len(self.actions)} actions)")


def headlines(cells: pd.DataFrame, total_customers: float, total_revenue: float, *,
              min_customers: int = 0, withheld: Collection[str] = ()) -> list[str]:
    """Sentences for the largest movements (see :func:`executive_summary`), best first:
    the two costliest moves to a worse segment (by the movers' 12-month revenue), the largest
    move to a better segment, the segment whose size changed most, then arrivals and exits.
    A move of fewer than ``min_customers`` customers, or into a ``withheld`` segment (whose
    revenue it can be all of), says nothing of the movers' revenue (a report for viewers)."""
    out: list[str] = []
    base = total_customers or 1.0
    rev = total_revenue or 0.0

    def spent(r: pd.Series) -> str:
        if rev > 0 and r.revenue_12m > 0 and r.customers >= min_customers and r.to_segment not in withheld:
            return f"; they spent {pct(r.revenue_12m / rev)} of the last 12 months' revenue"
        return ""

    down = cells[cells.direction == "down"].sort_values(["revenue_12m", "customers"], ascending=False)
    for r in down.head(2).itertuples():
        out.append(
            f"{count(r.customers)} customers ({pct(r.customers / base)}) moved down from "
            f"{r.from_segment} to {r.to_segment}{spent(pd.Series(r._asdict()))}."
        )
    up = cells[cells.direction == "up"].sort_values(["customers", "revenue_12m"], ascending=False)
    for r in up.head(1).itertuples():
        out.append(
            f"{count(r.customers)} customers ({pct(r.customers / base)}) moved up from "
            f"{r.from_segment} to {r.to_segment}{spent(pd.Series(r._asdict()))}."
        )
    if not out:  # segments without a rank order (clusters): the largest moves
        moves = cells[cells.direction == "move"].head(3)
        for r in moves.itertuples():
            out.append(
                f"{count(r.customers)} customers ({pct(r.customers / base)}) moved from "
                f"{r.from_segment} to {r.to_segment}{spent(pd.Series(r._asdict()))}."
            )
    changes = segment_changes(cells)
    if not changes.empty:
        big = changes.loc[changes["change"].abs().idxmax()]
        if big["change"] != 0:
            verb = "grew" if big["change"] > 0 else "shrank"
            rel = big["change"] / big["customers_before"] if big["customers_before"] else None
            rel_text = f", {pct(rel, signed=True)}" if rel is not None else ""
            out.append(
                f"{big['segment']} {verb} the most: {count(big['customers_before'])} → "
                f"{count(big['customers_after'])} customers ({count(big['change'], signed=True)}{rel_text})."
            )
    new = int(cells.loc[cells.from_segment == NEW, "customers"].sum())
    gone = int(cells.loc[cells.to_segment == GONE, "customers"].sum())
    if new or gone:
        joined = f"{count(new)} customers joined the base" if new else "Nobody joined the base"
        left = f"{count(gone)} left it" if gone else "nobody left it"
        out.append(f"{joined} and {left}.")
    return out[:MAX_HEADLINES]


def action_table(ctx: ReportContext, scheme: str) -> pd.DataFrame:
    """Per playbook action (in the playbook's order): the segments of ``scheme`` it covers at
    the latest snapshot with their sizes, the audience, its 12-month revenue and predicted
    value, and the suggestion."""
    now = ctx.dates(scheme)[-1]
    sizes = ctx.sizes(scheme, now)
    value = ctx.value(scheme, now)
    clv = value.set_index("segment")["clv"] if value is not None else pd.Series(dtype=float)
    rows = []
    for r in sizes.itertuples():
        entry = ctx.playbook.entry_for(str(r.segment))
        rows.append({"action": entry.action, "segment": str(r.segment), "customers": int(r.customers),
                     "revenue_12m": float(r.revenue_12m), "clv": float(clv.get(r.segment, float("nan"))),
                     "suggestion": entry.suggestion})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    order = {e.action: i for i, e in enumerate(ctx.playbook.entries)}
    order.setdefault(ctx.playbook.default.action, len(order))
    grouped = []
    for action, sub in frame.groupby("action", sort=False):
        grouped.append({
            "action": action,
            "segments": ", ".join(f"{s} ({count(c)})" for s, c in zip(sub.segment, sub.customers, strict=True)),
            "customers": int(sub.customers.sum()),
            "revenue_12m": float(sub.revenue_12m.sum()),
            "clv": float(sub.clv.sum()) if sub.clv.notna().any() else float("nan"),
            "suggestion": sub.suggestion.iloc[0],
        })
    out = pd.DataFrame(grouped)
    if ctx.min_customers > 1:  # a report for viewers
        out = _withhold_cards(ctx, scheme, now, frame, out)
    return out.sort_values("action", key=lambda s: s.map(order)).reset_index(drop=True)


def _withhold_cards(ctx: ReportContext, scheme: str, now: dt.date, segments: pd.DataFrame,
                    cards: pd.DataFrame) -> pd.DataFrame:
    """``cards`` (one per action) with the revenue and predicted value of every card that
    holds a segment whose figures the report withholds
    (:func:`segflow.report._viewer.withheld_segments`) left blank: a card less its shown
    segments would be the withheld ones' sum. The cards add up to the segments' total, so
    what the shown cards leave is the sum of every withheld segment, which the segments' own
    rule keeps to ``min_cell_customers`` customers or more."""
    hidden = set(withheld_segments(ctx, scheme, now))
    blanked = {a for a, sub in segments.groupby("action", sort=False) if set(sub.segment) & hidden}
    rows = cards["action"].isin(blanked).to_numpy()
    return cards.assign(revenue_12m=cards["revenue_12m"].where(~rows, np.nan), clv=cards["clv"].where(~rows, np.nan))


def data_health(ctx: ReportContext) -> str:
    """One line: rows read, accepted (%), quarantined (rules), duplicates, audit checks."""
    recon = ctx.reconciliation
    if recon.empty:
        return "No data loaded yet."
    read = int(recon["rows_read"].sum())
    acc = int(recon["rows_accepted"].sum())
    quar = int(recon["rows_quarantined"].sum())
    dup = int(recon["rows_duplicate"].sum())
    rules = len(ctx.quarantine_reasons)
    checks = ctx.audit
    severity = checks["severity"]
    # "info" checks report something to know (no failure): count the warnings and errors only
    problems = int(severity.isin(["warning", "error", "critical"]).sum())
    adds = "all files reconcile" if bool(recon["reconciles"].all()) else "some files do NOT reconcile"
    audit = (f"{len(checks)} audit checks: {problems} need attention" if problems
             else f"{len(checks)} audit checks: none needs attention")
    return (
        f"{count(read)} rows read: {pct(acc / read if read else 0)} accepted, {count(quar)} quarantined "
        f"({rules} rules), {count(dup)} duplicates; {adds}; {audit}."
    )


def executive_summary(ctx: ReportContext) -> ExecutiveSummary:
    """Compute the first screen's numbers for the headline scheme."""
    scheme = ctx.headline_scheme
    health = data_health(ctx)
    if scheme is None:
        return ExecutiveSummary(None, None, None, [], [], health, pd.DataFrame())
    dates = ctx.dates(scheme)
    now = dates[-1]
    before = dates[-2] if len(dates) > 1 else None
    sizes = ctx.sizes(scheme, now)
    total_c = float(sizes["customers"].sum())
    total_r = float(sizes["revenue_12m"].sum())
    cells = ctx.movements(scheme)
    hidden = withheld_segments(ctx, scheme, now)
    lines = (headlines(cells, total_c, total_r, min_customers=ctx.min_customers, withheld=set(hidden))
             if cells is not None else [])
    actions = action_table(ctx, scheme)
    kpis: list[tuple[str, str, str]] = []
    if before is not None:
        prev = ctx.sizes(scheme, before)
        pc, pr = float(prev["customers"].sum()), float(prev["revenue_12m"].sum())
        kpis.append(("Customers in the base", count(total_c),
                     f"{count(total_c - pc, signed=True)} since {before}"))
        kpis.append(("Revenue, last 12 months", money(total_r, ctx.currency),
                     f"{pct((total_r - pr) / pr, signed=True)} vs the 12 months before {before}" if pr else ""))
    else:
        kpis.append(("Customers in the base", count(total_c), f"at {now}"))
        kpis.append(("Revenue, last 12 months", money(total_r, ctx.currency), f"before {now}"))
    stake = actions[actions.action == "win back"] if not actions.empty else actions
    if not stake.empty and pd.notna(stake.iloc[0].revenue_12m):  # (withheld in a report for viewers)
        row = stake.iloc[0]
        # two bases, each named: what these customers spent (past 12 months) and what they
        # are predicted to spend (next 52 weeks); the same customers in both
        who = f"{count(row.customers)} lapsing customers (win-back segments)"
        kpis.append(("Revenue at stake, last 12 months", money(row.revenue_12m, ctx.currency),
                     f"what {who} spent in the 365 days before {now}: "
                     f"{pct(row.revenue_12m / total_r if total_r else 0)} of revenue"))
        if pd.notna(row.clv):
            kpis.append(("Predicted value at stake, next 52 weeks", money(row.clv, ctx.currency),
                         f"what the same {count(row.customers)} customers are expected to spend "
                         "in the 52 weeks after the snapshot (BG/NBD + Gamma-Gamma)"))
    if cells is not None:
        down = cells[cells.direction == "down"]
        # a report for viewers: the CLV of those moves (shown nowhere else), of enough customers;
        # not their revenue (the headlines give some of those cells' revenue: the rest would follow)
        if len(down) and ctx.min_customers > 1 and (down.customers.sum() < ctx.min_customers or not down.clv.sum()):
            kpis.append(("Moved to a worse segment", count(down.customers.sum()), ""))
        elif len(down):
            kpis.append(("Moved to a worse segment", count(down.customers.sum()),
                         f"{money(down.clv.sum(), ctx.currency)} predicted value, next 52 weeks" if down.clv.sum()
                         else f"{money(down.revenue_12m.sum(), ctx.currency)} revenue, last 12 months"))
    return ExecutiveSummary(scheme, before, now, lines, kpis, health, actions, ctx.currency)


def summary_html(summary: ExecutiveSummary, currency: str) -> str:
    """The first screen as HTML (ids used by the browser test: ``headlines``, ``actions``)."""
    e = html.escape
    if summary.scheme is None:
        return f'<p class="health">{e(summary.health)}</p><p>No segment assignments stored yet: run <code>segflow run</code>.</p>'
    when = (f"{summary.before} → {summary.now}" if summary.before else f"at {summary.now}")
    kpis = "".join(
        f'<div class="kpi"><span class="kl">{e(k)}</span><b>{e(v)}</b><span class="kd">{e(d)}</span></div>'
        for k, v, d in summary.kpis
    )
    # elementtiming: the browser records when each headline is painted (bench_report_open.py)
    items = "".join(f'<li elementtiming="headline">{e(h)}</li>' for h in summary.headlines) or (
        '<li elementtiming="headline">Only one snapshot so far: no movements to report.</li>')
    cards = []
    for r in summary.actions.itertuples():
        clv = f" · {money(r.clv, currency)} predicted value" if pd.notna(r.clv) else ""
        revenue = (f" · {money(r.revenue_12m, currency)} revenue{clv}" if pd.notna(r.revenue_12m)
                   else " · revenue and predicted value withheld (a segment of few customers)")
        cards.append(
            f'<li class="action"><span class="act act-{e(r.action.replace(" ", "-"))}">{e(r.action)}</span> '
            f"<b>{count(r.customers)} customers</b>{e(revenue)}"
            f'<span class="segs">{e(r.segments)}</span><span class="sugg">{e(r.suggestion)}</span></li>'
        )
    actions = f'<ul class="actions">{"".join(cards)}</ul>'
    return (
        f'<p class="lead">Scheme <b>{e(scheme_title(summary.scheme))}</b>, {e(when)}.</p>'
        f'<div class="kpis">{kpis}</div>'
        f'<div class="firstscreen"><div id="headlines"><h3>What changed</h3><ul class="headlines">{items}</ul></div>'
        f'<div id="actions"><h3>What to do (campaign playbook)</h3>{actions}</div></div>'
        f'<p class="health" id="health" elementtiming="health"><b>Data health:</b> {e(summary.health)}</p>'
    )
