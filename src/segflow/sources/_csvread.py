"""The CSV reader: Python's ``csv`` module over numbered physical lines, with recovery.

Why not DuckDB's reader: after an unclosed quote it stops, and the rest of the file is
neither loaded nor quarantined; blank lines shift its row numbers. This reader

- numbers every record by its first physical line (``_row`` = line - 1, so row 1 is line 2
  when the header is on line 1; ``_row`` = line in a file without a header line, the
  ``header = false`` option); blank lines are counted, not numbered as rows;
- quarantines a record with the wrong number of fields (``malformed_row``) with its raw text,
  uncut; when such a record spans several lines because a quote opened and never closed
  properly (a runaway quoted field), only its first line is quarantined and reading resumes
  on the next line, so one stray quote costs one row, not the rest of the file;
- quarantines lines whose bytes are invalid in the file's encoding;
- reads ``.gz``, ``.bz2`` and ``.xz`` files, and any line ending (``\\n``, ``\\r\\n``, ``\\r``);
- hashes exactly the bytes it read and counts them, and counts physical lines apart from the
  CSV parser: header + blank lines + the lines of every record must equal the lines of the
  file, and the bytes read must equal the file size, or the load fails loudly
  (:class:`~segflow.errors.StoreError`) instead of losing rows.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import hashlib
import io
import lzma
import re
import uuid
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from segflow.errors import InputError, StoreError
from segflow.store._memory import memory_limit_bytes

#: Longest field the CSV parser holds (a runaway quoted field is cut off here and recovered).
MAX_FIELD_CHARS = 64 * 1024 * 1024
_BATCH = 100_000
_BAD_BYTES = re.compile("[\udc80-\udcff]")
#: Latin-1 reads every byte, 0x80-0x9F as the C1 control characters, which no text holds: in
#: a file called latin-1 they are mostly windows-1252's euro sign, dashes and curly quotes.
#: A line holding one is quarantined with that advice, not stored with control characters.
_C1_BYTES = re.compile("[\udc80-\udcff\x80-\x9f]")


def _latin1(encoding: str) -> bool:
    """Whether ``encoding`` names Latin-1 (``latin-1``, ``iso-8859-1``, ``l1``, ...)."""
    try:
        return codecs.lookup(encoding).name == "iso8859-1"
    except LookupError:
        return False


def bad_bytes(encoding: str) -> re.Pattern[str]:
    """What marks a decoded line's bytes as no text in ``encoding``: the surrogates of bytes
    it cannot decode, and for Latin-1 the C1 control characters too."""
    return _C1_BYTES if _latin1(encoding) else _BAD_BYTES
_OPENERS = {".gz": lambda fh: gzip.GzipFile(fileobj=fh), ".bz2": bz2.BZ2File, ".xz": lzma.LZMAFile}
COMPRESSED = tuple(_OPENERS)
_DECOMPRESS_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)

#: Longest CSV line DuckDB will read; longer values are quarantined by ``field_too_long``.
MAX_LINE_BYTES = 64 * 1024 * 1024


def csv_buffer_sizes(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """DuckDB CSV reader ``(buffer_size, max_line_size)`` in bytes under the connection's
    memory limit: DuckDB's default buffer, 16 x max_line_size = 1 GiB, fails below a limit
    of about 2 GB. Here the buffer is at most an eighth of the limit and a line at most half
    the buffer; a longer line is a reject cut to 10,000 characters, so the file takes this
    module's reader instead (as any file with a reject that long does)."""
    buffer = min(16 * MAX_LINE_BYTES, memory_limit_bytes(con) // 8)
    return buffer, min(MAX_LINE_BYTES, buffer // 2)


@dataclass
class CsvTally:
    """The reader's own count of the file, checked against the records it staged."""

    bytes_read: int = 0
    file_bytes: int = 0
    lines: int = 0  # physical lines (a last line without a line end counts)
    header_lines: int = 0
    blank_lines: int = 0
    record_lines: int = 0  # lines of the records (accepted and quarantined)
    records: int = 0  # data records staged: accepted rows + rejects
    digest: str | None = None  # SHA-256 of the bytes read (the file as stored)
    complete: bool = True  # False when a row limit stopped the read early

    def check(self, label: str) -> None:
        """Fail loudly when the counts disagree (a reader bug would otherwise lose rows)."""
        if not self.complete:
            return
        if self.bytes_read != self.file_bytes:
            raise StoreError(f"file {label}: read {self.bytes_read} bytes of {self.file_bytes}; "
                             "nothing was loaded from it")
        if self.header_lines + self.blank_lines + self.record_lines != self.lines:
            raise StoreError(
                f"file {label}: {self.lines} lines, but header ({self.header_lines}) + blank "
                f"({self.blank_lines}) + record lines ({self.record_lines}) disagree; nothing "
                "was loaded from it")


class _Tap(io.RawIOBase):
    """A binary file that hashes and counts the bytes read through it."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh, self.sha, self.n = fh, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        n = self.fh.readinto(buf)
        if n:
            self.sha.update(memoryview(buf)[:n])
            self.n += n
        return n or 0

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


@dataclass
class Prescan:
    """What one pass over the raw bytes shows (hash, size, lines, and whether it is simple)."""

    digest: str
    size: int
    lines: int
    simple: bool  # no CR-only line end, blank line or NUL byte


def prescan(path: Path) -> Prescan:
    """Hash and count the file's bytes and lines in one pass (C-speed byte operations).

    A *simple* file (no blank line, CR-only line end or NUL byte) is first given to DuckDB's
    CSV reader; its result is kept only when its rows plus rejects equal the lines after the
    header, i.e. each physical line was one record (a quoted line break or an unclosed quote
    makes fewer records than lines, and the careful reader takes over).
    """
    sha, size, lines = hashlib.sha256(), 0, 0
    simple, prev = True, b"\n"  # a blank first line counts as a blank line
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            sha.update(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
            if simple:
                joined = prev[-1:] + chunk
                simple = not (b"\x00" in chunk
                              or joined.count(b"\r") != joined.count(b"\r\n") + joined.endswith(b"\r")
                              or b"\n\n" in joined or b"\n\r\n" in joined)
            prev = chunk
    if prev and not prev.endswith(b"\n"):
        lines += 1
    return Prescan(sha.hexdigest(), size, lines, simple and not prev.endswith(b"\r"))


def decompressed(path: Path, raw: IO[bytes]) -> IO[bytes]:
    """The file's content: decompressed for ``.gz``, ``.bz2`` and ``.xz``."""
    opener = _OPENERS.get(path.suffix.lower())
    return opener(raw) if opener else raw  # type: ignore[operator]


def head_bytes(path: Path, n: int = 256 * 1024) -> bytes:
    """The first ``n`` bytes of the (decompressed) file."""
    try:
        with path.open("rb") as fh:
            return decompressed(path, fh).read(n)
    except _DECOMPRESS_ERRORS as exc:
        raise InputError(f"cannot decompress: {exc}", file=str(path)) from exc


class _Lines:
    """Numbered physical lines of a text stream, with a push-back for recovery."""

    def __init__(self, text: IO[str]) -> None:
        self.it = iter(text)
        self.back: deque[tuple[int, str]] = deque()
        self.count = 0
        self.taken: list[tuple[int, str]] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.back:
            item = self.back.popleft()
        else:
            line = next(self.it)
            self.count += 1
            item = (self.count, line)
        self.taken.append(item)
        return item[1]

    def push_back(self, items: list[tuple[int, str]]) -> None:
        self.back.extendleft(reversed(items))


def _dialect(delimiter: str, quote: str, escape: str) -> dict[str, Any]:
    if not quote:
        return {"delimiter": delimiter, "quoting": csv.QUOTE_NONE, "escapechar": escape or None,
                "strict": True}
    return {"delimiter": delimiter, "quotechar": quote, "doublequote": escape in ("", quote),
            "escapechar": None if escape in ("", quote) else escape, "strict": True}


def _text(lines: list[tuple[int, str]]) -> str:
    return "".join(t for _, t in lines).rstrip("\r\n")


def _has_bad_bytes(lines: list[tuple[int, str]], bad: re.Pattern[str] = _BAD_BYTES) -> bool:
    return any(not t.isascii() and bad.search(t) for _, t in lines)


class _Sink:
    """Accumulates rows and rejects and appends them to DuckDB tables in Arrow batches."""

    def __init__(self, con: duckdb.DuckDBPyConnection, header: list[str], rows: str, rejects: str):
        self.con, self.header, self.rows_t, self.rej_t = con, header, rows, rejects
        self.rows: list[list[str]] = []
        self.numbers: list[int] = []
        self.rejects: list[tuple[int, str, str]] = []

    def add(self, row: int, fields: list[str]) -> None:
        self.numbers.append(row)
        self.rows.append(fields)
        if len(self.rows) >= _BATCH:
            self.flush()

    def reject(self, row: int, raw: str, reason: str) -> None:
        self.rejects.append((row, raw, reason))

    def flush(self) -> None:
        if self.rows:
            cols = [pa.array(self.numbers, pa.int64())]
            for values in zip(*self.rows, strict=True):
                arr = pa.array(values, pa.string())
                cols.append(pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr))
            self._append(self.rows_t, pa.table(cols, names=["_row", *self.header]))
            self.rows, self.numbers = [], []
        if self.rejects:
            rows, raws, reasons = zip(*self.rejects, strict=True)
            self._append(self.rej_t, pa.table(
                [pa.array(rows, pa.int64()), pa.array(raws, pa.string()),
                 pa.array(reasons, pa.string()), pa.nulls(len(rows), pa.string())],
                names=["_row", "raw_row", "reason", "column_name"]))
            self.rejects = []

    def _append(self, table: str, data: pa.Table) -> None:
        view = f"_sf_batch_{uuid.uuid4().hex[:8]}"
        self.con.register(view, data)
        try:
            self.con.execute(f"INSERT INTO {table} SELECT * FROM {view}")
        finally:
            self.con.unregister(view)


def read_csv_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    label: str,
    *,
    header: list[str],
    delimiter: str,
    quote: str,
    escape: str,
    encoding: str,
    rows_table: str,
    rejects_table: str,
    limit: int | None = None,
    skip: int = 1,
) -> CsvTally:
    """Read ``path`` into ``rows_table`` (``_row`` and the header's columns, VARCHAR) and
    ``rejects_table`` (``_row, raw_row, reason, column_name``); both must exist. ``skip``:
    header lines (1, or 0 for a file without one: ``header`` are then ``options.names`` and
    a row's number is its line).

    Returns the tally (hash, bytes, lines, records); :meth:`CsvTally.check` is called here.
    """
    tally = CsvTally(file_bytes=path.stat().st_size)
    sink = _Sink(con, header, rows_table, rejects_table)
    ncols = len(header)
    dialect = _dialect(delimiter, quote, escape)
    if csv.field_size_limit() < MAX_FIELD_CHARS:
        csv.field_size_limit(MAX_FIELD_CHARS)
    with path.open("rb") as fh:
        tap = _Tap(fh)
        try:
            data = decompressed(path, io.BufferedReader(tap, 1 << 20))
            text = io.TextIOWrapper(data, encoding=encoding, errors="surrogateescape", newline="")
            _parse(_Lines(text), dialect, ncols, header, sink, tally, limit, encoding, skip)
            if tally.complete:
                tap.drain()
        except _DECOMPRESS_ERRORS as exc:
            raise InputError(f"cannot decompress: {str(exc).splitlines()[0]}", file=label) from exc
        except UnicodeDecodeError as exc:  # only codecs whose errors escape handling cannot fix
            raise InputError(f"the file is not valid {encoding} text: {exc.reason} (set "
                             "options.encoding)", file=label) from exc
        sink.flush()
        tally.bytes_read, tally.digest = tap.n, tap.sha.hexdigest()
    tally.check(label)
    return tally


