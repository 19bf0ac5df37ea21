"""Where an export goes: a CSV or Parquet file, or a Postgres table.

CSV cells that a spreadsheet would run as a formula are neutralised (see
:func:`~segflow.exports.neutralise_formulas`); Parquet and Postgres keep values unchanged.
Files are written to a temporary name beside the target and renamed into place, so a reader
never sees half a file. A Postgres table is written in one transaction: a full export
replaces the rows of its scheme (or audience), an incremental one upserts the changed
customers and deletes the removed ones, so the table always mirrors the latest export.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa

from segflow._csv import write_csv
from segflow.errors import InputError, SegflowError

#: Postgres column types of Arrow types (anything else is written as text).
_PG_TYPES = {
    "string": "text", "large_string": "text", "bool": "boolean", "int8": "smallint",
    "int16": "smallint", "int32": "integer", "int64": "bigint", "float": "real",
    "double": "double precision", "date32[day]": "date", "timestamp[us]": "timestamp",
    "timestamp[ns]": "timestamp", "timestamp[ms]": "timestamp", "timestamp[s]": "timestamp",
}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def is_postgres(target: str) -> bool:
    """True when ``target`` is a Postgres connection URL."""
    return str(target).startswith(("postgres://", "postgresql://"))


def target_format(target: str, format: str | None = None) -> str:
    """``csv``, ``parquet`` or ``postgres`` for a target (from ``format`` or the target)."""
    if format:
        if format not in ("csv", "parquet", "postgres"):
            raise InputError(f"unknown export format {format!r}; expected csv, parquet or postgres")
        return format
    if is_postgres(target):
        return "postgres"
    suffix = Path(target).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise InputError(
        f"cannot tell the export format of {target!r}: use a .csv or .parquet file name or a "
        "postgresql:// URL with --table"
    )


def write_file(data: pa.Table, path: str | Path, fmt: str, *, private: bool = False) -> Path:
    """Write ``data`` to ``path`` as CSV (formulas neutralised) or Parquet, atomically;
    ``private`` (personal data in clear: the ``include`` policy): with mode ``0600``."""
    from segflow._private import existing_mode, keep_mode, link_target, private_target

    shown = Path(path)
    if shown.is_dir():  # (os.replace's own error named the temporary file)
        raise InputError(f"is a folder: give a file name ending in .{fmt}", file=str(shown))
    path = link_target(shown)  # a symbolic link stays: the file it points to is replaced
    path.parent.mkdir(parents=True, exist_ok=True)
    # created as open() creates files (mode 0o666 less the umask), not as mkstemp's 0o600:
    # the file that replaces the target is what the CRM's loader, often another user, reads;
    # one with personal data in clear is its owner's only, and one that replaces a file keeps
    # that file's mode and group, as a file written over in place does (segflow._private)
    saved = None if private else existing_mode(path)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.part"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    if private:
        private_target(tmp, shown=shown)
    try:
        keep_mode(tmp, saved, shown=shown)
        if fmt == "csv":
            write_csv(data, tmp)
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(data, tmp)
        else:
            raise InputError(f"cannot write {fmt!r} to a file; expected csv or parquet")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return shown


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise SegflowError(
            "exporting to Postgres needs the optional postgres extra, which is not installed. "
            "Install it with `pip install 'segflow[postgres]'`."
        ) from exc
    return psycopg


def _check_ident(name: str) -> str:
    if not _IDENT.match(name):
        raise InputError(
            f"table name {name!r}: use 1 to 63 letters, digits and underscores, not starting "
            "with a digit"
        )
    return name


def _pg_type(t: pa.DataType) -> str:
    return _PG_TYPES.get(str(t), "text")


def write_postgres(
    data: pa.Table,
    url: str,
    table: str,
    *,
    key: tuple[str, ...],
    scope: dict[str, str],
    removed: list[str] | None = None,
    replace: bool,
) -> int:
    """Write ``data`` into the Postgres table ``table`` in one transaction.

    Parameters
    ----------
    data : pyarrow.Table
    url : str
        ``postgresql://user@host:port/db`` (a ``postgres://`` URL works too).
    table : str
        Created when missing, with the columns of ``data`` and a primary key on ``key``;
        columns that ``data`` gains later are added.
    key : tuple of str
        Columns identifying a row, e.g. ``("scheme", "customer_id")``.
    scope : dict
        Column = value pairs selecting this export's rows, e.g. ``{"scheme": "rfm"}``.
    removed : list of str, optional
        Customer ids to delete within the scope (an incremental export's ``removed`` rows).
    replace : bool
        True: delete every row of the scope first (a full export). False: upsert on ``key``.

    Returns
    -------
    int
        Rows inserted or updated.
    """
    psycopg = _psycopg()
    from psycopg import sql

    _check_ident(table)
    for c in data.column_names:
        _check_ident(c)
    url = url.replace("postgres://", "postgresql://", 1)
    cols = data.column_names
    ident = sql.Identifier(table)
    try:
        with psycopg.connect(url) as con, con.transaction():
            defs = [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_pg_type(data.schema.field(c).type)))
                    for c in cols]
            pk = sql.SQL(", ").join(sql.Identifier(k) for k in key)
            con.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
                ident, sql.SQL(", ").join(defs), pk))
            for d in defs:
                con.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {}").format(ident, d))
            where = sql.SQL(" AND ").join(
                sql.SQL("{} = {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in scope.items())
            if replace:
                con.execute(sql.SQL("DELETE FROM {} WHERE {}").format(ident, where))
            if removed:
                con.execute(sql.SQL("DELETE FROM {} WHERE {} AND customer_id = ANY({})").format(
                    ident, where, sql.Literal(list(removed))))
            staging = sql.Identifier(f"_segflow_{table}_staging"[:63])
            con.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP")
                        .format(staging, ident))
            col_list = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
            with con.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(staging, col_list)) as cp:
                for row in data.to_pylist():
                    cp.write_row([row[c] for c in cols])
            others = [c for c in cols if c not in key]
            update = sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in others)
            con.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}")
                        .format(ident, col_list, col_list, staging, pk, update))
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SegflowError(f"Postgres export to table {table!r} failed: {first}") from exc
    return data.num_rows
