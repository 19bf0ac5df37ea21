"""The column names of an input file: two that differ only in case are one column to SQL."""

from __future__ import annotations

from segflow.errors import InputError


def refuse_repeated_names(names: list[str], label: str, row: int | None = 0, *,
                          trimmed: bool = False) -> None:
    """InputError when two columns of a file have one name, compared ignoring case: the
    store's SQL resolves column names ignoring case, so ``Amount`` and ``amount`` would be
    one column (a mapping would read whichever comes first, or the load would fail).

    With ``trimmed``, names are also compared without their surrounding white space (ingest
    trims a CSV or Excel header before this test; the file commands' readers pass the names
    as written and trim them after): ``spend`` and ``spend `` are one name. The message says
    so when a repeat differs by more than case."""
    seen: dict[str, list[str]] = {}
    for name in names:
        seen.setdefault((name.strip() if trimmed else name).lower(), []).append(name)
    dupes = [same for same in seen.values() if len(same) > 1]
    if dupes:
        shown = ", ".join(" / ".join(repr(n) for n in same) for same in dupes)
        spaced = any(len({n.lower() for n in same}) > 1 and n.strip() != n
                     for same in dupes for n in same)
        rule = "ignoring case and surrounding spaces" if spaced else "ignoring case"
        raise InputError(f"column names repeat: {shown} (names are compared {rule}); "
                         "rename or drop the extra column", file=label, row=row)
