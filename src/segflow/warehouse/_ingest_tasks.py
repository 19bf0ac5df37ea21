"""The Spark ingest's tasks: what a Spark task runs on its share of a load's rows.

A task gets Arrow batches, checks them with segflow's own ingest SQL (the rules of
:mod:`segflow.sources._validate`, the classification of :mod:`segflow.sources._load`) in
an in-memory DuckDB, and returns Arrow batches of a fixed schema. :class:`_Job` holds what
the tasks need (pickled to the executors); :mod:`segflow.warehouse._ingest` drives them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from segflow._duck import arrow_table
from segflow.sources._load import classify, rollup_orders
from segflow.sources._readers import Staged, lit, q
from segflow.sources._rules import flags
from segflow.sources._validate import Spec, raw_json, unknown_customer_rule, validate
from segflow.store import CANONICAL_TABLES
from segflow.warehouse._ingest_write import RAW

if TYPE_CHECKING:  # pragma: no cover
    from segflow.config import SourceSettings

_STG, _VAL, _CLS, _ORD = "_sf_stg", "_sf_val", "_sf_cls", "_sf_ord"
_ROW_INDEX = "_sf_row_index"
#: Rows a validation task checks at a time (a Python worker holds about one chunk as Arrow
#: and in DuckDB; a split of a large file has millions of rows).
_CHUNK = 250_000


def _duckdb_types(schema: pa.Schema) -> dict[str, str]:
    """DuckDB's type of every column of an Arrow schema (as the DuckDB ingest stages it)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("_sf_empty", schema.empty_table())
        return {r[0]: r[1] for r in con.execute("DESCRIBE _sf_empty").fetchall()}
    finally:
        con.close()


