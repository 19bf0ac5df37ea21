"""Frozen cut-offs: score every snapshot against the cut points of one reference snapshot.

Quantile scores recomputed at every snapshot are relative to the base: a customer can move
from Champions to Hibernating with nothing changed but the arrival of better customers.
A scheme with ``cutoffs = "reference"`` keeps the cut points of ``reference_snapshot`` (the
quantile rule of :mod:`segflow.segments._scores` on that snapshot's features), and one with
``cutoffs = "fixed"`` takes them from ``cut_points``; either way a customer moves only when
their own values cross a cut point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import ibis

from segflow.config import SchemeSettings
from segflow.errors import SegflowError
from segflow.segments._buckets import value_tier_thresholds
from segflow.segments._rfm import GRID_BINS, rfm_cut_points

#: Scheme kinds whose scores can be frozen.
FREEZABLE = ("rfm", "rules", "value_tiers")


def with_project_defaults(
    schemes: Sequence[SchemeSettings], *, rfm_bins: int = GRID_BINS
) -> list[SchemeSettings]:
    """Copies of ``schemes`` where an unset ``bins`` takes the project's ``[rfm] bins``."""
    return [
        s.model_copy(update={"bins": rfm_bins}) if s.bins is None and rfm_bins != GRID_BINS
        else s
        for s in schemes
    ]


def freeze_cutoffs(
    schemes: Sequence[SchemeSettings],
    tables: Mapping[str, ibis.Table],
    *,
    window_days: int | None = None,
) -> list[SchemeSettings]:
    """Resolve ``cutoffs = "reference"``: copies of ``schemes`` with the ``cut_points`` of
    their ``reference_snapshot`` filled in (others unchanged).

    Parameters
    ----------
    schemes : sequence of SchemeSettings
    tables : mapping of str to ibis.Table
        The canonical tables (see :func:`segflow.features.customer_features`).
    window_days : int, optional
        The project's ``[rfm] window_days``.

    Returns
    -------
    list of SchemeSettings
        RFM (and rules naming scores): ``recency_days``, ``frequency``, ``monetary``;
        value tiers: ``value`` (one lowest value per tier, ``inf`` for a tier empty at the
        reference snapshot).

    Raises
    ------
    SegflowError
        A reference scheme of another kind, a nested one, or a reference snapshot without
        buyers (or, with ``window_days``, without a buyer with an order in the window).
    """
    from segflow.features import customer_features

    out: list[SchemeSettings] = []
    for scheme in schemes:
        if scheme.cutoffs == "per_snapshot" or scheme.cut_points:
            out.append(scheme)
            continue
        if scheme.kind not in FREEZABLE:
            raise SegflowError(f"scheme {scheme.name!r}: cutoffs apply to kinds "
                               f"{', '.join(FREEZABLE)}, not {scheme.kind!r}")
        if scheme.within:
            raise SegflowError(f"scheme {scheme.name!r}: frozen cut-offs cannot be nested (within)")
        day = scheme.reference_snapshot
        assert day is not None  # checked by SchemeSettings
        groups = None if scheme.kind == "value_tiers" else {"rfm"}
        features = customer_features(tables, day, window_days=window_days, groups=groups)
        if scheme.kind == "value_tiers":
            found = value_tier_thresholds(features, tiers=scheme.tiers, value=scheme.value_feature)
            cuts = {"value": [math.inf if v is None else v for v in found]}
        else:
            bins = scheme.bins if scheme.bins is not None else GRID_BINS
            try:
                cuts = rfm_cut_points(features, bins=bins)
            except SegflowError as exc:
                raise SegflowError(f"scheme {scheme.name!r}: reference snapshot {day}: {exc}") from None
            if any(math.isinf(c) for c in cuts["frequency"]):
                raise SegflowError(
                    f"scheme {scheme.name!r}: reference snapshot {day}: no customer has an order "
                    f"in the last {window_days} days ([rfm] window_days), so its frequency and "
                    "monetary cut points would give every customer f_score = m_score = 1; "
                    "choose a later reference_snapshot")
        out.append(scheme.model_copy(update={"cut_points": cuts}))
    return out


def reference_notes(schemes: Sequence[SchemeSettings], dates: Sequence[object], *,
                    warn: bool = True) -> list[str]:
    """A note for every scheme with ``cutoffs = "reference"`` whose reference snapshot is
    later than the first of ``dates`` (the run's snapshot dates): its cut points, taken
    from the customers at the reference snapshot, score the earlier snapshots too, so their
    segments read data from after them (a look-ahead the user may want, for a fixed
    yardstick, but should know of). Each is also warned (:class:`SchemeCheckWarning`)
    when ``warn``."""
    import warnings

    from segflow.segments._checks import SchemeCheckWarning

    if not dates:
        return []
    first = min(dates)
    notes = []
    for scheme in schemes:
        day = scheme.reference_snapshot
        if scheme.cutoffs != "reference" or day is None or day <= first:
            continue
        earlier = sum(1 for d in dates if d < day)
        notes.append(f"scheme {scheme.name!r}: cut-offs frozen at {day} also score the "
                     f"{earlier} earlier snapshot(s) from {first}: their segments use the "
                     "distribution of later data (a look-ahead); set reference_snapshot on or "
                     f"before {first} for cut-offs known at every snapshot")
    if warn:
        for note in notes:
            warnings.warn(note, SchemeCheckWarning, stacklevel=2)
    return notes


def score_basis(scheme: SchemeSettings) -> str:
    """One sentence for migration views: are the scheme's segments relative to the base at
    each snapshot, or fixed thresholds (so a move is the customer's own change)?"""
    quantile = scheme.kind in ("rfm", "value_tiers") or (
        scheme.kind == "rules" and any(t in r.when for r in scheme.rules
                                       for t in ("r_score", "f_score", "m_score", "fm_score")))
    if scheme.kind == "cluster":
        return "Segments from a fitted cluster model: a move is a change of the customer's features."
    if not quantile:
        return "Fixed thresholds: a move is a change in the customer's own behaviour."
    if scheme.cutoffs == "reference":
        return (f"Quantile cut-offs frozen at {scheme.reference_snapshot}: a move is a change in "
                "the customer's own behaviour.")
    if scheme.cutoffs == "fixed":
        return "Fixed cut-offs: a move is a change in the customer's own behaviour."
    return ("Quantile scores relative to the base at each snapshot: a move can come from other "
            "customers changing (freeze the cut-offs for customer-only moves).")
