"""Response headers of every answer, and personal data rules.

Headers: a Content-Security-Policy allowing only this server's scripts (and inline ones
carrying the page's nonce), no framing, no MIME sniffing, no referrer to other sites, and ``no-store``
on everything but the static library files. No CORS headers are ever sent, so browsers keep
other sites from reading the API.

Personal data: the columns the exports' name rule finds personal
(:func:`segflow.exports.is_personal`, of each its kind: :func:`segflow.exports.pii_kind`)
are masked in JSON and pages as the
exports' ``mask`` policy masks them (one function per kind of value:
:func:`segflow.exports.mask_array`) and hashed in CSV downloads as the exports' ``hash``
policy hashes them, by its own expression (:func:`hash_columns`:
:func:`segflow.exports._pii.hash_key`, whole columns in an in-memory DuckDB), under the
exports' names (``email_sha256``:
:func:`segflow.exports._pii.hashed_column`), unless an analyst asks with ``pii=full``;
viewers never reach customer-level routes at all. A customer id that is itself an e-mail
address or phone number is shown as its pseudonymous key in every answer but ``pii=full``
(:mod:`segflow.server._pseudonyms`).
"""

from __future__ import annotations

import io
import math
import secrets
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from segflow._duck import arrow_table
from segflow.exports._pii import hashed_column, is_personal, mask_frame, mask_values, pii_kind

if TYPE_CHECKING:
    import pyarrow as pa

_STATIC = ("/static/",)