def drop_padding(fields: list[str], ncols: int) -> None:
    """Drop the fields past the header's ``ncols`` when every one is empty (``a,b,c,d,,``, as
    a spreadsheet export pads a row; quoted ``""`` is empty too), as DuckDB's reader does. A
    line with a non-empty field past them keeps all its fields: it is malformed (its reason
    counts them all), as is a line short of fields."""
    if len(fields) > ncols and not any(fields[ncols:]):
        del fields[ncols:]


def expected_fields(ncols: int, named: bool = False) -> str:
    """How a ``malformed_row`` reason names the fields a row should have: the header's, or
    those of ``options.names`` (a file without a header line)."""
    return f"the {ncols} of options.names" if named else f"the header's {ncols}"


def malformed_reason(ncols: int, fields: int = 0, error: str | None = None, *,
                     opened_on: int | None = None, encoding: str | None = None,
                     named: bool = False) -> str:
    """Why a CSV line is quarantined as ``malformed_row``, in the words of both CSV readers
    (this one and DuckDB's, :func:`reword_rejects`): ``segflow sources check`` and ``segflow
    ingest`` name the same reason for the same line. ``fields``: the fields split (of the
    header's ``ncols``); ``error``: the CSV parser's; ``opened_on``: the line of a quoted
    field that ran past its line end; ``encoding``: the line's bytes are not valid in it;
    ``named``: the columns are ``options.names`` (a file without a header line)."""
    count = f"{fields} field{'' if fields == 1 else 's'}"
    if opened_on is not None:
        return (f"a quoted field opened on line {opened_on} does not close properly "
                f"({error or f'{count} instead of {ncols}'}); this line is quarantined alone "
                "and reading resumes on the next line")
    if encoding is not None and _latin1(encoding):
        return ("bytes 0x80-0x9F, control characters in latin-1 and no text: most likely "
                "the euro sign, dashes or quotes of windows-1252 (set options.encoding = "
                "'windows-1252')")
    if encoding is not None:
        return (f"bytes that are not valid {encoding.removesuffix('-sig')} text (set "
                "options.encoding, e.g. 'windows-1252' or 'latin-1')")
    if error:
        return f"cannot split the line: {error}"
    return f"{count} instead of {expected_fields(ncols, named)}"


