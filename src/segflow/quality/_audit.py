"""The data-quality audit: scored checks over the canonical tables of a store.

Every check reports a severity (ok, info, warning, error), the number of affected rows (or
cells, days), the number it is out of, up to five examples and a piece of advice. Checks are
Ibis expressions over the store's tables; only their small results reach Python.

Few queries (each a round trip, and on Spark a job per exchange of its plan, 0.2-1 s
whatever the data size): every table's statistics (size, filled cells, dates, and the
transactions' sums the checks of :mod:`segflow.quality._checks` need) come from one query
over all tables, on Spark the row hashes of the duplicate check from another, the unknown
and stale customers from a third; a count and its examples come back together.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import ibis
import pandas as pd
from ibis import _

from segflow._result import TableResult
from segflow.quality._base import Check, _count, _examples, _sev, counted_examples
from segflow.quality._checks import (
    TX_METRICS,
    customer_checks,
    flagged,
    quarantine,
    transaction_checks,
    tx_metrics,
)
from segflow.sources._rules import REQUIRED, RULES
from segflow.store import CANONICAL_TABLES, Store

if TYPE_CHECKING:
    import plotly.graph_objects as go
    import pyarrow as pa

__all__ = ["SEVERITIES", "AuditReport", "Check", "_count", "audit", "check_title", "duplicate_groups"]

SEVERITIES = ("ok", "info", "warning", "error")
_WEIGHT = {"ok": 1.0, "info": 0.5, "warning": 1.0, "error": 2.0}
_DATE_COLUMNS = {"customers": "created_at", "transactions": "ts", "events": "ts",
                 "campaign_exposures": "ts", "survey_responses": "ts"}


#: What each audit check looks for, in words (the report shows these; the id stays for
#: support and scripts). Checks of one column (``completeness:email``) and flags of an ingest
#: rule (``flagged:formula_in_text``) are worded by :func:`check_title`.
CHECK_TITLES: dict[str, str] = {
    "future_dates": "Dates after the audit date",
    "old_dates": "Suspiciously old dates",
    "duplicate_rows": "Identical rows",
    "amount_outliers": "Unusually large or small amounts",
    "history_gaps": "Days without any transactions",
    "same_day_repeats": "Same amount paid twice on one day",
    "spend_consistency": "Amount does not match quantity x unit price",
    "anonymous_transactions": "Transactions without a customer",
    "unknown_customers": "Customer not in the customers table",
    "stale_customers": "Customers without recent activity",
    "quarantined_rows": "Rows rejected at ingest",
}


#: Flags of ``ingest_flags`` that are no quarantine rule (:data:`RULES`), in words.
_FLAG_TITLES = {"excel_text": "a cell written as Excel-safe text (=\"00123\") was read as the "
                              "text between its quotes",
                "repeated_lines": "a transaction line without id repeats a block of lines (a "
                                  "month appended twice, a file delivered again)"}


def check_title(check: str) -> str:
    """An audit check's id in words: ``completeness:email`` -> ``Missing email``,
    ``not_provided:region`` -> ``Region never provided``, ``flagged:formula_in_text`` ->
    ``Kept but flagged: a text value starts like a spreadsheet formula ...``,
    ``unknown_customers`` -> ``Customer not in the customers table``; an unknown id is
    returned de-snake-cased."""
    kind, _, column = check.partition(":")
    words = column.replace("_", " ")
    if kind == "completeness" and column:
        return f"Missing {words}"
    if kind == "not_provided" and column:
        return f"{words[:1].upper()}{words[1:]} never provided"
    if kind == "flagged" and column:
        return f"Kept but flagged: {RULES.get(column) or _FLAG_TITLES.get(column, words)}"
    text = CHECK_TITLES.get(check) or check.replace("_", " ")
    return text[:1].upper() + text[1:]


class AuditReport(TableResult):
    """The checks of :func:`audit` and an overall score.

    ``score`` (0-100) is 100 times the weighted mean over checks of (1 - affected share),
    weights 2 for error checks, 1 for warnings and ok, 0.5 for info; ``not_provided`` checks
    (columns no source fills) are listed but not scored; an empty base scores 0.
    """

    def __init__(self, checks: list[Check], as_of: dt.date, data_end: dt.date | None = None) -> None:
        self.checks, self.as_of = checks, as_of
        self.data_end = data_end or as_of

    @property
    def score(self) -> float:
        scored = [c for c in self.checks if not c.check.startswith("not_provided")]
        if not scored:
            return 0.0
        w = [_WEIGHT[c.severity] for c in scored]
        good = [1.0 - min(1.0, c.share) for c in scored]
        return 100.0 * sum(a * b for a, b in zip(w, good, strict=True)) / sum(w)

    def masked(self) -> AuditReport:
        """The report with the e-mail addresses and phone numbers of its examples masked
        (:func:`segflow.exports._pii_text.mask_personal_text`: ``customer_id=u***@example.com``),
        as the report's and ``segflow audit``'s default show them."""
        from dataclasses import replace

        from segflow.exports._pii_text import mask_personal_text

        checks = [replace(c, examples=[mask_personal_text(e) or "" for e in c.examples]) for c in self.checks]
        return AuditReport(checks, self.as_of, self.data_end)

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        rows = [{**asdict(c), "share": c.share, "examples": "; ".join(c.examples)}
                for c in self.checks]
        cols = ["check", "table", "severity", "count", "total", "share", "examples", "advice"]
        return pd.DataFrame(rows, columns=cols)

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(), "data_end": self.data_end.isoformat(),
            "score": round(self.score, 1),
            "data": [{**asdict(c), "share": c.share} for c in self.checks],
            "count": len(self.checks),
        }

    def figure(self) -> go.Figure:
        import plotly.graph_objects as go

        frame = self.to_pandas()
        frame = frame[frame.severity != "ok"]
        colours = {"info": "#6c8ebf", "warning": "#e6a23c", "error": "#d9534f"}
        return go.Figure(go.Bar(
            x=frame.share * 100, y=frame.check + " (" + frame.table + ")", orientation="h",
            marker_color=[colours[s] for s in frame.severity],
        )).update_layout(title=f"Data quality: {self.score:.0f}/100", xaxis_title="% affected")

    def __repr__(self) -> str:
        bad = sum(c.severity in ("warning", "error") for c in self.checks)
        return f"AuditReport(score={self.score:.0f}, checks={len(self.checks)}, warnings_or_errors={bad})"


def audit(store: Store, *, as_of: dt.date | None = None, stale_days: int = 365,
          old_years: int = 20) -> AuditReport:
    """Score the customer base in ``store``.

    Parameters
    ----------
    store : Store
        The store with the canonical tables.
    as_of : date, optional
        Audit date; rows dated on or after it are "future". Default: today (UTC).
    stale_days : int, default 365
        Customers with no transaction or event in the ``stale_days`` days up to the data's
        end (and created before that window) are stale.
    old_years : int, default 20
        Dates more than this many years before the data's end are "too old".

    The data's end (``data_end``) is the day of the latest transaction, event, campaign
    exposure or survey response dated before ``as_of`` (``as_of`` itself when there is
    none), so that a historic export is judged against its own time, not against today.

    Returns
    -------
    AuditReport
        Checks (``to_pandas()``, ``to_dict()``) and ``score``.
    """
    as_of = as_of or dt.datetime.now(dt.UTC).date()
    tables = {n: store.table(n) for n in CANONICAL_TABLES}
    cut = ibis.timestamp(dt.datetime.combine(as_of, dt.time()))
    # one query over all tables: their sizes, filled cells, future dates, date ranges
    stats = _all_stats(tables, cut)
    sizes = {n: s["n"] for n, s in stats.items()}
    ends = [stats[n]["before_cut"] for n in _ACTIVITY if sizes[n]]
    ends = [e.date() for e in ends if e is not None and e == e]  # neither None nor NaT
    end = max(ends) if ends else as_of
    repeated = _repeated_hashes({n: t for n, t in tables.items() if sizes[n]})
    checks: list[Check] = []
    for name, t in tables.items():
        if sizes[name]:
            checks += _completeness(name, sizes[name], stats[name])
            if name == "customers":
                checks += _undated_versions(t, sizes[name], stats[name])
            checks += _dates(name, t, sizes[name], cut, as_of, old_years, end, stats[name])
            checks.append(_duplicates(name, t, sizes[name], repeated=repeated[name]))
    tx = stats["transactions"]
    if sizes["transactions"]:
        checks += transaction_checks(tables["transactions"], sizes["transactions"], cut, tx,
                                     sizes["transactions"] - tx["filled"]["customer_id"])
    if sizes["customers"]:
        checks += customer_checks(tables, sizes, stale_days, end)
    checks += quarantine(store)
    checks += flagged(store, sizes)
    return AuditReport(checks, as_of, end)


#: The tables whose latest date before the audit date is the data's end (activity).
_ACTIVITY = ("transactions", "events", "campaign_exposures", "survey_responses")


def _stats_query(name: str, t: ibis.Table, cut: ibis.Value) -> ibis.Table:
    """One row of table ``name``'s statistics (see :func:`_table_stats`); the columns are
    the same for every table (the transactions' :data:`TX_METRICS` NULL for the others),
    so that the rows of all tables make one query."""
    ts = t[_DATE_COLUMNS[name]]
    extra = tx_metrics(t, cut) if name == "transactions" else {}
    row = t.aggregate(_n=t.count(), _future=t.count(where=ts >= cut), _first=ts.min(),
                      _before_cut=ts.max(where=ts < cut),
                      _filled=ibis.array([t[c].count() for c in CANONICAL_TABLES[name]]), **extra)
    return row.select(_table=ibis.literal(name), _n=_._n.cast("int64"),
                      _future=_._future.cast("int64"), _first=_._first.cast("timestamp"),
                      _before_cut=_._before_cut.cast("timestamp"),
                      _filled=_._filled.cast("array<int64>"),
                      **{k: (_[k] if k in extra else ibis.null()).cast(v) for k, v in TX_METRICS.items()})


def _stats_row(name: str, row: Any) -> dict[str, Any]:
    cols = list(CANONICAL_TABLES[name])
    out = {"n": _count(row["_n"]), "future": _count(row["_future"]), "first": row["_first"],
           "before_cut": row["_before_cut"],
           "filled": {c: _count(v) for c, v in zip(cols, row["_filled"], strict=True)}}
    return out | {k: row[k] for k in TX_METRICS}


def _table_stats(name: str, t: ibis.Table, cut) -> dict[str, Any]:
    """One query over a table: ``n`` rows, ``filled`` non-null cells per column, ``future``
    rows dated on or after ``cut``, the earliest date (``first``) and the latest before
    ``cut`` (``before_cut``; None or NaT when there is none) of its date column; for the
    transactions also :func:`segflow.quality._checks.tx_metrics` (NULL for the others)."""
    return _stats_row(name, _stats_query(name, t, cut).execute().iloc[0])


def _all_stats(tables: dict[str, ibis.Table], cut: ibis.Value) -> dict[str, dict[str, Any]]:
    """:func:`_table_stats` of every table, from one query (a union of their rows: on
    Spark one job for each table's aggregation, run side by side, and one for the rows)."""
    union = ibis.union(*[_stats_query(n, t, cut) for n, t in tables.items()], distinct=False)
    frame = union.execute().set_index("_table")
    return {name: _stats_row(name, frame.loc[name]) for name in tables}


#: Customers columns of the attribute history, whose empty cells are not missing data: an
#: empty ``valid_to`` is the current (open-ended) version, an empty ``valid_from`` a version
#: valid from its ``created_at`` (:func:`_undated_versions` checks what can go wrong).
_HISTORY = ("valid_from", "valid_to")


def _completeness(name: str, n: int, stats: dict[str, Any]) -> list[Check]:
    """Per column of table ``name`` (``n`` rows) with empty cells: ``not_provided`` when
    never filled, else ``completeness`` (error for a required column; a warning above 20 %
    for the customers' attributes). A customers table with attribute history counts rows,
    that is versions, and says so; its ``valid_from``/``valid_to`` gaps are not counted."""
    cols = list(CANONICAL_TABLES[name])
    history = name == "customers" and any(stats["filled"].get(c) for c in _HISTORY)
    rows = "customer rows (attribute versions)" if history else name
    out = []
    for c in cols:
        missing = n - stats["filled"][c]
        if missing == 0 or (missing < n and name == "customers" and c in _HISTORY):
            continue
        required = c in REQUIRED.get(name, [])
        if missing == n:
            out.append(Check(f"not_provided:{c}", name, "info", missing, n, [],
                             f"{c} is never filled: map it in segflow.toml if the source has it"))
            continue
        if required:
            sev, advice = "error", f"{c} is required; rows without it should have been quarantined"
        else:
            # attributes of customers feed segments and profiles; elsewhere gaps are normal
            sev = "warning" if name == "customers" and missing / n > 0.2 else "info"
            advice = f"{missing / n:.1%} of {rows} have no {c}; segments using it will miss them"
        out.append(Check(f"completeness:{c}", name, sev, missing, n, [], advice))
    return out


def _undated_versions(t: ibis.Table, n: int, stats: dict[str, Any]) -> list[Check]:
    """``completeness:valid_from`` of a customers table with attribute history (``n``
    rows): the rows without ``valid_from`` of customers with more than one such row. One
    undated row per customer is its first version (valid from ``created_at``, the oldest);
    several are ambiguous: at a snapshot they tie as the oldest and source order decides
    (:func:`segflow.features._attributes.customer_records`). A warning; none when every
    customer has at most one undated row, or when ``valid_from`` is never filled."""
    filled = stats["filled"].get("valid_from", 0)
    if not filled or filled == n:
        return []
    undated = t.filter(t.valid_from.isnull())
    per = undated.group_by("customer_id").aggregate(k=undated.count()).filter(_.k > 1)
    row = per.aggregate(rows=per.k.sum(), customers=per.count()).execute().iloc[0]
    rows, customers = _count(row["rows"]), _count(row["customers"])
    if not rows:
        return []
    advice = (f"{rows:,} customer rows (attribute versions) of {customers:,} customers have no "
              "valid_from while another version of the same customer has none either: each is "
              "valid from its created_at and source order decides which applies; give each "
              "version its valid_from")
    return [Check("completeness:valid_from", "customers", "warning", rows, n, [], advice)]


def _dates(name, t, n, cut, as_of, old_years, end: dt.date, stats: dict[str, Any]) -> list[Check]:
    col = _DATE_COLUMNS[name]
    ts = t[col]
    future = t.filter(ts >= cut)
    oldest = dt.datetime(end.year - old_years, end.month, 1)
    old = t.filter(ts < ibis.timestamp(oldest))
    first = stats["first"]
    nf = stats["future"]
    # no date before the cut-off (the earliest is not): no query; else the count and the
    # examples from one
    no, old_examples = 0, []
    if first is not None and first == first and pd.Timestamp(first) < pd.Timestamp(oldest):
        no, old_examples = counted_examples(old, [ts], [col])
    return [
        Check("future_dates", name, _sev(nf, "error"), nf, n,
              _examples(future.order_by(ts.desc()), [col], count=nf),
              f"{col} on or after the audit date {as_of}: check time zones and the source's clock"),
        Check("old_dates", name, _sev(no), no, n, old_examples,
              f"{col} more than {old_years} years before the data's end {end} (the latest "
              "activity before the audit date): default dates such as 1900-01-01?"),
    ]


def _row_hash(t: ibis.Table, cols: list[str]) -> ibis.IntegerValue:
    """The engine's hash of a row's ``cols`` as a struct (64 bits on DuckDB, Spark's 32-bit
    Murmur3)."""
    return ibis.struct({c: t[c] for c in cols}).hash()


#: Backends whose every query costs fixed scheduling (Spark: a job per shuffle): there the
#: duplicate check groups the row hashes of all tables in one query.
_BATCHED = {"pyspark"}


def _repeated_hashes(tables: dict[str, ibis.Table]) -> dict[str, pa.Table | None]:
    """Per canonical table, the row hashes (:func:`_row_hash` of its canonical columns, as
    int64, column ``_h``) that repeat in it: on Spark from one query over all ``tables`` (a
    union of their hashes grouped on table and hash: one shuffle, where a query per table
    took one each); elsewhere None, for :func:`duplicate_groups` to find them table by table
    (DuckDB: as fast, and at 200k customers 860 MiB peak against 1,230 for the union, which
    holds every table's hashes at once). None also for a table not in ``tables``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not tables or ibis.get_backend(next(iter(tables.values()))).name not in _BATCHED:
        return dict.fromkeys(CANONICAL_TABLES)
    names = list(tables)  # a table's number in the union (a narrow key: less memory than its name)
    parts = [t.select(_t=ibis.literal(i, "int8"), _h=_row_hash(t, list(CANONICAL_TABLES[name])))
             for i, (name, t) in enumerate(tables.items())]
    found = (ibis.union(*parts, distinct=False).group_by(["_t", "_h"]).aggregate(_k=_.count())
             .filter(_._k > 1).select(_t=_._t.cast("int8"), _h=_._h.cast("int64")).to_pyarrow())
    out = {name: found.filter(pc.equal(found["_t"], pa.scalar(i, pa.int8()))).select(["_h"])
           for i, name in enumerate(names)}
    return {name: out.get(name) for name in CANONICAL_TABLES}


def duplicate_groups(t: ibis.Table, cols: list[str], *,
                     repeated: pa.Table | None = None) -> ibis.Table | None:
    """The groups of identical rows of ``t`` (equal in every column of ``cols``; NULL equals
    NULL, as in a GROUP BY): an expression with one row per group of two or more, its
    ``cols`` and ``_n``, the rows in it; None when no two rows are identical.

    Exact, in two steps. First every row's ``cols`` are hashed to one integer
    (:func:`_row_hash`) and the table is grouped on that hash alone; the hashes that repeat
    (those of identical rows, and the rare different rows whose hashes collide) come to the
    driver (this function runs that query, unless ``repeated``, a table of them in a column
    ``_h``, is given: :func:`_repeated_hashes` finds them for all tables at once). None
    repeat: no two rows are identical, and there is no second step. Else the expression
    returned groups on all their columns only the rows with a repeated hash (a semi-join
    with the few hashes, which Spark broadcasts). Grouping a narrow integer instead of
    whole rows is the saving (docs/benchmarks.md, session 31); on Spark, a single
    expression would also shuffle every whole row for the semi-join, since Spark cannot
    know beforehand how few hashes repeat."""
    h = _row_hash(t, cols)
    if repeated is None:
        repeated = (t.select(_h=h).group_by("_h").aggregate(_k=_.count()).filter(_._k > 1)
                    .select(_h=_._h.cast("int64")).to_pyarrow())
    if repeated.num_rows == 0:
        return None
    return (t.select(*cols, _h=h.cast("int64")).semi_join(ibis.memtable(repeated), "_h")
            .group_by(cols).aggregate(_n=_.count()).filter(_._n > 1))


def _duplicates(name: str, t: ibis.Table, n: int, *, repeated: pa.Table | None = None) -> Check:
    """``repeated``: see :func:`duplicate_groups`."""
    cols = list(CANONICAL_TABLES[name])
    key = "transaction_id" if name == "transactions" else "customer_id"
    found = duplicate_groups(t, cols, repeated=repeated)
    extra, examples = 0, []
    if found is not None:  # the few repeated groups come back
        groups = found.select(key, "_n").execute()
        extra = int((groups["_n"] - 1).sum())
        examples = [f"{key}={v}" for v in groups.sort_values(key, na_position="last")[key].head(5)]
    return Check("duplicate_rows", name, _sev(extra), extra, n, examples,
                 "identical rows from different sources or loads: check overlapping sources")


