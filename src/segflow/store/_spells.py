"""Segment assignments as change rows ("spells"), computed and merged inside DuckDB.

A spell says: customer ``c`` is in segment ``g`` of scheme ``s`` at every computed snapshot
from ``valid_from`` (inclusive) up to ``valid_to`` (exclusive: the first computed snapshot of
the scheme where the customer is in another segment, under another scheme version, or
absent; ``NULL`` while the spell is open). ``segment_snapshots`` lists the snapshots computed
per scheme, so the per-snapshot table is recovered exactly by the view
``segment_assignments``: a spell expands to every computed snapshot in its range.

Why: a customer keeps a segment for months, so storing one row per change instead of one
per snapshot is several times smaller (docs/concepts.md, "change rows (spells)"), and a
run that adds one snapshot only closes or extends the open spells.

Everything here is DuckDB SQL on the store's connection (the store is DuckDB whatever engine
computed the assignments): no rows travel through Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb

#: Far-future stand-in for an open spell's end in range joins (keeps the join an inequality
#: join the engine can run as such, instead of an OR).
OPEN_END = "DATE '9999-12-31'"

SPELLS_DDL = """CREATE TABLE IF NOT EXISTS segment_spells (
  scheme VARCHAR NOT NULL, scheme_version VARCHAR, customer_id VARCHAR NOT NULL,
  segment VARCHAR NOT NULL, segment_rank INTEGER, valid_from DATE NOT NULL, valid_to DATE,
  run_id VARCHAR
)"""

SNAPSHOTS_DDL = """CREATE TABLE IF NOT EXISTS segment_snapshots (
  scheme VARCHAR NOT NULL, scheme_version VARCHAR, snapshot_date DATE NOT NULL,
  settings_key VARCHAR, run_id VARCHAR, computed_at TIMESTAMP
)"""

#: The per-snapshot table of schema versions 1-4, as a view over the spells.
ASSIGNMENTS_VIEW = f"""CREATE OR REPLACE VIEW segment_assignments AS
SELECT sp.scheme, sp.scheme_version, s.snapshot_date, sp.customer_id, sp.segment,
       sp.segment_rank, s.run_id
