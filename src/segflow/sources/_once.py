"""Write-once ingest (DuckDB): judge a staged file in one narrow pass, insert from the source.

:func:`segflow.sources._validate.validate` materialises every row of a file with all its
parsed values, and the canonical table is then filled from that copy: each row written twice.
Here pass 1 (:func:`judge`) reads the staged file once and keeps per row only fixed-width
facts in a narrow temporary table: ``_row``, ``_ri`` (index of the first rule the row fails,
NULL when it passes), ``_fl`` (some ``ingest_flags`` condition holds) and, where they apply,
``_h`` (hash of the duplicate columns) and ``_kh`` (hash of the key). From it come the few
rows that need their full values: rows failing a rule, rows sharing a duplicate or key hash with another row, rows
whose key (or duplicate columns) hash matches a stored row of the source, flagged rows. Only
those are parsed again, with every value and reason, and classified by the very same
:func:`segflow.sources._load.classify` as before (hash equality only narrows; the decisions
are exact comparisons). Pass 2 (the INSERT of :func:`segflow.sources._load.write`) parses the
other rows straight from the staged source into the canonical table.

Same rules, statuses, counts, quarantine records, duplicates and flags as the two-copy path,
which stays for order roll-ups (``rollup``), files read again under their old name,
``sources check`` and the Spark ingest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

import duckdb

from segflow.config import SourceSettings
from segflow.sources._load import _has_rows, classify
from segflow.sources._readers import Staged, lit, q
from segflow.sources._rules import duplicate_columns, row_key
from segflow.sources._validate import Spec, judged, judging, rule_list
from segflow.store import CANONICAL_TABLES


@dataclass
class Judged:
    """What :func:`judge` leaves for :func:`segflow.sources._load.write`.

    ``cls``: view, one row per staged row: ``_row``, ``_status``, ``_dup_of``, ``_rule``,
    ``_column``, ``_reason`` (and ``v_<key>`` for keyed sources: set for replaced rows).
    ``rows``: SQL relation of the rows to insert (``_row`` and every ``v_<col>``).
    ``flagged``: SQL relation of the inserted rows that meet a flag condition (``v_``/``r_``).
    """

    cls: str
    rows: str
    flagged: str


def _hash(cols: list[str], ctypes: dict[str, str], *, staged: bool) -> str:
    """SQL: one 64-bit hash of the canonical columns (``v_<col>`` when ``staged``, else the
    stored column), each cast to its canonical type so that both sides hash alike."""
    return "hash(" + ", ".join(f"CAST({f'v_{c}' if staged else q(c)} AS {ctypes[c]})"
                              for c in cols) + ")"


def judge(
    con: duckdb.DuckDBPyConnection,
    source: SourceSettings,
    staged: Staged,
    specs: dict[str, Spec],
    *,
    now: dt.datetime,
    known_customers: str | None,
    name: str,
    mapped: Collection[str],
    flag_list: list[tuple[str, str, str, str]],
) -> Judged:
    """Judge and classify every staged row; temporary tables and views are named ``name*``.

    Not for order roll-ups (``source.rollup`` on transactions): their lines are classified by
    order, from all values. Raises nothing on bad rows (they are quarantined).
    """
    table = source.table
    ctypes = CANONICAL_TABLES[table]
    present = list(ctypes)
    rules = rule_list(source, specs, now=now, known_customers=known_customers, staged=staged)
    key = row_key(source, mapped)
    dup = duplicate_columns(source, present, mapped)
    dcols = [c for c in ctypes if c in dup] if dup is not None else None
    if key and dcols and key in dcols:  # rows equal on dcols share their key: found by _kh
        dcols = None
    narrow, cand, full = f"{name}_n", f"{name}_r", f"{name}_v"
    fl = " OR ".join(f"({cond})" for _, cond, _, _ in flag_list) or "false"
    facts = ["_row", "_ri", f"coalesce({fl}, false) AS _fl"]
    if dcols:
        facts.append(f"{_hash(dcols, ctypes, staged=True)} AS _h")
    if key:
        facts.append(f"{_hash([key], ctypes, staged=True)} AS _kh")
    # pass 1: one read of the file, fixed-width facts per row (at 10M customers the events
    # file has ~250M rows: every byte per row counts)
    con.execute(f"""CREATE TEMP TABLE {narrow} AS {judging(source, staged, specs, rules, texts=False)}
        SELECT {', '.join(facts)} FROM d""")
    ok = "_ri IS NULL"
    parts = [f"SELECT _row FROM {narrow} WHERE _ri IS NOT NULL OR _fl"]
    if dcols:  # duplicate candidates: their hash occurs twice among the passing rows
        parts.append(f"""SELECT _row FROM {narrow} WHERE {ok} AND _h IN (
            SELECT _h FROM {narrow} WHERE {ok} GROUP BY _h HAVING count(*) > 1)""")
    if key:  # conflicting_id candidates: their key hash occurs twice
        parts.append(f"""SELECT _row FROM {narrow} WHERE {ok} AND _kh IN (
            SELECT _kh FROM {narrow} WHERE {ok} GROUP BY _kh HAVING count(*) > 1)""")
    src = lit(source.name)
    if (key or dcols) and _has_rows(con, table, source):  # rows that may be in the store
        cols, mine = ([key], "_kh") if key else (dcols, "_h")
        parts.append(f"""SELECT _row FROM {narrow} WHERE {ok} AND {mine} IN (
            SELECT {_hash(cols, ctypes, staged=False)} FROM main.{table} WHERE source = {src})""")
    con.execute(f"CREATE TEMP TABLE {cand} AS SELECT DISTINCT _row FROM ({' UNION ALL '.join(parts)})")
    # the few candidate rows with every value and reason, classified as in the two-copy path
    con.execute(f"CREATE TEMP TABLE {full} AS " + judged(
        source, staged, specs, now=now, known_customers=known_customers,
        where=f"_row IN (SELECT _row FROM {cand})"))
    classify(con, source, full, present, f"{name}_c", against_store=True, staged=staged,
             mapped=mapped)
    x = f"{name}_c_x"
    keyed = f", v.v_{key}" if key else ""
    no_key = f", NULL::{ctypes[key]} AS v_{key}" if key else ""
    cls = f"{name}_cls"
    # the candidates from their full rows; every other row passes every rule and is no
    # exception: accepted (so a filter on another _status reads the few candidates only)
    con.execute(f"""CREATE TEMP VIEW {cls} AS SELECT v._row,
            coalesce(x._status, CASE WHEN v._rule IS NULL THEN 'accepted' ELSE 'quarantined' END)
                AS _status, x._dup_of,
            coalesce(x._xrule, v._rule) AS _rule, coalesce(x._xcolumn, v._column) AS _column,
            coalesce(x._xreason, v._reason) AS _reason{keyed}
        FROM {full} v LEFT JOIN {x} x ON x._row = v._row
        UNION ALL SELECT _row, 'accepted', NULL::BIGINT, NULL::VARCHAR, NULL::VARCHAR,
            NULL::VARCHAR{no_key} FROM {narrow} WHERE _row NOT IN (SELECT _row FROM {full})""")
    # rows not inserted: failed a rule, or an exception other than a late correction
    skip = f"{name}_skip"
    con.execute(f"""CREATE TEMP TABLE {skip} AS SELECT _row FROM {narrow} WHERE _ri IS NOT NULL
        UNION ALL SELECT _row FROM {x} WHERE _status <> 'replace'""")
    values = judging(source, staged, specs, rules, texts=False,
                     where=f"_row NOT IN (SELECT _row FROM {skip})")
    rows = f"({values} SELECT * FROM c)"
    flagged = f"""(SELECT v.* FROM {full} v WHERE v._row IN (SELECT _row FROM {narrow} WHERE _fl)
        AND v._row NOT IN (SELECT _row FROM {skip}))"""
    return Judged(cls, rows, flagged)
