"""The audit's checks of transactions (amounts, gaps, repeats, consistency), of customer
ids across the tables (unknown customers, stale customers) and of the ingest's own records
(quarantined and flagged rows). See :mod:`segflow.quality._audit` for the report.

Robust z-score (Iglewicz & Hoaglin, 1993, "How to Detect and Handle Outliers"):
``M = 0.6745 (x - median) / MAD``; ``|M| > 3.5`` is an outlier. When MAD is 0 the mean
absolute deviation is used instead: ``M = (x - median) / (1.253314 * MeanAD)``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
from ibis import _

from segflow.quality._base import Check, _count, _examples, _sev, counted_examples
from segflow.store import Store

#: The tables whose customer ids must be in the customers table.
_WITH_CUSTOMER = ("transactions", "events", "campaign_exposures", "survey_responses")


def row_order(t: ibis.Table) -> list[ibis.Value]:
    """The lineage columns (source, file, row number) of ``t``: the last keys of an examples'
    order, so that rows tied on the shown keys (amounts of 2,500.75 on many lines) come in
    one order on every engine, not in the engine's order of ties."""
    return [t[c] for c in ("source", "source_file", "source_row") if c in t.columns]


def is_sale(tx: ibis.Table) -> ibis.BooleanValue:
    """The transactions whose amounts the outlier check judges: positive, not returns."""
    return ~tx.is_return.fill_null(False) & (tx.amount > 0)


def full_rows(tx: ibis.Table) -> ibis.BooleanValue:
    """The transactions with both a quantity and a unit price (spend consistency)."""
    return tx.quantity.notnull() & tx.unit_price.notnull()


def inconsistent(tx: ibis.Table) -> ibis.BooleanValue:
    """Amount differs from quantity x unit price by more than 1 cent + 0.5 %, or its sign
    disagrees with ``is_return``."""
    off = (tx.amount - tx.quantity * tx.unit_price).abs() > 0.01 + 0.005 * tx.amount.abs()
    bad_sign = (tx.is_return & (tx.amount > 0)) | (~tx.is_return & (tx.amount < 0))
    return (full_rows(tx) & off) | bad_sign.fill_null(False)


def tx_metrics(tx: ibis.Table, cut: ibis.Value) -> dict[str, ibis.Scalar]:
    """The transactions' statistics the checks below need, as reductions to compute in the
    table's one statistics query (:func:`segflow.quality._audit._table_stats`): ``bad`` and
    ``checked`` rows of the spend consistency, the median sale ``med`` (outliers), and the
    first and last day and the number of days with transactions before ``cut`` (gaps)."""
    day, before = tx.ts.date(), tx.ts < cut
    return {"bad": tx.count(where=inconsistent(tx)), "checked": tx.count(where=full_rows(tx)),
            # the sales' amounts and NULL: a median ``where`` is not valid SQL on Spark
            "med": ibis.ifelse(is_sale(tx), tx.amount, ibis.null()).median(), "day0": day.min(where=before),
            "day1": day.max(where=before), "days": day.nunique(where=before)}


#: The types of :func:`tx_metrics` (NULL in the other tables' statistics rows).
TX_METRICS = {"bad": "int64", "checked": "int64", "med": "float64", "day0": "date",
              "day1": "date", "days": "int64"}


def transaction_checks(tx: ibis.Table, n: int, cut: ibis.Value, stats: dict[str, Any],
                       anonymous: int) -> list[Check]:
    """The checks of the ``n`` transactions, ``stats`` of :func:`tx_metrics`; ``anonymous``:
    the transactions without a customer."""
    return [_outliers(tx, n, stats["med"]), _gaps(tx, cut, stats), _same_day(tx, n),
            _consistency(tx, n, stats), _anonymous(tx, n, anonymous)]


def _outliers(tx: ibis.Table, n: int, median: Any) -> Check:
    sales = tx.filter(is_sale(tx))
    med = float(median) if median is not None else 0.0
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
    k, examples = counted_examples(out, [out.amount.desc(), out.transaction_id, *row_order(out)],
                                   ["transaction_id", "amount"])
    return Check("amount_outliers", "transactions", _sev(k, "info"), k, n, examples,
                 f"robust z-score |M| > 3.5 (median {med:.2f}, MAD {mad:.2f}): check for "
                 "wholesale orders, test orders or unit errors (cents vs units)")