_CSP = ("default-src 'none'; script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_FIXED = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),  # "no-referrer" makes Chromium send Origin: null
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


def security_headers(nonce: str, static: bool = False) -> list[tuple[bytes, bytes]]:
    """The headers :class:`SecurityHeaders` adds to an answer (``nonce``: the page's CSP nonce;
    ``static``: a static library file, which may be cached)."""
    headers = [(b"content-security-policy", _CSP.format(nonce=nonce).encode()), *_FIXED]
    if not static:
        headers.append((b"cache-control", b"no-store"))
    return headers


#: The headers of the answers the HTTP protocol itself gives, before any app runs (431, 400,
#: 503: segflow.server._protocol), as raw header lines: the fixed ones, ``no-store``, and a
#: policy allowing nothing (those answers hold no script, style or image).
PROTOCOL_HEADER_LINES = b"".join(name + b": " + value + b"\r\n" for name, value in [
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
    *_FIXED, (b"cache-control", b"no-store")])


#: The body of every 500 of the API: one line, no traceback (that goes to the server's log).
INTERNAL_ERROR = b'{"detail":"internal server error; the server log has the details"}'
_INTERNAL_PAGE = (b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Error 500 \xc2\xb7 '
                  b'segflow</title></head><body><h1 id="title">Error 500</h1><p class="error" id="error">'
                  b"Internal server error; the server log has the details.</p></body></html>")


def wants_html(scope: dict[str, Any]) -> bool:
    """Whether a request is a browser's page request (else an API call): not under
    ``/api/`` and accepting ``text/html`` (the app's error handlers choose the same way)."""
    if scope["path"].startswith("/api/"):
        return False
    accept = dict(scope.get("headers") or []).get(b"accept", b"")
    return b"text/html" in accept


async def internal_error(scope: dict[str, Any], send: Any, nonce: str) -> None:
    """Answer 500: :data:`INTERNAL_ERROR` as JSON to an API call, a short page to a browser,
    with the security headers (Starlette's own answer was ``Internal Server Error`` as plain
    text, without them)."""
    html = wants_html(scope)
    body, kind = (_INTERNAL_PAGE, b"text/html; charset=utf-8") if html else (INTERNAL_ERROR, b"application/json")
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()),
               *security_headers(nonce)]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """ASGI middleware adding the security headers and a per-request CSP nonce; an error the
    app did not handle answers :func:`internal_error` (then propagates, for the log)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        static = scope["path"].startswith(_STATIC)

        started = False

        async def send_with_headers(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), *security_headers(nonce, static)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if not started:
                await internal_error(scope, send, nonce)
            raise  # uvicorn logs the traceback; Starlette sees the answer started and sends nothing


#: The in-memory engine hashing the server's personal columns (an Ibis DuckDB backend), the
#: SQL of its query per tuple of column kinds, and their lock (one query at a time on it).
_HASHER: dict[Any, Any] = {}
_HASHER_LOCK = threading.Lock()
#: The name the values to hash have in that engine.
_HASH_INPUT = "_segflow_hash_input"


def _text(values: Sequence[Any]) -> pa.Array:
    """``values`` as Arrow text: a missing value (None, NaN) null, any other its ``str()``
    (text columns converted at once; another type value by value, as :func:`str` writes it)."""
    import pyarrow as pa

    try:
        return pa.array(values, pa.string(), from_pandas=True)
    except (pa.ArrowException, TypeError):
        missing = [v is None or (isinstance(v, float) and math.isnan(v)) for v in values]
        return pa.array([None if m else str(v) for v, m in zip(values, missing, strict=True)], pa.string())


def _hash_sql(kinds: tuple[str, ...]) -> str:
    """The SQL hashing columns ``c0``, ``c1``, ... of :data:`_HASH_INPUT`, each as the
    exports hash a column named ``kinds[j]`` (:func:`segflow.exports._pii.hash_key`),
    compiled once per tuple of kinds (call under :data:`_HASHER_LOCK`); the first run, on no
    rows, registers the expression's Python function (values that are not printable ASCII)
    with the engine."""
    import ibis
    import pyarrow as pa

    from segflow.exports._pii import hash_key

    if "backend" not in _HASHER:
        _HASHER["backend"] = ibis.duckdb.connect(threads=1)
    backend = _HASHER["backend"]
    sql = _HASHER.get(kinds)
    if sql is None:
        names = [f"c{j}" for j in range(len(kinds))]
        t = ibis.table({n: "string" for n in names}, name=_HASH_INPUT)
        expr = t.select(**{n: hash_key(kind, t[n]).hexdigest("sha256") for n, kind in zip(names, kinds, strict=True)})
        backend.con.register(_HASH_INPUT, pa.table({n: pa.array([], pa.string()) for n in names}))
        try:
            backend.to_pyarrow(expr)
        finally:
            backend.con.unregister(_HASH_INPUT)
        sql = _HASHER[kinds] = str(backend.compile(expr))
    return sql


def hash_columns(columns: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
    """The SHA-256 hex of each value of each ``(column, values)``, hashed as the exports'
    ``hash`` policy hashes ``column`` (:func:`segflow.exports._pii.hash_key`: a phone number
    in E.164 form, anything else as ``str.strip().lower()``), by that same expression, in an
    in-memory DuckDB, a whole column at a time (only the values that are not printable ASCII
    pass through Python); a missing value, or a phone number without digits, gives None.
    One query for all the columns."""
    import pyarrow as pa

    if not columns or not len(columns[0][1]):
        return [[] for _ in columns]
    data = pa.table({f"c{j}": _text(values) for j, (_, values) in enumerate(columns)})
    kinds = tuple(pii_kind(column) or "text" for column, _ in columns)
    with _HASHER_LOCK:
        sql = _hash_sql(kinds)
        con = _HASHER["backend"].con
        con.register(_HASH_INPUT, data)
        try:
            out = arrow_table(con.sql(sql))
        finally:
            con.unregister(_HASH_INPUT)
    return [out.column(j).to_pylist() for j in range(len(columns))]


def hash_value(value: Any, column: str = "") -> Any:
    """SHA-256 hex of the value as ad platforms match it: a phone number (``column``
    ``phone``) in E.164 form (:func:`segflow.exports.phone_key`), anything else trimmed and
    lower-cased; the same hashes as the exports' ``hash`` policy (:func:`hash_columns` of one
    value; a missing value stays as it is)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return value
    return hash_columns([(column, [value])])[0][0]


