"""Inject realistic, recorded defects into a chunk of a demo table, and render it as CSV text.

Each defect hits a distinct row (a row never carries two defects) and is recorded with its
0-based position in the chunk; the writer adds the chunk offset and writes the 1-based row
number to ``truth/defects.csv``. Duplicates are inserted right after their original row.
Rates are per row of the clean table; the count of a kind is ``floor(rate * n + u)`` with a
seeded uniform ``u``, so the expected count is ``rate * n`` and the result is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DAY = 86_400
#: 100 years of 365.25 days: the offset of a future_date defect (a mistyped century).
CENTURY = 36_525 * DAY

#: Defect kinds per table: (defect, column, rate per row, CSV only).
DEFECTS: dict[str, tuple[tuple[str, str, float, bool], ...]] = {
    "customers": (
        ("exact_duplicate", "", 0.002, False),
        ("near_duplicate", "email", 0.001, False),
        ("invalid_value", "gender", 0.002, False),
    ),
    "transactions": (
        ("exact_duplicate", "", 0.001, False),
        ("near_duplicate", "amount", 0.0005, False),
        ("near_duplicate", "customer_id", 0.0005, False),
        ("missing_value", "customer_id", 0.001, False),
        ("missing_value", "amount", 0.001, False),
        ("non_positive_amount", "amount", 0.001, False),
        ("future_date", "order_date", 0.001, False),
        ("unknown_customer", "customer_id", 0.001, False),
        ("unparseable_date", "order_date", 0.001, True),
    ),
    "events": (
        ("exact_duplicate", "", 0.001, False),
        ("unknown_customer", "customer_id", 0.001, False),
        ("future_date", "ts", 0.0005, False),
    ),
    "campaign_exposures": (
        ("exact_duplicate", "", 0.001, False),
        ("unknown_customer", "customer_id", 0.0005, False),
    ),
    "survey_responses": (
        ("exact_duplicate", "", 0.002, False),
        ("missing_value", "answer", 0.005, False),
    ),
}

#: Text of unparseable dates in the transactions CSV ({y} = a year of the data): an impossible
#: calendar date, a month-first US date (not a documented format), a wrong separator, free text.
BAD_DATES = (
    "{y}-02-30 10:15:00",
    "31/04/{y} 09:30",
    "03/25/{y} 14:10",
    "{y}.07.14 12:00",
    "yesterday",
    "{y}-13-01 08:00:00",
)

ISO = "%Y-%m-%d %H:%M:%S"
DAYFIRST = "%d/%m/%Y %H:%M"


@dataclass(frozen=True)
class Context:
    end: int  # end of the data, epoch seconds
    total_customers: int
    width: int  # digits of customer ids


@dataclass
class Injected:
    """A chunk with its defects: positions are 0-based within the chunk."""

    table: pa.Table
    pos: np.ndarray
    column: list[str]
    defect: list[str]
    ref: np.ndarray  # position of the original row of a duplicate, else -1
    csv_only: np.ndarray  # bool


def _count(rng: np.random.Generator, rate: float, n: int) -> int:
    return int(np.floor(rate * n + rng.random()))


def inject(
    rng: np.random.Generator, table: pa.Table, name: str, ctx: Context,
    eligible: np.ndarray | None = None,
) -> Injected:
    """Insert duplicates and corrupt values of one chunk of table ``name``."""
    n = table.num_rows
    free = np.ones(n, dtype=bool) if eligible is None else eligible.copy()
    chosen: list[tuple[str, str, bool, np.ndarray]] = []
    for defect, column, rate, csv_only in DEFECTS[name]:
        cand = free.copy()
        if column and defect in ("near_duplicate", "missing_value", "unknown_customer"):
            cand &= np.asarray(table[column].is_valid())
        pool = np.flatnonzero(cand)
        rows = rng.choice(pool, size=min(_count(rng, rate, n), len(pool)), replace=False)
        rows.sort()
        free[rows] = False
        chosen.append((defect, column, csv_only, rows))
    dup = [(d, c, r) for d, c, _, r in chosen if d.endswith("duplicate")]
    src = np.concatenate([r for *_, r in dup]) if dup else np.zeros(0, np.int64)
    take = np.concatenate([np.arange(n), src])
    key = np.concatenate([2 * np.arange(n), 2 * src + 1])
    order = np.argsort(key, kind="stable")
    where = np.empty(len(take), dtype=np.int64)
    where[order] = np.arange(len(take))
    table = table.take(pa.array(take[order]))
    pos, cols, kinds, refs, csv = [], [], [], [], []
    copy_at = n
    for defect, column, csv_only, rows in chosen:
        if defect.endswith("duplicate"):
            at = where[copy_at: copy_at + len(rows)]
            copy_at += len(rows)
            ref = where[rows]
        else:
            at, ref = where[rows], np.full(len(rows), -1)
        table = _corrupt(rng, table, defect, column, at, ctx)
        pos.append(at)
        refs.append(ref)
        cols += [column] * len(rows)
        kinds += [defect] * len(rows)
        csv.append(np.full(len(rows), csv_only))
    return Injected(
        table, np.concatenate(pos), cols, kinds, np.concatenate(refs), np.concatenate(csv)
    )


def _set(table: pa.Table, column: str, at: np.ndarray, values: pa.Array) -> pa.Table:
    """Replace ``table[column]`` at positions ``at`` by ``values`` (same length as ``at``)."""
    col = table[column].combine_chunks()
    idx = np.full(table.num_rows, -1, dtype=np.int64)
    idx[at] = np.arange(len(at))
    spread = values.cast(col.type).take(pa.array(idx, mask=idx < 0))
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[at] = True
    new = pc.if_else(pa.array(mask), spread, col)
    return table.set_column(table.schema.get_field_index(column), column, new)


def _corrupt(
    rng: np.random.Generator, table: pa.Table, defect: str, column: str, at: np.ndarray,
    ctx: Context,
) -> pa.Table:
    k = len(at)
    if k == 0 or defect in ("exact_duplicate", "unparseable_date"):
        return table
    if defect == "missing_value":
        return _set(table, column, at, pa.nulls(k, table[column].type))
    if defect == "near_duplicate":
        old = table[column].combine_chunks().take(pa.array(at))
        if pa.types.is_floating(old.type):
            step = np.where(rng.random(k) < 0.5, -0.01, 0.01)
            return _set(table, column, at, pa.array(np.round(old.to_numpy() + step, 2)))
        pad = np.where(rng.random(k) < 0.5, " ", "  ")
        front = rng.random(k) < 0.5
        new = [f"{p}{v}" if f else f"{v}{p}" for p, v, f in zip(pad, old.to_pylist(), front, strict=True)]
        return _set(table, column, at, pa.array(new, pa.string()))
    if defect == "non_positive_amount":
        old = table[column].combine_chunks().take(pa.array(at)).to_numpy()
        return _set(table, column, at, pa.array(np.where(rng.random(k) < 0.5, 0.0, -old)))
    if defect == "future_date":
        # a mistyped century: in the future whatever day the files are loaded (1 to 365 days
        # after the data end alone were in the past a year after the data were made)
        secs = ctx.end + CENTURY + rng.integers(1, 366, size=k) * DAY + rng.integers(0, 1440, size=k) * 60
        return _set(table, column, at, pa.array(secs, pa.int64()).cast(pa.timestamp("s")))
    if defect == "unknown_customer":
        numbers = ctx.total_customers + 1 + rng.integers(0, 10**ctx.width, size=k)
        digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), ctx.width, "0")
        return _set(table, column, at, pc.binary_join_element_wise(pa.scalar("C"), digits, ""))
    if defect == "invalid_value":
        return _set(table, column, at, pa.array(["U"] * k, pa.string()))
    raise ValueError(f"unknown defect kind {defect!r}")  # pragma: no cover - constants above


def to_csv_table(
    rng: np.random.Generator, inj: Injected, date_column: str | None = None,
) -> pa.Table:
    """All-string table for the CSV file: timestamps in ISO text, except that rows flagged in
    ``_dayfirst`` use ``%d/%m/%Y %H:%M`` and CSV-only defect rows hold unparseable text."""
    table = inj.table
    out = {}
    for field in table.schema:
        if field.name == "_dayfirst":
            continue
        col = table[field.name]
        if pa.types.is_timestamp(field.type):
            # Arrow's cast of timestamp[s] prints ISO text, ``%Y-%m-%d %H:%M:%S`` (checked in
            # the tests); it is ~15x faster than strftime, which only formats day-first rows.
            col = pc.cast(col, pa.string())
            if field.name == date_column and "_dayfirst" in table.column_names:
                at = np.flatnonzero(np.asarray(table["_dayfirst"]))
                text = pc.strftime(table[field.name].take(pa.array(at)), DAYFIRST)
                col = _set(pa.table({"c": col}), "c", at, text)["c"]
        out[field.name] = col.cast(pa.string())
    csv = pa.table(out)
    bad = inj.pos[inj.csv_only]
    if len(bad) and date_column:
        year = str(_year_of(table[date_column]))
        texts = np.array([b.format(y=year) for b in BAD_DATES])
        picks = pa.array(texts[rng.integers(0, len(texts), size=len(bad))])
        csv = _set(csv, date_column, bad, picks)
    return csv


def _year_of(col: pa.ChunkedArray) -> int:
    lo = pc.min(col).as_py()
    return lo.year if lo is not None else 2024