FROM segment_spells AS sp
JOIN segment_snapshots AS s
  ON s.scheme = sp.scheme AND s.snapshot_date >= sp.valid_from
 AND s.snapshot_date < coalesce(sp.valid_to, {OPEN_END})"""


def spells_select(rows: str, snapshots: str) -> str:
    """SQL turning per-snapshot rows into spells.

    ``rows`` is a relation with ``scheme, scheme_version, snapshot_date, customer_id,
    segment, segment_rank, run_id``; ``snapshots`` one with ``scheme, snapshot_date``: the
    computed snapshots the rows come from (a snapshot where a customer has no row ends the
    customer's spell). A spell starts where the previous computed snapshot of the scheme
    had no row for the customer or another segment, rank or scheme version; its
    ``valid_to`` is the computed snapshot after its last one (NULL after the last).
    Output: the columns of ``segment_spells``, ``run_id`` that of the spell's last row.
    """
    return f"""
WITH snaps AS (
  SELECT scheme, snapshot_date,
         row_number() OVER (PARTITION BY scheme ORDER BY snapshot_date) AS idx
  FROM (SELECT DISTINCT scheme, snapshot_date FROM {snapshots})
), r AS (
  SELECT x.*, s.idx FROM {rows} AS x JOIN snaps AS s USING (scheme, snapshot_date)
), g AS (
  -- gaps and islands: within a customer's rows of one (segment, rank, version), idx minus
  -- the row number is constant along consecutive snapshots and grows at every gap
  SELECT *, idx - row_number() OVER (
           PARTITION BY scheme, customer_id, segment, segment_rank, scheme_version
           ORDER BY idx) AS _spell
  FROM r
), sp AS (
  SELECT scheme, customer_id, _spell, scheme_version, segment, segment_rank,
         min(snapshot_date) AS valid_from, max(idx) AS _last,
         arg_max(run_id, snapshot_date) AS run_id
  FROM g GROUP BY scheme, customer_id, segment, segment_rank, scheme_version, _spell
)
SELECT sp.scheme, sp.scheme_version, sp.customer_id, sp.segment,
       CAST(sp.segment_rank AS INTEGER) AS segment_rank, sp.valid_from,
       nx.snapshot_date AS valid_to, sp.run_id
FROM sp LEFT JOIN snaps AS nx ON nx.scheme = sp.scheme AND nx.idx = sp._last + 1"""


#: Version 5 of the store schema: spells, computed snapshots, and the view in place of the
#: table ``segment_assignments`` (whose rows are moved into spells).
MIGRATION_V5: list[str] = [
    SPELLS_DDL,
    SNAPSHOTS_DDL,
    """INSERT INTO segment_snapshots
SELECT scheme, max(scheme_version), snapshot_date, NULL, max(run_id), now()::TIMESTAMP
FROM segment_assignments GROUP BY scheme, snapshot_date""",
    "INSERT INTO segment_spells " + spells_select("segment_assignments", "segment_snapshots"),
    "DROP TABLE segment_assignments",
    ASSIGNMENTS_VIEW,
]


def stored_snapshots(
    con: duckdb.DuckDBPyConnection, scheme: str, settings_key: str | None = None
) -> list[dt.date]:
    """Snapshots computed for ``scheme`` (with ``settings_key``, when given), ascending."""
    query = "SELECT snapshot_date FROM segment_snapshots WHERE scheme = ?"
    params: list[object] = [scheme]
    if settings_key is not None:
        query += " AND settings_key IS NOT DISTINCT FROM ?"
        params.append(settings_key)
    return [r[0] for r in con.execute(query + " ORDER BY 1", params).fetchall()]


def write_spells(
    con: duckdb.DuckDBPyConnection,
    *,
    scheme: str,
    scheme_version: str,
    source: str,
    snapshots: Sequence[dt.date],
    run_id: str,
    settings_key: str | None = None,
) -> int:
    """Merge the assignments of ``snapshots`` into the stored spells of ``scheme``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The store's connection, inside the caller's transaction.
    source : str
        A relation (table or view name, or ``(SELECT ...)``) with ``snapshot_date,
        customer_id, segment, segment_rank``: the assignments at ``snapshots`` (read once).
    snapshots : sequence of date
        The snapshots computed; they replace stored ones of the same date. A snapshot with
        no rows still counts (nobody is in the scheme then).
    settings_key : str, optional
        Fingerprint of the scheme's definition and settings, recorded per snapshot (see
        :func:`segflow.pipeline.snapshots_to_compute`).

    Returns
    -------
    int
        Spells written (the rewritten tail: open spells and any after the snapshot before
        the first of ``snapshots``).

    Notes
    -----
    Only spells from the last stored snapshot before ``min(snapshots)`` (``p``) onwards are
    rewritten: the stored rows at ``p`` and at stored snapshots after it that are not
    recomputed are expanded from the spells, the new rows are added, spells are computed
    over that stretch, and a spell that covers ``p`` keeps its original ``valid_from``
    (an open spell is extended or closed at the boundary). Earlier spells are untouched.
    """
    todo = sorted(set(snapshots))
    if not todo:
        return 0
    con.execute("CREATE OR REPLACE TEMP TABLE _spell_todo (snapshot_date DATE)")
    con.executemany("INSERT INTO _spell_todo VALUES (?)", [[d] for d in todo])
    prev = con.execute(
        "SELECT max(snapshot_date) FROM segment_snapshots WHERE scheme = ? AND snapshot_date < ?",
        [scheme, todo[0]],
    ).fetchone()[0]
    floor = prev if prev is not None else dt.date(1, 1, 1)
    # the stretch recomputed: stored snapshots from p on that are kept, and the new ones
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _spell_snaps AS
        SELECT scheme, snapshot_date, scheme_version, run_id, false AS is_new
        FROM segment_snapshots
        WHERE scheme = $scheme AND snapshot_date >= $floor
          AND snapshot_date NOT IN (SELECT snapshot_date FROM _spell_todo)
        UNION ALL
        SELECT $scheme, snapshot_date, $version, $run, true FROM _spell_todo""",
        {"scheme": scheme, "floor": floor, "version": scheme_version, "run": run_id},
    )
    rows = f"""(
        SELECT sp.scheme, sp.scheme_version, s.snapshot_date, sp.customer_id, sp.segment,
               sp.segment_rank, sp.run_id
        FROM segment_spells AS sp JOIN _spell_snaps AS s
          ON NOT s.is_new AND sp.scheme = s.scheme AND s.snapshot_date >= sp.valid_from
         AND s.snapshot_date < coalesce(sp.valid_to, {OPEN_END})
        UNION ALL
        SELECT $scheme, $version, CAST(n.snapshot_date AS DATE), CAST(n.customer_id AS VARCHAR),
               CAST(n.segment AS VARCHAR), CAST(n.segment_rank AS INTEGER), $run
        FROM {source} AS n
    )"""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _spell_new AS "
        + spells_select(rows, "(SELECT scheme, snapshot_date FROM _spell_snaps)"),
        {"scheme": scheme, "version": scheme_version, "run": run_id},
    )
    params = {"scheme": scheme, "floor": floor}
    # the spell covering p started before it: keep its start
    con.execute(
        f"""UPDATE _spell_new AS n SET valid_from = sp.valid_from
        FROM segment_spells AS sp
        WHERE sp.scheme = $scheme AND n.valid_from = $floor AND sp.customer_id = n.customer_id
          AND sp.valid_from <= $floor AND coalesce(sp.valid_to, {OPEN_END}) > $floor""",
        params,
    )
    con.execute(
        f"""DELETE FROM segment_spells WHERE scheme = $scheme
        AND coalesce(valid_to, {OPEN_END}) > $floor""",
        params,
    )
    con.execute("INSERT INTO segment_spells SELECT * FROM _spell_new")
    written = int(con.execute("SELECT count(*) FROM _spell_new").fetchone()[0])
    con.execute(
        "DELETE FROM segment_snapshots WHERE scheme = ? AND snapshot_date IN "
        "(SELECT snapshot_date FROM _spell_todo)",
        [scheme],
    )
    con.execute(
        "INSERT INTO segment_snapshots SELECT ?, ?, snapshot_date, ?, ?, now()::TIMESTAMP "
        "FROM _spell_todo",
        [scheme, scheme_version, settings_key, run_id],
    )
    for temp in ("_spell_todo", "_spell_snaps", "_spell_new"):
        con.execute(f"DROP TABLE IF EXISTS {temp}")
    return written


