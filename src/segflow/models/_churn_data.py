"""Labels and training sets for the supervised churn and next-segment models.

Everything here is an Ibis expression over the store's own history, so the same code runs on
DuckDB or Spark; only the stacked modelling matrix (one row per customer and snapshot) is
brought into pandas, because scikit-learn fits on it.

Definitions (see ``docs/churn.md``):

* A **purchase** is a purchase line of segflow's one purchase definition
  (:mod:`segflow.features._purchase_def`): not a return (``is_return`` not true, amount not
  negative), ``amount >= 0`` (a zero-value order is a purchase occasion).
* A customer is **eligible** at snapshot ``s`` when they made at least one purchase with
  ``ts < s``. Customers who never bought cannot "churn" and are not scored.
* The **churn label** at ``s`` with horizon ``N`` days is 1 when the customer makes no purchase
  with ``s <= ts < s + N days`` (a half-open window, the same convention as snapshots: a
  purchase at exactly ``s + N`` days falls outside the window and does not save the customer).
* The label window is **complete** when ``s + N days <= data_end``, where ``data_end`` is the day
  after the last transaction day (the data are assumed complete through that day).
* The **next-segment label** of a customer assigned at ``s`` is their segment at the next stored
  snapshot of the same scheme, or ``"(gone)"`` when they have no assignment there.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Sequence

import ibis
import numpy as np
import pandas as pd

from segflow.errors import SegflowError
from segflow.features._purchase_def import purchase_lines

#: The pseudo-segment of customers with no assignment at the next snapshot.
GONE = "(gone)"

#: Columns of a stacked training set that are identifiers or labels, never features.
ID_COLUMNS = ("customer_id", "snapshot_date")

FeaturesAt = Callable[[dt.date], ibis.Table]


def _ts(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


def purchases(transactions: ibis.Table) -> ibis.Table:
    """Purchase lines of a transaction table with a known customer (not returns, amount >= 0;
    see :mod:`segflow.features._purchase_def`)."""
    return purchase_lines(transactions)


def eligible_customers(transactions: ibis.Table, snapshot: dt.date) -> ibis.Table:
    """Customers with at least one purchase before ``snapshot`` (one column ``customer_id``)."""
    bought = purchases(transactions)
    return bought.filter(bought.ts < _ts(snapshot)).select("customer_id").distinct()


def churn_labels(
    transactions: ibis.Table, snapshot: dt.date, horizon_days: int = 90
) -> ibis.Table:
    """The churn label of every eligible customer at ``snapshot``.

    Parameters
    ----------
    transactions : ibis.Table
        The canonical transactions (``customer_id``, ``ts``, ``amount``, ``is_return``).
    snapshot : date
        The snapshot date ``s``.
    horizon_days : int, default=90
        The label window ``N`` in days.

    Returns
    -------
    ibis.Table
        ``customer_id`` and ``churned`` (int8: 1 = no purchase in ``[s, s + N days)``), one row
        per customer with a purchase before ``s``.
    """
    if horizon_days <= 0:
        raise SegflowError(f"horizon_days must be a positive number of days, got {horizon_days}")
    bought = purchases(transactions)
    start, end = _ts(snapshot), _ts(snapshot + dt.timedelta(days=horizon_days))
    window = bought.filter(bought.ts >= start, bought.ts < end)
    after = window.group_by("customer_id").aggregate(_next_purchases=window.count())
    base = eligible_customers(transactions, snapshot)
    joined = base.left_join(after, base.customer_id == after.customer_id)
    return joined.select(
        customer_id=base.customer_id,
        churned=joined._next_purchases.isnull().cast("int8"),
    )


def last_day(transactions: ibis.Table) -> dt.date | None:
    """The day of the last transaction (any line, returns included; one engine query on the
    table's own backend), or None when ``transactions`` has no rows."""
    last = transactions.ts.max().execute()
    if last is None or pd.isna(last):
        return None
    return pd.Timestamp(last).date()


def data_end(transactions: ibis.Table) -> dt.date:
    """The exclusive end of the data: the day after the last transaction day
    (:func:`last_day`).

    Raises
    ------
    SegflowError
        ``transactions`` has no rows (nothing to label)."""
    last = last_day(transactions)
    if last is None:
        raise SegflowError("the store has no transactions; nothing to label")
    return last + dt.timedelta(days=1)


def window_rates(
    transactions: ibis.Table, snapshots: Sequence[dt.date], horizon_days: int
) -> dict[dt.date, float]:
    """Purchase lines per day inside each snapshot's label window ``[s, s + N days)``.

    One query (daily counts over the span of all windows); used to spot label windows that
    the data do not really cover, e.g. when a few stray future-dated rows push the data end.
    """
    if not snapshots:
        return {}
    bought = purchases(transactions)
    lo = _ts(min(snapshots))
    hi = _ts(max(snapshots) + dt.timedelta(days=horizon_days))
    inside = bought.filter(bought.ts >= lo, bought.ts < hi)
    daily = (
        inside.group_by(day=inside.ts.date()).aggregate(n=inside.count()).to_pandas()
    )
    counts = pd.Series(daily["n"].to_numpy(), index=[pd.Timestamp(d).date() for d in daily["day"]])
    out = {}
    for s in snapshots:
        end = s + dt.timedelta(days=horizon_days)
        out[s] = float(counts[(counts.index >= s) & (counts.index < end)].sum()) / horizon_days
    return out


def complete_snapshots(
    snapshots: Sequence[dt.date], horizon_days: int, end: dt.date
) -> list[dt.date]:
    """Snapshots whose label window ``[s, s + N days)`` ends on or before ``end``."""
    return sorted(s for s in set(snapshots) if s + dt.timedelta(days=horizon_days) <= end)


def time_split(
    snapshots: Sequence[dt.date], horizon_days: int, end: dt.date
) -> tuple[list[dt.date], dt.date]:
    """Training snapshots and the test snapshot of an honest time-based split.

    The test snapshot is the latest one whose label window is complete. Training snapshots
    are those whose label window ends on or before the test snapshot, so no training label
    uses data the model could not have seen at the test snapshot.

    Raises
    ------
    SegflowError
        When fewer than two snapshots qualify.
    """
    complete = complete_snapshots(snapshots, horizon_days, end)
    if not complete:
        raise SegflowError(
            f"no snapshot has a complete {horizon_days}-day label window before the data end "
            f"{end}; use a shorter --horizon-days or more history"
        )
    test = complete[-1]
    train = [s for s in complete if s + dt.timedelta(days=horizon_days) <= test]
    if not train:
        raise SegflowError(
            f"need at least one training snapshot whose {horizon_days}-day label window ends "
            f"by the test snapshot {test}; the data hold {len(complete)} complete snapshot(s) "
            f"({', '.join(map(str, complete))}); use a shorter --horizon-days or more history"
        )
    return train, test


def _stack(parts: list[ibis.Table]) -> pd.DataFrame:
    table = parts[0] if len(parts) == 1 else ibis.union(*parts)
    frame = table.to_pandas()
    return frame.sort_values(["snapshot_date", "customer_id"], kind="stable").reset_index(drop=True)


def churn_training_set(
    features_at: FeaturesAt,
    transactions: ibis.Table,
    snapshots: Sequence[dt.date],
    horizon_days: int = 90,
) -> pd.DataFrame:
    """Features at each snapshot joined with the churn label, stacked over snapshots.

    Parameters
    ----------
    features_at : callable
        ``features_at(snapshot) -> ibis.Table`` with ``customer_id`` and feature columns,
        using rows with ``ts < snapshot`` only (e.g. ``segflow.features.customer_features``).
    transactions : ibis.Table
    snapshots : sequence of date
    horizon_days : int, default=90

    Returns
    -------
    pandas.DataFrame
        One row per eligible customer and snapshot: ``customer_id``, ``snapshot_date``, the
        feature columns and ``churned``; sorted by snapshot then customer.
    """
    if not snapshots:
        raise SegflowError("no snapshot dates given")
    parts = []
    for snapshot in sorted(set(snapshots)):  # one lazy expression per snapshot, executed once
        feats = features_at(snapshot)
        feats = feats.drop(*[c for c in ("snapshot_date", "churned") if c in feats.columns])
        labels = churn_labels(transactions, snapshot, horizon_days)
        joined = feats.inner_join(labels, "customer_id")
        parts.append(joined.mutate(snapshot_date=ibis.literal(snapshot, type="date")))
    return _stack(parts)


def stored_snapshots(assignments: ibis.Table, scheme: str) -> list[dt.date]:
    """Distinct snapshot dates with assignments of ``scheme``, ascending."""
    dates = (
        assignments.filter(assignments.scheme == scheme).select("snapshot_date").distinct()
    ).to_pandas()["snapshot_date"]
    return sorted(pd.Timestamp(d).date() for d in dates)


def next_segment_labels(
    assignments: ibis.Table, scheme: str, snapshot: dt.date, next_snapshot: dt.date
) -> ibis.Table:
    """Each customer's segment at ``snapshot`` and at ``next_snapshot`` (or ``"(gone)"``).

    Returns
    -------
    ibis.Table
        ``customer_id``, ``segment`` (current), ``next_segment``: one row per customer assigned
        at ``snapshot``. Customers first assigned at ``next_snapshot`` (new customers) are not
        included: they have no current segment to move from.
    """
    a = assignments.filter(assignments.scheme == scheme)
    now = a.filter(a.snapshot_date == ibis.literal(snapshot, type="date")).select(
        "customer_id", "segment"
    )
    later = a.filter(a.snapshot_date == ibis.literal(next_snapshot, type="date")).select(
        "customer_id", next_segment=a.segment
    )
    joined = now.left_join(later, now.customer_id == later.customer_id)
    return joined.select(
        customer_id=now.customer_id,
        segment=now.segment,
        next_segment=joined.next_segment.fill_null(GONE),
    )


def next_segment_training_set(
    features_at: FeaturesAt,
    assignments: ibis.Table,
    scheme: str,
    snapshots: Sequence[dt.date] | None = None,
) -> pd.DataFrame:
    """Features at each snapshot with the current and next segment, stacked over snapshots.

    Parameters
    ----------
    features_at : callable
        ``features_at(snapshot) -> ibis.Table`` (see :func:`churn_training_set`).
    assignments : ibis.Table
        The store's ``segment_assignments``.
    scheme : str
    snapshots : sequence of date, optional
        Snapshots to use as "from" dates; default: every stored snapshot of ``scheme`` that has
        a later stored snapshot. Each pairs with the next stored snapshot after it.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``snapshot_date`` (the "from" date), ``next_snapshot``, feature
        columns, ``segment`` and ``next_segment``.
    """
    stored = stored_snapshots(assignments, scheme)
    if len(stored) < 2:
        raise SegflowError(
            f"scheme {scheme!r} has {len(stored)} stored snapshot(s); the next-segment model "
            "needs at least two (run `segflow run` over more periods)"
        )
    following = dict(zip(stored[:-1], stored[1:], strict=True))
    chosen = sorted(set(snapshots)) if snapshots is not None else stored[:-1]
    missing = [s for s in chosen if s not in following]
    if missing:
        raise SegflowError(
            f"snapshot(s) {', '.join(map(str, missing))} of scheme {scheme!r} have no later "
            f"stored snapshot (stored: {', '.join(map(str, stored))})"
        )
    parts = []
    for snapshot in chosen:
        feats = features_at(snapshot)
        drop = [c for c in ("snapshot_date", "segment", "next_segment") if c in feats.columns]
        feats = feats.drop(*drop)
        labels = next_segment_labels(assignments, scheme, snapshot, following[snapshot])
        joined = feats.inner_join(labels, "customer_id")
        parts.append(
            joined.mutate(
                snapshot_date=ibis.literal(snapshot, type="date"),
                next_snapshot=ibis.literal(following[snapshot], type="date"),
            )
        )
    return _stack(parts)


def feature_columns(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> list[str]:
    """Model feature columns of a stacked frame: numbers, booleans and text/categories.

    Identifiers, labels (``churned``, ``next_segment``, ``next_snapshot``), ``exclude``,
    date/time columns (recency is expected as a number of days) and columns that are missing
    for every row (no information, e.g. web features without web events) are left out.
    """
    skip = {*ID_COLUMNS, "churned", "next_segment", "next_snapshot", *exclude}
    keep = []
    for name in frame.columns:
        col = frame[name]
        if name in skip or not col.notna().any():
            continue
        if pd.api.types.is_datetime64_any_dtype(col.dtype):
            continue
        if isinstance(col.dtype, pd.CategoricalDtype):
            keep.append(name)
            continue
        first = col.loc[col.first_valid_index()]
        if isinstance(first, dt.date | dt.datetime | pd.Timestamp):
            continue
        keep.append(name)
    return keep


def observed_in_training(frame: pd.DataFrame, cols: Sequence[str], train_rows: np.ndarray) -> list[str]:
    """``cols`` without the features that have no value in any training row (``train_rows``,
    a boolean mask of ``frame``), with a warning naming them: a feature that starts later
    (campaign features of a shop whose first campaign falls in the test snapshot, web
    features before web tracking began) carries nothing the model can learn, and would stop
    the fit. They are left out of the evaluated and of the refitted model alike, so both
    use the same features."""
    empty = [c for c in cols if not frame.loc[train_rows, c].notna().any()]
    if empty:
        warnings.warn(
            f"left out {len(empty)} feature(s) without a value in any training snapshot "
            f"(data that starts later): {', '.join(empty)}", UserWarning, stacklevel=3)
    return [c for c in cols if c not in empty]
