"""Customer lookups without a query engine: the per-customer tables of a served copy as
sorted, memory-mapped Arrow files.

A customer lookup (``GET /api/v1/customers/{id}`` and the customer page) reads four things:
the customer's segment spells, record, scores and features. Through DuckDB that is four
queries of about 0.5-2 ms of CPU each (parsing, planning, an index probe), which caps a
2-core machine at a couple of hundred lookups per second. Instead, when a copy of the store
is prepared (once, by the first worker process; :func:`build`), each part is written
**sorted by customer id** to an uncompressed Arrow IPC file beside the copy, with a key file
holding every customer id once (sorted) and, per part, where the customer's rows start and
how many there are. Each worker memory-maps the files (:class:`CustomerIndex`: the pages are
shared between processes through the OS cache, nothing is loaded into the Python heap); a
lookup is one binary search over the key file (about 20 comparisons of bytes) and a slice
of each part converted to Python values: tens of microseconds, no query, no connection.

The SQL of each part (:data:`PARTS`) is the one the DuckDB path runs per customer, so both
give the same rows (checked by the tests on every customer of the test store). Keys are
compared as UTF-8 bytes, DuckDB's ordering of ``VARCHAR``; :func:`build` checks that the key
file is strictly increasing in that order and writes nothing when it is not (or when a
column has a type whose Python value could differ from DuckDB's), and the server then keeps
using DuckDB for lookups.

Files (folder ``<copy>.lookup/``): ``keys.arrow`` (``customer_id`` and, per part,
``<part>_start`` int64 and ``<part>_count`` int32), ``<part>.arrow`` for each part,
``snapshots.arrow`` (computed snapshots per scheme) and ``index.json`` (parts, columns,
row counts). About 60 bytes per spell row and 8 bytes per feature value on disk.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import shutil
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from segflow._duck import arrow_reader, arrow_table

#: Columns of ``customers`` that describe where a row came from, not the customer.
LINEAGE_COLUMNS = ("source", "source_file", "source_row", "load_id")

#: The index format (files written by another version are ignored and rebuilt with the copy).
VERSION = 1

Rows = tuple[list[str], list[tuple[Any, ...]]]


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [table]).fetchall()]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def part_sql(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, str, str]]:
    """Per part present in the store: (table, select list, order of a customer's rows).

    ``spells`` (the customer's segment spells), ``attributes`` (the customer record, the
    current one first when the table keeps history: ``valid_to`` null, latest ``valid_from``),
    ``scores`` (newest snapshot first) and ``features``. The DuckDB path of a lookup runs
    ``SELECT <select> FROM <table> WHERE customer_id = ? ORDER BY <order>``; :func:`build`
    writes the same rows for every customer, sorted by ``customer_id`` then ``<order>``."""
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'").fetchall()}
    out: dict[str, tuple[str, str, str]] = {}
    if "segment_spells" in tables:
        out["spells"] = ("segment_spells", "scheme, segment, valid_from, valid_to", "scheme, valid_from")
    if "customers" in tables:
        cols = _columns(con, "customers")
        keep = [c for c in cols if c not in LINEAGE_COLUMNS]
        order = []
        if "valid_to" in cols:
            order.append("valid_to IS NOT NULL")
        if "valid_from" in cols:
            order.append("valid_from DESC NULLS LAST")
        out["attributes"] = ("customers", ", ".join(_q(c) for c in keep), ", ".join(order))
    if "customer_scores" in tables:
        out["scores"] = ("customer_scores", "snapshot_date, model, score, value", "snapshot_date DESC, model, score")
    if "customer_features" in tables:
        cols = _columns(con, "customer_features")
        out["features"] = ("customer_features", ", ".join(_q(c) for c in cols),
                           "snapshot_date DESC" if "snapshot_date" in cols else "")
    return out


def lookup_sql(table: str, select: str, order: str, *, limit: int | None = None) -> str:
    """The query of one part for one customer (parameter: the customer id)."""
    sql = f"SELECT {select} FROM {table} WHERE customer_id = ?"
    if order:
        sql += f" ORDER BY {order}"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return sql


def _safe(dtype: pa.DataType) -> bool:
    """Types whose Python values from Arrow equal DuckDB's ``fetchall``."""
    return (pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_boolean(dtype)
            or pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_date32(dtype)
            or pa.types.is_decimal(dtype) or pa.types.is_null(dtype)
            or (pa.types.is_timestamp(dtype) and dtype.unit == "us" and dtype.tz is None))


class IndexNotBuilt(Exception):
    """The store's per-customer tables cannot be indexed this way (the server uses DuckDB)."""


def build(con: duckdb.DuckDBPyConnection, folder: Path, *, batch_rows: int = 262_144) -> dict[str, Any]:
    """Write the lookup files of the database ``con`` into ``folder`` (created; replaced
    when present). Returns what ``index.json`` holds (parts, columns, rows, seconds).

    Raises
    ------
    IndexNotBuilt
        When the store has no spells table, a column type is not one :func:`_safe` accepts,
        or the customer ids are not strictly increasing as UTF-8 bytes; ``folder`` is then
        removed.
    """
    t0 = time.perf_counter()
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(mode=0o700)
    try:
        parts = part_sql(con)
        if "spells" not in parts or "segment_snapshots" not in {r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'").fetchall()}:
            raise IndexNotBuilt("no segment_spells/segment_snapshots tables (store schema < 5)")
        meta: dict[str, Any] = {"version": VERSION, "parts": {}}
        for name, (table, select, order) in parts.items():
            sql = f"SELECT {select} FROM {table} WHERE customer_id IS NOT NULL ORDER BY customer_id"
            sql += f", {order}" if order else ""
            reader = arrow_reader(con.execute(sql), batch_rows)
            for field in reader.schema:
                if not _safe(field.type):
                    raise IndexNotBuilt(f"{table}.{field.name} has the Arrow type {field.type}")
            rows = 0
            with ipc.new_file(str(folder / f"{name}.arrow"), reader.schema) as sink:
                for batch in reader:
                    sink.write_batch(batch)
                    rows += batch.num_rows
            meta["parts"][name] = {"table": table, "columns": reader.schema.names, "rows": rows}
        union = " UNION ".join(f"SELECT customer_id FROM {table}" for table, _, _ in parts.values())
        # rows per customer and part: one aggregate per table joined to the keys
        joins, selects = [], []
        for i, (name, (table, _, _)) in enumerate(parts.items()):
            joins.append(f"LEFT JOIN (SELECT customer_id, count(*) AS n FROM {table} GROUP BY 1) c{i} USING (customer_id)")
            selects.append(f"coalesce(c{i}.n, 0)::INTEGER AS {name}_count")
        keys = arrow_table(con.execute(
            f"SELECT customer_id, {', '.join(selects)} FROM (SELECT customer_id FROM ({union}) "
            f"WHERE customer_id IS NOT NULL) k {' '.join(joins)} ORDER BY customer_id"))
        ids = keys.column("customer_id").combine_chunks().cast(pa.string())
        if len(ids) > 1 and not pc.all(pc.less(ids.slice(0, len(ids) - 1).cast(pa.binary()),
                                                 ids.slice(1).cast(pa.binary()))).as_py():
            raise IndexNotBuilt("customer ids are not in byte order")
        columns: dict[str, pa.Array] = {"customer_id": ids}
        for name in parts:
            count = keys.column(f"{name}_count").combine_chunks().cast(pa.int32())
            total = int(pc.sum(count).as_py() or 0)
            if total != meta["parts"][name]["rows"]:
                raise IndexNotBuilt(f"{name}: {total} rows counted, {meta['parts'][name]['rows']} written")
            ends = pc.cumulative_sum(count.cast(pa.int64()))
            columns[f"{name}_start"] = pc.subtract(ends, count.cast(pa.int64()))
            columns[f"{name}_count"] = count
        table = pa.table(columns)
        with ipc.new_file(str(folder / "keys.arrow"), table.schema) as sink:
            sink.write_table(table)  # one batch: the key search reads one array
        snaps = arrow_table(con.execute("SELECT scheme, snapshot_date FROM segment_snapshots ORDER BY 1, 2"))
        with ipc.new_file(str(folder / "snapshots.arrow"), snaps.schema) as sink:
            sink.write_table(snaps)
        meta["customers"] = len(ids)
        meta["seconds"] = round(time.perf_counter() - t0, 2)
        (folder / "index.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return meta
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


class _Keys:
    """The sorted customer ids of the key file as a sequence of ``bytes`` (for ``bisect``),
    read straight from the memory-mapped buffers."""

    def __init__(self, array: pa.StringArray) -> None:
        self._n = len(array)
        offsets, data = array.buffers()[1], array.buffers()[2]
        self._offsets = memoryview(offsets).cast("i")[array.offset: array.offset + self._n + 1] if self._n else []
        self._data = memoryview(data) if data is not None else memoryview(b"")

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> bytes:
        return self._data[self._offsets[i]: self._offsets[i + 1]].tobytes()


def _open(path: Path) -> pa.Table:
    return ipc.open_file(pa.memory_map(str(path), "r")).read_all()


def _one_array(table: pa.Table, name: str) -> pa.Array:
    """A column of a one-batch file as one array (zero-copy; an empty file has no batch)."""
    column = table.column(name)
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _ints(array: pa.Array, code: str) -> Any:
    """The values of an int32/int64 array without nulls as a memoryview (fast indexing)."""
    if len(array) == 0:
        return memoryview(b"").cast(code)
    return memoryview(array.buffers()[1]).cast(code)[array.offset: array.offset + len(array)]


class CustomerIndex:
    """The lookup files of one copy, memory-mapped (see the module notes).

    Parameters
    ----------
    folder : Path
        What :func:`build` wrote.

    Raises
    ------
    FileNotFoundError, ValueError
        When the folder is missing or was written by another format version.
    """

    def __init__(self, folder: Path) -> None:
        folder = Path(folder)
        meta = json.loads((folder / "index.json").read_text(encoding="utf-8"))
        if meta.get("version") != VERSION:
            raise ValueError(f"lookup index version {meta.get('version')}, expected {VERSION}")
        self.meta = meta
        keys = _open(folder / "keys.arrow")
        self._keys = _Keys(_one_array(keys, "customer_id"))
        self._parts: dict[str, tuple[list[str], pa.Table, Any, Any]] = {}
        for name, info in meta["parts"].items():
            table = _open(folder / f"{name}.arrow")
            batches = [[table.column(j).chunk(i) for j in range(table.num_columns)]
                       for i in range(table.column(0).num_chunks)] if table.num_columns else []
            bounds = [0]
            for arrays in batches:
                bounds.append(bounds[-1] + len(arrays[0]))
            self._parts[name] = (list(info["columns"]), table, batches, bounds,
                                 _ints(_one_array(keys, f"{name}_start"), "q"),
                                 _ints(_one_array(keys, f"{name}_count"), "i"))
        snapshots: dict[str, list[dt.date]] = {}
        snaps = _open(folder / "snapshots.arrow")
        for scheme, date in zip(snaps.column("scheme").to_pylist(), snaps.column("snapshot_date").to_pylist(),
                                strict=True):
            snapshots.setdefault(scheme, []).append(date)
        self.snapshots = snapshots

    def __contains__(self, part: str) -> bool:
        return part in self._parts

    def position(self, customer_id: str) -> int | None:
        """The customer's row in the key file, or None when no part holds the customer."""
        target = customer_id.encode("utf-8", "surrogatepass")
        k = bisect.bisect_left(self._keys, target)
        return k if k < len(self._keys) and self._keys[k] == target else None

    def rows(self, part: str, position: int | None) -> Rows:
        """(columns, rows as tuples) of one part for the customer at ``position``."""
        columns, table, batches, bounds, starts, counts = self._parts[part]
        if position is None or counts[position] == 0:
            return columns, []
        start, n = starts[position], counts[position]
        if n > 4:  # many rows: converting column slices (about 4 us per column) is cheaper
            piece = table.slice(start, n)
            return columns, list(zip(*(c.to_pylist() for c in piece.itercolumns()), strict=True))
        b = bisect.bisect_right(bounds, start) - 1
        out = []
        for row in range(start, start + n):
            while row >= bounds[b + 1]:  # a customer's rows may go on in the next batch
                b += 1
            local = row - bounds[b]
            # value by value from the batch's arrays: for one row of 52 features four times
            # faster than slicing the table and converting each column
            out.append(tuple(array[local].as_py() for array in batches[b]))
        return columns, out


def open_index(folder: Path) -> CustomerIndex | None:
    """The index in ``folder``, or None when there is none (or it cannot be read)."""
    try:
        return CustomerIndex(folder)
    except (OSError, ValueError, KeyError, pa.ArrowException):
        return None
