"""Load one staged, validated file into the store: de-duplicate, correct, quarantine, reconcile.

Every staged row ends in exactly one status, so ``rows_read = rows_accepted +
rows_quarantined + rows_duplicate`` holds by construction (and is checked):

- ``accepted``: new row written to the canonical table;
- ``replace``: a late correction: a row with the same (source, key) and different values was
  in the store and is replaced (counted as accepted, and as replaced);
- ``quarantined``: failed a rule (written to ``quarantine``);
- ``duplicate``: an exact duplicate of an earlier row of the same load;
- ``loaded``: identical to a row of the same source already in the store (re-load);
- ``seen``: failed a rule and is identical to a row already quarantined from the same source.

The last three count as ``rows_duplicate`` and are listed in ``ingest_duplicates``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field

import duckdb

from segflow.config import SourceSettings
from segflow.errors import StoreError
from segflow.sources._readers import Staged, lit, q
from segflow.sources._repeats import RULE as REPEATED
from segflow.sources._repeats import repeated_lines
from segflow.sources._rules import duplicate_columns, row_key
from segflow.sources._validate import raw_json
from segflow.store import CANONICAL_TABLES

DUPLICATES_DDL = """CREATE TABLE IF NOT EXISTS ingest_duplicates (
  source VARCHAR, source_file VARCHAR, row_number BIGINT, kind VARCHAR,
  duplicate_of_row BIGINT, load_id VARCHAR
)"""

FLAGS_DDL = """CREATE TABLE IF NOT EXISTS ingest_flags (
  source VARCHAR, source_file VARCHAR, row_number BIGINT, rule VARCHAR, column_name VARCHAR,
  value VARCHAR, load_id VARCHAR
)"""

_FLAG_TEXT = {
    "anonymous": "no customer id; kept as an anonymous transaction (customer_id empty)",
    "invalid_value": "value not in the value map; kept the row, emptied the value (original in ingest_flags)",
    "formula_in_text": "text starts like a spreadsheet formula (=, @, tab, CR, or +/- before a non-number); kept as text",
    "excel_text": "Excel-safe text (=\"...\", written to keep leading zeros) read as the text between its quotes",
    "valid_from_before_created": "valid_from is before the record's created_at; kept, its attributes "
                                 "describe the customer from created_at (when the record was made)",
    REPEATED: "a line repeating a block of lines (warned about above)",
}

_DUP_KIND = {"duplicate": "in_load", "loaded": "already_loaded", "seen": "already_quarantined"}


@dataclass
class LoadCounts:
    """Reconciliation of one load (one file of one source).

    ``rows_stale`` (not part of the reconciliation: they are not rows of this file) counts
    the rows an earlier delivery of the same file stored that this delivery does not restate
    and that stay in the store (see :mod:`segflow.sources._redeliver`).
    """

    load_id: str
    source: str
    source_file: str
    table: str
    status: str = "loaded"
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_replaced: int = 0
    rows_anonymous: int = 0
    rows_flagged: int = 0
    values_flagged: int = 0
    rows_released: int = 0
    rows_stale: int = 0
    rules: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: the warnings about the file as a whole (empty; rows of an earlier delivery left or
    #: replaced), which the ingest also raises as Python warnings (stderr in every command)
    file_warnings: list[str] = field(default_factory=list)

    def warn_file(self, message: str) -> None:
        """Add a warning about the file as a whole (see ``file_warnings``)."""
        self.warnings.append(message)
        self.file_warnings.append(message)

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.rows_accepted + self.rows_quarantined + self.rows_duplicate


def _eq(cols: list[str], left: str, right: str, *, store: bool = False) -> str:
    """Null-safe equality of the columns of two relations (``store``: right side unprefixed)."""
    rc = (lambda c: q(c)) if store else (lambda c: c)
    return " AND ".join(f"{left}.{c if not store else 'v_' + c} IS NOT DISTINCT FROM {right}.{rc(c)}"
                        for c in cols)


def classify(
    con: duckdb.DuckDBPyConnection,
    source: SourceSettings,
    val: str,
    present: list[str],
    out: str,
    *,
    against_store: bool,
    staged: Staged | None = None,
    mapped: Collection[str],
) -> str | None:
    """Create the view ``out``: the rows of ``val`` with ``_status`` and ``_dup_of``.

    Only the exceptions are materialised, in the narrow table ``out + '_x'`` (duplicates,
    conflicts, rows already in the store); every other row is accepted when it passed the
    rules and quarantined otherwise. Large first loads therefore copy no data here.
    Returns a warning for the load's report, or None (see :func:`_grown_lines`).
    """
    table, key = source.table, row_key(source, mapped)
    rollup = source.rollup and table == "transactions"
    x = out + "_x"
    con.execute(f"""CREATE TEMP TABLE {x} (_row BIGINT, _status VARCHAR, _dup_of BIGINT,
        _xrule VARCHAR, _xcolumn VARCHAR, _xreason VARCHAR)""")
    free = f"v._rule IS NULL AND v._row NOT IN (SELECT _row FROM {x})"
    # 1. duplicates within the load: equal on the duplicate columns (order lines: raw line);
    # none for transaction lines without an id and without a duplicate_key
    dup = duplicate_columns(source, present, mapped)
    if dup is not None:
        cols = ["_raw"] if rollup and not source.duplicate_key else [f"v_{c}" for c in dup]
        # A 64-bit hash narrows the candidates cheaply; the exact comparison decides.
        cand = out + "_cand"
        con.execute(f"""CREATE TEMP TABLE {cand} AS SELECT * FROM {val} WHERE _rule IS NULL
            AND hash({', '.join(cols)}) IN (SELECT hash({', '.join(cols)}) AS _h FROM {val}
                                            WHERE _rule IS NULL GROUP BY _h HAVING count(*) > 1)""")
        con.execute(f"""INSERT INTO {x} SELECT v._row, 'duplicate', g._first, NULL, NULL, NULL
            FROM {cand} v JOIN (SELECT {', '.join(cols)}, min(_row) AS _first FROM {cand}
                                GROUP BY ALL HAVING count(*) > 1) g
              ON {_eq(cols, 'v', 'g')}
            WHERE v._row <> g._first""")
        con.execute(f"DROP TABLE {cand}")
    # 2. same key, different values, within the load: keep the first, quarantine the others
    if key and not rollup:
        kl = lit(key)
        con.execute(f"""INSERT INTO {x} SELECT _row, 'quarantined', NULL, 'conflicting_id', {kl},
            'row ' || _first || ' of this load has the same ' || {kl} || ' with different values'
            FROM (SELECT v._row, min(v._row) OVER (PARTITION BY v.v_{key}) AS _first FROM {val} v
                  WHERE {free} AND v.v_{key} IN (SELECT v_{key} FROM {val} WHERE _rule IS NULL
                                                 GROUP BY 1 HAVING count(*) > 1))
            WHERE _row <> _first""")
    if rollup:  # all lines of one order must name the same customer (or none)
        con.execute(f"""INSERT INTO {x} SELECT v._row, 'quarantined', NULL,
            'order_customer_conflict', 'customer_id',
            'lines of order ' || v.v_transaction_id || ' name different customers'
            FROM {val} v WHERE {free} AND v.v_transaction_id IN (
                SELECT v_transaction_id FROM {val} v WHERE {free} GROUP BY 1
                HAVING min(v_customer_id) IS DISTINCT FROM max(v_customer_id)
                    OR count(v_customer_id) BETWEEN 1 AND count(*) - 1)""")
    warning = None
    if against_store:
        warning = _against_store(con, source, val, present, x, free, rollup, mapped, staged)
        _seen(con, source, val, x, staged)
    con.execute(f"""CREATE TEMP VIEW {out} AS SELECT v.* REPLACE (
            coalesce(x._xrule, v._rule) AS _rule, coalesce(x._xcolumn, v._column) AS _column,
            coalesce(x._xreason, v._reason) AS _reason),
        coalesce(x._status, CASE WHEN v._rule IS NULL THEN 'accepted' ELSE 'quarantined' END)
            AS _status, x._dup_of
        FROM {val} v LEFT JOIN {x} x ON x._row = v._row""")
    return warning


def _has_rows(con, table: str, source: SourceSettings) -> bool:
    return bool(con.execute(f"SELECT count(*) FROM (SELECT 1 FROM main.{table} WHERE source = ? "
                            "LIMIT 1)", [source.name]).fetchone()[0])


def _against_store(con, source, val, present, x, free, rollup, mapped, staged) -> str | None:
    """Rows identical to a stored row of the source are 'loaded'; same key, new values:
    'replace' (a late correction). Without a key, rows equal to a stored row on the
    duplicate columns are 'loaded'. Transaction lines without an id or a duplicate_key
    (identical lines are lines of one basket): see :func:`_grown_lines`."""
    table, key = source.table, row_key(source, mapped)
    dup = duplicate_columns(source, present, mapped)
    if rollup or not _has_rows(con, table, source):
        return None
    if key is None and dup is None:
        return _grown_lines(con, source, val, present, x, staged)
    src = lit(source.name)
    cols = [c for c in CANONICAL_TABLES[table] if c in (present if key else dup)]
    stored = ", ".join(q(c) for c in cols)
    if key:
        same = _eq(cols, "v", "t", store=True)
        con.execute(f"""INSERT INTO {x} SELECT v._row,
            CASE WHEN {same} THEN 'loaded' ELSE 'replace' END, NULL, NULL, NULL, NULL
            FROM {val} v JOIN (SELECT {stored} FROM main.{table} WHERE source = {src}) t
              ON t.{q(key)} = v.v_{key} WHERE {free}""")
    else:
        con.execute(f"""INSERT INTO {x} SELECT v._row, 'loaded', NULL, NULL, NULL, NULL
            FROM {val} v JOIN (SELECT DISTINCT {stored} FROM main.{table} WHERE source = {src}) t
              ON {_eq(cols, 'v', 't', store=True)} WHERE {free}""")
    return None


def _grown_lines(con, source, val, present, x, staged) -> str | None:
    """Transaction lines without ids of a file read before under the same name: lines have
    no identity, so only growth at the end is recognised. The file as read before is, per
    row number up to the last one seen (stored, quarantined or logged as a duplicate), the
    line its latest load stored there; when each of those lines is found at its row now with
    the same values, those rows are 'loaded' (also one that fails a rule now, e.g. a customer
    missing from a customers file added since: it is stored already) and only later rows are
    new: a file that grew adds only its new lines. Otherwise (a line changed, removed or
    inserted, or the name reused for another export) every line is new, as in a first load,
    and the returned warning says so: without ids a corrected line cannot be told from a new
    one."""
    if staged is None:
        return None
    src, label = lit(source.name), lit(staged.label)
    mine = f"source = {src} AND source_file = {label}"
    last = con.execute(f"""SELECT max(r) FROM (
        SELECT max(source_row) AS r FROM main.{source.table} WHERE {mine}
        UNION ALL SELECT max(row_number) FROM main.quarantine WHERE {mine}
        UNION ALL SELECT max(row_number) FROM main.ingest_duplicates WHERE {mine})""").fetchone()[0]
    if last is None:
        return None
    n = int(last)
    rows = f"SELECT max(_row) AS r FROM {val}"
    if staged.rejects:
        rows += f" UNION ALL SELECT max(_row) FROM {staged.rejects}"
    now = con.execute(f"SELECT coalesce(max(r), 0) FROM ({rows})").fetchone()[0]
    cols = [c for c in CANONICAL_TABLES[source.table] if c in present]
    same = _eq(cols, "v", "t", store=True)
    before = f"{x}_before"  # per row number, the line of the latest load that stored one there
    con.execute(f"""CREATE TEMP TABLE {before} AS SELECT t.* FROM main.{source.table} t
        JOIN main.loads l ON l.load_id = t.load_id
        WHERE t.source = {src} AND t.source_file = {label}
        QUALIFY l.started_at = max(l.started_at) OVER (PARTITION BY t.source_row)""")
    try:
        changed = con.execute(f"""SELECT count(*) FROM {before} t WHERE NOT EXISTS (
            SELECT 1 FROM {val} v WHERE v._row = t.source_row AND {same})""").fetchone()[0]
        if now < n or changed:
            return (f"file {staged.label}: read before (up to row {n:,}) and changed other than by "
                    "rows added at its end; its transaction lines have no id, so every line was "
                    "loaded as a new line (map a transaction_id, or a duplicate_key, to load "
                    "corrections)")
        con.execute(f"""INSERT INTO {x} SELECT v._row, 'loaded', NULL, NULL, NULL, NULL
            FROM {val} v WHERE v._row <= {n} AND v._row NOT IN (SELECT _row FROM {x})
              AND EXISTS (SELECT 1 FROM {before} t WHERE t.source_row = v._row AND {same})""")
    finally:
        con.execute(f"DROP TABLE {before}")
    return None


def _seen(con, source, val, x, staged: Staged | None) -> None:
    """Rows failing a rule, identical to a row already quarantined from the source."""
    if staged is None or not _has_rows(con, "quarantine", source):
        return
    failed = x + "_f"
    con.execute(f"""CREATE TEMP TABLE {failed} AS SELECT v._row, v._rule FROM {val} v
        WHERE v._rule IS NOT NULL AND v._row NOT IN (SELECT _row FROM {x})""")
    con.execute(f"""INSERT INTO {x} SELECT f._row, 'seen', NULL, NULL, NULL, NULL
        FROM {failed} f JOIN {staged.table} s ON s._row = f._row
        JOIN (SELECT DISTINCT raw_row, rule FROM main.quarantine WHERE source = {lit(source.name)}) qq
          ON qq.raw_row = {raw_json(staged, 's')} AND qq.rule = f._rule""")
    con.execute(f"DROP TABLE {failed}")
    # rows quarantined by the load's own checks (conflicting_id, order_customer_conflict)
    con.execute(f"""UPDATE {x} SET _status = 'seen' FROM (
            SELECT s._row, qq.rule FROM {staged.table} s
            JOIN (SELECT DISTINCT raw_row, rule FROM main.quarantine WHERE source = {lit(source.name)}) qq
              ON qq.raw_row = {raw_json(staged, 's')}
            WHERE s._row IN (SELECT _row FROM {x} WHERE _status = 'quarantined')) m
        WHERE {x}._row = m._row AND {x}._xrule = m.rule AND {x}._status = 'quarantined'""")


def rollup_orders(
    con: duckdb.DuckDBPyConnection, source: SourceSettings, cls: str, orders: str, *,
    against_store: bool,
) -> None:
    """Roll accepted order lines up to orders and compare them with the store.

    Rules: amount and quantity are summed over the lines (returns net within the order); ts is
    the earliest line; category and product_id are those of the largest line (ties: the
    earliest row; keep lines, without rollup, to measure product breadth); channel
    and promo code the smallest non-empty value; unit_price is left empty; the order is a
    return when its net amount is negative or its id is a credit note. ``source_row`` is the
    first line's row.
    """
    credit = (f"coalesce(starts_with(v_transaction_id, {lit(source.credit_note_prefix)}), false)"
              if source.credit_note_prefix else "false")
    cols = list(CANONICAL_TABLES["transactions"])
    con.execute(f"""CREATE TEMP TABLE {orders} AS
    SELECT v_transaction_id AS transaction_id, min(v_customer_id) AS customer_id,
        min(v_ts) AS ts, sum(v_amount) AS amount,
        sum(v_quantity) AS quantity, NULL::DOUBLE AS unit_price,
        arg_max(v_category, (abs(v_amount), -_row)) AS category,
        arg_max(v_product_id, (abs(v_amount), -_row)) AS product_id,
        min(v_channel) AS channel, min(v_promo_code) AS promo_code,
        (sum(v_amount) < 0 OR bool_or({credit}) OR bool_or(_declared_return)) AS is_return,
        min(_row) AS source_row, 'accepted' AS _ostatus
    FROM {cls} WHERE _status = 'accepted' GROUP BY v_transaction_id""")
    if against_store and _has_rows(con, "transactions", source):
        same = " AND ".join(f"o.{q(c)} IS NOT DISTINCT FROM t.{q(c)}" for c in cols)
        con.execute(f"""UPDATE {orders} o SET _ostatus = CASE WHEN {same} THEN 'loaded' ELSE 'replace' END
            FROM main.transactions t
            WHERE t.source = {lit(source.name)} AND t.transaction_id = o.transaction_id""")
        con.execute(f"""INSERT INTO {cls}_x SELECT c._row, o._ostatus, NULL, NULL, NULL, NULL
            FROM {cls} c JOIN {orders} o ON c.v_transaction_id = o.transaction_id
            WHERE c._status = 'accepted' AND o._ostatus <> 'accepted'""")


def write(
    con: duckdb.DuckDBPyConnection,
    source: SourceSettings,
    staged: Staged,
    cls: str,
    present: list[str],
    counts: LoadCounts,
    *,
    now: dt.datetime,
    file_hash: str | None,
    started: dt.datetime,
    orders: str | None,
    flag_list: list[tuple[str, str, str, str]] = (),
    mapped: Collection[str],
    insert_from: str | None = None,
    flagged: str | None = None,
) -> None:
    """Write the load into the store (inside the caller's transaction).

    ``insert_from`` (SQL relation: ``_row`` and ``v_<col>``) gives the rows to insert and
    ``flagged`` those of them that may carry a flag (``v_``/``r_`` columns); by default both
    are the accepted and replaced rows of ``cls`` (see :mod:`segflow.sources._once`).
    """
    kept = f"(SELECT * FROM {cls} WHERE _status IN ('accepted', 'replace'))"
    table, key = source.table, row_key(source, mapped)
    src, label, load = lit(source.name), lit(staged.label), lit(counts.load_id)
    canon = list(CANONICAL_TABLES[table])
    lineage = f"{src}, {label}, {{row}}, {load}"
    if key:
        keys_from = (f"SELECT transaction_id FROM {orders} WHERE _ostatus = 'replace'" if orders
                     else f"SELECT v_{key} FROM {cls} WHERE _status = 'replace'")
        con.execute(f"DELETE FROM main.{table} WHERE source = {src} AND {q(key)} IN ({keys_from})")
    target = ", ".join(q(c) for c in canon) + ", source, source_file, source_row, load_id"
    if orders:
        sel = ", ".join(q(c) for c in canon)
        con.execute(f"""INSERT INTO main.{table} ({target}) SELECT {sel}, {lineage.format(row='source_row')}
            FROM {orders} WHERE _ostatus IN ('accepted', 'replace')""")
    else:
        exprs = [f"v_{c}" for c in canon]
        con.execute(f"""INSERT INTO main.{table} ({target}) SELECT {', '.join(exprs)},
            {lineage.format(row='_row')} FROM {insert_from or kept}""")
    # the (few) quarantined rows first, then their raw content from the staged source
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {cls}_q AS SELECT _row, _rule, _reason, _column
        FROM {cls} WHERE _status = 'quarantined'""")
    con.execute(
        f"""INSERT INTO main.quarantine SELECT {src}, {label}, c._row, {raw_json(staged, 's')},
        c._rule, c._reason, c._column, {load}, ? FROM {cls}_q c JOIN {staged.table} s
        ON s._row = c._row""", [now])
    con.execute(f"DROP TABLE {cls}_q")
    if staged.rejects:
        rej_seen = f"""EXISTS (SELECT 1 FROM main.quarantine qq WHERE qq.source = {src}
            AND qq.rule = 'malformed_row' AND qq.raw_row = r.raw_row AND qq.load_id <> {load})"""
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {staged.rejects}_s AS
            SELECT r.*, {rej_seen} AS _seen FROM {staged.rejects} r""")
        staged.temp_tables.append(f"{staged.rejects}_s")
        con.execute(f"""INSERT INTO main.quarantine SELECT {src}, {label}, _row, raw_row,
            'malformed_row', reason, column_name, {load}, ? FROM {staged.rejects}_s
            WHERE NOT _seen""", [now])
    con.execute(DUPLICATES_DDL)
    kinds = " ".join(f"WHEN {lit(k)} THEN {lit(v)}" for k, v in _DUP_KIND.items())
    # the (few) duplicate rows first; the checks below then read only their row numbers
    dups = f"{cls}_d"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {dups} AS SELECT _row, _kind,
        CASE WHEN _status = 'duplicate' THEN _dup_of END AS _dup_of
        FROM (SELECT *, CASE _status {kinds} END AS _kind FROM {cls}
              WHERE _status IN ('duplicate', 'loaded', 'seen'))""")
    if staged.rejects:
        con.execute(f"""INSERT INTO {dups} SELECT _row, 'already_quarantined', NULL
            FROM {staged.rejects}_s WHERE _seen""")
    # A re-read logs each row once: not again when the row is logged already, or when it is
    # the very row (same file and row number) that is stored or quarantined.
    mine = f"source = {src} AND source_file = {label}"
    rows = f"IN (SELECT _row FROM {dups})"
    con.execute(f"""INSERT INTO main.ingest_duplicates SELECT {src}, {label}, _row, _kind,
        _dup_of, {load} FROM {dups} c
        WHERE (c._row, c._kind) NOT IN (SELECT row_number, kind FROM main.ingest_duplicates
                                        WHERE {mine} AND row_number {rows})
          AND (c._row, c._kind) NOT IN (
            SELECT source_row, 'already_loaded' FROM main.{table} WHERE {mine} AND source_row {rows}
            UNION ALL SELECT row_number, 'already_quarantined' FROM main.quarantine
            WHERE {mine} AND load_id <> {load} AND row_number {rows})""")
    con.execute(f"DROP TABLE {dups}")
    _release(con, source, staged, cls, counts)
    con.execute(FLAGS_DDL)
    if (table == "transactions" and not orders and key is None
            and duplicate_columns(source, present, mapped) is None):
        # lines without ids are all kept: a repeated block of them is warned about
        counts.warnings += repeated_lines(con, source.name, staged.label, counts.load_id,
                                          source.columns.get("ts", "ts"), mapped)
    _flags(con, flag_list, flagged or kept, f"{cls}_fl", src, label, load, counts)
    _count(con, source, staged, cls, present, counts)
    if not counts.reconciles:  # a bug guard: the transaction rolls back
        raise StoreError(f"reconciliation failed for {staged.label}: {counts}")
    record_load(con, source, counts, file_hash=file_hash, started=started)