def reword_rejects(con: duckdb.DuckDBPyConnection, rejects: str, ncols: int, delimiter: str,
                   quote: str, *, named: bool = False) -> None:
    """Give each line that DuckDB's CSV reader rejected (``rejects``: ``_row, raw_row,
    reason``, DuckDB's "ERROR TYPE: message") the reason this reader gives the same UTF-8
    line (:func:`malformed_reason`); DuckDB's own message where it alone rejects the line.
    No column is named (DuckDB names one, the last for a line short of fields; this reader
    cannot tell which field broke a line). ``named``: the columns are ``options.names``."""
    rows = con.execute(f"SELECT _row, raw_row, reason FROM {rejects}").fetchall()
    if not rows:
        return
    dialect = _dialect(delimiter, quote, quote)
    reasons = []
    for _, raw, duckdb_reason in rows:
        if duckdb_reason.startswith("INVALID ENCODING"):
            reasons.append(malformed_reason(ncols, encoding="utf-8"))
            continue
        try:
            fields, error = next(csv.reader([raw], **dialect), []), None
        except csv.Error as exc:
            fields, error = [], str(exc)
        drop_padding(fields, ncols)
        if not error and len(fields) == ncols:  # DuckDB is stricter here: its first message
            error = duckdb_reason.split("; ")[0].split(": ", 1)[-1].rstrip(".")
        reasons.append(malformed_reason(ncols, len(fields), error, named=named))
    view = f"_sf_reasons_{uuid.uuid4().hex[:8]}"
    con.register(view, pa.table({"_row": [r[0] for r in rows], "reason": reasons}))
    try:
        con.execute(f"UPDATE {rejects} SET reason = v.reason, column_name = NULL FROM {view} v "
                    f"WHERE {rejects}._row = v._row")
    finally:
        con.unregister(view)


