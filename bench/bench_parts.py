"""Time single parts of a run on a kept store, each materialised alone (CPU seconds of this
process, DuckDB's threads included), as in docs/benchmarks.md (session 36).

    python bench/bench_parts.py newmonth --store /tmp/segflow-bench/newmonth-400k-ingested
        the latest features' parts at the month after the stored feature state: the rows
        `next_state` reads, its deltas and combined state, then `state_features` and each of
        its per-snapshot parts alone (on a scratch copy of the store)
    python bench/bench_parts.py profiles --store /tmp/segflow-bench/job-10m
        the segment profiles of every scheme (`profile_frames`) on the stored latest
        features, read-only; prints their peak RSS too

Prints one line per part: label, CPU seconds, wall seconds (and rows). Not a timed test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import time
from pathlib import Path

#: The tables materialised by :func:`_clock`, released before the store closes.
_HELD: list = []


def _clock(label: str, make):  # noqa: ANN001, ANN202
    c, w = time.process_time(), time.perf_counter()
    table = make().cache()
    _HELD.append(table)
    rows = table.count().execute()
    print(f"{label}: {time.process_time() - c:.2f} CPU-s, {time.perf_counter() - w:.2f} s, "
          f"{rows:,} rows", flush=True)
    return table


def newmonth(store_dir: Path) -> None:
    import ibis

    from segflow.engine import connect
    from segflow.features import _onepass_purchases as purchases
    from segflow.features import _state as S
    from segflow.features._attributes import customer_records
    from segflow.features._behaviour import campaign_features, web_features
    from segflow.features._breadth import breadth_features
    from segflow.features._periods import Periods
    from segflow.features._purchases import order_table, prepare_lines, top_share, value_spend
    from segflow.features._window import DAYS_12M, Frame
    from segflow.pipeline import canonical_tables
    from segflow.project import Project

    scratch = store_dir.with_name(store_dir.name + "-parts")
    if scratch.exists():
        shutil.rmtree(scratch)
    shutil.copytree(store_dir, scratch)
    try:
        with Project.open(scratch) as project:
            store = project.store
            tables = canonical_tables(connect(store, "duckdb", settings=project.settings.engine))
            (a,) = store.raw.execute("SELECT DISTINCT snapshot_date FROM feature_state").fetchone()
            b = dt.date(a.year + (a.month == 12), a.month % 12 + 1, 1)
            print(f"state at {a}, new snapshot {b}", flush=True)
            prior = store.table("feature_state").select("customer_id", *S.MEASURES)
            # the rows of next_state, step by step (segflow.features._state.next_state)
            t = tables["transactions"]
            ranges = [(a, b)] + [(a - dt.timedelta(days=d), b - dt.timedelta(days=d))
                                 for d in (DAYS_12M, 2 * DAYS_12M)]
            inside = ibis.or_(*[(t.ts >= S._ts(lo)) & (t.ts < S._ts(hi)) for lo, hi in ranges])
            near = _clock("next_state: lines in the ranges", lambda: t.filter(inside))
            touched = near.filter(near.transaction_id.notnull(), near.customer_id.notnull())
            touched = touched.select("customer_id", "transaction_id").distinct()
            rest = t.filter(~inside, t.ts < S._ts(b), t.transaction_id.notnull())
            keys = rest.select("customer_id", "transaction_id")
            spanning = _clock("next_state: orders spanning the ranges", lambda: keys.semi_join(
                touched, ["customer_id", "transaction_id"]).distinct())
            rest = rest.semi_join(spanning, ["customer_id", "transaction_id"])
            both = ibis.union(near, rest, distinct=False)
            both = both.mutate(customer_id=both.customer_id.cast("string"))
            periods = Periods((a, b))
            lines = _clock("next_state: period lines", lambda: purchases.period_lines(both, periods))
            per = _clock("next_state: order periods",
                         lambda: purchases.order_periods(lines, periods, None))
            d, years = S.period_deltas(lines, per, periods, None, 2)
            years = _clock("next_state: orders per year", lambda: years)
            d = _clock("next_state: deltas", lambda: d)
            state = _clock("next_state: combined state",
                           lambda: S._combine(prior, d, years, S._year(a), S._year(b)))
            _clock("state_features (all of it)",
                   lambda: S.state_features(tables, state, b, window_days=None))
            frame = Frame(snapshot=b, window_days=None)
            lines = prepare_lines(tables["transactions"], frame)
            orders = order_table(lines)
            spend = value_spend(lines, frame, "category")
            parts = {
                "spend per (customer, category)": lambda: spend,
                "top category": lambda: top_share(lines, frame, "category", "top_category",
                                                  "category_count", spend=spend),
                "main channel": lambda: top_share(lines, frame, "channel", "main_channel",
                                                  "channel_count"),
                "breadth": lambda: breadth_features(lines, frame, categories=spend),
                "order table (all history)": lambda: orders,
                "campaign features": lambda: campaign_features(
                    tables["campaign_exposures"], lines, frame),
                "web (90 days)": lambda: web_features(tables["events"], frame),
                "attributes": lambda: customer_records(tables["customers"], frame),
            }
            for label, make in parts.items():
                _clock(f"state_features part: {label}", make)
            while _HELD:
                _HELD.pop().release()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def profiles(store_dir: Path) -> None:
    from segflow.pipeline import resolve_schemes
    from segflow.project import Project
    from segflow.summaries._write import profile_frames

    c, w = time.process_time(), time.perf_counter()
    with Project.open(store_dir, read_only=True) as project:
        schemes = resolve_schemes(project.settings)
        segs, longs = profile_frames(project.store, [s.name for s in schemes],
                                     {s.name: s.kind != "cluster" for s in schemes})
    print(json.dumps({
        "cpu_s": round(time.process_time() - c, 1), "wall_s": round(time.perf_counter() - w, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "segments": sum(len(s) for s in segs), "profile_rows": sum(len(x) for x in longs)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("part", choices=["newmonth", "profiles"])
    ap.add_argument("--store", type=Path, required=True, help="a project folder")
    args = ap.parse_args()
    {"newmonth": newmonth, "profiles": profiles}[args.part](args.store)


if __name__ == "__main__":
    main()
