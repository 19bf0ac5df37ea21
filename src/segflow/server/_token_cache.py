"""Token checks of a running server: a short-lived cache, and new or revoked tokens seen at once.

The server reads tokens from its copy of the store, which is refreshed only when the store
changes and after the copy is made and indexed (minutes on a large store). So that neither a
new token nor a revocation waits for that, ``segflow tokens create`` and ``revoke`` also
write every token record (id, name, role, the SHA-256 of the secret, dates; never a secret)
to ``tokens.json`` in the server's work folder beside the store (:func:`publish_tokens`,
atomically, owner-only, after the store's commit and checkpoint), with a random
``publish_id``; every server process reads that file again when its size or modification
time changes.

**The store is the authority; the file is only a newer view of it.** The file is trusted
for a copy of the store only when it was written *after* that copy was made: whoever makes
a copy first reads the file's ``publish_id`` (:func:`published_id`) and keeps it with the
copy (``Generation.token_file_before``). The file's records then replace the copy's (they
hold every token of the store, a newer state). A file already present when the copy was made
describes a state the copy already holds, or a store that was since rebuilt or restored from
a backup: it is ignored, and only the copy's tokens count. So a token the store no longer
holds (after ``rm segflow.duckdb`` and a new ingest, or a backup copied back) is refused as
soon as the server serves a copy of the replaced store, exactly as ``segflow tokens list``
and ``revoke`` (which read the store) see it.

:class:`TokenBook` verifies a bearer token (:func:`segflow.server._tokens.verify`: SHA-256 and a
constant-time comparison) and remembers a successful check for ``ttl`` seconds, keyed by the
SHA-256 of the presented token (the token itself is never kept). Failed checks are not
remembered (a flood of wrong tokens cannot fill the memory). After ``ttl`` the token is
checked again against the current copy and the token file, so **a revoked token is
refused at most ``ttl`` seconds after ``segflow tokens revoke`` returns** (default 5 s,
``ServerSettings.token_cache_seconds``), in every worker process, whatever the size of the
store; a new copy of the store empties the cache at once. Failed checks are never cached,
so **a token works on its first request after ``segflow tokens create`` returns**. Expiry is
checked on every request, cached or not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from segflow.server._tokens import TokenRecord, load_tokens, verify

TOKENS_FILE = "tokens.json"
_MAX_ENTRIES = 10_000
_DATES = ("created_at", "expires_at", "revoked_at")


class TokenCopy(Protocol):
    """What the token checks need of a copy of the store (a ``Generation``)."""

    #: Which copy (a new number for each copy a process opens).
    number: int
    #: The copy's token records by id.
    tokens: dict[str, TokenRecord]
    #: The ``publish_id`` of the token file when the copy was made (None: there was none).
    token_file_before: str | None


def publish_tokens(work_dir: Path, con: Any) -> str:
    """Write every token record of the store (``con``) to the work folder's ``tokens.json``
    (mode 0600; a temporary file renamed into place: readers see all or nothing) under a new
    random ``publish_id``, which it returns. Records hold the SHA-256 of each secret, as the
    store does, never a secret. Call it after the store's commit and checkpoint: a copy made
    after the file was written must hold every change the file shows."""
    records = {}
    for t in load_tokens(con).values():
        row = dataclasses.asdict(t)
        for name in _DATES:
            row[name] = row[name].isoformat() if row[name] is not None else None
        records[t.token_id] = row
    publish_id = secrets.token_hex(16)
    target = Path(work_dir) / TOKENS_FILE
    tmp = target.with_name(f".{TOKENS_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"publish_id": publish_id, "tokens": records}, fh, sort_keys=True)
    os.replace(tmp, target)
    return publish_id


def _read_file(path: Path) -> tuple[str | None, dict[str, TokenRecord]]:
    """The ``publish_id`` and records of a ``tokens.json``; ``(None, {})`` if it cannot be
    read or has no ``publish_id`` (a file of an older segflow): the copy's records apply."""
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError, AttributeError):
        document = json.loads(path.read_text(encoding="utf-8"))
        publish_id = document["publish_id"]
        out = {}
        for token_id, row in document["tokens"].items():
            dates = {n: dt.datetime.fromisoformat(row[n]) if row[n] else None for n in _DATES}
            out[token_id] = TokenRecord(token_id, row["name"], row["role"], row["secret_sha256"], **dates)
        if isinstance(publish_id, str) and publish_id:
            return publish_id, out
    return None, {}


def published_id(work_dir: Path) -> str | None:
    """The ``publish_id`` of the work folder's token file now (None: no readable file). Read
    before a copy of the store is made and kept with it (see the module notes)."""
    return _read_file(Path(work_dir) / TOKENS_FILE)[0]


class TokenBook:
    """Verified tokens of one server process (see the module notes).

    Parameters
    ----------
    work_dir : Path
        The server's work folder (holds ``tokens.json``).
    ttl : float
        Seconds a successful check is reused; 0 checks every request.
    """

    def __init__(self, work_dir: Path, ttl: float = 5.0) -> None:
        self.path = Path(work_dir) / TOKENS_FILE
        self.ttl = ttl
        self._cache: dict[bytes, tuple[TokenRecord, float, int]] = {}
        self._published: tuple[str | None, dict[str, TokenRecord]] = (None, {})
        self._seen: tuple[int, int, int] | None = None
        self._lock = threading.Lock()

    def _file(self) -> tuple[str | None, dict[str, TokenRecord]]:
        """``publish_id`` and records of ``tokens.json`` (read again when the file changed)."""
        try:
            st = os.stat(self.path)
            fingerprint = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            fingerprint = None
        if fingerprint != self._seen:
            published = _read_file(self.path) if fingerprint is not None else (None, {})
            with self._lock:
                self._published, self._seen = published, fingerprint
        return self._published

    def tokens(self, copy: TokenCopy) -> Mapping[str, TokenRecord]:
        """The token records that count for ``copy``: the token file's when it was written
        after the copy was made (a newer state of the same store), else the copy's."""
        publish_id, records = self._file()
        if publish_id is not None and publish_id != copy.token_file_before:
            return records
        return copy.tokens

    def lookup(self, token_id: str, copy: TokenCopy) -> TokenRecord | None:
        """The record of ``token_id`` that counts for ``copy`` (see :meth:`tokens`), or None."""
        return self.tokens(copy).get(token_id)

    def verify(self, token: str, copy: TokenCopy) -> TokenRecord | None:
        """The active record of ``token`` (checked against :meth:`tokens` of ``copy`` at most
        ``ttl`` seconds ago and on the same copy), or None."""
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        clock = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and clock - hit[1] < self.ttl and hit[2] == copy.number:
            record = hit[0]
            return record if record.expires_at is None or record.expires_at > _utcnow() else None
        record = verify(token, self.tokens(copy))
        with self._lock:
            if record is None:
                self._cache.pop(key, None)
            else:
                if len(self._cache) >= _MAX_ENTRIES:
                    self._cache.clear()
                self._cache[key] = (record, clock, copy.number)
        return record


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
