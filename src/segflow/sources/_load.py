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
from dataclasses import dataclass, field

import duckdb

from segflow.config import SourceSettings
from segflow.errors import StoreError
from segflow.sources._readers import Staged, lit, q
from segflow.sources._rules import KEYS
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
    "formula_in_text": "text starts like a spreadsheet formula (=, +, @); kept as text",
}

_DUP_KIND = {"duplicate": "in_load", "loaded": "already_loaded", "seen": "already_quarantined"}


@dataclass
class LoadCounts:
    """Reconciliation of one load (one file of one source)."""

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
    rules: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.rows_accepted + self.rows_quarantined + self.rows_duplicate


def _content(cols: list[str], prefix: str = "v_") -> str:
    return ", ".join(f"{prefix}{c}" for c in cols)


def _eq(cols: list[str], left: str, right: str) -> str:
    return " AND ".join(f"{left}.v_{c} IS NOT DISTINCT FROM {right}.{q(c)}" for c in cols)


def classify(
    con: duckdb.DuckDBPyConnection,
    source: SourceSettings,
    val: str,
    present: list[str],
    out: str,
    *,
    against_store: bool,
) -> None:
    """Create ``out``: the rows of ``val`` with ``_status`` and ``_dup_of``."""
    key = KEYS.get(source.table)
    rollup = source.rollup and source.table == "transactions"
    dupkey = "md5(_raw)" if rollup else _content(present)
    s1, s2 = out + "_1", out + "_2"
    con.execute(f"""CREATE TEMP TABLE {s1} AS SELECT *,
        CASE WHEN _rule IS NULL THEN row_number() OVER w END AS _dn,
        CASE WHEN _rule IS NULL THEN first_value(_row) OVER w END AS _dup_of
        FROM {val} WINDOW w AS (PARTITION BY _rule IS NULL, {dupkey} ORDER BY _row)""")
    if rollup:
        _order_conflicts(con, s1, s2)
    elif key:
        kl = lit(key)
        con.execute(f"""CREATE TEMP TABLE {s2} AS
        SELECT * REPLACE (
            CASE WHEN _kn > 1 THEN 'conflicting_id' ELSE _rule END AS _rule,
            CASE WHEN _kn > 1 THEN {kl} ELSE _column END AS _column,
            CASE WHEN _kn > 1 THEN 'row ' || _kfirst || ' of this load has the same ' || {kl}
                 || ' with different values' ELSE _reason END AS _reason)
        FROM (SELECT *,
            CASE WHEN _rule IS NULL AND _dn = 1 THEN row_number() OVER k END AS _kn,
            CASE WHEN _rule IS NULL AND _dn = 1 THEN first_value(_row) OVER k END AS _kfirst
            FROM {s1} WINDOW k AS (PARTITION BY _rule IS NULL AND _dn = 1, v_{key} ORDER BY _row))""")
    else:
        con.execute(f"CREATE TEMP TABLE {s2} AS SELECT * FROM {s1}")
    con.execute(f"DROP TABLE {s1}")
    _status(con, source, s2, out, present, against_store=against_store, rollup=rollup)
    con.execute(f"DROP TABLE {s2}")


def _order_conflicts(con, s1: str, s2: str) -> None:
    """Order lines: all lines of one order must name the same customer (or none)."""
    con.execute(f"""CREATE TEMP TABLE {s2} AS
    SELECT * REPLACE (
        CASE WHEN _conf THEN 'order_customer_conflict' ELSE _rule END AS _rule,
        CASE WHEN _conf THEN 'customer_id' ELSE _column END AS _column,
        CASE WHEN _conf THEN 'lines of order ' || v_transaction_id || ' name different customers'
             ELSE _reason END AS _reason)
    FROM (SELECT *, CASE WHEN _rule IS NULL AND _dn = 1 THEN
            (min(v_customer_id) OVER o IS DISTINCT FROM max(v_customer_id) OVER o)
            OR (count(v_customer_id) OVER o BETWEEN 1 AND count(*) OVER o - 1)
          ELSE false END AS _conf
          FROM {s1} WINDOW o AS (PARTITION BY _rule IS NULL AND _dn = 1, v_transaction_id))""")


