"""Checks of a scheme's assignments: rules that match nobody, segments below a minimum share.

``segflow run`` (at the latest snapshot) and ``segflow segment`` call :func:`check_scheme`
and warn with :class:`SchemeCheckWarning`; the messages also go into the run's notes.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import ibis

from segflow.config import SchemeSettings
from segflow.segments._rules import compile_condition

#: At most this many segments are named in one small-segment message.
_MAX_NAMED = 8


class SchemeCheckWarning(UserWarning):
    """A rule of a scheme matches nobody, or segments hold less than the minimum share."""


def rule_coverage(scheme: SchemeSettings, features: ibis.Table) -> list[dict[str, object]]:
    """Per rule of a (flat) rule scheme: customers its condition holds for on its own, the
    customers it names (first match), and how many of its matches each earlier rule takes.

    Returns
    -------
    list of dict
        ``{"rule": 1-based position, "segment", "matches", "assigned",
        "taken_by": {earlier segment: customers}}``, in rule order.
    """
    from segflow.segments._assign import rule_features

    table = rule_features(scheme, features)
    conds = [compile_condition(r.when, table, rule=r.segment) for r in scheme.rules]
    first = ibis.cases(*((c, ibis.literal(i)) for i, c in enumerate(conds)),
                       else_=ibis.literal(-1))
    metrics = {}
    for i, c in enumerate(conds):
        metrics[f"m{i}"] = c.cast("int64").sum()
        metrics[f"a{i}"] = (first == i).cast("int64").sum()
        for j in range(i):
            metrics[f"t{i}_{j}"] = (c & (first == j)).cast("int64").sum()
    row = table.aggregate(**metrics).to_pandas().iloc[0]
    out = []
    for i, rule in enumerate(scheme.rules):
        taken: dict[str, int] = {}
        for j in range(i):
            n = int(row[f"t{i}_{j}"] or 0)
            if n:
                name = scheme.rules[j].segment
                taken[name] = taken.get(name, 0) + n
        out.append({"rule": i + 1, "segment": rule.segment, "matches": int(row[f"m{i}"] or 0),
                    "assigned": int(row[f"a{i}"] or 0), "taken_by": taken})
    return out


def rule_messages(
    scheme: SchemeSettings, features: ibis.Table, *, snapshot: object = None
) -> list[str]:
    """One message per rule that names no customer: shadowed by earlier rules, or matching
    nobody at all. Empty for other kinds of scheme and for nested rule schemes."""
    if scheme.kind != "rules" or scheme.within or not scheme.rules:
        return []
    at = f" at {snapshot}" if snapshot is not None else ""
    out = []
    for r in rule_coverage(scheme, features):
        if r["assigned"]:
            continue
        head = f"scheme {scheme.name!r}{at}: rule {r['rule']} ({r['segment']!r}) names no customer"
        if r["matches"]:
            takers = ", ".join(f"{k!r} ({v:,})" for k, v in r["taken_by"].items())  # type: ignore[union-attr]
            out.append(f"{head}: earlier rules take all {r['matches']:,} customers it matches: "
                       f"{takers}; put it before them or narrow them")
        else:
            out.append(f"{head}: its condition matches nobody")
    return out


def small_segment_messages(
    scheme: SchemeSettings, sizes: Sequence[tuple[str, int]], *, snapshot: object = None
) -> list[str]:
    """A message when segments hold less than ``scheme.min_segment_share`` of the base.

    ``sizes`` are (segment, customers) pairs; segments with 0 customers count too.
    """
    total = sum(n for _, n in sizes)
    floor = scheme.min_segment_share
    if not total or floor <= 0:
        return []
    small = sorted(((s, n) for s, n in sizes if n < floor * total), key=lambda x: (x[1], x[0]))
    if not small:
        return []
    at = f" at {snapshot}" if snapshot is not None else ""
    named = ", ".join(f"{s} ({n:,}, {n / total:.1%})" for s, n in small[:_MAX_NAMED])
    more = f" and {len(small) - _MAX_NAMED} more" if len(small) > _MAX_NAMED else ""
    return [f"scheme {scheme.name!r}{at}: {len(small)} of {len(sizes)} segments {'holds' if len(small) == 1 else 'hold'} less than "
            f"{floor:.1%} of the {total:,} customers (min_segment_share): {named}{more}"]


def one_segment_messages(scheme: SchemeSettings, sizes: Mapping[str, int], *,
                         snapshot: object = None) -> list[str]:
    """A message when every customer of a scheme (at least two; RFM: every buyer) is in one
    segment: the scheme tells nobody apart. For RFM it names the cause, ties: equal values
    get equal scores, and a value held by more than ``1 / bins`` of the customers takes the
    lowest score (docs/segments.md, "Heavy ties"), so identical buyers are all "Lost"."""
    from segflow.segments._rfm import NO_PURCHASE

    counted = {s: n for s, n in sizes.items() if n > 0 and not (scheme.kind == "rfm" and s == NO_PURCHASE)}
    total = sum(counted.values())
    if len(counted) != 1 or total < 2:
        return []
    (segment,) = counted
    at = f" at {snapshot}" if snapshot is not None else ""
    who = "customers with a purchase" if scheme.kind == "rfm" else "customers"
    why = ("; their recency, frequency and spend tie, and a value held by more than 1/bins of the "
           "customers takes the lowest score (docs/segments.md, 'Heavy ties')" if scheme.kind == "rfm" else "")
    return [f"scheme {scheme.name!r}{at}: all {total:,} {who} are in one segment, {segment!r}{why}"]


def check_scheme(
    scheme: SchemeSettings,
    features: ibis.Table,
    assignments: ibis.Table,
    *,
    snapshot: object = None,
    warn: bool = True,
) -> list[str]:
    """Rule and small-segment checks of one scheme's assignments at one snapshot.

    Parameters
    ----------
    scheme : SchemeSettings
    features : ibis.Table
        The features the assignments were made from.
    assignments : ibis.Table
        Output of :func:`segflow.segments.assign`.
    snapshot : date, optional
        Named in the messages.
    warn : bool, default=True
        Also emit each message as a :class:`SchemeCheckWarning`.

    Returns
    -------
    list of str
        The messages (empty when all is well).
    """
    messages = rule_messages(scheme, features, snapshot=snapshot)
    counts = assignments.group_by("segment").aggregate(n=assignments.count()).to_pandas()
    sizes = {str(s): int(n) for s, n in zip(counts["segment"], counts["n"], strict=True)}
    for name in expected_segments(scheme):
        sizes.setdefault(name, 0)
    messages += small_segment_messages(scheme, sorted(sizes.items()), snapshot=snapshot)
    messages += one_segment_messages(scheme, sizes, snapshot=snapshot)
    if warn:
        for message in messages:
            warnings.warn(message, SchemeCheckWarning, stacklevel=2)
    return messages


def expected_segments(scheme: SchemeSettings) -> tuple[str, ...]:
    """Segments a flat rule scheme can name (rules in order, then the default); empty for
    other kinds (their empty segments are not listed)."""
    if scheme.kind != "rules" or scheme.within:
        return ()
    names: list[str] = []
    for name in [r.segment for r in scheme.rules] + [scheme.default]:
        if name not in names:
            names.append(name)
    return tuple(names)
