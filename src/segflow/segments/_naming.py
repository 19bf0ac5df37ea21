"""Suggested segment names from the features that distinguish a segment.

A segment is described by its largest standardised differences from the whole base
(``(segment mean - base mean) / base standard deviation``): up to two features with
``|d| >= 0.5`` (half a standard deviation, Cohen's "medium" effect), strongest first, each
turned into a word from a small marketing vocabulary ("frequent", "high spenders", "lapsed")
or into "high x" / "low x" for a feature the vocabulary does not know. A categorical level is
added when it makes up at least half of the segment and at least 1.5 times its share in the
base ("frequent high spenders, urban"). Names are suggestions: users override them in the
scheme's ``names``.
"""

from __future__ import annotations

import pandas as pd

#: Minimum |standardised difference| for a feature to name a segment.
NAME_THRESHOLD = 0.5
MAX_TERMS = 2
#: (substring of the feature name, word when high, word when low, is the word a noun?)
VOCABULARY: list[tuple[str, str, str, bool]] = [
    ("recency", "lapsed", "recent", False),
    ("days_since", "lapsed", "recent", False),
    ("frequency", "frequent", "infrequent", False),
    ("n_orders", "frequent", "infrequent", False),
    ("orders", "frequent", "infrequent", False),
    ("monetary", "high spenders", "low spenders", True),
    ("spend", "high spenders", "low spenders", True),
    ("revenue", "high spenders", "low spenders", True),
    ("clv", "high value", "low value", False),
    ("tenure", "long-standing", "new", False),
    ("basket", "big-basket", "small-basket", False),
    ("aov", "big-basket", "small-basket", False),
    ("return", "returners", "keepers", True),
    ("discount", "deal seekers", "full-price buyers", True),
    ("promo", "deal seekers", "full-price buyers", True),
    ("visit", "active browsers", "rare visitors", True),
    ("view", "active browsers", "rare visitors", True),
    ("abandon", "cart abandoners", "decisive buyers", True),
    ("breadth", "broad", "narrow", False),
    ("age", "older", "younger", False),
    ("income", "affluent", "budget", False),
    ("trend", "growing", "declining", False),
]


def _term(feature: str, diff: float) -> tuple[str, bool]:
    lowered = feature.lower()
    for key, high, low, noun in VOCABULARY:
        if key in lowered:
            return (high if diff > 0 else low), noun
    return (f"high {feature}" if diff > 0 else f"low {feature}"), False


def suggest_name(std_diff: pd.Series, makeup: pd.DataFrame | None = None) -> str:
    """A readable name for one segment.

    Parameters
    ----------
    std_diff : Series
        Standardised difference of the segment mean from the base mean, indexed by feature.
    makeup : DataFrame, optional
        Columns ``column``, ``level``, ``share`` (within the segment) and ``base_share``.

    Returns
    -------
    str
        e.g. ``"frequent high spenders, urban"`` or ``"typical customers"``.
    """
    d = std_diff.dropna()
    d = d[d.abs() >= NAME_THRESHOLD]
    d = d.reindex(d.abs().sort_values(ascending=False).index)[:MAX_TERMS]
    terms = [_term(str(f), float(v)) for f, v in d.items()]
    words: list[str] = []
    for word, _ in terms:  # two features may map to the same word (e.g. orders, frequency)
        if word not in words:
            words.append(word)
    nouns = [w for w, noun in terms if noun and w in words]
    adjectives = [w for w in words if w not in nouns]
    if len(nouns) <= 1:
        name = " ".join(adjectives + (nouns or ["customers"])) if words else "typical customers"
    else:
        name = ", ".join(words)
    level = _marker_level(makeup)
    return f"{name}, {level}" if level else name


def _marker_level(makeup: pd.DataFrame | None) -> str | None:
    if makeup is None or makeup.empty:
        return None
    marked = makeup[(makeup["share"] >= 0.5) & (makeup["share"] >= 1.5 * makeup["base_share"])]
    if marked.empty:
        return None
    lift = marked["share"] / marked["base_share"]
    return str(marked.loc[lift.idxmax(), "level"])


def suggest_names(
    std_diff: pd.DataFrame, makeup: pd.DataFrame | None = None
) -> list[str]:
    """Unique suggested names for all segments.

    Parameters
    ----------
    std_diff : DataFrame
        Segments (rows, in order) by features: standardised differences.
    makeup : DataFrame, optional
        Long table with columns ``segment_rank`` (1-based row position), ``column``, ``level``,
        ``share``, ``base_share``.

    Returns
    -------
    list of str
        One name per row of ``std_diff``; a repeated name gets " (2)", " (3)", ...
    """
    names: list[str] = []
    for pos, (_, row) in enumerate(std_diff.iterrows(), start=1):
        sub = None if makeup is None else makeup[makeup["segment_rank"] == pos]
        names.append(suggest_name(row, sub))
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique
