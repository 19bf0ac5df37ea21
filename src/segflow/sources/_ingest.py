"""Ingest: every ``[[sources]]`` entry into the canonical tables, audited and reconciled.

One load = one file (or database table) of one source, written in one store transaction:
a crash in the middle leaves the store as it was before that load. Customers sources are
loaded first, so that ``unknown_customer`` can be checked against them.
"""

from __future__ import annotations

import datetime as dt
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segflow._result import TableResult
from segflow.config import Settings, SourceSettings
from segflow.errors import InputError, StoreError
from segflow.sources._load import LoadCounts, classify, rollup_orders, write
from segflow.sources._once import judge
from segflow.sources._readers import (
    discover,
    file_hash,
    refuse_nested,
    relative,
    source_format,
    stage,
)
from segflow.sources._validate import check_timezone, flags, resolve, validate
from segflow.store import CANONICAL_TABLES, Store

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

_ORDER = ["customers", "transactions", "events", "campaign_exposures", "survey_responses"]
_COLUMNS = [
    "source", "source_file", "table", "status", "rows_read", "rows_accepted",
    "rows_quarantined", "rows_duplicate", "rows_replaced", "rows_anonymous", "rows_flagged",
    "rows_released", "load_id",
]

ProgressFn = Callable[[str, int, int], None]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class IngestReport(TableResult):
    """What an ingest did, per source file: the reconciliation and the quarantine reasons.

    ``rows_read = rows_accepted + rows_quarantined + rows_duplicate`` holds for every row of
    :meth:`to_pandas`. ``rows_replaced`` (late corrections) is part of ``rows_accepted``;
    ``rows_anonymous`` (transactions kept without a customer id) and ``rows_flagged`` (values
    noted in the table ``ingest_flags``) too; ``rows_released`` counts rows an earlier load
    had quarantined that pass now (their old quarantine record is removed). A file whose bytes were
    loaded before has status ``unchanged`` and zero counts.

    Attributes
    ----------
    loads : list of LoadCounts
        One entry per file (or table) per source.
    warnings : list of str
        Things kept but worth a look (e.g. text that looks like a spreadsheet formula).
    """

    def __init__(self, loads: list[LoadCounts]) -> None:
        self.loads = loads
        self.warnings = [w for ld in loads for w in ld.warnings]

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        rows = [{c: getattr(ld, c) for c in _COLUMNS} for ld in self.loads]
        return pd.DataFrame(rows, columns=_COLUMNS)

    def rules(self) -> pd.DataFrame:
        """Quarantined rows per source, file and rule."""
        import pandas as pd

        rows = [
            {"source": ld.source, "source_file": ld.source_file, "rule": rule, "rows": n}
            for ld in self.loads
            for rule, n in ld.rules.items()
        ]
        return pd.DataFrame(rows, columns=["source", "source_file", "rule", "rows"])

    @property
    def reconciles(self) -> bool:
        """True when every load's counts add up (always, unless a bug slipped through)."""
        return all(ld.reconciles for ld in self.loads)

    def totals(self) -> dict[str, int]:
        frame = self.to_pandas()
        return {c: int(frame[c].sum()) for c in _COLUMNS[4:12]}

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["totals"] = self.totals()
        out["rules"] = self.rules().to_dict(orient="records")
        out["warnings"] = self.warnings
        out["reconciles"] = self.reconciles
        return out

    def figure(self) -> go.Figure:
        import plotly.graph_objects as go

        frame = self.to_pandas().groupby("source", sort=False)[
            ["rows_accepted", "rows_quarantined", "rows_duplicate"]].sum()
        fig = go.Figure()
        for col, name in [("rows_accepted", "accepted"), ("rows_quarantined", "quarantined"),
                          ("rows_duplicate", "duplicate")]:
            fig.add_bar(x=frame.index.tolist(), y=frame[col].tolist(), name=name)
        fig.update_layout(barmode="stack", title="Rows read per source", yaxis_title="rows")
        return fig

    def __repr__(self) -> str:
        t = self.totals() if self.loads else {}
        return (f"IngestReport({len(self.loads)} loads, read={t.get('rows_read', 0)}, "
                f"accepted={t.get('rows_accepted', 0)}, quarantined={t.get('rows_quarantined', 0)}, "
                f"duplicate={t.get('rows_duplicate', 0)})")