def _parse(lines: _Lines, dialect: dict[str, Any], ncols: int, header: list[str], sink: _Sink,
           tally: CsvTally, limit: int | None, encoding: str, skip: int = 1) -> None:
    reader = csv.reader(lines, **dialect)
    seen_header, named = not skip, not skip
    bad = bad_bytes(encoding)
    while True:
        lines.taken = []
        try:
            fields = next(reader)
            error = None
        except StopIteration:
            break
        except csv.Error as exc:
            fields, error = None, str(exc)
            reader = csv.reader(lines, **dialect)  # a fresh parser state after an error
        taken = lines.taken
        if not taken:
            break
        first = taken[0][0]
        if fields is not None and (not fields or (len(fields) == 1 and not fields[0].strip())) \
                and len(taken) == 1:
            tally.blank_lines += 1
            continue
        if not seen_header:
            seen_header = True
            tally.header_lines = len(taken)
            continue
        if limit is not None and tally.records >= limit:
            tally.complete = False
            break
        if fields is not None:
            drop_padding(fields, ncols)
        if fields is not None and len(fields) == ncols and not _has_bad_bytes(taken, bad):
            tally.records += 1
            tally.record_lines += len(taken)
            sink.add(first - skip, fields)
            continue
        if len(taken) > 1:  # a quote opened and ran past the line end: quarantine line 1 only
            lines.push_back(taken[1:])
            taken = taken[:1]
            reason = malformed_reason(ncols, len(fields or []), error, opened_on=first)
        elif _has_bad_bytes(taken, bad):
            reason = malformed_reason(ncols, encoding=encoding)
        else:
            reason = malformed_reason(ncols, len(fields or []), error, named=named)
        tally.records += 1
        tally.record_lines += 1
        sink.reject(first - skip, _text(taken).encode("utf-8", "backslashreplace").decode("utf-8"),
                    reason)
    tally.lines = lines.count
    if lines.back:  # lines pushed back but not re-read (only when a limit stopped the read)
        tally.complete = False