def append_assignments(con: duckdb.DuckDBPyConnection, view: str) -> int:
    """Write per-snapshot rows (the columns of ``segment_assignments``; ``scheme_version``
    and ``run_id`` optional) held in relation ``view`` as spells: per scheme and version, the
    rows replace the stored assignments at their snapshot dates. Returns the rows read.

    This is what ``Store.append("segment_assignments", rows)`` does since the table became
    a view (schema version 5).
    """
    cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {view}").fetchall()}
    version = "CAST(scheme_version AS VARCHAR)" if "scheme_version" in cols else "NULL"
    run = "CAST(run_id AS VARCHAR)" if "run_id" in cols else "NULL"
    groups = con.execute(
        f"SELECT DISTINCT scheme, {version} AS v, {run} AS r FROM {view} ORDER BY ALL"
    ).fetchall()
    seen: set[tuple[str, str | None]] = set()
    for scheme, ver, run_id in groups:
        if (scheme, ver) in seen:  # several run ids: written with the first
            continue
        seen.add((scheme, ver))
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _append_rows AS SELECT snapshot_date, customer_id, "
            f"segment, segment_rank FROM {view} WHERE scheme = ? AND {version} IS NOT DISTINCT "
            "FROM ?", [scheme, ver],
        )
        days = [r[0] for r in con.execute(
            "SELECT DISTINCT CAST(snapshot_date AS DATE) FROM _append_rows ORDER BY 1").fetchall()]
        write_spells(con, scheme=scheme, scheme_version=ver, source="_append_rows",
                     snapshots=days, run_id=run_id)
    con.execute("DROP TABLE IF EXISTS _append_rows")
    return int(con.execute(f"SELECT count(*) FROM {view}").fetchone()[0])
