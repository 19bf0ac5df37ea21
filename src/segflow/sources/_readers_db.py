"""Database sources staged for the ingest: a table (or query) of another DuckDB file, or of
Postgres (through Ibis), streamed as Arrow batches into the ingest's connection and numbered
as a file's rows are (:func:`segflow.sources._readers.stage` dispatches here)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from segflow._duck import arrow_reader
from segflow.errors import InputError
from segflow.sources._readers import Staged, _number_rows, q, scan_arrow

if TYPE_CHECKING:  # pragma: no cover
    from segflow.config import SourceSettings


def _db_select(source: SourceSettings, label: str) -> tuple[str | None, str | None, str | None]:
    table = source.options.get("table")
    query = source.options.get("query")
    if not table and not query:
        raise InputError(
            f"source {source.name!r}: set options.table or options.query", file=label
        )
    return table, query, source.options.get("order_by")


def stage_duckdb(con, path: Path, source: SourceSettings, label: str, limit: int | None) -> Staged:
    """A table (or query) of another DuckDB file, streamed as Arrow batches."""
    table, query, order_by = _db_select(source, label)
    try:
        src = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise InputError(f"cannot open as a DuckDB database: {exc}", file=label) from exc
    try:
        inner = f"SELECT * FROM {q(table)}" if table else f"SELECT * FROM ({query})"
        order = f" ORDER BY {order_by}" if order_by else ""
        lim = f" LIMIT {int(limit)}" if limit else ""
        try:
            reader = arrow_reader(src.execute(f"{inner}{order}{lim}"), 100_000)
        except duckdb.Error as exc:
            raise InputError(f"cannot read the DuckDB table: {str(exc).splitlines()[0]}",
                             file=label) from exc
        raw = scan_arrow(con, reader, "dv", label, "a DuckDB table")
    finally:
        src.close()
    return _number_rows(con, raw, label)


def stage_postgres(con, source: SourceSettings, label: str, limit: int | None) -> Staged:
    import ibis

    table, query, order_by = _db_select(source, label)
    url = source.options.get("connection")
    if not url:
        raise InputError(f"source {source.name!r}: set options.connection (a postgres:// URL)")
    pg = None
    try:
        pg = ibis.connect(url) if isinstance(url, str) else ibis.postgres.connect(**url)
        expr = pg.table(table) if table else pg.sql(query)
        if order_by:
            expr = expr.order_by([c.strip() for c in str(order_by).split(",")])
        if limit:
            expr = expr.limit(int(limit))
        reader = expr.to_pyarrow_batches()
    except Exception as exc:  # psycopg / ibis raise many kinds; report them as input errors
        if pg is not None:
            pg.disconnect()
        raise InputError(f"cannot read from Postgres: {str(exc).splitlines()[0]}", file=label) from exc
    try:
        raw = scan_arrow(con, reader, "pg", label, "a Postgres table")
    finally:
        pg.disconnect()
    return _number_rows(con, raw, label)
