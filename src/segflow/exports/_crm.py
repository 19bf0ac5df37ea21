"""The CRM segment list with scores and personal columns, and its changes since a snapshot.

:func:`crm_segment_list` widens :func:`~segflow.exports.segment_list` (current and previous
segment, change date, time in segment) with the customer's scores at the snapshot and their
personal columns under a policy (see :mod:`segflow.exports._pii`).
:func:`segment_changes` keeps the customers whose segment differs from the one they had at
an earlier snapshot (the watermark of an incremental export), plus those who appeared or
left. All of it is one Ibis expression, run in the engine.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import ibis
from ibis import _

from segflow._dates import as_date
from segflow.errors import InputError, SegflowError
from segflow.exports._pii import personal_columns
from segflow.exports._segment_list import segment_list
from segflow.migration._pairs import scheme_rows, snapshot_list
from segflow.migration._spells import has_spells, spell_segment_list, spell_snapshots

if TYPE_CHECKING:
    from segflow.store import Store

#: Values of the ``change`` column of :func:`segment_changes`.
CHANGES = ("new", "changed", "removed")


def _score_name(model: str, score: str) -> str:
    from segflow.campaigns import column_name

    return column_name(model, score)


def check_scheme_name(scheme: object) -> str:
    """``scheme`` if it is text, else a one-line InputError (a number reached DuckDB as a
    ConversionException)."""
    if not isinstance(scheme, str):
        raise InputError(f"a scheme is named by text, not {type(scheme).__name__} {scheme!r}")
    return scheme


def latest_snapshot(store: Store, scheme: str) -> dt.date:
    """The latest snapshot date of ``scheme`` (an error naming the scheme when it has none)."""
    check_scheme_name(scheme)
    if has_spells(store):
        dates = spell_snapshots(store, scheme)
    else:
        dates = snapshot_list(scheme_rows(store.table("segment_assignments"), scheme))
    if not dates:
        from segflow._suggest import scheme_hint

        if has_spells(store):
            from segflow.store._spells import assigned_schemes

            schemes = assigned_schemes(store.raw)
        else:
            schemes = store.sql("SELECT DISTINCT scheme FROM segment_assignments")["scheme"].to_pylist()
        raise SegflowError(f"scheme {scheme!r} has no assignments; {scheme_hint(scheme, schemes)}")
    return dates[-1]


def scores_wide(store: Store, snapshot: dt.date) -> ibis.Table | None:
    """Every score stored at ``snapshot``, one column ``<model>__<score>`` each, or None."""
    sc = store.table("customer_scores")
    sc = sc.filter(sc.snapshot_date == snapshot)
    pairs = sc.select("model", "score").distinct().order_by(["model", "score"]).to_pyarrow()
    if not pairs.num_rows:
        return None
    metrics = {
        _score_name(m, s): _.value.max(where=(_.model == m) & (_.score == s))
        for m, s in zip(pairs["model"].to_pylist(), pairs["score"].to_pylist(), strict=True)
    }
    return sc.group_by("customer_id").agg(**metrics)


def crm_segment_list(
    store: Store,
    scheme: str,
    as_of: dt.date | str | None = None,
    *,
    pii: str = "hash",
    scores: bool = True,
) -> ibis.Table:
    """One row per customer assigned at ``as_of``: the CRM fields of a segment list.

    Parameters
    ----------
    store : Store
    scheme : str
    as_of : date, optional
        Snapshot date (default: the scheme's latest).
    pii : {"hash", "mask", "omit", "include"}, default="hash"
        Policy for the personal columns of ``customers`` (see :mod:`segflow.exports._pii`).
    scores : bool, default=True
        Add every score stored at the snapshot (P(alive), CLV, churn probability...) as
        ``<model>__<score>`` columns; a customer without a score gets NULL.

    Returns
    -------
    ibis.Table
        The columns of :func:`~segflow.exports.segment_list`, then the personal columns,
        then the scores; ordered by ``customer_id``.
    """
    check_scheme_name(scheme)
    day = as_date(as_of) if as_of is not None else latest_snapshot(store, scheme)
    # read from the change rows where the store has them (same result, no per-snapshot rows)
    out = spell_segment_list(store, scheme, day) if has_spells(store) and day in set(
        spell_snapshots(store, scheme)) else None
    if out is None:
        out = segment_list(store.table("segment_assignments"), scheme, day)
    people = personal_columns(store.table("customers"), pii).rename(p_customer_id="customer_id")
    if len(people.columns) > 1:
        out = out.left_join(people, out.customer_id == people.p_customer_id).drop("p_customer_id")
    if scores:
        wide = scores_wide(store, day)
        if wide is not None:
            wide = wide.rename(s_customer_id="customer_id")
            out = out.left_join(wide, out.customer_id == wide.s_customer_id).drop("s_customer_id")
    return out.order_by("customer_id")


def segment_changes(
    store: Store,
    scheme: str,
    since: dt.date | str | None,
    as_of: dt.date | str | None = None,
    *,
    pii: str = "hash",
    scores: bool = True,
) -> ibis.Table:
    """Customers whose segment at ``as_of`` differs from their segment at ``since``.

    Parameters
    ----------
    since : date or None
        The earlier snapshot (an incremental export's watermark); must be a snapshot of the
        scheme, at or before ``as_of``. None (the first incremental export of a name, which
        has no watermark): every customer assigned at ``as_of`` is ``"new"``, with
        ``segment_at_since`` NULL, so that the first delta has the columns of every later one.
    as_of, pii, scores
        As for :func:`crm_segment_list`.

    Returns
    -------
    ibis.Table
        ``change`` (``"new"``: assigned at ``as_of`` but not at ``since``; ``"changed"``:
        another segment than at ``since``; ``"removed"``: assigned at ``since`` but no longer
        at ``as_of``, with the current fields NULL), ``segment_at_since`` (the segment at
        ``since``), then the columns of :func:`crm_segment_list`. A customer who changed and
        changed back between the two snapshots is not listed: the receiving system already
        holds their segment. Score changes alone do not make a row.
    """
    check_scheme_name(scheme)
    day = as_date(as_of) if as_of is not None else latest_snapshot(store, scheme)
    first = ["customer_id", "scheme", "change", "segment_at_since"]
    if since is None:
        current = crm_segment_list(store, scheme, day, pii=pii, scores=scores)
        everyone = current.mutate(change=ibis.literal("new"), segment_at_since=ibis.null("string"))
        return everyone.select(*first, *[c for c in current.columns if c not in first]).order_by(
            "customer_id")
    since = as_date(since)
    if has_spells(store):
        available = spell_snapshots(store, scheme)
    else:
        available = snapshot_list(scheme_rows(store.table("segment_assignments"), scheme))
    if since not in available:
        raise SegflowError(
            f"scheme {scheme!r} has no snapshot at {since} (the last export's watermark); the "
            "history was recomputed on other dates: export in full once (without --changes, "
            "under the same --name), then --changes again"
        )
    if since > day:
        raise SegflowError(f"the watermark {since} is after the snapshot {day} being exported")
    current = crm_segment_list(store, scheme, day, pii=pii, scores=scores)
    a = scheme_rows(store.table("segment_assignments"), scheme)
    before = a.filter(a.snapshot_date == since).select(
        b_customer_id=_.customer_id, segment_at_since=_.segment
    )
    j = current.outer_join(before, current.customer_id == before.b_customer_id)
    change = ibis.cases(
        (j.customer_id.isnull(), "removed"),
        (j.b_customer_id.isnull(), "new"),
        (j.segment != j.segment_at_since, "changed"),
        else_=ibis.null("string"),
    )
    j = j.mutate(change=change, customer_id=ibis.coalesce(j.customer_id, j.b_customer_id))
    j = j.mutate(scheme=ibis.literal(scheme))
    j = j.filter(j.change.notnull()).drop("b_customer_id")
    return j.select(*first, *[c for c in current.columns if c not in first]).order_by("customer_id")
