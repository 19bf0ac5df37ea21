"""Transaction lines without ids that repeat a block of lines: a warning and a flag.

Lines without a ``transaction_id`` (and without a ``duplicate_key``) are all kept: two equal
lines are two items of one basket (docs/data.md, *De-duplication*). So a month appended twice
to such a file, or a file delivered again under another name, doubles its amounts silently.
Equal lines of one basket are lines of one order (one customer, one timestamp); a repeat
that spans several orders is no basket. After a load's rows are written, two whole-column
checks over them (SQL, no loop over rows) find such repeats:

- **in the file**: a run of consecutive stored lines, each equal to the line the same
  distance before it (one of its previous three equal lines, so that a basket's equal lines
  do not break the run of their copies), spanning at least two orders: rows 101-200 equal
  rows 1-100 line for line (a block written twice, or copied further down);
- **across files**: the days of the file (the date of ``ts``) all of whose lines (counted as
  a multiset) are stored already from other files of the source, when those days hold lines
  of at least two orders: a file delivered again under another name, a month appended to the
  next month's export.

The lines stay (the documented rule); each repeating line is noted in ``ingest_flags``
(rule ``repeated_lines``, value: the row or file it repeats; the audit lists them as
``flagged:repeated_lines``, severity warning) and the load's report warns once per kind,
naming the rows or the days and the file. The Spark ingest makes the same checks as Spark
jobs (:mod:`segflow.warehouse._repeats`).
"""

from __future__ import annotations

from collections.abc import Collection

import duckdb

from segflow.sources._readers import lit, q
from segflow.store import CANONICAL_TABLES

#: The ``ingest_flags`` rule of a repeated line.
RULE = "repeated_lines"
_FIX = ("its transaction lines have no id, so all are kept and these count twice (remove the "
        "copy, or map a transaction_id or a duplicate_key)")


def _same(cols: list[str], left: str, right: str) -> str:
    return " AND ".join(f"{left}.{q(c)} IS NOT DISTINCT FROM {right}.{q(c)}" for c in cols)


def repeated_lines(con: duckdb.DuckDBPyConnection, source: str, label: str, load: str,
                   column: str, mapped: Collection[str]) -> list[str]:
    """Flag the transaction lines of the load ``load`` (file ``label`` of source ``source``,
    written to ``main.transactions``) that repeat a block of lines (see the module notes) in
    ``main.ingest_flags`` (``column``: the column named, the mapped ``ts``) and return the
    warnings, one per kind found. Lines are compared on the ``mapped`` canonical columns
    (the others are empty, or derived from them: fewer columns to hash, a third faster)."""
    cols = [c for c in CANONICAL_TABLES["transactions"] if c in mapped and c != "transaction_id"]
    listed = ", ".join(q(c) for c in cols)
    mine = f"main.transactions WHERE load_id = {lit(load)}"
    lines, tmp, days = f"_sf_rep_{load}_l", f"_sf_rep_{load}", f"_sf_rep_{load}_d"
    # the lines whose hash occurs twice or more in the file: the only ones that can repeat
    con.execute(f"""CREATE TEMP TABLE {lines} AS
        WITH s AS (SELECT source_row AS r, hash({listed}) AS h FROM {mine})
        SELECT r, h FROM s WHERE h IN (SELECT h FROM s GROUP BY h HAVING count(*) > 1)""")
    said = _in_file(con, label, mine, cols, lines, tmp)
    said += _across(con, source, label, mine, cols, days)
    if said:  # (nearly never: no scan of the load's lines otherwise)
        con.execute(f"""INSERT INTO main.ingest_flags
            SELECT {lit(source)}, {lit(label)}, r, {lit(RULE)}, {lit(column)}, arg_min(v, k),
                   {lit(load)}
            FROM (SELECT r, 'repeats row ' || prev AS v, 1 AS k FROM {tmp}
                  UNION ALL SELECT t.source_row, 'stored from ' || d.f, 2
                  FROM (SELECT * FROM {mine}) t JOIN {days} d ON d.day = CAST(t.ts AS DATE))
            GROUP BY r""")
    for name in (lines, tmp, days):
        con.execute(f"DROP TABLE {name}")
    return said


