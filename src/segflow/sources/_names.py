"""The column names of an input file: two that differ only in case are one column to SQL."""

from __future__ import annotations

from segflow.errors import InputError


def refuse_repeated_names(names: list[str], label: str, row: int | None = 0) -> None:
    """InputError when two columns of a file have one name, compared ignoring case: the
    store's SQL resolves column names ignoring case, so ``Amount`` and ``amount`` would be
    one column (a mapping would read whichever comes first, or the load would fail)."""
    seen: dict[str, list[str]] = {}
    for name in names:
        seen.setdefault(name.lower(), []).append(name)
    dupes = [same for same in seen.values() if len(same) > 1]
    if dupes:
        shown = ", ".join(" / ".join(repr(n) for n in same) for same in dupes)
        raise InputError(f"column names repeat: {shown} (names are compared ignoring case); "
                         "rename or drop the extra column", file=label, row=row)
