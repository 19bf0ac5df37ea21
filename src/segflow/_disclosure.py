"""Small cells: value figures of segments, migration cells and campaign arms of few
customers, withheld from viewers.

A viewer (the role without customer-level access) reads aggregates only; but the 12-month
revenue of a segment of one customer, the CLV moved by a migration cell of two, the mean and
median features of a profile of one (and the names and distinguishing features its means
suggest), or the purchase rate of a campaign's control arm of two in a segment are those
customers' own figures. Below ``[server] min_cell_customers`` customers (default 5;
:class:`segflow.config.ServingSettings`) a row's value figures are null for a viewer and its
``withheld`` column says why; counts (customers, sizes, shares of customers and their
intervals, changes in customers, customers per arm) and ranks stay exact, as they say nothing
of what a customer bought. Analysts and admins, who may read the customers themselves, see
every figure, without the ``withheld`` column.

**Complementary withholding.** A table whose rows add up to a total a viewer can read (the
segments' 12-month revenue, whose total follows from any row's ``revenue_share`` and is the
same in every scheme; a transition matrix's revenue, the change of that total between its
snapshots; a profile's value; a campaign's segments, whose ``(all)`` rows stay) gives away
the sum of its withheld rows as the total minus the others. While the withheld rows hold
fewer than ``min_cell_customers`` customers together (one small row, or two of one customer
each), the smallest other row with customers is withheld with them (:func:`_complement`;
for a campaign, arm by arm: :func:`_arm_complement`; :func:`complement_reason`).

Rows whose figure a viewer knows from their definition (:func:`no_purchase_segments`: a
lifecycle's prospects never bought) count for nothing in that minimum and are never the
complement. A campaign's adjusted p-values are adjusted again over the shown segments
(:func:`_readjust`).

Applied to the JSON API and the dashboard pages that serve aggregates to viewers (segment
sizes, the transition matrix, segment profiles, CLV moved, campaign lift by segment and its
forest plots), and to the HTML report written for viewers (``segflow report --for viewer``,
:mod:`segflow.report._viewer`); the default report, a file its maker hands to readers who
may see every figure, shows them all (docs/report.md). Forecasts (expected customers per segment) are counts of customers
derived from the migration counts a viewer reads anyway: not withheld.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

#: The column a viewer's rows gain: null, or why the row's value figures are null.
WITHHELD = "withheld"
#: Numeric columns that are counts of customers (or follow from them, or order the rows):
#: never withheld.
COUNT_COLUMNS = frozenset({"customers", "size", "share", "share_lower", "share_upper",
                           "change_customers", "previous_customers", "segment_rank",
                           "from_rank", "to_rank"})
#: Text columns of a profile that its means suggest (``suggested_name``, ``name`` without
#: overrides, ``distinguishing``: "monetary +1.71 sd" of a segment of one is that customer's):
#: withheld with its figures.
PROFILE_TEXT = ("suggested_name", "name", "distinguishing")
#: Columns of a campaign read-out row (:data:`segflow.campaigns._effect.EFFECT_COLUMNS`) that
#: come from what its customers did: the rate or mean, the control's, the lifts, the tests
#: (which test ran depends on the purchase counts) and the minimum detectable effect (the
#: control's spread). The counts (``n``, ``n_missing``, ``n_control``) and the balance check
#: of the arm sizes stay.
CAMPAIGN_VALUES = ("value", "value_low", "value_high", "value_control", "lift_abs", "lift_abs_low",
                   "lift_abs_high", "lift_rel", "lift_rel_low", "lift_rel_high", "test", "p_value",
                   "p_adjusted", "significant", "mde_abs")
#: The ``by`` of a campaign read-out's rows of the whole campaign (its totals).
ALL = "(all)"
#: The window of a segment's ``revenue_12m``, in days before the snapshot.
REVENUE_12M_DAYS = 365


def reason(min_customers: int) -> str:
    """The ``withheld`` text of a small row."""
    return (f"fewer than {min_customers} customers: value figures withheld from viewers "
            "([server] min_cell_customers)")


def arm_reason(min_customers: int) -> str:
    """The ``withheld`` text of a campaign segment with a small arm."""
    return (f"an arm of this segment has fewer than {min_customers} customers: rates, means, lifts and "
            "tests withheld from viewers ([server] min_cell_customers)")


def complement_reason(min_customers: int) -> str:
    """The ``withheld`` text of a row withheld with the small rows of its table."""
    return (f"withheld with the rows of fewer than {min_customers} customers, whose figures the total "
            "less the shown rows would give away ([server] min_cell_customers)")


def _complement(small: np.ndarray, sizes: np.ndarray, min_customers: int,
                informative: np.ndarray | None = None, known: np.ndarray | None = None) -> np.ndarray:
    """The rows to withhold with the small ones, so that what the total less the shown rows
    gives away (the sum of the withheld rows) is of ``min_customers`` customers or more.

    Rows whose figure a viewer knows from their definition (``known``: a lifecycle's
    prospects, who never bought, have no revenue but their returns) count no customers
    towards that minimum and are never taken: the sum less their figure is the others'.
    While the withheld rows hold customers and those of figures not known are fewer, the
    smallest other row with customers and a figure not known (the first of equals) is taken,
    among those with a figure other than 0 when there is one (``informative``). One small
    row takes one more; two of 1 customer each (whose sum, 2 customers' figure, was left to
    derive) take one more too; small rows of ``min_customers`` together take none; a small
    row of prospects with a small row of 2 buyers takes one more (the prospects' customers
    would have made up the count, their figure protecting nothing); a lone small row of
    prospects takes rows of ``min_customers`` customers (its returns are its own figure)."""
    known = np.zeros(len(sizes), dtype=bool) if known is None else known
    counted = np.where(known, 0, sizes)
    out = np.zeros(len(sizes), dtype=bool)
    while sizes[small | out].sum() > 0 and counted[small | out].sum() < min_customers:
        others = np.flatnonzero(~small & ~out & ~known & (sizes > 0))
        if informative is not None and informative[others].any():
            others = others[informative[others]]
        if not len(others):
            break
        out[others[np.argmin(sizes[others])]] = True  # the first of equals
    return out


def no_purchase_segments(project: Any, scheme: str, window_days: int | None = None) -> frozenset[str]:
    """The segments of ``scheme`` whose customers, by the scheme's definition, have made no
    purchase in a figure's window: a lifecycle scheme's ``prospects`` (``recency_days is
    null``) and an RFM scheme's ``No purchase yet`` (no recency score) never bought; for a
    figure over the last ``window_days`` days before the snapshot (the 12-month revenue:
    365; a migration cell's revenue: the days between its snapshots), a lifecycle's
    ``inactive`` too when the window is within its ``active_days`` (no purchase in them).
    Their revenue in that window is known to be 0 but for returns, and so is the revenue of
    a migration cell into them. Other kinds: none (a value tier's ``no spend`` has a net
    spend of 0 or less, not a known figure; a rule scheme's rules are not read)."""
    from segflow.pipeline import resolve_schemes
    from segflow.segments import builtin_schemes
    from segflow.segments._buckets import LIFECYCLE_BUCKETS
    from segflow.segments._rfm import NO_PURCHASE

    settings = next((s for s in [*resolve_schemes(project.settings), *builtin_schemes()] if s.name == scheme), None)
    if settings is None or settings.kind not in ("lifecycle", "rfm"):
        return frozenset()
    if settings.kind == "rfm":
        return frozenset({NO_PURCHASE})
    out = {b.name for b in LIFECYCLE_BUCKETS if b.condition == "recency_days is null"}
    if window_days is not None and 0 < window_days <= settings.active_days:
        out |= {b.name for b in LIFECYCLE_BUCKETS if b.condition.startswith("recency_days > ")}
    return frozenset(out)


def known_rows(frame: pd.DataFrame, segments: Iterable[str]) -> np.ndarray:
    """Which rows of ``frame`` have a figure known from their definition: a segment in
    ``segments`` (:func:`no_purchase_segments`), or for a migration cell (a ``to_segment``
    column) its later segment in them."""
    column = "to_segment" if "to_segment" in frame.columns else "segment"
    return frame[column].astype(str).isin(set(segments)).to_numpy()


def scheme_known_rows(project: Any, scheme: str, frame: pd.DataFrame, window_days: int | None = None) -> np.ndarray:
    """:func:`known_rows` of ``frame`` (segments or migration cells of ``scheme``) with the
    segments of :func:`no_purchase_segments` (``window_days``: the figure's window, None
    for all time)."""
    return known_rows(frame, no_purchase_segments(project, scheme, window_days))


def withhold_small_cells(frame: pd.DataFrame, role: str, min_customers: int, *,
                         count: str = "customers", keep: Iterable[str] = (), text: Iterable[str] = (),
                         complement: str | None = None, known: np.ndarray | None = None) -> pd.DataFrame:
    """``frame`` as a caller of ``role`` may read it.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per segment or migration cell; not changed (a copy is returned).
    role : str
        The caller's role: only ``viewer`` has figures withheld.
    min_customers : int
        Rows with fewer customers than this (in ``count``; an empty row, 0, has no figures to
        hide) have every numeric column but the counts (:data:`COUNT_COLUMNS`, ``keep``) set
        to null. 1 or less withholds nothing.
    count : str, default "customers"
        The column counting each row's customers.
    keep : iterable of str
        More numeric columns never withheld.
    text : iterable of str
        Text columns withheld too (those present), e.g. :data:`PROFILE_TEXT`.
    complement : str, optional
        The column whose rows add up to a total a viewer can work out (``revenue_12m``,
        through ``revenue_share``; a transition matrix's ``revenue``, the change of that
        total between its snapshots): while the withheld rows hold fewer than
        ``min_customers`` customers together, the smallest other row with customers (and, if
        any has, a figure other than 0 in this column) is withheld too
        (:func:`_complement`, :func:`complement_reason`).
    known : numpy.ndarray of bool, optional
        Rows whose ``complement`` figure a viewer knows from their definition
        (:func:`known_rows`): they count no customers towards the minimum of the withheld
        rows and are never taken as a complement.

    Returns
    -------
    pandas.DataFrame
        For a viewer, the rows with small ones' figures null and a :data:`WITHHELD` column
        (null, :func:`reason` or :func:`complement_reason`); for other roles ``frame`` itself.
    """
    if role != "viewer" or min_customers <= 1:
        return frame
    kept = COUNT_COLUMNS | {count, *keep}
    values = [c for c in frame.columns if c not in kept and pd.api.types.is_numeric_dtype(frame[c])
              and not pd.api.types.is_bool_dtype(frame[c])]
    sizes = pd.to_numeric(frame[count], errors="coerce").fillna(0).to_numpy()
    small = (sizes > 0) & (sizes < min_customers)
    extra = np.zeros(len(sizes), dtype=bool)
    if complement is not None:
        additive = pd.to_numeric(frame[complement], errors="coerce") if complement in frame.columns else None
        extra = _complement(small, sizes, min_customers,
                            None if additive is None else (additive.fillna(0) != 0).to_numpy(), known)
    hidden = small | extra
    out = frame.copy()
    for c in values:
        out[c] = out[c].astype("float64").where(~hidden, np.nan)
    for c in (c for c in text if c in out.columns):
        out[c] = out[c].astype(object).where(~hidden, None)
    out[WITHHELD] = np.where(small, reason(min_customers),
                             np.where(extra, complement_reason(min_customers), None))
    return out


def _arm_complement(arms: np.ndarray, sizes: np.ndarray, small: np.ndarray, min_customers: int) -> np.ndarray:
    """The segments of a campaign breakdown to withhold with the ``small`` ones: ``arms``
    holds the customers of each segment (rows) in each outcome and arm (columns), ``sizes``
    each segment's customers. While an arm of the withheld segments holds 1 to
    ``min_customers - 1`` customers together (its total less the shown segments would be
    their figure), the smallest other segment (the first of equals) with customers in that
    arm is withheld too (a segment without any there would hide nothing of it)."""
    out = np.zeros(len(arms), dtype=bool)
    while True:
        held = arms[small | out].sum(axis=0)
        short = (held > 0) & (held < min_customers)
        takers = ~small & ~out & (arms[:, short] > 0).any(axis=1)
        if not takers.any():
            return out
        # the smallest segment that has customers in the first short arm it can fill
        first = next(k for k in np.flatnonzero(short) if (takers & (arms[:, k] > 0)).any())
        others = np.flatnonzero(takers & (arms[:, first] > 0))
        out[others[np.argmin(sizes[others])]] = True


def withhold_small_arms(frame: pd.DataFrame, role: str, min_customers: int, *,
                        correction: str = "holm", level: float = 0.95) -> pd.DataFrame:
    """A campaign read-out (:meth:`segflow.campaigns.CampaignReport.to_pandas`: one row per
    breakdown, segment, outcome and arm) as a caller of ``role`` may read it.

    A segment (a ``by`` and ``segment``, the campaign's ``(all)`` included) is small when any
    of its rows has an arm of 1 to ``min_customers - 1`` customers with an outcome (``n``, or
    ``n_control`` for a treated arm's lift): every row of it, all arms and outcomes, has its
    :data:`CAMPAIGN_VALUES` null and the reason in :data:`WITHHELD` (:func:`arm_reason`); the
    rest of a treated row would give the control's rate back through the lift, and one
    outcome's rate through the other's count. The ``(all)`` rows stay, and each arm's total
    less the shown segments gives away the sum of the withheld segments' arm: other segments
    of the breakdown are withheld with the small ones until every arm and outcome they hold
    has ``min_customers`` customers or more (:func:`_arm_complement`, :func:`complement_reason`).
    Counts stay. For roles other than ``viewer`` (or a minimum
    of 1 or less), ``frame`` itself.

    **Adjusted p-values.** A shown row's ``p_adjusted`` was adjusted within its family (a
    ``by`` and outcome: :func:`segflow.campaigns._effect._correct`) over every segment, the
    withheld ones included: Holm's adjusted p of the second smallest p-value is the larger
    of ``m`` times the smallest and ``m - 1`` times its own, so a shown row could give the
    withheld p-value away (and moved with it). For a viewer the shown rows of a family with
    withheld rows are adjusted again among themselves (``correction``, the read-out's; and
    ``significant`` at its ``level``): a viewer's adjusted p-values are those of the tests
    a viewer reads, a function of the shown p-values alone (:func:`_readjust`).
    """
    if role != "viewer" or min_customers <= 1 or frame.empty:
        return frame
    n = pd.to_numeric(frame["n"], errors="coerce").fillna(0).to_numpy()
    n0 = pd.to_numeric(frame["n_control"], errors="coerce").fillna(0).to_numpy()
    treated = ~frame["is_control"].astype(bool).to_numpy()
    tiny = ((n > 0) & (n < min_customers)) | (treated & (n0 > 0) & (n0 < min_customers))
    group = pd.MultiIndex.from_arrays([frame["by"].astype(str), frame["segment"].astype(str)])
    small_groups = set(group[tiny])
    extra_groups: set[tuple[str, str]] = set()
    for by in dict.fromkeys(frame["by"].astype(str)):
        if by == ALL:
            continue
        rows = frame["by"].astype(str).to_numpy() == by
        # customers per segment (rows) and outcome and arm (columns)
        arms = (frame.loc[rows].assign(_n=n[rows], segment=frame.loc[rows, "segment"].astype(str))
                .pivot_table(index="segment", columns=["outcome", "arm"], values="_n", aggfunc="sum",
                             fill_value=0, sort=False))
        names = list(arms.index)
        # a segment's customers: the largest, over outcomes, of its arms' counts summed
        sizes = arms.T.groupby(level="outcome", sort=False).sum().max().to_numpy(dtype=float)
        small = np.array([(by, s) in small_groups for s in names], dtype=bool)
        extra = _arm_complement(arms.to_numpy(dtype=float), sizes, small, min_customers)
        extra_groups |= {(by, s) for s, e in zip(names, extra, strict=True) if e}
    in_small = np.array([g in small_groups for g in group], dtype=bool)
    in_extra = np.array([g in extra_groups for g in group], dtype=bool)
    hidden = in_small | in_extra
    out = frame.copy()
    for c in (c for c in CAMPAIGN_VALUES if c in out.columns):
        if pd.api.types.is_numeric_dtype(out[c]) and not pd.api.types.is_bool_dtype(out[c]):
            out[c] = out[c].astype("float64").where(~hidden, np.nan)
        else:
            out[c] = out[c].astype(object).where(~hidden, None)
    out[WITHHELD] = np.where(in_small, arm_reason(min_customers),
                             np.where(in_extra, complement_reason(min_customers), None))
    if "p_adjusted" in out.columns and hidden.any():
        out = _readjust(out, hidden, correction, level)
    return out


def _readjust(frame: pd.DataFrame, hidden: np.ndarray, correction: str, level: float) -> pd.DataFrame:
    """``frame`` with ``p_adjusted`` (and ``significant``) of the rows not ``hidden``
    adjusted again within each family (``by``, ``outcome``) that has hidden rows, over the
    shown rows' p-values only (the withheld rows leave the family)."""
    from segflow.campaigns._stats import adjust_pvalues  # SciPy: imported on first use

    family = frame["by"].astype(str) + "\x00" + frame["outcome"].astype(str)
    touched = set(family[hidden])
    p = pd.to_numeric(frame["p_value"], errors="coerce").to_numpy(dtype=float)
    adjusted = pd.to_numeric(frame["p_adjusted"], errors="coerce").to_numpy(dtype=float).copy()
    for name in touched:
        rows = np.flatnonzero((family == name).to_numpy() & ~hidden)
        adjusted[rows] = adjust_pvalues(p[rows], correction)  # type: ignore[arg-type]
    out = frame.copy()
    out["p_adjusted"] = np.where(hidden, np.nan, adjusted)
    if "significant" in out.columns:
        shown = out["p_adjusted"].notna() & ~hidden
        out["significant"] = out["significant"].astype(object).where(
            ~shown.to_numpy(), out["p_adjusted"] < (1.0 - level))
    return out


def shown_effect(effect: Any, shown: pd.DataFrame) -> Any:
    """A copy of a campaign read-out's :class:`~segflow.campaigns._effect.EffectReport`
    drawing ``shown`` (the read-out as the reader may read it, :func:`withhold_small_arms`):
    a withheld segment keeps its line in the forest plots, named "<segment> (withheld)",
    with no marker or interval. ``effect`` itself when nothing is withheld."""
    import copy

    if WITHHELD not in shown.columns:
        return effect
    drawn = copy.copy(effect)
    marked = shown[WITHHELD].notna()
    names = shown["segment"].astype(str)
    drawn.table = shown.assign(segment=names.where(~marked, names + " (withheld)"))
    return drawn


def min_customers(project: Any) -> int:
    """The project's ``[server] min_cell_customers``."""
    return int(project.settings.server.min_cell_customers)
