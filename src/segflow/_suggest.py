"""A "did you mean ...?" hint for a mistyped name (scheme, column, feature)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``"did you mean 'lifecycle'? "`` for the choice equal to ``name`` but for case, else
    the closest of ``choices`` (difflib ratio >= 0.6), or an empty string when none is close or ``name`` is itself a choice."""
    options = [str(c) for c in choices]
    if name in options:
        return ""
    same = [o for o in options if o.casefold() == str(name).casefold()]  # 'RFM' for 'rfm'
    close = same or difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def scheme_hint(name: str, schemes: Iterable[str]) -> str:
    """The end of an "unknown scheme" message: ``"did you mean 'rfm'? schemes with
    assignments: rfm, lifecycle"``, or the advice to run the pipeline when no scheme has any."""
    known = sorted({str(s) for s in schemes})
    if not known:
        return "no scheme has assignments yet: run `segflow run` first"
    return f"{did_you_mean(name, known)}schemes with assignments: {', '.join(known)}"