def read_lines(con: duckdb.DuckDBPyConnection, path: Path, label: str, table: str,
               rejects: str, *, limit: int | None = None, encoding: str = "utf-8-sig",
               skip: int = 0, skip_blank: bool = True) -> CsvTally:
    """Read a text file's lines into ``table`` (``_row`` = physical line - ``skip``, the
    header lines; ``line`` without its line end), skipping blank lines unless
    ``skip_blank`` is False (the caller then judges them); lines with bytes that are not
    valid ``encoding`` text go to ``rejects`` (both tables must exist). JSON lines, and the
    lines of a ``delimiter = "whitespace"`` source (:mod:`segflow.sources._textlines`).
    Any line ending, ``.gz``/``.bz2``/``.xz``; hashes and counts what it read."""
    tally = CsvTally(file_bytes=path.stat().st_size)
    rows: list[int] = []
    texts: list[str] = []
    bad: list[tuple[int, str, str]] = []
    why_bad = ("bytes that are not valid UTF-8 text" if skip_blank  # JSON lines
               else malformed_reason(0, encoding=encoding))
    bad_text = bad_bytes(encoding)

    def flush() -> None:
        if rows:
            _Sink(con, [], table, rejects)._append(table, pa.table(
                [pa.array(rows, pa.int64()), pa.array(texts, pa.string())], names=["_row", "line"]))
            rows.clear()
            texts.clear()

    with path.open("rb") as fh:
        tap = _Tap(fh)
        try:
            data = decompressed(path, io.BufferedReader(tap, 1 << 20))
            text = io.TextIOWrapper(data, encoding=encoding, errors="surrogateescape", newline="")
            for n, line in enumerate(text, start=1):
                tally.lines = n
                if n <= skip:
                    tally.header_lines += 1
                    continue
                if skip_blank and not line.strip():
                    tally.blank_lines += 1
                    continue
                if limit is not None and tally.records >= limit:
                    tally.complete = False
                    break
                tally.records += 1
                tally.record_lines += 1
                if not line.isascii() and bad_text.search(line):
                    raw = line.rstrip("\r\n").encode("utf-8", "backslashreplace").decode("utf-8")
                    bad.append((n - skip, raw, why_bad))
                    continue
                rows.append(n - skip)
                texts.append(line.rstrip("\r\n"))
                if len(rows) >= _BATCH:
                    flush()
            if tally.complete:
                tap.drain()
        except _DECOMPRESS_ERRORS as exc:
            raise InputError(f"cannot decompress: {str(exc).splitlines()[0]}", file=label) from exc
        flush()
        if bad:
            n, raw, why = zip(*bad, strict=True)
            _Sink(con, [], table, rejects)._append(rejects, pa.table(
                [pa.array(n, pa.int64()), pa.array(raw, pa.string()), pa.array(why, pa.string()),
                 pa.nulls(len(n), pa.string())], names=["_row", "raw_row", "reason", "column_name"]))
        tally.bytes_read, tally.digest = tap.n, tap.sha.hexdigest()
    tally.check(label)
    return tally