def ingest(
    store: Store,
    settings: Settings,
    project_dir: Path,
    *,
    progress: ProgressFn | None = None,
    now: dt.datetime | None = None,
    force: bool = False,
) -> IngestReport:
    """Read every ``[[sources]]`` entry into the canonical tables of ``store``.

    Parameters
    ----------
    store : Store
        The project's store.
    settings : Settings
        The parsed ``segflow.toml``; its ``sources`` are loaded, customers first.
    project_dir : Path
        Folder that source paths are relative to.
    progress : callable, optional
        Called as ``progress(label, done, total)`` after each file.
    now : datetime, optional
        Load time (tz-naive UTC) used by ``future_date``; default: the current time.
    force : bool, default False
        Re-read files whose bytes were loaded before (to re-check quarantined rows, e.g. after
        the missing customers arrived). Rows already stored count as duplicates; rows that
        pass now are loaded and leave the quarantine.

    Returns
    -------
    IngestReport
        The per-file reconciliation (``to_pandas()``) and the quarantine reasons (``rules()``).

    Raises
    ------
    InputError
        Before anything is written, when a file is missing, empty, header-only, binary, or
        lacks a mapped column. Row-level problems never raise: they are quarantined.

    Notes
    -----
    Re-running on unchanged files adds nothing (file hash); rows already in the store are
    counted as duplicates; a row with the same (source, key) but new values replaces the old
    one (key: ``transaction_id`` for transactions, ``customer_id`` for customers).
    """
    project_dir = Path(project_dir)
    now = now or _now()
    sources = sorted(settings.sources, key=lambda s: _ORDER.index(s.table))
    plan = [(src, path) for src in sources for path in _paths(src, project_dir)]
    for src, path in plan:  # pre-flight: fail before anything is written
        _preflight(store, src, path, project_dir)
    loads: list[LoadCounts] = _skipped(sources, project_dir)
    for i, (src, path) in enumerate(plan):
        loads.append(load_one(store, src, path, project_dir, now=now, force=force))
        if progress:
            progress(loads[-1].source_file, i + 1, len(plan))
    _warn(loads)
    return IngestReport(loads)


def _paths(source: SourceSettings, project_dir: Path) -> list[Path | None]:
    if source.format == "postgres":
        return [None]
    return list(discover(source, project_dir)[0])


def _skipped(sources: list[SourceSettings], project_dir: Path) -> list[LoadCounts]:
    """One ``skipped`` entry (with the reason as a warning) per unread file of a folder."""
    out = []
    for src in sources:
        if src.format == "postgres":
            continue
        for path, reason in discover(src, project_dir)[1]:
            counts = LoadCounts("", src.name, relative(path, project_dir), src.table, "skipped")
            counts.warnings.append(f"file {counts.source_file}: not read: {reason}")
            out.append(counts)
    return out


def _label(source: SourceSettings, path: Path | None, project_dir: Path) -> str:
    if path is None:
        return f"postgres:{source.options.get('table') or 'query'}"
    label = relative(path, project_dir)
    if source_format(source, path) == "duckdb":
        label += f":{source.options.get('table') or 'query'}"
    return label


def _preflight(store: Store, source: SourceSettings, path: Path | None, project_dir: Path) -> None:
    import duckdb

    con = duckdb.connect()
    try:
        check_timezone(con, source)
        staged = stage(con, source, path, _label(source, path, project_dir), limit=50)
        specs = resolve(source, staged)
        refuse_nested(con, staged, [s.label for s in specs.values()])
    finally:
        con.close()


