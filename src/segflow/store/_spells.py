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

The spells themselves are one Ibis expression (:func:`spells`), the same on Spark; the
merging here is DuckDB SQL on the store's connection (the store is DuckDB whatever engine
computed the assignments): no rows travel through Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb
import ibis

from segflow.errors import StoreError
from segflow.store._memory import memory_limit_bytes

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

#: The per-snapshot rows of the spells: each spell expanded to every computed snapshot of its
#: scheme in its range, with the snapshot's ``run_id``. ``{spells}`` and ``{snapshots}``: the
#: names of the relations (``segment_spells``, ``segment_snapshots``). SQL that DuckDB and
#: Spark SQL both run: the DuckDB store's view (:data:`ASSIGNMENTS_VIEW`) and the Spark
#: store's ``segment_assignments`` (:meth:`segflow.store.SparkStore.dataframe`).
ASSIGNMENTS_SELECT = """SELECT sp.scheme, sp.scheme_version, s.snapshot_date, sp.customer_id, sp.segment,
       sp.segment_rank, s.run_id
FROM {spells} AS sp
JOIN {snapshots} AS s
  ON s.scheme = sp.scheme AND s.snapshot_date >= sp.valid_from
 AND s.snapshot_date < coalesce(sp.valid_to, """ + OPEN_END + ")"

#: The per-snapshot table of schema versions 1-4, as a view over the spells.
ASSIGNMENTS_VIEW = "CREATE OR REPLACE VIEW segment_assignments AS\n" + ASSIGNMENTS_SELECT.format(
    spells="segment_spells", snapshots="segment_snapshots")


def assigned_snapshots(con: duckdb.DuckDBPyConnection, scheme: str | None = None) -> list[dt.date]:
    """The computed snapshots (of ``scheme``, or of any) at which at least one customer is
    assigned: those covered by a change row, found from the distinct ranges of the change rows
    (few: at most one per pair of snapshots) instead of the per-snapshot view, which expands
    every row (seconds at 1M customers). Ascending."""
    where = " WHERE scheme = $scheme" if scheme is not None else ""
    rows = con.execute(
        "SELECT DISTINCT s.snapshot_date FROM segment_snapshots AS s JOIN "
        f"(SELECT DISTINCT scheme, valid_from, valid_to FROM segment_spells{where}) AS sp "
        "ON s.scheme = sp.scheme AND s.snapshot_date >= sp.valid_from "
        f"AND s.snapshot_date < coalesce(sp.valid_to, {OPEN_END}) ORDER BY 1",
        {"scheme": scheme} if scheme is not None else {}).fetchall()
    return [r[0] for r in rows]