def _plain(schema: pa.Schema) -> pa.Schema:
    """Arrow types Spark takes back from a task (DuckDB's decimals as doubles, nulls as text)."""
    fields = []
    for f in schema:
        t = f.type
        if pa.types.is_decimal(t):
            t = pa.float64()
        elif pa.types.is_null(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            t = pa.string()
        fields.append(pa.field(f.name, t))
    return pa.schema(fields)


@dataclass
class _Job:
    """What a Spark task needs to check its rows (pickled to the executors)."""

    source: SourceSettings
    label: str
    types: dict[str, str]  # staged column -> DuckDB type
    specs: dict[str, Spec]
    now: dt.datetime
    offsets: dict[int, int] = field(default_factory=dict)  # partition -> rows before it
    row_index: bool = False  # rows carry their row index in the file (``_ROW_INDEX``)
    numbered: bool = False  # rows carry their ``_row`` already (CSV: the reader's numbers)
    known: bool = False  # unknown_customer applies (rows carry ``_known``)
    stored: bool = False  # the source has rows in the warehouse (rows carry ``_store``)
    quarantined: bool = False  # the source has rows in the warehouse's quarantine
    val_schema: pa.Schema | None = None
    cls_schema: pa.Schema | None = None
    ord_schema: pa.Schema | None = None

    @property
    def present(self) -> list[str]:
        return list(CANONICAL_TABLES[self.source.table])

    # -- the DuckDB side, on an Arrow table (the rows of one task, or none for the schema) --
    def validated(self, rows: pa.Table) -> pa.Table:
        def body(con: Any) -> str:
            cols = ", ".join(["_row", *(q(c) for c in self.types)])
            con.execute(f"CREATE TEMP TABLE {_STG} AS SELECT {cols} FROM _sf_in")
            staged = Staged(_STG, self.types, self.label)
            validate(con, self.source, staged, self.specs, now=self.now, known_customers=None,
                     out=_VAL)
            return f"SELECT * FROM {_VAL}"

        return _in_duckdb(rows, body)

    def raw_rows(self, rows: pa.Table) -> pa.Table:
        """``_row`` and the source row as JSON text (the quarantine's ``raw_row``, as the
        DuckDB ingest writes it) of the numbered source rows ``rows``."""
        staged = Staged("_sf_in", self.types, self.label)
        return _in_duckdb(rows, lambda con: f"SELECT _row, {raw_json(staged)} AS _raw_row "
                                            "FROM _sf_in")

    def classified(self, rows: pa.Table) -> pa.Table:
        def body(con: Any) -> str:
            con.execute(f"CREATE TEMP TABLE {_VAL} AS SELECT * EXCLUDE (_known, _store) "
                        "FROM _sf_in")
            rule = unknown_customer_rule(self.source, self.specs, "_sf_known") if self.known else None
            if rule:  # the last rule of validate(): it applies to rows that passed the others
                con.execute("CREATE TEMP TABLE _sf_known AS SELECT DISTINCT v_customer_id AS "
                            "customer_id FROM _sf_in WHERE _known")
                name, cond, column, reason = rule
                con.execute(f"UPDATE {_VAL} SET _rule = {lit(name)}, _column = {lit(column)}, "
                            f"_reason = {reason} WHERE _rule IS NULL AND ({cond})")
            classify(con, self.source, _VAL, self.present, _CLS, against_store=False,
                     mapped=set(self.specs))
            # a row equal to a stored row of the source (``_store``, a Spark join:
            # segflow.warehouse._stored) is 'loaded', as classify's against_store makes it
            con.execute(f"""CREATE TEMP VIEW _sf_cls_s AS SELECT c.* REPLACE (
                CASE WHEN c._status = 'accepted' AND s._store IS NOT NULL THEN s._store
                     ELSE c._status END AS _status) FROM {_CLS} c
                LEFT JOIN (SELECT _row, _store FROM _sf_in WHERE _store IS NOT NULL) s
                ON s._row = c._row""")
            marks = []
            for i, (_rule, cond, _col, value) in enumerate(flags(self.source, self.specs)):
                hit = f"(_status IN ('accepted', 'replace') AND coalesce(({cond}), false))"
                marks += [f"{hit} AS _f{i}", f"CASE WHEN {hit} THEN CAST({value} AS VARCHAR) END AS _fv{i}"]
            return f"SELECT *{''.join(', ' + m for m in marks)} FROM _sf_cls_s"

        return _in_duckdb(rows, body)

    def rolled_up(self, rows: pa.Table) -> pa.Table:
        def body(con: Any) -> str:
            con.execute(f"CREATE TEMP TABLE {_CLS} AS SELECT * FROM _sf_in")
            rollup_orders(con, self.source, _CLS, _ORD, against_store=False)
            return f"SELECT * FROM {_ORD}"

        return _in_duckdb(rows, body)

    # -- the Spark tasks ------------------------------------------------------------------
    def validate_task(self, batches: Any) -> Any:
        """The rules on a task's rows, :data:`_CHUNK` rows at a time (they judge each row
        alone), so that a worker holds one chunk whatever the size of the split."""
        from pyspark import TaskContext

        before = None if self.numbered or self.row_index else \
            self.offsets.get(TaskContext.get().partitionId(), 0)
        for rows in _chunks(batches):
            yield from _out(self.validated(self.number(rows, before)), self.val_schema)
            if before is not None:
                before += rows.num_rows

    def number(self, rows: pa.Table, before: int | None) -> pa.Table:
        """``rows`` with their ``_row`` (the row number in the load): from the file's row
        index, or ``before`` (the rows of the load read before them) plus their position."""
        if self.numbered:
            return rows
        if self.row_index:
            import pyarrow.compute as pc

            number = pc.add(rows.column(_ROW_INDEX), 1).cast(pa.int64())
            rows = rows.drop_columns([_ROW_INDEX])
        else:
            assert before is not None
            import numpy as np

            number = pa.array(np.arange(before + 1, before + 1 + rows.num_rows, dtype=np.int64))
        return rows.append_column("_row", number)

    def raw_task(self, batches: Any) -> Any:
        for rows in _chunks(batches):
            yield from _out(self.raw_rows(rows), RAW)

    def classify_task(self, batches: Any) -> Any:
        yield from _out(self.classified(_table(batches, self.val_schema_known)), self.cls_schema)

    def rollup_task(self, batches: Any) -> Any:
        yield from _out(self.rolled_up(_table(batches, self.cls_schema)), self.ord_schema)

    @property
    def val_schema_known(self) -> pa.Schema:
        assert self.val_schema is not None
        return self.val_schema.append(pa.field("_known", pa.bool_())).append(
            pa.field("_store", pa.string()))


def _in_duckdb(rows: pa.Table, body: Any) -> pa.Table:
    """``body(con)`` on a fresh in-memory DuckDB where ``rows`` is the table ``_sf_in``:
    it runs the ingest's SQL and returns the query whose result is returned (Arrow)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("_sf_in", rows)
        return arrow_table(con.execute(body(con)))
    finally:
        con.close()


def _chunks(batches: Any, size: int | None = None) -> Any:
    """Arrow tables of about ``size`` rows (default :data:`_CHUNK`) from a task's batches;
    none for a task without rows."""
    size = size or _CHUNK
    have: list[pa.RecordBatch] = []
    n = 0
    for batch in batches:
        have.append(batch)
        n += batch.num_rows
        if n >= size:
            yield pa.Table.from_batches(have)
            have, n = [], 0
    if have:
        yield pa.Table.from_batches(have)


def _table(batches: Any, schema: pa.Schema | None = None) -> pa.Table:
    batches = list(batches)
    if batches:
        return pa.Table.from_batches(batches)
    assert schema is not None
    return schema.empty_table()


def _out(table: pa.Table, schema: pa.Schema | None) -> Any:
    assert schema is not None
    yield from table.cast(schema).to_batches()