def protect(frame: pd.DataFrame, how: str, key: bytes | None = None) -> pd.DataFrame:
    """Apply ``how`` (``mask``: :func:`segflow.exports.mask_array`, a column at a time,
    ``hash``: :func:`hash_columns`, every personal column in one query, renamed
    ``<column>_sha256`` as the exports name it, :func:`segflow.exports._pii.hashed_column`;
    or ``full``) to the personal-data columns; with ``key`` (the project's secret,
    :func:`segflow.server._pseudonyms.server_key`), and ``how`` not ``full``, a
    ``customer_id`` that is an e-mail or a phone number becomes its pseudonymous key."""
    if how == "full":
        return frame
    if key is not None:
        from segflow.server._pseudonyms import pseudonymise_frame

        frame = pseudonymise_frame(frame, key)
    if how != "hash":
        return mask_frame(frame)  # each column's values masked at once (segflow.exports.mask_frame)
    out = frame.copy()
    pii = [col for col in out.columns if is_personal(col)]
    hashed = hash_columns([(col, out[col].tolist()) for col in pii])
    for col, values in zip(pii, hashed, strict=True):
        out[col] = pd.Series(values, index=out.index, dtype=object)
    return out.rename(columns={c: hashed_column(c) for c in pii})


def protect_rows(columns: list[str], rows: list[tuple[Any, ...]], how: str,
                 key: bytes | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """:func:`protect` on plain rows (columns, tuples; hashed columns renamed as there)."""
    if how == "full":
        return columns, rows
    if key is not None:
        from segflow.server._pseudonyms import pseudonymise_rows

        rows = pseudonymise_rows(columns, rows, key)
    pii = [j for j, c in enumerate(columns) if is_personal(c)]
    if not pii:
        return columns, rows
    table = [list(r) for r in rows]
    if how == "hash":  # every personal column in one query (hash_columns)
        hashed = hash_columns([(columns[j], [r[j] for r in table]) for j in pii])
        for j, values in zip(pii, hashed, strict=True):
            for r, v in zip(table, values, strict=True):
                r[j] = v
        return [hashed_column(c) if j in pii else c for j, c in enumerate(columns)], [tuple(r) for r in table]
    # masked a column at a time (segflow.exports.mask_values: one array per column)
    for j in pii:
        for r, v in zip(table, mask_values(columns[j], [r[j] for r in table]), strict=True):
            r[j] = v
    return columns, [tuple(r) for r in table]


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as CSV (UTF-8, header), through segflow's one CSV writer (formulas
    neutralised)."""
    from segflow._csv import write_csv

    sink = io.BytesIO()
    write_csv(frame, sink)
    return sink.getvalue()


#: Longest download name (UTF-8 bytes) sent: file systems take 255.
MAX_FILENAME_BYTES = 180


def attachment(filename: str) -> str:
    """A Content-Disposition header for a download named ``filename`` (names carry scheme
    and campaign ids from the data): an ASCII ``filename`` (other characters, quotes and
    separators as ``_``) and the exact name as ``filename*`` (RFC 6266, UTF-8). A header
    value must be Latin-1: a campaign id such as 春季促销 made the download an HTTP 500.
    Path separators become ``_`` in both, and a name longer than
    :data:`MAX_FILENAME_BYTES` in UTF-8 is cut before its extension (file systems take 255
    bytes: a download named after a 300-character scheme could not be saved), keeping its
    last 24 characters."""
    import re
    from urllib.parse import quote

    stem, dot, ext = filename.rpartition(".")
    stem, ext = (stem, dot + ext) if dot else (filename, "")
    exact = re.sub(r"[/\\\x00-\x1f\x7f]", "_", stem)
    budget = MAX_FILENAME_BYTES - len(ext.encode())
    if len(exact.encode()) > budget:  # keep the end (dates): "segments-LLLL…LL-2025-07-01"
        tail = exact[-24:]
        room = budget - len(tail.encode()) - len("…".encode())
        exact = exact.encode()[:room].decode(errors="ignore") + "…" + tail
    exact += ext
    plain = re.sub(r'[^A-Za-z0-9._-]', "_", exact.replace("…", "_"))
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(exact, safe='')}"
