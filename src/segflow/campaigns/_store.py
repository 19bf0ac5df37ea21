"""Campaigns on the store's customers: customer-level responses after exposure, and the
segment each customer was in before the campaign.

Written as Ibis expressions over the canonical tables ``campaign_exposures``,
``transactions`` and ``segment_assignments``, so they run on any engine; ``source`` is
anything with a ``table(name)`` method (a :class:`segflow.store.Store` or a
:class:`segflow.engine.Engine`).
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence
from typing import Protocol

import ibis
import pandas as pd
from ibis import _

from segflow._dates import as_date
from segflow.errors import InputError
from segflow.exports._pii import is_customer_key, is_personal
from segflow.features._purchase_def import is_purchase_line, order_ts_key

NEW = "(new)"
#: The level of the ``tenure`` and customer-attribute breakdowns for a customer whose first
#: record was made at or after their exposure (a prospect or guest who registered later):
#: before, tenure called them "new (< 90 days)" (a negative tenure) and the attribute
#: "(missing)". The rule is the snapshot's (features: a record made at s is not known at s).
NOT_YET = "(not yet a customer)"
GONE = "(gone)"


class TableSource(Protocol):
    def table(self, name: str) -> ibis.Table: ...


def campaign_cohort(source: TableSource, campaign_id: str) -> ibis.Table:
    """One row per customer exposed in ``campaign_id``: ``customer_id``, ``arm``,
    ``exposed_at`` (first exposure timestamp of any type: send, open, click...).

    Customers found in more than one arm are contaminated; they are left out with a warning
    that gives their number.

    Raises
    ------
    InputError
        When the campaign has no exposures.
    """
    e = source.table("campaign_exposures")
    e = e.filter((e.campaign_id == campaign_id) & e.customer_id.notnull() & e.arm.notnull())
    per = e.group_by("customer_id").agg(
        arm=_.arm.min(), arms=_.arm.nunique(), exposed_at=_.ts.min()
    )
    stats = per.agg(customers=_.count(), mixed=(_.arms > 1).cast("int64").sum()).to_pandas()
    customers, mixed = int(stats.customers.iloc[0]), int(stats.mixed.fillna(0).iloc[0])
    if customers == 0:
        raise _unknown_campaign(source, campaign_id)
    if mixed:
        warnings.warn(
            f"left out {mixed} of {customers} customers of campaign {campaign_id!r} who were "
            "exposed in more than one arm",
            UserWarning,
            stacklevel=3,
        )
    return per.filter(_.arms == 1).select("customer_id", "arm", "exposed_at")


def _unknown_campaign(source: TableSource, campaign_id: str) -> InputError:
    """The error for a campaign id without exposures, naming the closest known id."""
    from segflow._suggest import did_you_mean

    known = sorted(source.table("campaign_exposures").select("campaign_id").distinct()
                   .to_pandas()["campaign_id"].dropna().astype(str))
    listed = f": {', '.join(known[:20])}" if known else ""
    return InputError(
        f"campaign {campaign_id!r} has no exposures in the store; "
        f"{did_you_mean(campaign_id, known)}{len(known)} campaigns known{listed}",
        column="campaign_id",
    )


def campaign_window(source: TableSource, campaign_id: str) -> tuple[dt.datetime, dt.datetime]:
    """First and last exposure timestamps of the campaign."""
    e = source.table("campaign_exposures")
    row = (
        e.filter(e.campaign_id == campaign_id).agg(start=_.ts.min(), end=_.ts.max()).to_pandas()
    )
    if row.start.isna().iloc[0]:
        raise _unknown_campaign(source, campaign_id)
    return row.start.iloc[0].to_pydatetime(), row.end.iloc[0].to_pydatetime()


def snapshot_before(source: TableSource, scheme: str, when: dt.datetime, *,
                    dates: Sequence[dt.date] | None = None) -> dt.date:
    """The latest snapshot date of ``scheme`` not after ``when``'s date (``dates``: the
    scheme's snapshot dates, ascending, when the caller read them; else read here).

    A snapshot ``s`` uses rows with ``ts < s`` only, so a snapshot on or before the
    campaign start date describes customers before any exposure."""
    dates = list(dates) if dates is not None else _snapshots(source, scheme)
    before = [d for d in dates if d <= when.date()]
    if not before:
        raise InputError(
            f"scheme {scheme!r} has no snapshot on or before the campaign start {when.date()}; "
            f"its snapshots run from {dates[0]} to {dates[-1]}",
            column="snapshot_date",
        )
    return before[-1]


def snapshot_after(source: TableSource, scheme: str, when: dt.datetime, *,
                   dates: Sequence[dt.date] | None = None) -> dt.date:
    """The first snapshot date of ``scheme`` strictly after ``when`` (``dates``: as in
    :func:`snapshot_before`)."""
    dates = list(dates) if dates is not None else _snapshots(source, scheme)
    after = [d for d in dates if dt.datetime.combine(d, dt.time()) > when]
    if not after:
        raise InputError(
            f"scheme {scheme!r} has no snapshot after {when}; its last snapshot is {dates[-1]}",
            column="snapshot_date",
        )
    return after[0]


def scheme_snapshots(source: TableSource, scheme: str) -> list[dt.date]:
    """The snapshot dates of ``scheme`` with assignments, ascending.

    Raises
    ------
    InputError
        No assignments of ``scheme`` (the message names the known schemes)."""
    return _snapshots(source, scheme)


def _snapshots(source: TableSource, scheme: str) -> list[dt.date]:
    a = source.table("segment_assignments")
    dates = (
        a.filter(a.scheme == scheme).select("snapshot_date").distinct().to_pandas()["snapshot_date"]
    )
    if dates.empty:
        from segflow._suggest import scheme_hint

        schemes = a.select("scheme").distinct().to_pandas()["scheme"].astype(str)
        raise InputError(f"no segment assignments for scheme {scheme!r}; {scheme_hint(scheme, schemes)}",
                         column="scheme")
    return sorted(as_date(d) for d in dates)


def segments_at(source: TableSource, scheme: str, snapshot: dt.date) -> ibis.Table:
    """``customer_id, segment, segment_rank`` of ``scheme`` at ``snapshot`` (latest run
    if a snapshot was written twice)."""
    a = source.table("segment_assignments")
    a = a.filter((a.scheme == scheme) & (a.snapshot_date == snapshot))
    return a.group_by("customer_id").agg(segment=_.segment.max(), segment_rank=_.segment_rank.min())


def exposure_responses(
    source: TableSource,
    campaign_id: str,
    *,
    window_days: int = 30,
    scheme: str | None = None,
    snapshot: dt.date | None = None,
    by: Sequence[str] = (),
    cohort: ibis.Table | None = None,
) -> ibis.Table:
    """Customer-level responses to a campaign: one row per exposed customer.

    Parameters
    ----------
    source : Store or Engine
    campaign_id : str
    window_days : int, default=30
        Outcomes count transactions with ``exposed_at <= ts < exposed_at + window_days``
        (days), for treated and control customers alike (a control customer's exposure row
        is the moment they were assigned).
    scheme : str, optional
        Add the column ``segment``: the customer's segment of this scheme at the snapshot
        before the campaign (``snapshot``, default :func:`snapshot_before` the first
        exposure); customers not yet in the base then are ``"(new)"``.

    Returns
    -------
    ibis.Table
        ``customer_id, arm, exposed_at, purchased`` (1 if any purchase in the window, else 0),
        ``purchases`` (orders in the window under segflow's one purchase definition: purchase
        lines are not returns and have amount >= 0; lines without an order id form one order
        per timestamp), ``revenue`` (net amount in the window, returns subtracted, in the
        store's currency)
        [, ``segment``] [, one column per ``by`` entry, named after it].
    cohort : ibis.Table, optional
        :func:`campaign_cohort` of the campaign when the caller has it (read here when None).
    """
    check_window(window_days)
    if cohort is None:
        cohort = campaign_cohort(source, campaign_id)
    t = source.table("transactions")
    t = t.filter(t.customer_id.notnull()).select(
        "customer_id", "ts", "amount", is_buy=is_purchase_line(t),
        order=ibis.coalesce(t.transaction_id, order_ts_key(t).cast("string")),
    )
    joined = cohort.join(t, "customer_id")
    in_window = joined.filter(
        (joined.ts >= joined.exposed_at)
        & (joined.ts < joined.exposed_at + ibis.interval(days=window_days))
    )
    outcome = in_window.group_by("customer_id").agg(
        purchases=_.order.nunique(where=_.is_buy).cast("int64"), revenue=_.amount.sum()
    )
    r = cohort.left_join(outcome, "customer_id")
    r = r.select(
        "customer_id",
        "arm",
        "exposed_at",
        purchased=(r.purchases.fill_null(0) > 0).cast("int64"),
        purchases=r.purchases.fill_null(0),
        revenue=r.revenue.fill_null(0.0).cast("float64"),
    )
    _warn_censored(source, cohort, window_days)
    if scheme is None and not by:
        return r
    known = _schemes(source) if by else set()
    by_schemes = [b for b in by if b in known]
    if snapshot is None and (scheme is not None or by_schemes):
        snapshot = _default_snapshot(source, scheme or by_schemes[0], campaign_id)
    base = ["customer_id", "arm", "exposed_at", "purchased", "purchases", "revenue"]
    if scheme is not None:
        seg = segments_at(source, scheme, snapshot)  # type: ignore[arg-type]
        r = r.left_join(seg, "customer_id")
        r = r.select(*base, segment=r.segment.fill_null(NEW))
        base.append("segment")
    for name in by:
        r = _add_breakdown(source, r, name, snapshot, base, known)
        base.append(name)
    return r


def check_window(window_days: int) -> None:
    """Raise :class:`InputError` unless ``window_days`` (a response window) is positive."""
    if window_days <= 0:
        raise InputError(f"the response window must be a positive number of days, not {window_days}")


def _default_snapshot(source: TableSource, scheme: str, campaign_id: str) -> dt.date:
    return snapshot_before(source, scheme, campaign_window(source, campaign_id)[0])


def _schemes(source: TableSource) -> set[str]:
    a = source.table("segment_assignments")
    return set(a.select("scheme").distinct().to_pandas()["scheme"])


def _add_breakdown(
    source: TableSource,
    r: ibis.Table,
    name: str,
    snapshot: dt.date | None,
    keep: list[str],
    known: set[str],
) -> ibis.Table:
    customers = source.table("customers")
    if name == "tenure":
        j = r.left_join(first_seen(source, r.select("customer_id")), "customer_id")
        days = (j.exposed_at.epoch_seconds() - j._first_seen.epoch_seconds()).cast("float64") / 86400.0
        band = ibis.cases(
            (j._first_seen.isnull(), "unknown"),
            (j._first_seen >= j.exposed_at, NOT_YET),
            (days < 90.0, "new (< 90 days)"),
            (days < 365.0, "90-365 days"),
            else_="> 1 year",
        )
        return j.select(*keep, tenure=band)
    if name in known:
        seg = segments_at(source, name, snapshot)  # type: ignore[arg-type]
        seg = seg.select("customer_id", _by_segment=seg.segment)
        j = r.left_join(seg, "customer_id")
        return j.select(*keep, **{name: j._by_segment.fill_null(NEW)})
    usable = breakdown_columns(customers.columns)
    if name in usable:
        c = _record_before_exposure(customers, r.select("customer_id", "exposed_at"), name)
        j = r.left_join(c, "customer_id").left_join(first_seen(source, r.select("customer_id")),
                                                    "customer_id")
        value = ibis.ifelse(j._first_seen >= j.exposed_at, NOT_YET, j[name].cast("string"))
        return j.select(*keep, **{name: value})
    raise InputError(
        f"cannot break down by {name!r}: not a scheme ({', '.join(sorted(known)) or 'none'}), "
        f"an attribute column of customers ({', '.join(usable) or 'none'}) or 'tenure'",
        column=name,
    )


def first_seen(source: TableSource, cohort: ibis.Table) -> ibis.Table:
    """``customer_id`` and ``_first_seen`` of each customer of ``cohort``: the earlier of
    their earliest ``created_at`` and their first transaction row of any kind (null when
    neither is known), the start of the feature library's ``tenure_days`` and of its
    customer base (:func:`segflow.features._attributes.customer_base`: a customer is in the
    base at ``s`` when signed up or with a transaction row before ``s``). A customer
    exposed before it was no customer yet (``(not yet a customer)``); a guest who bought
    before the exposure and registered after it was one (before session 60 the tenure
    started at ``created_at`` only, and called such a guest no customer yet while the
    segment breakdown counted them)."""
    ids = cohort.select("customer_id").distinct()
    c = source.table("customers")
    created = (c.filter(c.customer_id.notnull(), c.created_at.notnull())
               .group_by("customer_id").agg(_created=_.created_at.min()))
    t = source.table("transactions")
    bought = (t.filter(t.customer_id.notnull(), t.ts.notnull())
              .group_by("customer_id").agg(_first_tx=_.ts.min()))
    j = ids.left_join(created, "customer_id").left_join(bought, "customer_id")
    start = ibis.ifelse(j._created.isnull() | (j._first_tx.notnull() & (j._first_tx < j._created)),
                        j._first_tx, j._created)
    return j.select(customer_id=j.customer_id, _first_seen=start)


def breakdown_columns(columns: Sequence[str]) -> list[str]:
    """The columns of the store's ``customers`` a breakdown may name (in their order): its
    attributes, not ``customer_id`` (one group per person), not a personal column
    (:func:`segflow.exports.is_personal`: ``email``, ``phone``), not the lineage columns
    (``source``, ``source_file``, ``source_row``, ``load_id``: where a row came from) nor the
    validity columns (``valid_from``, ``valid_to``)."""
    from segflow.store import LINEAGE_COLUMNS

    skip = {"valid_from", "valid_to", *LINEAGE_COLUMNS}
    return [c for c in columns if c not in skip and not is_personal(c) and not is_customer_key(c)]


def _record_before_exposure(customers: ibis.Table, cohort: ibis.Table, name: str) -> ibis.Table:
    """``customer_id`` and column ``name`` of each customer's record valid just before their
    first exposure (pre-treatment, as the segments): its start (:func:`known_from`, the later
    of ``valid_from`` and the row's ``created_at``) missing or before ``exposed_at`` and
    ``valid_to`` missing or not before it (the snapshot rule of
    :func:`segflow.features._attributes.customer_records`, at the exposure); among those the
    latest ``valid_from``, then the earliest ``created_at``. A version that starts after the
    exposure (a customer who moved after the campaign), or a record made after it (a guest
    who registered later, a version back-dated before its record was made), is never read."""
    from segflow.features._attributes import known_from

    c = customers.filter(customers.customer_id.notnull())
    none = ibis.null("timestamp")
    c = c.select("customer_id", "created_at", name,
                 _vf=c.valid_from if "valid_from" in c.columns else none,
                 _vt=c.valid_to if "valid_to" in c.columns else none)
    j = c.join(cohort, "customer_id")
    start = known_from(j._vf, j.created_at)
    j = j.filter(start.isnull() | (start < j.exposed_at), j._vt.isnull() | (j._vt >= j.exposed_at))
    order = [j._vf.isnull(), ibis.desc(j._vf), j.created_at.isnull(), j.created_at, j[name]]
    j = j.mutate(_rn=ibis.row_number().over(group_by="customer_id", order_by=order))
    return j.filter(j._rn == 0).select("customer_id", name)


def _warn_censored(source: TableSource, cohort: ibis.Table, window_days: int) -> None:
    """Warn when response windows run past the last transaction (one engine query: the
    last transaction joined to the cohort)."""
    t = source.table("transactions")
    last = t.aggregate(_last_tx=t.ts.max())
    j = cohort.cross_join(last)
    cut = (j.exposed_at + ibis.interval(days=window_days) > j._last_tx).cast("int64")
    row = j.aggregate(n=cut.sum(), last_tx=j._last_tx.max()).to_pandas()
    last_tx = row["last_tx"].iloc[0]
    if pd.isna(last_tx):
        return
    last_tx = pd.Timestamp(last_tx)
    n = int(row["n"].fillna(0).iloc[0])
    if n:
        warnings.warn(
            f"the {window_days}-day response window of {n} customers runs past the last "
            f"transaction in the store ({last_tx}); their outcomes are cut short",
            UserWarning,
            stacklevel=3,
        )


def campaigns_summary(source: TableSource) -> pd.DataFrame:
    """One row per campaign and arm: ``campaign_id, arm, customers, exposures, first_exposure,
    last_exposure`` (customers = distinct customer ids with that arm)."""
    e = source.table("campaign_exposures")
    return (
        e.group_by(["campaign_id", "arm"])
        .agg(customers=_.customer_id.nunique(), exposures=_.count(), first_exposure=_.ts.min(),
             last_exposure=_.ts.max())
        .order_by(["campaign_id", "arm"])
        .to_pandas()
    )
