"""How a customer file's arm column is read: one rule for ``campaign_effect`` and
``fit_uplift`` (and so for ``segflow campaign effect`` and ``campaign uplift``).

* An arm value is compared as text, trimmed as ingest trims text (spaces, tabs, no-break
  spaces and control characters at both ends): ``"treatment "`` is the arm ``treatment``.
* A row whose arm is missing (NULL, NaN, or empty once trimmed) belongs to no arm: it is
  left out of the read-out and the model, counted in a warning; it is never an arm of its
  own (nor part of the multiple-comparison family).
* Arms are compared exactly, case included; two arm values that differ only in case
  (``Control`` and ``control``) are an error naming both, never two arms.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from segflow.errors import InputError

if TYPE_CHECKING:
    import ibis
    import pandas as pd


def _clean(value: str) -> str | None:
    from segflow.sources._ids import TRIM_CHARS

    return value.strip(TRIM_CHARS) or None


def clean_arm(name: str) -> str:
    """An arm named by the caller (the control, the treated arm, a designed split's arm),
    trimmed like the arm values."""
    return _clean(str(name)) or str(name)


def arm_values(counts: dict[str, int], *, column: str, source: str | None) -> dict[str, str | None]:
    """The arm of each raw (text) arm value of ``counts`` ({value: customers}): trimmed, an
    empty one None. Raises InputError when two arms differ only in case."""
    mapping = {raw: _clean(raw) for raw in counts}
    by_fold: dict[str, list[str]] = {}
    for arm in sorted({a for a in mapping.values() if a is not None}):
        by_fold.setdefault(arm.casefold(), []).append(arm)
    clash = next((same for same in by_fold.values() if len(same) > 1), None)
    if clash:
        shown = " and ".join(repr(a) for a in clash)
        raise InputError(f"the arm values {shown} differ only in case; arms are compared "
                         "exactly: write each arm one way", file=source, column=column)
    return mapping


def _warn_dropped(n: int, column: str, source: str | None) -> None:
    if n:
        where = f"file {source}, column {column!r}" if source else f"column {column!r}"
        who = "1 customer has" if n == 1 else f"{n:,} customers have"
        warnings.warn(f"{where}: {who} no arm (an empty or missing value) and "
                      f"{'is' if n == 1 else 'are'} left out", UserWarning, stacklevel=3)


def arm_changes(counts: dict[str | None, int], *, column: str,
                source: str | None) -> dict[str, str] | None:
    """The rule of this module applied to ``counts`` ({raw text arm value or None: customers}):
    None when every value is already an arm (nothing to trim, none missing), else {raw value:
    arm} of the values that keep an arm (the others are left out, counted in a warning).
    Raises InputError when two arms differ only in case."""
    nulls = counts.get(None, 0)
    known = {k: n for k, n in counts.items() if k is not None}
    mapping = arm_values(known, column=column, source=source)
    dropped = nulls + sum(n for v, n in known.items() if mapping[v] is None)
    _warn_dropped(dropped, column, source)
    if all(k == v for k, v in mapping.items()) and not dropped:
        return None
    return {k: v for k, v in mapping.items() if v is not None}


def with_arms(table: ibis.Table, arm_col: str, mapping: dict[str, str] | None) -> ibis.Table:
    """``table`` with ``arm_col`` as text, mapped by :func:`arm_changes`'s ``mapping`` (None:
    unchanged) and without the rows left out."""
    import ibis

    raw = table[arm_col].cast("string")
    if mapping is None:
        return table.mutate(**{arm_col: raw})
    out = table.mutate(**{arm_col: raw.substitute(mapping, else_=ibis.null("string"))})
    return out.filter(out[arm_col].notnull())


def clean_arm_frame(frame: pd.DataFrame, arm_col: str, *, source: str | None) -> pd.DataFrame:
    """``frame`` (pandas) with ``arm_col`` as text arms by the rule of this module, without
    the rows that have none; the index is kept (it names the rows in errors)."""
    values = frame[arm_col]
    present = values.notna().to_numpy()
    text = values[present].astype(str)
    mapping = arm_values(text.value_counts().to_dict(), column=arm_col, source=source)
    arms: Any = values.astype(object).where(values.notna(), None)
    arms[present] = text.map(mapping).to_numpy()
    keep = arms.notna().to_numpy()
    _warn_dropped(int((~keep).sum()), arm_col, source)
    return frame[keep].assign(**{arm_col: arms[keep].astype(str)})
