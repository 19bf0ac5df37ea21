"""Response headers of every answer, and personal data rules.

Headers: a Content-Security-Policy allowing only this server's scripts (and inline ones
carrying the page's nonce), no framing, no MIME sniffing, no referrer to other sites, and ``no-store``
on everything but the static library files. No CORS headers are ever sent, so browsers keep
other sites from reading the API.

Personal data: the columns in :data:`PII_COLUMNS` are masked in JSON and hashed (SHA-256 of
the trimmed, lower-cased value) in CSV downloads unless an analyst asks with
``pii=full``; viewers never reach customer-level routes at all.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from typing import Any

import pandas as pd

from segflow.exports._pii import phone_key

#: Columns holding personal data (any table); matched by name.
PII_COLUMNS = ("email", "phone", "name", "first_name", "last_name", "full_name", "address",
               "street", "postcode", "zip")

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


class SecurityHeaders:
    """ASGI middleware adding the security headers and a per-request CSP nonce."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        static = scope["path"].startswith(_STATIC)

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *security_headers(nonce, static)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mask_value(column: str, value: Any) -> Any:
    """``jane.doe@example.com`` -> ``j***@example.com``; phones keep their last 2 digits;
    other personal text keeps its first letter."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return value
    text = str(value)
    if column == "email" and "@" in text:
        local, _, domain = text.partition("@")
        return f"{local[:1]}***@{domain}"
    if column == "phone":
        digits = [c for c in text if c.isdigit()]
        return "***" + "".join(digits[-2:])
    return text[:1] + "***"


def hash_value(value: Any, column: str = "") -> Any:
    """SHA-256 hex of the value as ad platforms match it: a phone number (``column``
    ``phone``) in E.164 form (:func:`segflow.exports.phone_key`), anything else trimmed and
    lower-cased; the same hashes as the exports' ``hash`` policy."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return value
    key = phone_key(str(value)) if column == "phone" else str(value).strip().lower()
    return None if key is None else hashlib.sha256(key.encode("utf-8")).hexdigest()


def protect(frame: pd.DataFrame, how: str) -> pd.DataFrame:
    """Apply ``how`` (``mask``, ``hash`` or ``full``) to the personal-data columns."""
    if how == "full":
        return frame
    out = frame.copy()
    for col in out.columns:
        if col.lower() in PII_COLUMNS:
            if how == "hash":
                out[col] = out[col].map(lambda v, c=col.lower(): hash_value(v, c))
            else:
                out[col] = out[col].map(lambda v, c=col.lower(): mask_value(c, v))
    return out


def protect_rows(columns: list[str], rows: list[tuple[Any, ...]], how: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """:func:`protect` on plain rows (columns, tuples)."""
    if how == "full":
        return columns, rows
    pii = [j for j, c in enumerate(columns) if c.lower() in PII_COLUMNS]
    if not pii:
        return columns, rows
    out = []
    for r in rows:
        values = list(r)
        for j in pii:
            values[j] = (hash_value(values[j], columns[j].lower()) if how == "hash"
                         else mask_value(columns[j].lower(), values[j]))
        out.append(tuple(values))
    return columns, out


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