def finish_time(started: dt.datetime) -> dt.datetime:
    """A load's ``finished_at``: the clock when its row is recorded, after its rows were
    read, checked and written (naive UTC, as ``started``); never before ``started`` (a clock
    set back meanwhile). Not the ingest's ``now``, which is when the ingest began (the
    rules' reference time): both engines record this."""
    return max(started, dt.datetime.now(dt.UTC).replace(tzinfo=None))


def record_load(con: duckdb.DuckDBPyConnection, source: SourceSettings, counts: LoadCounts, *,
                file_hash: str | None, started: dt.datetime) -> None:
    """The load's row in ``loads`` (inside the caller's transaction), finished now
    (:func:`finish_time`); the stored audit (:func:`segflow.summaries.store_audit`) no
    longer describes the data. The ingest's logs exist after any load, one without rows
    too."""
    con.execute(DUPLICATES_DDL)
    con.execute(FLAGS_DDL)
    con.execute(
        "INSERT INTO main.loads (load_id, source, source_file, file_hash, target_table, "
        "rows_read, rows_accepted, rows_quarantined, rows_duplicate, started_at, finished_at, "
        "status, rows_stale) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'ok', ?)",
        [counts.load_id, source.name, counts.source_file, file_hash, source.table,
         counts.rows_read, counts.rows_accepted, counts.rows_quarantined, counts.rows_duplicate,
         started, finish_time(started), counts.rows_stale],
    )
    con.execute("DELETE FROM main.summary_audit")