def _status(con, source, s2, out, present, *, against_store: bool, rollup: bool) -> None:
    table, key = source.table, KEYS.get(source.table)
    src = lit(source.name)
    cols = [c for c in CANONICAL_TABLES[table] if c in present]
    seen = "false"
    joins = ""
    if against_store:
        joins += f""" LEFT JOIN (SELECT DISTINCT raw_row, rule FROM main.quarantine
            WHERE source = {src}) qq ON qq.raw_row = s._raw AND qq.rule = s._rule"""
        seen = "qq.rule IS NOT NULL"
    store_case = "'accepted'"
    if against_store and not rollup:
        if key:
            same = " AND ".join(f"s.v_{c} IS NOT DISTINCT FROM t.{q(c)}" for c in cols)
            joins += f""" LEFT JOIN (SELECT {', '.join(q(c) for c in cols)}, true AS _hit
                FROM main.{table} WHERE source = {src}) t
                ON s._rule IS NULL AND s._dn = 1 AND t.{q(key)} = s.v_{key}"""
            store_case = f"CASE WHEN t._hit IS NULL THEN 'accepted' WHEN {same} THEN 'loaded' ELSE 'replace' END"
        else:
            joins += f""" LEFT JOIN (SELECT DISTINCT {', '.join(q(c) for c in cols)}, true AS _hit
                FROM main.{table} WHERE source = {src}) t
                ON s._rule IS NULL AND s._dn = 1 AND {_eq(cols, 's', 't')}"""
            store_case = "CASE WHEN t._hit IS NULL THEN 'accepted' ELSE 'loaded' END"
    con.execute(f"""CREATE TEMP TABLE {out} AS SELECT s.*,
        CASE WHEN s._rule IS NOT NULL THEN CASE WHEN {seen} THEN 'seen' ELSE 'quarantined' END
             WHEN s._dn > 1 THEN 'duplicate'
             ELSE {store_case} END AS _status
        FROM {s2} s {joins}""")


