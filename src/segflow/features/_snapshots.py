"""``snapshot_features``: the features of many snapshots as one long table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence

import ibis

from segflow.errors import InputError
from segflow.features._core import customer_features


def snapshot_features(
    tables: Mapping[str, ibis.Table],
    dates: Sequence[dt.date],
    *,
    window_days: int | None = None,
    groups: Collection[str] | None = None,
) -> ibis.Table:
    """Features at every date of ``dates``, one row per (snapshot, customer known at it).

    Parameters
    ----------
    tables, window_days, groups
        As for :func:`segflow.features.customer_features`.
    dates : sequence of date
        The snapshot dates (at least one; duplicates are ignored).

    Returns
    -------
    ibis.Table
        Column ``snapshot_date`` (date) followed by exactly the columns of
        ``customer_features(tables, s, window_days=window_days, groups=groups)``; its rows
        are the union over ``s`` of those tables.

    Raises
    ------
    InputError
        When ``dates`` is empty, or as :func:`customer_features`.
    """
    unique = sorted(set(dates))
    if not unique:
        raise InputError("snapshot_features needs at least one snapshot date")
    parts = [
        customer_features(tables, s, window_days=window_days, groups=groups).mutate(
            snapshot_date=ibis.literal(s, type="date")
        )
        for s in unique
    ]
    out = parts[0] if len(parts) == 1 else ibis.union(*parts, distinct=False)
    return out.relocate("snapshot_date")