def empty_message(name: str, *, blank: bool, header: bool = True) -> str:
    """The warning about the file ``name`` without data rows (``blank``: 0 bytes, no header
    to check; else its header matched the mapping, or, for a file without a header line,
    ``header`` False, it holds only blank lines)."""
    what = ("is empty (0 bytes: no header to check)" if blank else
            "has a header but no data rows" if header else "holds only blank lines")
    return f"file {name} {what}; loaded as 0 rows"


def has_header(source: SourceSettings) -> bool:
    """Whether the text files of ``source`` start with a header line (``options.header``)."""
    return source.options.get("header", True) is not False


def note_empty(counts: LoadCounts, *, blank: bool, header: bool = True) -> None:
    """Mark ``counts`` as the load of a file without data rows: status ``empty``, 0 rows
    read, a warning naming the file (:func:`empty_message`). The DuckDB and the Spark
    ingest share this."""
    counts.status = "empty"
    counts.warn_file(empty_message(counts.source_file, blank=blank, header=header))


def _release(con, source: SourceSettings, staged: Staged, cls: str, counts: LoadCounts) -> None:
    """Rows of this file quarantined by an earlier load that pass now (e.g. their customer
    has arrived): the old quarantine record is removed; the row is in the canonical table."""
    if not _has_rows(con, "quarantine", source):
        return
    src, label, load = lit(source.name), lit(staged.label), lit(counts.load_id)
    mine = f"source = {src} AND source_file = {label} AND load_id <> {load}"
    released = f"""SELECT c._row, {raw_json(staged, 's')} AS raw_row
        FROM (SELECT DISTINCT row_number FROM main.quarantine WHERE {mine}) qn
        JOIN {cls} c ON c._row = qn.row_number JOIN {staged.table} s ON s._row = c._row
        WHERE c._status IN ('accepted', 'replace')"""
    counts.rows_released = con.execute(f"""SELECT count(*) FROM main.quarantine
        WHERE {mine} AND (row_number, raw_row) IN ({released})""").fetchone()[0]
    if counts.rows_released:
        con.execute(f"DELETE FROM main.quarantine WHERE {mine} AND (row_number, raw_row) IN ({released})")
        counts.warnings.append(
            f"file {counts.source_file}: {counts.rows_released} rows quarantined by an earlier load "
            "pass the rules now and were loaded")