def _in_file(con: duckdb.DuckDBPyConnection, label: str, mine: str, cols: list[str],
             lines: str, out: str) -> list[str]:
    """Create ``out`` (``r``, ``prev``: the row it repeats, ``r0``/``r1``: its run,
    ``span``): the lines of ``lines`` (``r``, ``h``: the file's lines whose hash repeats)
    in a run of one distance to one of their previous three occurrences (so that a basket's
    equal lines do not break the run of their copies) spanning two orders or more, each
    equal to the line it repeats; the warning, if any."""
    con.execute(f"CREATE TEMP TABLE {out} (r BIGINT, prev BIGINT, r0 BIGINT, r1 BIGINT, span BIGINT)")
    if not con.execute(f"SELECT count(*) FROM {lines}").fetchone()[0]:
        return []  # no line repeats (the usual case): no more scans
    con.execute(f"""INSERT INTO {out}
        WITH l AS (SELECT r, lag(r, 1) OVER w AS l1, lag(r, 2) OVER w AS l2,
                          lag(r, 3) OVER w AS l3 FROM {lines} WINDOW w AS (PARTITION BY h ORDER BY r)),
        p AS (SELECT r, unnest([r - l1, r - l2, r - l3]) AS d FROM l WHERE l1 IS NOT NULL),
        g AS (SELECT r, d, r - row_number() OVER (PARTITION BY d ORDER BY r) AS run
              FROM p WHERE d IS NOT NULL),
        o AS (SELECT source_row AS r, hash(customer_id, ts) AS o FROM {mine}
              AND source_row IN (SELECT r FROM g)),
        runs AS (SELECT d, run, min(r) AS r0, max(r) AS r1 FROM g JOIN o USING (r)
                 GROUP BY d, run HAVING count(DISTINCT o) > 1)
        SELECT g.r, g.r - min(g.d) AS prev, arg_min(runs.r0, g.d) AS r0,
               arg_min(runs.r1, g.d) AS r1, min(g.d) AS span
        FROM g JOIN runs USING (d, run) GROUP BY g.r""")
    # hash equality only narrows: each line equal to the line it repeats, exactly
    con.execute(f"""DELETE FROM {out} WHERE (r, prev) NOT IN (
        SELECT t.r, t.prev FROM {out} t JOIN (SELECT * FROM {mine}) a ON a.source_row = t.r
        JOIN (SELECT * FROM {mine}) b ON b.source_row = t.prev WHERE {_same(cols, 'a', 'b')})""")
    n, first, last, span = con.execute(
        f"SELECT count(*), min(r0), arg_min(r1, r0), arg_min(span, r0) FROM {out}").fetchone()
    return [in_file_message(label, n, first, last, span)] if n else []


def in_file_message(label: str, n: int, first: int, last: int, span: int) -> str:
    """The warning about ``n`` lines of file ``label`` repeating others in it, the first run
    rows ``first`` to ``last``, ``span`` rows after the lines they repeat."""
    return (f"file {label}: rows {first:,} to {last:,} repeat rows {first - span:,} to "
            f"{last - span:,} line for line ({n:,} repeated lines in all, over several "
            f"orders); {_FIX}")


def across_message(label: str, source: str, n_days: int, lo: object, hi: object, n: int,
                   other: str) -> str:
    """The warning about the ``n`` lines of ``n_days`` days (``lo`` to ``hi``) of file
    ``label`` stored already from file ``other`` (and maybe others) of ``source``."""
    when = f"{lo}" if n_days == 1 else f"{n_days:,} days ({lo} to {hi})"
    return (f"file {label}: all {n:,} lines of {when} are stored already from file {other} "
            f"of source {source!r} (a file delivered again under another name, or a month "
            f"appended twice?); {_FIX}")


def _across(con: duckdb.DuckDBPyConnection, source: str, label: str, mine: str,
            cols: list[str], out: str) -> list[str]:
    """Create ``out`` (``day``, ``f``: a file holding its lines): the days of the load
    ``mine`` all of whose lines are stored already from other files of ``source`` (as a
    multiset), when they hold lines of two orders or more; the warning, if any. Nothing to
    compare (no other file's line in the load's time span, the usual case) costs one
    lookup."""
    con.execute(f"CREATE TEMP TABLE {out} (day DATE, f VARCHAR)")
    lo, hi = con.execute(f"SELECT min(ts), max(ts) FROM {mine}").fetchone()
    others = (f"main.transactions WHERE source = {lit(source)} AND source_file <> {lit(label)} "
              "AND ts BETWEEN ? AND ?")
    if lo is None or not con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {others} LIMIT 1)",
                                     [lo, hi]).fetchone()[0]:
        return []
    listed = ", ".join(q(c) for c in cols)
    con.execute(f"""INSERT INTO {out}
        WITH new AS (SELECT CAST(ts AS DATE) AS day, {listed}, count(*) AS n FROM {mine}
                     GROUP BY ALL),
        old AS (SELECT CAST(ts AS DATE) AS day, {listed}, count(*) AS n, min(source_file) AS f
                FROM {others} GROUP BY ALL)
        SELECT new.day, min(old.f) FROM new LEFT JOIN old
          ON new.day = old.day AND {_same(cols, 'new', 'old')}
        GROUP BY new.day HAVING bool_and(old.n IS NOT NULL AND old.n >= new.n)""", [lo, hi])
    n_days, lo, hi, n, orders, other = con.execute(f"""SELECT count(DISTINCT CAST(ts AS DATE)),
        min(ts)::DATE, max(ts)::DATE, count(*), count(DISTINCT hash(customer_id, ts)),
        (SELECT min(f) FROM {out}) FROM {mine} AND CAST(ts AS DATE) IN (SELECT day FROM {out})
        """).fetchone()
    if orders < 2:  # no day, or one order only (its equal lines may be a basket's)
        con.execute(f"DELETE FROM {out}")
        return []
    return [across_message(label, source, n_days, lo, hi, n, other)]