def _gaps(tx: ibis.Table, cut: ibis.Value, stats: dict[str, Any]) -> Check:
    """``stats``: the first (``day0``) and last day (``day1``) before ``cut`` and the
    ``days`` with transactions between them (:func:`tx_metrics`)."""
    days_n = _count(stats["days"])
    if days_n == 0:
        return Check("history_gaps", "transactions", "ok", 0, 0, [], "no history before the audit date")
    span = (stats["day1"] - stats["day0"]).days + 1
    empty = span - days_n
    worst, ex = 0, []
    if empty:  # some day between the first and the last has none: the longest gaps
        days = tx.filter(tx.ts < cut).select(d=tx.ts.date()).distinct()
        w = ibis.window(order_by=days.d)
        gaps = days.mutate(prev=days.d.lag().over(w)).mutate(
            gap=(_.d.epoch_days() - _.prev.epoch_days()) - 1).filter(_.gap > 0)
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
    # the repeats beyond the first, and the largest groups, from one query
    extra, examples = counted_examples(g, [g.k.desc(), g.customer_id, g.day, g.amount],
                                       ["customer_id", "day", "amount"], count=(g.k - 1).sum())
    return Check("same_day_repeats", "transactions", _sev(extra, "info"), extra, n, examples,
                 "the same customer paid the same amount twice on one day: double-submitted "
                 "orders or near duplicates with new ids?")


def _consistency(tx: ibis.Table, n: int, stats: dict[str, Any]) -> Check:
    """``stats``: the ``bad`` and ``checked`` rows (:func:`tx_metrics`)."""
    bad = tx.filter(inconsistent(tx))
    k, checked = _count(stats["bad"]), _count(stats["checked"])
    return Check("spend_consistency", "transactions", _sev(k), k, n,
                 _examples(bad.order_by([bad.transaction_id, *row_order(bad)]),
                           ["transaction_id", "amount", "quantity", "unit_price"],
                           count=k),
                 f"amount differs from quantity x unit_price (checked {checked} rows with both) or "
                 "its sign disagrees with is_return: discounts, shipping, or a mapping error?")


def _anonymous(tx: ibis.Table, n: int, k: int) -> Check:
    """``k``: the transactions without a customer (of the table statistics)."""
    anon = tx.filter(tx.customer_id.isnull())
    return Check("anonymous_transactions", "transactions", _sev(k, "info"), k, n,
                 _examples(anon.order_by([anon.transaction_id, *row_order(anon)]), ["transaction_id"],
                           count=k),
                 "kept for revenue totals; they belong to no customer and no segment")


def customer_checks(tables: dict[str, ibis.Table], sizes: dict[str, int], stale_days: int,
                    end: dt.date) -> list[Check]:
    """``unknown_customers`` of every non-empty table with customer ids, then
    ``stale_customers``: customers without a transaction or event in the ``stale_days`` days
    up to and including ``end`` (customers created before that window, or with no creation
    date).

    One query: every customer id of the customers table and the non-null ids of the other
    tables (with their activity in the window) are grouped by id once; per id, its customer
    rows, its rows in each table and its activity. The unknown ids (no customer row) and
    their rows, the stale customers and the distinct ids of the customers table are then
    counted, and the first five of each list taken, in the same query (a union of the counts'
    row and the lists' rows, which on Spark share the grouping's shuffle)."""
    upto = end + dt.timedelta(days=1)
    cut = ibis.timestamp(dt.datetime.combine(upto, dt.time()))
    since = ibis.timestamp(dt.datetime.combine(upto - dt.timedelta(days=stale_days), dt.time()))
    names = [n for n in _WITH_CUSTOMER if sizes[n]]
    zero = ibis.literal(0, "int64")

    def part(name: str) -> ibis.Table:
        t = tables[name]
        flags: dict[str, Any] = {f"_{m}": zero for m in names}
        if name == "customers":
            cu = t
            base = (cu.created_at.isnull() | (cu.created_at < since)).cast("int64")
            return cu.select("customer_id", _cu=ibis.literal(1, "int64"), _base=base, _act=zero, **flags)
        t = t.filter(t.customer_id.notnull())
        act = zero
        if name in ("transactions", "events"):
            act = ((t.ts >= since) & (t.ts < cut)).cast("int64")
        flags[f"_{name}"] = ibis.literal(1, "int64")
        return t.select("customer_id", _cu=zero, _base=zero, _act=act, **flags)

    rows = ibis.union(*[part(n) for n in ["customers", *names]], distinct=False)
    cols = ["_cu", "_base", "_act", *[f"_{m}" for m in names]]
    g = rows.group_by("customer_id").aggregate(**{c: rows[c].sum() for c in cols})
    stale = (g._base > 0) & (g._act == 0)
    lists = {"stale": stale, **{m: (g._cu == 0) & (g[f"_{m}"] > 0) for m in names}}
    counts = {"stale": g.count(where=stale), "total": g.count(where=g._cu > 0),
              **{m: g[f"_{m}"].sum(where=g._cu == 0) for m in names}}
    # every part carries all of the grouping's columns (the lists' rows their values, the
    # counts' row NULLs): so Spark prunes no part's grouping differently and runs it once
    # for all (one shuffle, reused), not once per part
    none = ibis.null().cast("int64")
    parts = [g.aggregate(**{f"n_{k}": v.cast("int64") for k, v in counts.items()}).select(
        _list=ibis.literal(""), customer_id=ibis.null().cast("string"),
        **{c: none for c in cols}, **{f"n_{k}": _[f"n_{k}"] for k in counts})]
    for label, cond in lists.items():
        first = g.filter(cond).order_by(g.customer_id).limit(5)
        parts.append(first.select(_list=ibis.literal(label), customer_id=first.customer_id,
                                  **{c: first[c] for c in cols}, **{f"n_{k}": none for k in counts}))
    frame = ibis.union(*parts, distinct=False).execute()
    row = frame[frame["_list"] == ""].iloc[0]
    out = []
    for name in names:
        k = _count(row[f"n_{name}"])
        out.append(Check("unknown_customers", name, _sev(k, "error"), k, sizes[name],
                         _first_ids(frame, name, k),
                         "rows whose customer is not in the customers table: load the CRM export first, "
                         "or check id formats (leading zeros, prefixes)"))
    k, total = _count(row["n_stale"]), _count(row["n_total"])
    sev = "warning" if total and k / total > 0.5 else _sev(k, "info")
    out.append(Check("stale_customers", "customers", sev, k, total, _first_ids(frame, "stale", k),
                     f"no purchase or visit in the {stale_days} days up to the data's end {end} "
                     "(the latest activity, not today): keep for "
                     "win-back, but check whether the records are still valid (consent, contact)"))
    return out