def load_one(
    store: Store,
    source: SourceSettings,
    path: Path | None,
    project_dir: Path,
    *,
    now: dt.datetime,
    force: bool = False,
) -> LoadCounts:
    """Load one file of one source in one transaction; see :func:`ingest`."""
    label = _label(source, path, project_dir)
    load_id = uuid.uuid4().hex[:12]
    counts = LoadCounts(load_id, source.name, label, source.table)
    digest = file_hash(path) if path is not None else None
    if digest and not force:
        done = store.sql(
            "SELECT count(*) AS n FROM loads WHERE source = ? AND file_hash = ? AND status = 'ok'",
            [source.name, digest],
        ).column("n")[0].as_py()
        if done:
            counts.status = "unchanged"
            return counts
    started = _now()
    suffix = uuid.uuid4().hex[:8]
    val, cls, orders = f"_sf_val_{suffix}", f"_sf_cls_{suffix}", None
    # Staging, validation and classification run on a private cursor (its temporary tables
    # are its own and vanish when it closes); only the writes form the store transaction, so
    # a crash or an error leaves the store as it was before this load.
    con = store.raw.cursor()
    try:
        staged = stage(con, source, path, label)
        specs = resolve(source, staged)
        refuse_nested(con, staged, [s.label for s in specs.values()])
        read = staged.tally.digest if staged.tally and staged.tally.digest else digest
        has_customers = con.execute("SELECT count(*) FROM main.customers").fetchone()[0] > 0
        known = "main.customers" if has_customers and source.table != "customers" else None
        flag_list, once = flags(source, specs), {}
        again = con.execute("SELECT count(*) FROM main.loads WHERE source = ? AND source_file = ? "
                            "AND status = 'ok'", [source.name, label]).fetchone()[0] > 0
        if not write_once(source, again):
            present = validate(con, source, staged, specs, now=now, known_customers=known, out=val)
            warning = classify(con, source, val, present, cls, against_store=True,
                               staged=staged, mapped=set(specs))
            if warning:
                counts.warnings.append(warning)
            if source.rollup and source.table == "transactions":
                orders = f"_sf_ord_{suffix}"
                rollup_orders(con, source, cls, orders, against_store=True)
        else:  # one narrow pass, then each accepted row written once
            present = list(CANONICAL_TABLES[source.table])
            got = judge(con, source, staged, specs, now=now, known_customers=known, name=cls,
                        mapped=set(specs), flag_list=flag_list)
            cls, once = got.cls, {"insert_from": got.rows, "flagged": got.flagged}
        con.execute("BEGIN TRANSACTION")
        try:
            write(con, source, staged, cls, present, counts, now=now, file_hash=read,
                  started=started, orders=orders, flag_list=flag_list, mapped=set(specs),
                  **once)
            _recheck(staged, counts, path, digest, read)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    finally:
        con.close()
    return counts


def write_once(source: SourceSettings, again: bool) -> bool:
    """Whether a file of ``source`` is loaded by one narrow judging pass and one insert
    (:mod:`segflow.sources._once`), else from a validated copy of the file. The copy serves
    order roll-ups (lines are judged per order) and a file read ``again`` (loaded before
    under the same name: most of its rows are likely stored, so the narrow pass would pick
    nearly every row for a full parse anyway)."""
    return not again and not (source.rollup and source.table == "transactions")


def _recheck(staged, counts: LoadCounts, path: Path | None, before: str | None,
             read: str | None) -> None:
    """Before the commit: the counts match the reader's own count of the file, and the file
    still has the bytes that were read (else nothing of it is written)."""
    tally = staged.tally
    if tally is not None and tally.complete and counts.rows_read != tally.records:
        raise StoreError(f"file {staged.label}: the reader counted {tally.records} records but "
                         f"{counts.rows_read} rows were classified; nothing was loaded from it")
    if path is None or before is None:
        return
    now = file_hash(path)
    if now != before or now != read:
        raise InputError("the file changed while it was being loaded (its bytes differ from "
                         "those read); nothing was loaded from it; run ingest again",
                         file=staged.label)


def _warn(loads: list[LoadCounts]) -> None:
    quarantined = sum(ld.rows_quarantined for ld in loads)
    duplicates = sum(ld.rows_duplicate for ld in loads)
    if quarantined or duplicates:
        warnings.warn(
            f"ingest quarantined {quarantined} rows and skipped {duplicates} duplicate rows; "
            "see the table 'quarantine' and the report",
            stacklevel=3,
        )