def _flags(con, flag_list, kept: str, cand: str, src: str, label: str, load: str,
           counts: LoadCounts) -> None:
    """Record the rows of ``kept`` (the loaded rows) with a noted issue in ``ingest_flags``;
    warn with the first one."""
    con.execute(FLAGS_DDL)
    if flag_list:  # one scan picks the rows with any flag; each flag then reads only those
        any_flag = " OR ".join(f"({cond})" for _, cond, _, _ in flag_list)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {cand} AS SELECT * FROM {kept}
            WHERE ({any_flag})""")
        for rule, cond, column, value in flag_list:
            con.execute(f"""INSERT INTO main.ingest_flags SELECT {src}, {label}, _row, {lit(rule)},
                {lit(column)}, CAST({value} AS VARCHAR), {load} FROM {cand} WHERE {cond}""")
        con.execute(f"DROP TABLE {cand}")
    mine = f"FROM main.ingest_flags WHERE load_id = {load}"
    note_flags(counts, con.execute(
        f"""SELECT rule, count(*), min(row_number), arg_min(column_name, row_number)
        {mine} GROUP BY rule ORDER BY rule""").fetchall(),
        con.execute(f"SELECT count(DISTINCT row_number) {mine} AND rule <> 'anonymous'").fetchone()[0])


def note_flags(counts: LoadCounts, rows: list[tuple[str, int, int, str]], flagged_rows: int) -> None:
    """Fill ``counts`` from the load's flags: (rule, values, first row, its column) per rule,
    sorted by rule, and ``flagged_rows``, the rows with a flag other than ``anonymous`` (the
    DuckDB and the Spark ingest share this). ``rows_flagged`` counts rows (a row with four
    flagged values is one), ``values_flagged`` the values."""
    counts.rows_flagged = flagged_rows
    for rule, n, row, column in rows:
        counts.flags[rule] = n
        if rule == "anonymous":
            counts.rows_anonymous = n
            continue
        counts.values_flagged += n
        if rule == REPEATED:  # warned about with the rows or days they repeat
            continue
        counts.warnings.append(
            f"file {counts.source_file}, row {row}, column {column!r}: {_FLAG_TEXT[rule]} "
            f"({n} such values)"
        )


def _count(con, source, staged, cls, present, counts: LoadCounts) -> None:
    by = dict(con.execute(f"SELECT _status, count(*) FROM {cls} GROUP BY _status").fetchall())
    rej = dict(con.execute(
        f"SELECT _seen, count(*) FROM {staged.rejects}_s GROUP BY _seen").fetchall()
    ) if staged.rejects else {}
    rules = dict(con.execute(
        f"SELECT _rule, count(*) FROM {cls} WHERE _status = 'quarantined' GROUP BY _rule "
        "ORDER BY 2 DESC").fetchall())
    tally(counts, by, rules, rej)


def tally(counts: LoadCounts, by: dict[str, int], rules: dict[str, int],
          rejects: dict[bool, int]) -> None:
    """Fill the reconciliation of ``counts`` from the rows per ``_status``, the quarantined
    rows per rule (largest first) and the malformed rows per ``_seen`` (the DuckDB and the
    Spark ingest share this)."""
    counts.rows_read = sum(by.values()) + sum(rejects.values())
    counts.rows_accepted = by.get("accepted", 0) + by.get("replace", 0)
    counts.rows_replaced = by.get("replace", 0)
    counts.rows_quarantined = by.get("quarantined", 0) + rejects.get(False, 0)
    counts.rows_duplicate = (by.get("duplicate", 0) + by.get("loaded", 0) + by.get("seen", 0)
                             + rejects.get(True, 0))
    rules = dict(rules)
    if rejects.get(False):
        rules["malformed_row"] = rejects[False]
    counts.rules = rules