def _first_ids(frame: Any, label: str, count: int, n: int = 5) -> list[str]:
    """The first ``n`` rows (``customer_id=...``) of list ``label``, ids in order (nulls
    last), each id as many times as it has rows; none when ``count`` is 0."""
    if count == 0:
        return []
    ids = frame[frame["_list"] == label].sort_values("customer_id", na_position="last", kind="stable")
    rows = ids[f"_{label}"] if label != "stale" else [1] * len(ids)  # an unknown id's rows
    out: list[str] = []
    for cid, k in zip(ids["customer_id"], rows, strict=True):
        out += [f"customer_id={cid}"] * int(k)
    return out[:n]


_FLAG_ADVICE = {
    "excel_text": "cells written as =\"...\" (Excel's way to keep leading zeros) were read "
                  "as the text between the quotes (=\"00123\" as 00123); nothing to do unless "
                  "the export meant something else",
    "formula_in_text": "text starting like a spreadsheet formula was kept; exports must "
                       "neutralise it (prefix ') before writing CSV or Excel",
    "invalid_value": "values outside the value map were emptied; the originals are in "
                     "ingest_flags: extend [sources.value_maps] if they are valid",
    "repeated_lines": "transaction lines without ids repeating a block of lines (a month "
                      "appended twice, a file delivered again under another name) were kept "
                      "and count twice: remove the copy from the source files and ingest into "
                      "a new store, or map a transaction_id or a duplicate_key",
    "valid_from_before_created": "attribute versions dated before their record was created "
                                 "describe the customer from created_at, not valid_from; if "
                                 "created_at is a load date, map the sign-up date instead",
}


def flagged(store: Store, sizes: dict[str, int]) -> list[Check]:
    """Accepted rows noted at ingest (table ``ingest_flags``), except anonymous ones."""
    if "ingest_flags" not in store.tables():
        return []
    flags = store.table("ingest_flags").filter(_.rule != "anonymous")
    loads = store.table("loads").select("load_id", "target_table", "rows_read")
    # sorted here, not by the engine (on Spark a sort is two jobs more: a sample, a shuffle)
    per = (flags.join(loads, "load_id").group_by(["rule", "target_table"])
           .aggregate(n=_.count(), first=_.source_file.min()).execute()
           .sort_values(["rule", "target_table"], na_position="last", ignore_index=True))
    out = []
    for r in per.itertuples():
        ex = flags.filter(flags.rule == r.rule)
        examples = _examples(ex.order_by([ex.source_file, ex.row_number]),
                             ["source_file", "row_number", "column_name", "value"])
        severity = "warning" if r.rule == "repeated_lines" else "info"  # amounts counted twice
        out.append(Check(f"flagged:{r.rule}", r.target_table, severity, int(r.n),
                         max(int(sizes.get(r.target_table, 0)), int(r.n)), examples,
                         _FLAG_ADVICE.get(r.rule, "")))
    return out


def quarantine(store: Store) -> list[Check]:
    loads = store.table("loads")
    # sorted here, not by the engine (on Spark a sort is two jobs more: a sample, a shuffle)
    per = (loads.filter(loads.status == "ok").group_by("source")
           .aggregate(read=loads.rows_read.sum(), q=loads.rows_quarantined.sum(),
                      d=loads.rows_duplicate.sum()).execute()
           .sort_values("source", na_position="last", ignore_index=True))
    out = []
    for r in per.itertuples():
        share = r.q / r.read if r.read else 0.0
        sev = "error" if share > 0.10 else ("warning" if share > 0.01 else _sev(int(r.q), "info"))
        out.append(Check("quarantined_rows", f"source:{r.source}", sev, int(r.q), int(r.read), [],
                         "rows rejected at ingest: see the quarantine table or "
                         "`segflow sources check` for the rules they failed"))
    return out

