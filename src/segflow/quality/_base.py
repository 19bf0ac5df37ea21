"""What the audit's checks share: :class:`Check`, counts read from one-row results, and
examples fetched with (or without) the count they go with.

Each query of the audit costs a round trip, and on Spark one job per exchange of its plan
(about 0.2-1 s whatever the data size), so a count and its examples come back from one
query where both are needed (:func:`counted_examples`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ibis
import pandas as pd


@dataclass
class Check:
    """One audit check."""

    check: str
    table: str
    severity: str
    count: int
    total: int
    examples: list[str] = field(default_factory=list)
    advice: str = ""

    @property
    def share(self) -> float:
        return self.count / self.total if self.total else 0.0


def _count(value: Any) -> int:
    """A count from a one-row result: 0 for NULL (Spark's filtered count of an empty table
    comes back as NULL, a NaN in pandas, where DuckDB answers 0)."""
    return 0 if value is None or pd.isna(value) else int(value)


def _sev(count: int, bad: str = "warning") -> str:
    return "ok" if count == 0 else bad


def _text(frame: pd.DataFrame, cols: list[str]) -> list[str]:
    """Rows of ``frame`` as ``col=value, ...`` text."""
    return [", ".join(f"{c}={v}" for c, v in zip(cols, row, strict=True))
            for row in frame[cols].itertuples(index=False)]


def _examples(expr: ibis.Table, cols: list[str], n: int = 5, *, count: int = 1) -> list[str]:
    """Up to ``n`` rows of ``expr`` as text; none (no query) when ``count``, the number of
    rows of ``expr``, is 0."""
    if count == 0:
        return []
    return _text(expr.select(*cols).limit(n).execute(), cols)


def counted_examples(expr: ibis.Table, order: list[ibis.Value], cols: list[str],
                     count: ibis.Scalar | None = None, n: int = 5) -> tuple[int, list[str]]:
    """The number of rows of ``expr`` (or the value of ``count``, a reduction over
    ``expr``) and its first ``n`` rows in the order ``order`` (as :func:`_examples` shows
    them), from one query: a union of the one-row count and the ``n`` rows, which come back
    in any order and are sorted again (stably: the engine's order of ties is kept) by the
    ``order`` keys, which must be columns of ``cols`` or ``expr`` (a null sorts last, as Ibis
    orders it on every engine); give keys that leave no ties (``row_order`` of
    :mod:`segflow.quality._checks`), or engines show different rows. One round trip
    instead of two, and on Spark one job less (the count's exchange and the rows' sort
    run as stages of one job)."""
    keys = [_key(k)[0] for k in order]
    asc = [_key(k)[1] for k in order]
    names = list(dict.fromkeys([*cols, *keys]))
    count = expr.count() if count is None else count
    first = expr.order_by(order).limit(n)
    rows = first.select(_part=ibis.literal(1), _k=ibis.null().cast("int64"),
                        **{c: first[c] for c in names})
    total = expr.aggregate(_k=count.cast("int64")).select(
        _part=ibis.literal(0), _k=_col("_k"),
        **{c: ibis.null().cast(expr[c].type()) for c in names})
    frame = ibis.union(total, rows, distinct=False).execute()
    k = _count(frame.loc[frame["_part"] == 0, "_k"].iloc[0])
    found = frame[frame["_part"] == 1].sort_values(keys, ascending=asc, kind="stable")
    return k, _text(found, cols)


def _col(name: str) -> Any:
    from ibis import _

    return _[name]


def _key(key: ibis.Value) -> tuple[str, bool]:
    """An order key's column name and whether it is ascending (``x`` or ``x.desc()``)."""
    import ibis.expr.operations as ops

    op = key.op()
    if isinstance(op, ops.SortKey):
        return op.arg.name, op.ascending
    return op.name, True
