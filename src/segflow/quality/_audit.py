"""The data-quality audit: scored checks over the canonical tables of a store.

Every check reports a severity (ok, info, warning, error), the number of affected rows (or
cells, days), the number it is out of, up to five examples and a piece of advice. Checks are
Ibis expressions over the store's tables; only their small results reach Python.

Robust z-score (Iglewicz & Hoaglin, 1993, "How to Detect and Handle Outliers"):
``M = 0.6745 (x - median) / MAD``; ``|M| > 3.5`` is an outlier. When MAD is 0 the mean
absolute deviation is used instead: ``M = (x - median) / (1.253314 * MeanAD)``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import ibis
import pandas as pd
from ibis import _

from segflow._result import TableResult
from segflow.sources._rules import REQUIRED, RULES
from segflow.store import CANONICAL_TABLES, Store

if TYPE_CHECKING:
    import plotly.graph_objects as go

SEVERITIES = ("ok", "info", "warning", "error")
_WEIGHT = {"ok": 1.0, "info": 0.5, "warning": 1.0, "error": 2.0}
_DATE_COLUMNS = {"customers": "created_at", "transactions": "ts", "events": "ts",
                 "campaign_exposures": "ts", "survey_responses": "ts"}


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
        return f"Kept but flagged: {RULES.get(column, words)}"
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
    # one query per table: its size, filled cells, future dates and date range
    stats = {n: _table_stats(n, t, cut) for n, t in tables.items()}
    sizes = {n: s["n"] for n, s in stats.items()}
    ends = [stats[n]["before_cut"] for n in _ACTIVITY if sizes[n]]
    ends = [e.date() for e in ends if e is not None and e == e]  # neither None nor NaT
    end = max(ends) if ends else as_of
    checks: list[Check] = []
    for name, t in tables.items():
        if sizes[name]:
            checks += _completeness(name, sizes[name], stats[name])
            checks += _dates(name, t, sizes[name], cut, as_of, old_years, end, stats[name])
            checks.append(_duplicates(name, t, sizes[name]))
    tx, cu = tables["transactions"], tables["customers"]
    if sizes["transactions"]:
        checks.append(_outliers(tx, sizes["transactions"]))
        checks.append(_gaps(tx, cut))
        checks.append(_same_day(tx, sizes["transactions"]))
        checks.append(_consistency(tx, sizes["transactions"]))
        checks.append(_anonymous(tx, sizes["transactions"],
                                 sizes["transactions"] - stats["transactions"]["filled"]["customer_id"]))
    if sizes["customers"]:
        for name in ("transactions", "events", "campaign_exposures", "survey_responses"):
            if sizes[name]:
                checks.append(_unknown(name, tables[name], cu, sizes[name]))
        checks.append(_stale(cu, tx, tables["events"], stale_days, end))
    checks += _quarantine(store)
    checks += _flagged(store, sizes)
    return AuditReport(checks, as_of, end)


#: The tables whose latest date before the audit date is the data's end (activity).
_ACTIVITY = ("transactions", "events", "campaign_exposures", "survey_responses")


def _table_stats(name: str, t: ibis.Table, cut) -> dict[str, Any]:
    """One query over a table: ``n`` rows, ``filled`` non-null cells per column, ``future``
    rows dated on or after ``cut``, the earliest date (``first``) and the latest before
    ``cut`` (``before_cut``; None or NaT when there is none) of its date column."""
    cols = list(CANONICAL_TABLES[name])
    ts = t[_DATE_COLUMNS[name]]
    metrics: dict[str, Any] = {f"c{i}": t[c].count() for i, c in enumerate(cols)}
    row = t.aggregate(_n=t.count(), _future=t.count(where=ts >= cut), _first=ts.min(),
                      _before_cut=ts.max(where=ts < cut), **metrics).execute().iloc[0]
    return {"n": _count(row["_n"]), "future": _count(row["_future"]), "first": row["_first"],
            "before_cut": row["_before_cut"],
            "filled": {c: _count(row[f"c{i}"]) for i, c in enumerate(cols)}}


def _count(value: Any) -> int:
    """A count from a one-row result: 0 for NULL (Spark's filtered count of an empty table
    comes back as NULL, a NaN in pandas, where DuckDB answers 0)."""
    return 0 if value is None or pd.isna(value) else int(value)


def _sev(count: int, bad: str = "warning") -> str:
    return "ok" if count == 0 else bad


def _examples(expr: ibis.Table, cols: list[str], n: int = 5, *, count: int = 1) -> list[str]:
    """Up to ``n`` rows of ``expr`` as text; none (no query) when ``count``, the number of
    rows of ``expr``, is 0."""
    if count == 0:
        return []
    frame = expr.select(*cols).limit(n).execute()
    return [", ".join(f"{c}={v}" for c, v in zip(cols, row, strict=True))
            for row in frame.itertuples(index=False)]


def _completeness(name: str, n: int, stats: dict[str, Any]) -> list[Check]:
    cols = list(CANONICAL_TABLES[name])
    out = []
    for c in cols:
        missing = n - stats["filled"][c]
        if missing == 0:
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
            advice = f"{missing / n:.1%} of {name} have no {c}; segments using it will miss them"
        out.append(Check(f"completeness:{c}", name, sev, missing, n, [], advice))
    return out


def _dates(name, t, n, cut, as_of, old_years, end: dt.date, stats: dict[str, Any]) -> list[Check]:
    col = _DATE_COLUMNS[name]
    ts = t[col]
    future = t.filter(ts >= cut)
    oldest = dt.datetime(end.year - old_years, end.month, 1)
    old = t.filter(ts < ibis.timestamp(oldest))
    first = stats["first"]
    # no date before the cut-off (the earliest is not): no query
    nf = stats["future"]
    no = int(old.count().execute()) if first is not None and first == first and \
        pd.Timestamp(first) < pd.Timestamp(oldest) else 0
    return [
        Check("future_dates", name, _sev(nf, "error"), nf, n,
              _examples(future.order_by(ts.desc()), [col], count=nf),
              f"{col} on or after the audit date {as_of}: check time zones and the source's clock"),
        Check("old_dates", name, _sev(no), no, n, _examples(old.order_by(ts), [col], count=no),
              f"{col} more than {old_years} years before the data's end {end} (the latest "
              "activity before the audit date): default dates such as 1900-01-01?"),
    ]


def duplicate_groups(t: ibis.Table, cols: list[str]) -> ibis.Table | None:
    """The groups of identical rows of ``t`` (equal in every column of ``cols``; NULL equals
    NULL, as in a GROUP BY): an expression with one row per group of two or more, its
    ``cols`` and ``_n``, the rows in it; None when no two rows are identical.

    Exact, in two steps. First every row's ``cols`` are hashed to one integer (the engine's
    hash of the row as a struct: 64 bits on DuckDB, Spark's 32-bit Murmur3) and the table
    is grouped on that hash alone; the hashes that repeat (those of identical rows, and the
    rare different rows whose hashes collide) come to the driver (this function runs that
    query). None repeat: no two rows are identical, and there is no second step. Else the
    expression returned groups on all their columns only the rows with a repeated hash
    (a semi-join with the few hashes, which Spark broadcasts). Grouping a narrow integer
    instead of whole rows is the saving (docs/benchmarks.md, session 31); on Spark, a
    single expression would also shuffle every whole row for the semi-join, since Spark
    cannot know beforehand how few hashes repeat."""
    h = ibis.struct({c: t[c] for c in cols}).hash()
    repeated = (t.select(_h=h).group_by("_h").aggregate(_k=_.count()).filter(_._k > 1)
                .select(_h=_._h.cast("int64")).to_pyarrow())
    if repeated.num_rows == 0:
        return None
    return (t.select(*cols, _h=h.cast("int64")).semi_join(ibis.memtable(repeated), "_h")
            .group_by(cols).aggregate(_n=_.count()).filter(_._n > 1))


def _duplicates(name: str, t: ibis.Table, n: int) -> Check:
    cols = list(CANONICAL_TABLES[name])
    key = "transaction_id" if name == "transactions" else "customer_id"
    found = duplicate_groups(t, cols)
    extra, examples = 0, []
    if found is not None:  # the few repeated groups come back
        groups = found.select(key, "_n").execute()
        extra = int((groups["_n"] - 1).sum())
        examples = [f"{key}={v}" for v in groups.sort_values(key, na_position="last")[key].head(5)]
    return Check("duplicate_rows", name, _sev(extra), extra, n, examples,
                 "identical rows from different sources or loads: check overlapping sources")


def _outliers(tx: ibis.Table, n: int) -> Check:
    sales = tx.filter(~tx.is_return.fill_null(False) & (tx.amount > 0))
    stats = sales.aggregate(med=sales.amount.median()).execute().iloc[0]
    med = float(stats["med"]) if stats["med"] is not None else 0.0
    dev = (sales.amount - med).abs()
    agg = sales.aggregate(mad=dev.median(), meanad=dev.mean()).execute().iloc[0]
    mad, meanad = float(agg["mad"] or 0.0), float(agg["meanad"] or 0.0)
    if mad > 0:
        z = 0.6745 * (sales.amount - med) / mad
    elif meanad > 0:
        z = (sales.amount - med) / (1.253314 * meanad)
    else:
        return Check("amount_outliers", "transactions", "ok", 0, n, [], "all amounts are equal")
    out = sales.filter(z.abs() > 3.5)
    k = int(out.count().execute())
    return Check("amount_outliers", "transactions", _sev(k, "info"), k, n,
                 _examples(out.order_by(out.amount.desc()), ["transaction_id", "amount"], count=k),
                 f"robust z-score |M| > 3.5 (median {med:.2f}, MAD {mad:.2f}): check for "
                 "wholesale orders, test orders or unit errors (cents vs units)")


def _gaps(tx: ibis.Table, cut) -> Check:
    days = tx.filter(tx.ts < cut).select(d=tx.ts.date()).distinct()
    w = ibis.window(order_by=days.d)
    gaps = days.mutate(prev=days.d.lag().over(w)).mutate(
        gap=(_.d.epoch_days() - _.prev.epoch_days()) - 1).filter(_.gap > 0)
    stats = days.aggregate(first=days.d.min(), last=days.d.max(), n=days.count()).execute().iloc[0]
    if stats["n"] == 0:
        return Check("history_gaps", "transactions", "ok", 0, 0, [], "no history before the audit date")
    span = (stats["last"] - stats["first"]).days + 1
    empty = span - int(stats["n"])
    longest = gaps.order_by([gaps.gap.desc(), gaps.d]).limit(5).execute()
    worst = int(longest.gap.max()) if len(longest) else 0
    ex = [f"{int(r.gap)} days without transactions before {r.d}" for r in longest.itertuples()]
    sev = "warning" if worst >= 7 else ("info" if empty else "ok")
    return Check("history_gaps", "transactions", sev, empty, span, ex,
                 "days with no transactions between the first and last day: a missing file or "
                 f"export window? (longest gap {worst} days)")


def _same_day(tx: ibis.Table, n: int) -> Check:
    g = (tx.filter(tx.customer_id.notnull())
         .group_by(customer_id=tx.customer_id, day=tx.ts.date(), amount=tx.amount)
         .aggregate(k=_.count()).filter(_.k > 1))
    # no repeats: the sum of no rows is NULL (None on DuckDB, NaN from Spark): 0
    extra = int(g.aggregate(x=(_.k - 1).sum().fill_null(0)).execute().iloc[0, 0])
    return Check("same_day_repeats", "transactions", _sev(extra, "info"), extra, n,
                 _examples(g.order_by([g.k.desc(), g.customer_id]), ["customer_id", "day", "amount"],
                           count=extra),
                 "the same customer paid the same amount twice on one day: double-submitted "
                 "orders or near duplicates with new ids?")


def _consistency(tx: ibis.Table, n: int) -> Check:
    full_rows = tx.quantity.notnull() & tx.unit_price.notnull()
    off = (tx.amount - tx.quantity * tx.unit_price).abs() > 0.01 + 0.005 * tx.amount.abs()
    bad_sign = (tx.is_return & (tx.amount > 0)) | (~tx.is_return & (tx.amount < 0))
    is_bad = (full_rows & off) | bad_sign.fill_null(False)
    bad = tx.filter(is_bad)
    row = tx.aggregate(k=tx.count(where=is_bad), checked=tx.count(where=full_rows)).execute().iloc[0]
    k, checked = _count(row["k"]), _count(row["checked"])
    return Check("spend_consistency", "transactions", _sev(k), k, n,
                 _examples(bad.order_by(bad.transaction_id), ["transaction_id", "amount", "quantity", "unit_price"],
                           count=k),
                 f"amount differs from quantity x unit_price (checked {checked} rows with both) or "
                 "its sign disagrees with is_return: discounts, shipping, or a mapping error?")


def _anonymous(tx: ibis.Table, n: int, k: int) -> Check:
    """``k``: the transactions without a customer (of :func:`_table_stats`)."""
    anon = tx.filter(tx.customer_id.isnull())
    return Check("anonymous_transactions", "transactions", _sev(k, "info"), k, n,
                 _examples(anon.order_by(anon.transaction_id), ["transaction_id"], count=k),
                 "kept for revenue totals; they belong to no customer and no segment")


def _unknown(name: str, t: ibis.Table, cu: ibis.Table, n: int) -> Check:
    ids = cu.select("customer_id").distinct()
    orphans = t.filter(t.customer_id.notnull()).anti_join(ids, "customer_id")
    k = int(orphans.count().execute())
    return Check("unknown_customers", name, _sev(k, "error"), k, n,
                 _examples(orphans.order_by(orphans.customer_id), ["customer_id"], count=k),
                 "rows whose customer is not in the customers table: load the CRM export first, "
                 "or check id formats (leading zeros, prefixes)")


def _stale(cu, tx, ev, stale_days: int, end: dt.date) -> Check:
    """Customers without activity in the ``stale_days`` days up to and including ``end``."""
    upto = end + dt.timedelta(days=1)
    cut = ibis.timestamp(dt.datetime.combine(upto, dt.time()))
    since = ibis.timestamp(dt.datetime.combine(upto - dt.timedelta(days=stale_days), dt.time()))
    active = (tx.filter((tx.ts >= since) & (tx.ts < cut)).select("customer_id")
              .union(ev.filter((ev.ts >= since) & (ev.ts < cut)).select("customer_id")).distinct())
    base = cu.filter(cu.created_at.isnull() | (cu.created_at < since)).select("customer_id").distinct()
    stale = base.anti_join(active, "customer_id")
    ids = cu.select("customer_id").distinct()
    row = stale.aggregate(k=stale.count()).cross_join(ids.aggregate(total=ids.count())) \
        .execute().iloc[0]
    k, total = _count(row["k"]), _count(row["total"])
    sev = "warning" if total and k / total > 0.5 else _sev(k, "info")
    return Check("stale_customers", "customers", sev, k, total,
                 _examples(stale.order_by(stale.customer_id), ["customer_id"], count=k),
                 f"no purchase or visit in the {stale_days} days up to the data's end {end} "
                 "(the latest activity, not today): keep for "
                 "win-back, but check whether the records are still valid (consent, contact)")


_FLAG_ADVICE = {
    "formula_in_text": "text starting like a spreadsheet formula was kept; exports must "
                       "neutralise it (prefix ') before writing CSV or Excel",
    "invalid_value": "values outside the value map were emptied; the originals are in "
                     "ingest_flags: extend [sources.value_maps] if they are valid",
}


def _flagged(store: Store, sizes: dict[str, int]) -> list[Check]:
    """Accepted rows noted at ingest (table ``ingest_flags``), except anonymous ones."""
    if "ingest_flags" not in store.tables():
        return []
    flags = store.table("ingest_flags").filter(_.rule != "anonymous")
    loads = store.table("loads").select("load_id", "target_table", "rows_read")
    per = (flags.join(loads, "load_id").group_by(["rule", "target_table"])
           .aggregate(n=_.count(), first=_.source_file.min()).order_by(["rule", "target_table"]).execute())
    out = []
    for r in per.itertuples():
        ex = flags.filter(flags.rule == r.rule)
        examples = _examples(ex.order_by([ex.source_file, ex.row_number]),
                             ["source_file", "row_number", "column_name", "value"])
        out.append(Check(f"flagged:{r.rule}", r.target_table, "info", int(r.n),
                         max(int(sizes.get(r.target_table, 0)), int(r.n)), examples,
                         _FLAG_ADVICE.get(r.rule, "")))
    return out


def _quarantine(store: Store) -> list[Check]:
    loads = store.table("loads")
    per = (loads.filter(loads.status == "ok").group_by("source")
           .aggregate(read=loads.rows_read.sum(), q=loads.rows_quarantined.sum(),
                      d=loads.rows_duplicate.sum()).order_by("source").execute())
    out = []
    for r in per.itertuples():
        share = r.q / r.read if r.read else 0.0
        sev = "error" if share > 0.10 else ("warning" if share > 0.01 else _sev(int(r.q), "info"))
        out.append(Check("quarantined_rows", f"source:{r.source}", sev, int(r.q), int(r.read), [],
                         "rows rejected at ingest: see the quarantine table or "
                         "`segflow sources check` for the rules they failed"))
    return out
