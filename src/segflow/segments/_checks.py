"""Checks of a scheme's assignments: rules that match nobody, segments below a minimum share.

``segflow run`` (at the latest snapshot) and ``segflow segment`` call :func:`check_scheme`
and warn with :class:`SchemeCheckWarning`; the messages also go into the run's notes.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import ibis

from segflow.config import SchemeSettings
from segflow.segments._rules import RuleSyntaxError, compile_condition

#: At most this many segments are named in one small-segment message.
_MAX_NAMED = 8


class SchemeCheckWarning(UserWarning):
    """A rule of a scheme matches nobody, or segments hold less than the minimum share.

    Advice about a result, not a fault: the CLI labels it ``note:`` (:attr:`label`), as
    ``segflow run`` labels its notes, whichever command gives it."""

    #: The label the CLI prints before the message (segflow.cli._common.show_warning).
    label = "note"


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
    try:
        conds = [compile_condition(r.when, table, rule=r.segment) for r in scheme.rules]
    except RuleSyntaxError as exc:  # name the scheme, as assign does
        raise exc.in_scheme(scheme.name) from None
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


def rfm_tie_messages(scheme: SchemeSettings, features: ibis.Table, sizes: Mapping[str, int], *,
                     snapshot: object = None) -> list[str]:
    """A message when an RFM score cannot use all its ``bins`` scores among the buyers and it
    matters. Usually one cheap aggregation (min and max of R, F, M among the buyers); the
    score distribution (a second query) only when a note may be due.

    A score dimension is *degenerate* when at least ``bins`` buyers are scored on it (R: every
    buyer; F and M: the buyers with an order in the window, module notes of
    :mod:`segflow.segments._rfm`) and they use fewer than ``bins`` distinct scores: the
    feature has one value among them (every buyer has one order: F cannot be split at all),
    or a value held by more than ``1 / bins`` of them takes the lowest score its run covers
    and the scores it spans stay empty (docs/segments.md, "Heavy ties"); with fixed cut
    points, values that no cut point separates. The message is given when a dimension has
    one value, when a dimension is degenerate and more than half of the named segments
    (:data:`segflow.segments._rfm.RFM_SEGMENTS`) are empty, or when a degenerate dimension
    has a tie held by more than ``1 / bins`` of its buyers and one named segment holds more
    than half (not all) of the buyers; an empty score alone is the usual result of one-order
    buyers and says nothing. It gives, per degenerate dimension, the scores used and the
    largest tie (value, buyers, share), the majority segment (buyers, share), how many of the
    named segments are empty, and what the user can change (fewer bins only with a number
    that fills the tied scores, :func:`_fewer_bins`). Empty for other kinds, nested RFM
    schemes (scored per parent segment) and snapshots with fewer buyers than ``bins``.
    """
    from segflow.segments._assign import rfm_scores_for, scheme_bins
    from segflow.segments._rfm import RFM_INPUTS, RFM_SEGMENTS, WINDOW_SCORED, in_window
    from segflow.segments._scores import comparable

    if scheme.kind != "rfm" or scheme.within:
        return []
    bins = scheme_bins(scheme)
    named = [seg.name for seg in RFM_SEGMENTS]
    empty_segments = [name for name in named if not sizes.get(name, 0)]
    many_empty = 2 * len(empty_segments) > len(named)
    buyers_total = sum(sizes.get(name, 0) for name in named)
    top_segment = max(named, key=lambda name: sizes.get(name, 0))
    top_size = sizes.get(top_segment, 0)
    # one named segment holds a majority, but not everyone (that has its own note)
    dominated = 2 * top_size > buyers_total > top_size
    if not many_empty and not dominated and not _one_value(features):
        return []  # the usual case, from one cheap aggregation: no scoring query
    scored = rfm_scores_for(scheme, features)
    buyers = scored.filter(scored.r_score.notnull())
    win = in_window(buyers).fill_null(False)
    parts = []
    for score, col, _ in RFM_INPUTS:
        b = buyers.filter(win) if col in WINDOW_SCORED else buyers
        parts.append(b.select(_dim=ibis.literal(score), _s=b[score],
                              _v=comparable(b, col).cast("float64")))
    u = parts[0].union(parts[1]).union(parts[2])
    dist = (u.group_by(["_dim", "_s"])
            .aggregate(n=u.count(), lo=u._v.min(), hi=u._v.max(), values=u._v.nunique())
            .to_pandas())
    at = f" at {snapshot}" if snapshot is not None else ""
    facts = []
    everyone = int(dist.loc[dist["_dim"] == "r_score", "n"].sum())
    single: list[str] = []  # features with one value among the buyers scored on them
    heavy_tie = False  # a value held by more than 1/bins of the buyers scored on it
    fewer: list[int | None] = []  # per tied dimension: the most bins that leave no score empty
    for score, col, _ in RFM_INPUTS:
        d = dist[dist["_dim"] == score].sort_values("_s")
        n = int(d["n"].sum())
        used = [int(x) for x in d["_s"]]
        if n < bins or len(used) >= bins:
            continue
        who = "buyers" if n == everyone else "buyers with an order in the window"
        if len(d) == 1 and int(d["values"].iloc[0]) == 1:
            single.append(col)
            facts.append(f"{col} has one value among the {n:,} {who} ({_num(d['lo'].iloc[0])}): "
                         f"{score[0].upper()} cannot be split into {bins} scores, all score {used[0]}")
            continue
        empty = [k for k in range(1, bins + 1) if k not in used]
        top = d.loc[d["n"].idxmax()]
        share = int(top["n"]) / n
        fewer.append(_fewer_bins(bins, share, lowest=int(top["_s"]) == used[0]))
        text = (f"{score} uses {len(used)} of {bins} scores among the {n:,} {who} "
                f"(empty: {', '.join(map(str, empty))})")
        if int(top["values"]) == 1:
            heavy_tie = heavy_tie or share * bins > 1
            text += (f"; {int(top['n']):,} ({share:.0%}) share {col} = "
                     f"{_num(top['lo'])} and all score {int(top['_s'])}")
        facts.append(text)
    # an empty score alone is common (55 % one-order buyers leave f_score 2 empty) and
    # harmless while the segments still fill: said when a dimension has one value, when
    # more than half of the named segments are empty, or when a heavy tie goes with one
    # named segment holding most buyers
    if not facts or not (single or many_empty or (dominated and heavy_tie)):
        return []
    listed = ", ".join(empty_segments[:_MAX_NAMED]) + (
        f" and {len(empty_segments) - _MAX_NAMED} more" if len(empty_segments) > _MAX_NAMED else "")
    majority = (f"; {top_size:,} of the {buyers_total:,} buyers ({top_size / buyers_total:.0%}) "
                f"are in one segment, {top_segment!r}" if dominated else "")
    frozen = scheme.cutoffs != "per_snapshot"
    cause = ("the scheme's fixed cut points do not separate these buyers" if frozen else
             "ties, as a value held by more than 1/bins of the buyers takes the lowest score "
             "its run covers ('Heavy ties' in docs/segments.md)")
    refreeze = ("re-freeze the cut points at a more recent reference snapshot" if
                scheme.cutoffs == "reference" else "change cut_points")
    return [f"scheme {scheme.name!r}{at}: RFM scores cannot be split into {bins} as asked: "
            + "; ".join(facts) + majority
            + f"; {len(empty_segments)} of {len(named)} named segments are empty"
            + (f" ({listed})" if empty_segments else "")
            + f". Cause: {cause}. To tell buyers apart: "
            + (f"{refreeze}, or use cutoffs = 'per_snapshot'" if frozen else
               _tie_advice(single, fewer))]


def _fewer_bins(bins: int, share: float, *, lowest: bool) -> int | None:
    """The most bins, from 2 to ``bins - 1``, with which a tie holding ``share`` of the
    buyers leaves no score empty: at the lowest score the next value starts at
    ``1 + floor(b * share)``, so ``b * share < 2``; elsewhere ``b * share < 1`` is safe.
    None when even 2 bins do not do."""
    limit = 2 if lowest else 1
    return next((b for b in range(bins - 1, 1, -1) if b * share < limit), None)


def _tie_advice(single: Sequence[str], fewer: Sequence[int | None]) -> str:
    """What can split tied buyers: fewer bins only when it fills every tied score of the
    features with several values (no number of bins splits a feature with one value), a
    longer window, ntile, or a rules scheme on the other features."""
    ways = []
    if fewer and None not in fewer:
        ways.append(f"fewer bins (bins = {min(b for b in fewer if b is not None)})")
    ways.append("a longer [rfm] window_days if one is set (it counts orders further back)")
    ways.append("score_method = 'ntile' (equal-count bins; tied buyers split by customer id)")
    other = [c for c in ("recency_days", "frequency", "monetary") if c not in single]
    ways.append("a rules scheme on other features"
                + (f" ({', '.join(other + ['attributes'])})" if single else ""))
    text = ", ".join(ways[:-1]) + f", or {ways[-1]}"
    if single:
        text = f"no number of bins splits the one value of {', '.join(single)}; use " + text
    return text


def _one_value(features: ibis.Table) -> bool:
    """Whether recency, frequency or monetary has a single value among the buyers (F and M:
    those with an order in the window) while at least two are scored on it."""
    from segflow.segments._rfm import RFM_INPUTS, WINDOW_SCORED, in_window
    from segflow.segments._scores import comparable

    b = features.filter(features.recency_days.notnull())
    win = in_window(b).fill_null(False)
    metrics = {}
    for i, (_, col, _) in enumerate(RFM_INPUTS):
        where = win if col in WINDOW_SCORED else None
        v = comparable(b, col)
        metrics[f"n{i}"] = b.count(where=where)
        metrics[f"lo{i}"], metrics[f"hi{i}"] = v.min(where=where), v.max(where=where)
    row = b.aggregate(**metrics).to_pandas().iloc[0]
    return any(int(row[f"n{i}"]) >= 2 and row[f"lo{i}"] == row[f"hi{i}"]
               for i in range(len(RFM_INPUTS)))


def _num(value: object) -> str:
    """A feature value in a message: a whole number without decimals, else up to 2 places."""
    x = float(value)  # type: ignore[arg-type]
    return f"{x:,.0f}" if x == int(x) else f"{x:,.2f}"


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
    messages += rfm_tie_messages(scheme, features, sizes, snapshot=snapshot)
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
