"""What integer surrogate keys assigned at ingest would save the run, and what they would
cost the ingest (issue 10, "integer surrogate keys for customers and orders assigned at
ingest"), measured on an ingested project:

    python bench/bench_surrogate_keys.py PROJECT [--chunk 200000]

Today the one pass (``segflow.features._snapshots``) numbers the customer ids of every run
(``_customer_keys``: a union of the ids, ``row_number`` in id order) and, per chunk of
customers, joins the chunk's transactions and web events to those keys on the text id; it
groups purchase lines into orders by ``(customer key, transaction_id, ts key)`` (text).
With keys stored at ingest the chunk would be a range filter on a stored integer column,
and the orders grouped by one stored integer order key.

Measured here, on an in-memory copy of the store's transactions and events (DuckDB, the
project's snapshot grid and thread count), each step timed with the process's CPU
(``getrusage``: DuckDB's threads included) and wall clock:

- **run today**: the keys, then per chunk the keyed lines, the web days and the order
  periods (:func:`segflow.features._onepass_purchases.order_periods`), as the one pass does;
- **run with stored keys**: per chunk a range filter on ``customer_key``, the same web days
  and order periods grouped by the stored ``order_key`` (the results compared with today's:
  the same rows and sums);
- **ingest's extra work**: adding ``customer_key`` to the transactions and events and
  ``order_key`` (dense rank of the order key) to the transactions, as an ingest would have
  to after loading (the ids of a load numbered after those already stored).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import ibis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))


def cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


class Clock:
    """Sums of (CPU s, wall s) per label."""

    def __init__(self) -> None:
        self.sums: dict[str, list[float]] = {}

    def run(self, label: str, fn):
        c0, w0 = cpu(), time.perf_counter()
        out = fn()
        s = self.sums.setdefault(label, [0.0, 0.0])
        s[0] += cpu() - c0
        s[1] += time.perf_counter() - w0
        return out

    def cache(self, label: str, expr: ibis.Table) -> ibis.Table:
        """``expr`` materialised, the time added to ``label``."""
        return self.run(label, expr.cache)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("--chunk", type=int, default=200_000, help="customers per chunk")
    args = parser.parse_args(argv)

    from segflow.features import _onepass_purchases as purchases
    from segflow.features import _onepass_web as web
    from segflow.features._periods import Periods
    from segflow.features._snapshots import _customer_keys, _keyed
    from segflow.pipeline import resolve_snapshot_dates
    from segflow.project import Project

    project = Project.open(args.project, read_only=True)
    dates = resolve_snapshot_dates(project.store, project.settings)
    periods = Periods(tuple(sorted(dates)))
    db = project.store.path
    project.store.close()

    con = ibis.duckdb.connect()
    con.raw_sql(f"ATTACH '{db}' AS s (READ_ONLY)")
    threads = con.raw_sql("SELECT current_setting('threads')").fetchone()[0]
    clock = Clock()
    # the copies every variant reads (not timed as part of either)
    con.raw_sql("CREATE TABLE transactions AS SELECT * EXCLUDE (source, source_file, source_row,"
                " load_id) FROM s.transactions")
    con.raw_sql("CREATE TABLE events AS SELECT * EXCLUDE (source, source_file, source_row,"
                " load_id) FROM s.events")
    con.raw_sql("CREATE TABLE customers AS SELECT customer_id FROM s.customers")
    tables = {n: con.table(n) for n in ("transactions", "events", "customers")}
    n_lines = tables["transactions"].count().execute()
    n_events = tables["events"].count().execute()

    # -- the ingest's extra work: stored keys --------------------------------------------
    # numbering the ids is the same work at ingest and in today's run (counted in both totals)
    keys = clock.cache("both: number the customer ids", _customer_keys(tables, periods))
    con.create_table("ck", keys.select(customer_id="_cid", customer_key="_ck"))
    def with_keys() -> None:
        con.raw_sql("""CREATE TABLE tx_k AS SELECT t.*, k.customer_key FROM transactions t
                       JOIN ck k USING (customer_id)""")
        con.raw_sql("""CREATE TABLE ev_k AS SELECT e.*, k.customer_key FROM events e
                       JOIN ck k USING (customer_id)""")
    clock.run("ingest: customer_key on transactions and events", with_keys)
    def order_key() -> None:
        con.raw_sql("""CREATE TABLE tx_ko AS SELECT *, dense_rank() OVER (ORDER BY customer_key,
                       transaction_id, CASE WHEN transaction_id IS NULL THEN ts END) AS order_key
                       FROM tx_k""")
    clock.run("ingest: order_key on transactions", order_key)
    # the steps above rewrite the tables (the transactions twice, the events once); an
    # ingest writing the keys as it loads would not: the copies are subtracted
    for name in ("transactions", "events"):
        clock.run(f"copy: the {name} copied without keys", lambda name=name: con.raw_sql(
            f"CREATE TABLE {name}_c AS SELECT * FROM {name}; DROP TABLE {name}_c"))
    tx_k, ev_k = con.table("tx_ko"), con.table("ev_k")

    # -- the run: today's keys and joins against stored keys -----------------------------
    n_keys = int(keys.count().execute())
    today = keys
    checks = []
    for lo in range(0, n_keys, args.chunk):
        hi = lo + args.chunk - 1
        part = clock.cache("run today: chunk keys", today.filter(today._ck.between(lo, hi)))
        lines = clock.cache("run today: keyed lines", purchases.period_lines(
            _keyed(tables["transactions"], part), periods))
        days = clock.cache("run today: keyed web days", web.web_days(
            _keyed(tables["events"], part), periods))
        per = clock.cache("run today: order periods", purchases.order_periods(
            lines, periods, None))
        a = per.aggregate(n=per.count(), amt=per._amt.sum(), cnt=per._cnt.sum()).execute()

        t = tx_k.filter(tx_k.customer_key.between(lo, hi))
        t = t.mutate(customer_id=t.customer_key, transaction_id=t.order_key)
        lines2 = clock.cache("run stored: filtered lines", purchases.period_lines(
            t.drop("customer_key", "order_key"), periods))
        e = ev_k.filter(ev_k.customer_key.between(lo, hi))
        days2 = clock.cache("run stored: filtered web days", web.web_days(
            e.mutate(customer_id=e.customer_key).drop("customer_key"), periods))
        per2 = clock.cache("run stored: order periods by order_key", _by_order_key(
            purchases, lines2, periods))
        b = per2.aggregate(n=per2.count(), amt=per2._amt.sum(), cnt=per2._cnt.sum()).execute()
        checks.append(([float(v) for v in a.iloc[0]], [float(v) for v in b.iloc[0]]))
        for x in (part, lines, days, per, lines2, days2, per2):
            x.release()

    same = all(x[0] == y[0] and x[2] == y[2] and abs(x[1] - y[1]) < 1e-6 * max(1, abs(x[1]))
               for x, y in checks)
    print(f"{args.project}: {n_keys:,} customers, {n_lines:,} lines, {n_events:,} events, "
          f"{periods.n} snapshots, chunks of {args.chunk:,}, {threads} threads; "
          f"order periods equal: {same}")
    print("| step | CPU-s | wall s |\n|---|---:|---:|")
    for label, (c, w) in clock.sums.items():
        print(f"| {label} | {c:.2f} | {w:.2f} |")
    c_copy = (2 * clock.sums["copy: the transactions copied without keys"][0]
              + clock.sums["copy: the events copied without keys"][0])
    c_ing = sum(v[0] for k, v in clock.sums.items() if k.startswith(("ingest", "both")))
    print(f"| **ingest: extra CPU-s (the total less the copies)** | **{c_ing - c_copy:.2f}** | |")
    for prefix in ("ingest", "run today", "run stored"):
        mine = [v for k, v in clock.sums.items() if k.startswith(prefix)
                or (k.startswith("both") and prefix != "run stored")]
        c, w = sum(v[0] for v in mine), sum(v[1] for v in mine)
        print(f"| **{prefix}: total** | **{c:.2f}** | **{w:.2f}** |")
    return 0 if same else 1


def _by_order_key(purchases, lines: ibis.Table, periods) -> ibis.Table:
    """``order_periods`` with the order key one stored integer (carried in ``transaction_id``,
    with ``_ts_key`` null): the grouping and the windows on it."""
    saved = purchases._ORDER_KEY
    purchases._ORDER_KEY = ["customer_id", "transaction_id"]
    try:
        return purchases.order_periods(lines, periods, None)
    finally:
        purchases._ORDER_KEY = saved


if __name__ == "__main__":
    raise SystemExit(main())