def assigned_schemes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The schemes with at least one stored assignment (every change row covers a computed
    snapshot of its scheme), sorted."""
    return [r[0] for r in con.execute(
        "SELECT DISTINCT scheme FROM segment_spells ORDER BY 1").fetchall()]


#: Columns (and types) of the per-snapshot rows :func:`spells` reads.
ROWS_SCHEMA = {"scheme": "string", "scheme_version": "string", "snapshot_date": "date",
               "customer_id": "string", "segment": "string", "segment_rank": "int32",
               "run_id": "string"}


def spells(rows: ibis.Table, snapshots: ibis.Table) -> ibis.Table:
    """Per-snapshot rows turned into spells: one Ibis expression for every engine (the
    DuckDB store through :func:`spells_select`, the Spark warehouse run directly).

    Parameters
    ----------
    rows : ibis.Table
        ``scheme, scheme_version, snapshot_date, customer_id, segment, segment_rank`` and
        optionally ``run_id``: the assignments of the computed snapshots.
    snapshots : ibis.Table
        ``scheme, snapshot_date`` (other columns ignored, duplicates allowed): the computed
        snapshots the rows come from; a snapshot where a customer has no row ends the
        customer's spell.

    Returns
    -------
    ibis.Table
        The columns of ``segment_spells``: ``scheme, scheme_version, customer_id, segment,
        segment_rank`` (int32), ``valid_from``, ``valid_to`` and, when ``rows`` has it,
        ``run_id`` (that of the spell's first row). A spell starts where the previous
        computed snapshot of the scheme had no row for the customer or another segment, rank
        or scheme version; its ``valid_to`` is the computed snapshot after its last one
        (null after the last).
    """
    # (a grouping, not select().distinct(): on a table of exactly these columns Ibis drops
    # the projection, and the SQL of an unbound table must not read its other columns)
    snaps = snapshots.group_by(["scheme", "snapshot_date"]).aggregate()
    snaps = snaps.mutate(idx=ibis.row_number().over(group_by="scheme", order_by="snapshot_date"))
    r = rows.join(snaps, ["scheme", "snapshot_date"])
    # gaps and islands: within a customer's rows of one (segment, rank, version), idx minus
    # the row number is constant along consecutive snapshots and grows at every gap
    w = ibis.window(group_by=[r.scheme, r.customer_id, r.segment, r.segment_rank,
                              r.scheme_version], order_by=r.idx)
    g = r.mutate(_spell=r.idx - ibis.row_number().over(w))
    extra = {"run_id": g.run_id.argmin(g.snapshot_date)} if "run_id" in rows.columns else {}
    sp = g.group_by(["scheme", "customer_id", "segment", "segment_rank", "scheme_version",
                     "_spell"]).aggregate(valid_from=g.snapshot_date.min(),
        _last=g.idx.max(), **extra)
    nx = snaps.select(_nscheme=snaps.scheme, _nidx=snaps.idx, valid_to=snaps.snapshot_date)
    out = sp.left_join(nx, [sp.scheme == nx._nscheme, sp._last + 1 == nx._nidx])
    return out.select("scheme", "scheme_version", "customer_id", "segment",
                      segment_rank=out.segment_rank.cast("int32"), valid_from=out.valid_from,
                      valid_to=out.valid_to, **({"run_id": out.run_id} if extra else {}))


def spells_select(rows: str, snapshots: str) -> str:
    """DuckDB SQL of :func:`spells` on the relations named ``rows`` (the columns of
    :data:`ROWS_SCHEMA`) and ``snapshots`` (``scheme, snapshot_date``): table or view names."""
    expr = spells(ibis.table(ROWS_SCHEMA, name=rows),
                  ibis.table({"scheme": "string", "snapshot_date": "date"}, name=snapshots))
    return str(ibis.to_sql(expr, dialect="duckdb"))


#: A spell's snapshot number and its run's code packed in one BIGINT (number x 2^32 + code):
#: sorting the packed values sorts by snapshot.
_PACK = 4294967296


def spells_sql(rows: str, snapshots: str, runs: str | None = None) -> str:
    """DuckDB SQL of :func:`spells` (the same rows) on the relations named ``rows`` (the
    columns of :data:`ROWS_SCHEMA`) and ``snapshots`` (``scheme, snapshot_date``), without
    a window over the rows: about half the CPU of :func:`spells_select` (12.7 -> 6.2 CPU-s
    for one scheme's 15.7M rows at 1M customers, docs/benchmarks.md, session 41).

    Each (scheme, customer, segment, rank, version) collects the numbers of its snapshots
    (each packed with its row's ``run_id`` code) in one sorted list; a spell starts at the
    list's first number and wherever a number is not its predecessor plus one, and ends
    before the next start (or at the list's end). ``run_id`` is that of the spell's first
    row, ``valid_to`` the snapshot after it (null after the scheme's last). Group keys
    compare as :func:`spells`'s window partitions do (nulls equal).

    ``runs``: a relation with a ``run_id`` column holding every ``run_id`` of ``rows``
    (more do no harm; nulls included when rows have them), so that ``rows`` is read once
    (e.g. a query computing the assignments); default ``rows`` itself. A row whose
    ``run_id`` is not there is left out."""
    return f"""WITH _sp_snaps AS (
  SELECT scheme, snapshot_date,
         row_number() OVER (PARTITION BY scheme ORDER BY snapshot_date) AS idx
  FROM (SELECT DISTINCT scheme, snapshot_date FROM {snapshots})),
_sp_runs AS (
  SELECT run_id, row_number() OVER (ORDER BY run_id NULLS FIRST) - 1 AS rc
  FROM (SELECT DISTINCT run_id FROM {runs or rows})),
_sp_lists AS (
  SELECT r.scheme, r.customer_id, r.segment, r.segment_rank, r.scheme_version,
         list_sort(list(s.idx * {_PACK} + u.rc)) AS l
  FROM {rows} AS r
  JOIN _sp_snaps AS s ON s.scheme = r.scheme AND s.snapshot_date = r.snapshot_date
  JOIN _sp_runs AS u ON u.run_id IS NOT DISTINCT FROM r.run_id
  GROUP BY ALL),
_sp_starts AS (
  SELECT *, list_filter(range(1, len(l) + 1),
                        lambda i: i = 1 OR l[i] // {_PACK} <> l[i - 1] // {_PACK} + 1) AS st
  FROM _sp_lists),
_sp_spells AS (
  SELECT scheme, customer_id, segment, segment_rank, scheme_version,
         unnest(list_transform(range(1, len(st) + 1), lambda k: {{
           'lo': l[st[k]] // {_PACK}, 'rc': l[st[k]] % {_PACK},
           'hi': l[CASE WHEN k < len(st) THEN st[k + 1] - 1 ELSE len(l) END]}})) AS p
  FROM _sp_starts)
SELECT sp.scheme, sp.scheme_version, sp.customer_id, sp.segment,
       CAST(sp.segment_rank AS INTEGER) AS segment_rank, f.snapshot_date AS valid_from,
       t.snapshot_date AS valid_to, u.run_id
FROM _sp_spells AS sp
JOIN _sp_snaps AS f ON f.scheme = sp.scheme AND f.idx = sp.p.lo
LEFT JOIN _sp_snaps AS t ON t.scheme = sp.scheme AND t.idx = sp.p.hi // {_PACK} + 1
JOIN _sp_runs AS u ON u.rc = sp.p.rc"""


#: Most snapshots of a scheme :func:`mask_spells_sql` takes: bit ``i`` of a BIGINT stands
#: for snapshot ``i`` (0-based), and the mask shifted one bit up must stay below the sign.
MASK_SNAPSHOTS = 62


def mask_spells_sql(rows: str, snapshots: str, run: str) -> str:
    """DuckDB SQL of :func:`spells` (the same rows) when every row of ``rows`` carries the
    run ``run`` (an SQL expression, e.g. the parameter ``$run``: the spells' ``run_id``) and
    no scheme has more than :data:`MASK_SNAPSHOTS` snapshots in ``snapshots``: the case of a
    run that computes every snapshot of a scheme (:func:`write_spells`).

    Each (scheme, customer, segment, rank, version) ORs ``2^i`` of its snapshots' numbers
    ``i`` into one BIGINT ``m``; its spells are the runs of set bits. A spell starts at each
    set bit of ``m & ~(m << 1)`` (set, its lower neighbour clear) and ends at the lowest set
    bit at or above it of ``m & ~(m >> 1)`` (set, its upper neighbour clear); a bit's number
    is ``bit_count(b - 1)`` of the bit ``b`` alone, and ``x & -x`` is the lowest set bit of
    ``x``. Against the lists of :func:`spells_sql`: a fixed-size aggregate, which DuckDB can
    spill to disk (the lists cannot, see :func:`lists_fit`), and a third less CPU for the
    1M run's RFM rows (10.7 -> 7.3 CPU-s, 14.7M rows, docs/benchmarks.md, session 44). Group
    keys compare as :func:`spells`'s window partitions do (nulls equal). Like the other two
    ways, it assumes no row is repeated (a run writes one row per customer, scheme and
    snapshot; :func:`append_assignments` drops repeats): a repeat only sets its bit again,
    where the window and the lists would give overlapping spells. More than 62 snapshots
    fail in DuckDB ("Overflow in left shift"), never silently."""
    return f"""WITH _sp_snaps AS (
  SELECT scheme, snapshot_date,
         row_number() OVER (PARTITION BY scheme ORDER BY snapshot_date) - 1 AS idx
  FROM (SELECT DISTINCT scheme, snapshot_date FROM {snapshots})),
_sp_masks AS (
  SELECT r.scheme, r.customer_id, r.segment, r.segment_rank, r.scheme_version,
         bit_or(1::BIGINT << s.idx) AS m
  FROM {rows} AS r
  JOIN _sp_snaps AS s ON s.scheme = r.scheme AND s.snapshot_date = r.snapshot_date
  GROUP BY ALL),
_sp_edges AS (
  SELECT scheme, customer_id, segment, segment_rank, scheme_version,
         m & ~(m << 1) AS st, m & ~(m >> 1) AS en
  FROM _sp_masks),
_sp_starts AS (
  SELECT scheme, customer_id, segment, segment_rank, scheme_version, en,
         unnest(CASE WHEN bit_count(st) = 1 THEN [st] ELSE list_transform(
           list_filter(range({MASK_SNAPSHOTS}), i -> ((st >> i) & 1) = 1), i -> 1::BIGINT << i)
         END) AS b
  FROM _sp_edges),
_sp_spells AS (
  SELECT scheme, customer_id, segment, segment_rank, scheme_version,
         bit_count(b - 1) AS lo, en & ~(b - 1) AS later
  FROM _sp_starts)
SELECT sp.scheme, sp.scheme_version, sp.customer_id, sp.segment,
       CAST(sp.segment_rank AS INTEGER) AS segment_rank, f.snapshot_date AS valid_from,
       t.snapshot_date AS valid_to, CAST({run} AS VARCHAR) AS run_id
FROM _sp_spells AS sp
JOIN _sp_snaps AS f ON f.scheme = sp.scheme AND f.idx = sp.lo
LEFT JOIN _sp_snaps AS t
  ON t.scheme = sp.scheme AND t.idx = bit_count((sp.later & -sp.later) - 1) + 1"""


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
    con: duckdb.DuckDBPyConnection,
    scheme: str,
    settings_key: str | None = None,
    *,
    finished_only: bool = False,
) -> list[dt.date]:
    """Snapshots computed for ``scheme`` (with ``settings_key``, when given), ascending.

    ``finished_only=True`` leaves out the snapshots last written by a run that did not end
    well (``runs.status`` failed, or still running: a killed process): such a run committed
    its segments but not its scores and aggregates, so its snapshots are computed again."""
    query = "SELECT snapshot_date FROM segment_snapshots WHERE scheme = ?"
    params: list[object] = [scheme]
    if settings_key is not None:
        query += " AND settings_key IS NOT DISTINCT FROM ?"
        params.append(settings_key)
    if finished_only:
        query += (" AND (run_id IS NULL OR run_id NOT IN "
                  "(SELECT run_id FROM runs WHERE status <> 'ok' AND run_id IS NOT NULL))")
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
    expected_rows: int | None = None,
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
        :func:`segflow._plan.snapshots_to_compute`).
    expected_rows : int, optional
        About how many rows ``source`` holds (customers x snapshots): when stored rows are
        merged (or a scheme has over :data:`MASK_SNAPSHOTS` snapshots) and ``source`` holds
        more than the connection's ``memory_limit`` allows the lists of :func:`spells_sql`
        (whose state DuckDB cannot spill to disk: :data:`LIST_BYTES_PER_ROW`), the spells
        are computed by the window of :func:`spells_select` (the same rows, more CPU,
        spills). None: lists. A run of every snapshot of the scheme takes the bit masks of
        :func:`mask_spells_sql` whatever the size.

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
    A spell's ``run_id`` is the run that computed its first snapshot (its ``valid_from``
    in ``segment_snapshots``): the expanded rows carry their snapshot's run, and a spell
    covering ``p`` keeps its stored run with its start.
    """
    todo = sorted(set(snapshots))
    if not todo:
        return 0
    if len(todo) == 1:
        appended = _append_snapshot(con, scheme=scheme, scheme_version=scheme_version,
                                    source=source, day=todo[0], run_id=run_id)
        if appended is not None:
            _record_snapshots(con, scheme, scheme_version, todo, settings_key, run_id)
            return appended
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
               sp.segment_rank, s.run_id
        FROM segment_spells AS sp JOIN _spell_snaps AS s
          ON NOT s.is_new AND sp.scheme = s.scheme AND s.snapshot_date >= sp.valid_from
         AND s.snapshot_date < coalesce(sp.valid_to, {OPEN_END})
        UNION ALL
        SELECT $scheme, $version, CAST(n.snapshot_date AS DATE), CAST(n.customer_id AS VARCHAR),
               CAST(n.segment AS VARCHAR), CAST(n.segment_rank AS INTEGER), $run
        FROM {source} AS n
    )"""
    kept = con.execute("SELECT count(*) FROM _spell_snaps WHERE NOT is_new").fetchone()[0]
    # every snapshot of the scheme is recomputed: no stored row is read and no spell covers
    # the floor, so every row is this run's
    everything = prev is None and not kept
    # the rows feed the spells query directly (a CTE read once, not a table written first)
    if everything and len(todo) <= MASK_SNAPSHOTS:
        query = mask_spells_sql("_spell_rows", "_spell_snaps", "$run")
    elif lists_fit(con, expected_rows):
        # every run_id the rows may carry: their snapshots' (this run's for the new ones)
        con.execute("CREATE OR REPLACE TEMP TABLE _spell_runs AS SELECT DISTINCT run_id "
                    "FROM _spell_snaps")
        query = spells_sql("_spell_rows", "_spell_snaps", "_spell_runs")
    else:
        query = spells_select("_spell_rows", "_spell_snaps")
    cte = f"_spell_rows AS (SELECT * FROM {rows})"
    query = (f"WITH {cte}, " + query[len("WITH "):] if query.startswith("WITH ")
             else f"WITH {cte} " + query)
    args = {"scheme": scheme, "version": scheme_version, "run": run_id}
    params = {"scheme": scheme, "floor": floor}
    delete = f"""DELETE FROM segment_spells WHERE scheme = $scheme
        AND coalesce(valid_to, {OPEN_END}) > $floor"""
    if everything:  # the new spells go straight into the table
        con.execute(delete, params)
        written = int(con.execute("INSERT INTO segment_spells " + query, args).fetchone()[0])
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _spell_new AS " + query, args)
        # the spell covering p started before it: keep its start (and its run)
        con.execute(
            f"""UPDATE _spell_new AS n SET valid_from = sp.valid_from, run_id = sp.run_id
            FROM segment_spells AS sp
            WHERE sp.scheme = $scheme AND n.valid_from = $floor
              AND sp.customer_id = n.customer_id
              AND sp.valid_from <= $floor AND coalesce(sp.valid_to, {OPEN_END}) > $floor""",
            params,
        )
        con.execute(delete, params)
        con.execute("INSERT INTO segment_spells SELECT * FROM _spell_new")
        written = int(con.execute("SELECT count(*) FROM _spell_new").fetchone()[0])
    _record_snapshots(con, scheme, scheme_version, todo, settings_key, run_id)
    for temp in ("_spell_todo", "_spell_snaps", "_spell_rows", "_spell_new", "_spell_runs"):
        con.execute(f"DROP TABLE IF EXISTS {temp}")
    return written


#: DuckDB memory the lists of :func:`spells_sql` may need per assignment row (their grouped
#: lists live outside DuckDB's spillable buffers): about twice what ran out of memory in the
#: 10M-customer run (120M rows of a scheme under an 8.3 GiB limit, session 42), while the 1M
#: run's 24M rows per scheme take the lists.
LIST_BYTES_PER_ROW = 150


def lists_fit(con: duckdb.DuckDBPyConnection, rows: int | None) -> bool:
    """Whether :func:`spells_sql` may group ``rows`` assignment rows within the memory limit
    (:data:`LIST_BYTES_PER_ROW`; unknown rows or limit: yes)."""
    if rows is None:
        return True
    try:
        limit = memory_limit_bytes(con)
    except StoreError:  # a limit DuckDB shows in a form not known here: the lists
        return True
    return rows * LIST_BYTES_PER_ROW <= limit


def _record_snapshots(con: duckdb.DuckDBPyConnection, scheme: str, scheme_version: str,
                      todo: Sequence[dt.date], settings_key: str | None, run_id: str) -> None:
    """``segment_snapshots``: the snapshots ``todo`` of ``scheme`` replaced by this run's."""
    con.execute("DELETE FROM segment_snapshots WHERE scheme = ? AND snapshot_date IN "
                "(SELECT unnest(?::DATE[]))", [scheme, list(todo)])
    con.execute("INSERT INTO segment_snapshots SELECT ?, ?, unnest(?::DATE[]), ?, ?, now()::TIMESTAMP",
                [scheme, scheme_version, list(todo), settings_key, run_id])


def _append_snapshot(con: duckdb.DuckDBPyConnection, *, scheme: str, scheme_version: str,
                     source: str, day: dt.date, run_id: str) -> int | None:
    """:func:`write_spells` of one snapshot ``day`` after every stored snapshot of ``scheme``
    (one new month), when there is a stored one: the open spells whose customer has the same
    segment, rank and version at ``day`` stay open (their ``run_id`` stays: the run of their
    first snapshot), the other open spells close at ``day``, and the other rows open new
    spells; nothing else is read or rewritten. The same spells as the general merge; ``None``
    (nothing done) when ``day`` is not after every stored snapshot or none is stored.
    Returns the spells written (closed, extended and opened)."""
    prev, later = con.execute(
        "SELECT max(snapshot_date) FILTER (WHERE snapshot_date < $day), "
        "count(*) FILTER (WHERE snapshot_date >= $day) FROM segment_snapshots WHERE scheme = $scheme",
        {"scheme": scheme, "day": day}).fetchone()
    if prev is None or later:
        return None
    # the new rows, each with whether its customer's open spell goes on (same segment, rank
    # and version); a spell open at the last stored snapshot is one with no end
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _spell_add AS
        SELECT n.customer_id, n.segment, n.segment_rank,
               coalesce(o.segment = n.segment AND o.segment_rank IS NOT DISTINCT FROM n.segment_rank
                        AND o.scheme_version IS NOT DISTINCT FROM $version, false) AS goes_on
        FROM (SELECT CAST(customer_id AS VARCHAR) AS customer_id, CAST(segment AS VARCHAR) AS segment,
                     CAST(segment_rank AS INTEGER) AS segment_rank
              FROM {source} WHERE CAST(snapshot_date AS DATE) = $day) AS n
        LEFT JOIN (SELECT customer_id, segment, segment_rank, scheme_version FROM segment_spells
                   WHERE scheme = $scheme AND valid_to IS NULL) AS o USING (customer_id)""",
        {"scheme": scheme, "version": scheme_version, "day": day})
    closed = con.execute(
        """UPDATE segment_spells SET valid_to = $day WHERE scheme = $scheme AND valid_to IS NULL
        AND customer_id NOT IN (SELECT customer_id FROM _spell_add WHERE goes_on)""",
        {"scheme": scheme, "day": day}).fetchone()[0]
    # a spell that goes on keeps its run_id (the run that opened it): nothing to write
    extended = con.execute("SELECT count(*) FROM _spell_add WHERE goes_on").fetchone()[0]
    opened = con.execute(
        """INSERT INTO segment_spells SELECT $scheme, $version, customer_id, segment, segment_rank,
        $day, NULL, $run FROM _spell_add WHERE NOT goes_on""",
        {"scheme": scheme, "version": scheme_version, "day": day, "run": run_id}).fetchone()[0]
    con.execute("DROP TABLE _spell_add")
    return int(closed) + int(extended) + int(opened)


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
            # distinct: a repeated row is the same assignment (the spells assume no repeats)
            f"CREATE OR REPLACE TEMP TABLE _append_rows AS SELECT DISTINCT snapshot_date, customer_id, "
            f"segment, segment_rank FROM {view} WHERE scheme = ? AND {version} IS NOT DISTINCT "
            "FROM ?", [scheme, ver],
        )
        days = [r[0] for r in con.execute(
            "SELECT DISTINCT CAST(snapshot_date AS DATE) FROM _append_rows ORDER BY 1").fetchall()]
        write_spells(con, scheme=scheme, scheme_version=ver, source="_append_rows",
                     snapshots=days, run_id=run_id)
    con.execute("DROP TABLE IF EXISTS _append_rows")
    return int(con.execute(f"SELECT count(*) FROM {view}").fetchone()[0])
