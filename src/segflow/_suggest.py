"""A "did you mean ...?" hint for a mistyped name (scheme, column, feature)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``"did you mean 'lifecycle'? "`` for the closest of ``choices`` (difflib ratio >= 0.6),
    or an empty string when none is close or ``name`` is itself a choice."""
    options = [str(c) for c in choices]
    if name in options:
        return ""
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""