def rollup_orders(
    con: duckdb.DuckDBPyConnection, source: SourceSettings, cls: str, orders: str, *,
    against_store: bool,
) -> None:
    """Roll accepted order lines up to orders and compare them with the store.

    Rules: amount and quantity are summed over the lines (returns net within the order); ts is
    the earliest line; category is that of the largest line (ties: the earliest row); channel
    and promo code the smallest non-empty value; unit_price is left empty; the order is a
    return when its net amount is negative or its id is a credit note. ``source_row`` is the
    first line's row.
    """
    credit = (f"coalesce(starts_with(v_transaction_id, {lit(source.credit_note_prefix)}), false)"
              if source.credit_note_prefix else "false")
    cols = [c for c in CANONICAL_TABLES["transactions"]]
    con.execute(f"""CREATE TEMP TABLE {orders} AS
    SELECT v_transaction_id AS transaction_id, min(v_customer_id) AS customer_id,
        min(v_ts) AS ts, sum(v_amount) AS amount,
        sum(v_quantity) AS quantity, NULL::DOUBLE AS unit_price,
        arg_max(v_category, (abs(v_amount), -_row)) AS category,
        min(v_channel) AS channel, min(v_promo_code) AS promo_code,
        (sum(v_amount) < 0 OR bool_or({credit}) OR bool_or(_declared_return)) AS is_return,
        min(_row) AS source_row, 'accepted' AS _ostatus
    FROM {cls} WHERE _status = 'accepted' GROUP BY v_transaction_id""")
    if against_store:
        same = " AND ".join(f"o.{q(c)} IS NOT DISTINCT FROM t.{q(c)}" for c in cols)
        con.execute(f"""UPDATE {orders} o SET _ostatus = CASE WHEN {same} THEN 'loaded' ELSE 'replace' END
            FROM main.transactions t
            WHERE t.source = {lit(source.name)} AND t.transaction_id = o.transaction_id""")
        con.execute(f"""UPDATE {cls} c SET _status = o._ostatus FROM {orders} o
            WHERE c._status = 'accepted' AND c.v_transaction_id = o.transaction_id
              AND o._ostatus <> 'accepted'""")


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
) -> None:
    """Write the load into the store (inside the caller's transaction)."""
    table, key = source.table, KEYS.get(source.table)
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
            {lineage.format(row='_row')} FROM {cls} WHERE _status IN ('accepted', 'replace')""")
    con.execute(
        f"""INSERT INTO main.quarantine SELECT {src}, {label}, _row, _raw, _rule, _reason, _column,
        {load}, ? FROM {cls} WHERE _status = 'quarantined'""", [now])
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
    con.execute(f"""INSERT INTO main.ingest_duplicates SELECT {src}, {label}, _row,
        CASE _status {kinds} END, CASE WHEN _status = 'duplicate' THEN _dup_of END, {load}
        FROM {cls} WHERE _status IN ('duplicate', 'loaded', 'seen')""")
    if staged.rejects:
        con.execute(f"""INSERT INTO main.ingest_duplicates SELECT {src}, {label}, _row,
            'already_quarantined', NULL, {load} FROM {staged.rejects}_s WHERE _seen""")
    _flags(con, flag_list, cls, src, label, load, counts)
    _count(con, source, staged, cls, present, counts)
    if not counts.reconciles:  # a bug guard: the transaction rolls back
        raise StoreError(f"reconciliation failed for {staged.label}: {counts}")
    con.execute(
        "INSERT INTO main.loads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'ok')",
        [counts.load_id, source.name, staged.label, file_hash, table, counts.rows_read,
         counts.rows_accepted, counts.rows_quarantined, counts.rows_duplicate, started, now],
    )


def _flags(con, flag_list, cls: str, src: str, label: str, load: str, counts: LoadCounts) -> None:
    """Record accepted rows with a noted issue in ``ingest_flags``; warn with the first one."""
    con.execute(FLAGS_DDL)
    for rule, cond, column, value in flag_list:
        con.execute(f"""INSERT INTO main.ingest_flags SELECT {src}, {label}, _row, {lit(rule)},
            {lit(column)}, CAST({value} AS VARCHAR), {load} FROM {cls}
            WHERE _status IN ('accepted', 'replace') AND ({cond})""")
    rows = con.execute(
        f"""SELECT rule, count(*), min(row_number), arg_min(column_name, row_number)
        FROM main.ingest_flags WHERE load_id = {load} GROUP BY rule ORDER BY rule""").fetchall()
    for rule, n, row, column in rows:
        counts.flags[rule] = n
        if rule == "anonymous":
            counts.rows_anonymous = n
            continue
        counts.rows_flagged += n
        counts.warnings.append(
            f"file {counts.source_file}, row {row}, column {column!r}: {_FLAG_TEXT[rule]} "
            f"({n} such values)"
        )


def _count(con, source, staged, cls, present, counts: LoadCounts) -> None:
    by = dict(con.execute(f"SELECT _status, count(*) FROM {cls} GROUP BY _status").fetchall())
    rej = dict(con.execute(
        f"SELECT _seen, count(*) FROM {staged.rejects}_s GROUP BY _seen").fetchall()
    ) if staged.rejects else {}
    counts.rows_read = sum(by.values()) + sum(rej.values())
    counts.rows_accepted = by.get("accepted", 0) + by.get("replace", 0)
    counts.rows_replaced = by.get("replace", 0)
    counts.rows_quarantined = by.get("quarantined", 0) + rej.get(False, 0)
    counts.rows_duplicate = (by.get("duplicate", 0) + by.get("loaded", 0) + by.get("seen", 0)
                             + rej.get(True, 0))
    rules = dict(con.execute(
        f"SELECT _rule, count(*) FROM {cls} WHERE _status = 'quarantined' GROUP BY _rule "
        "ORDER BY 2 DESC").fetchall())
    if rej.get(False):
        rules["malformed_row"] = rej[False]
    counts.rules = rules
