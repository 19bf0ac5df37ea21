"""Token checks of a running server: a short-lived cache, and new or revoked tokens seen at once.

The server reads tokens from its copy of the store, which is refreshed only when the store
changes and after the copy is made and indexed (minutes on a large store). So that neither a
new token nor a revocation waits for that, ``segflow tokens create`` and ``revoke`` also
write every token record (id, name, role, the SHA-256 of the secret, dates; never a secret)
to ``tokens.json`` in the server's work folder beside the store (:func:`publish_tokens`,
atomically, owner-only, after the store's commit); every server process reads that file
again when its size or modification time changes, and its records take precedence over the
copy's (they are newer).

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

import collections
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from segflow.server._tokens import TokenRecord, load_tokens, verify

TOKENS_FILE = "tokens.json"
_MAX_ENTRIES = 10_000
_DATES = ("created_at", "expires_at", "revoked_at")


def publish_tokens(work_dir: Path, con: Any) -> None:
    """Write every token record of the store (``con``) to the work folder's ``tokens.json``
    (mode 0600; a temporary file renamed into place: readers see all or nothing). Records
    hold the SHA-256 of each secret, as the store does, never a secret."""
    records = {}
    for t in load_tokens(con).values():
        row = dataclasses.asdict(t)
        for name in _DATES:
            row[name] = row[name].isoformat() if row[name] is not None else None
        records[t.token_id] = row
    target = Path(work_dir) / TOKENS_FILE
    tmp = target.with_name(f".{TOKENS_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(records, fh, sort_keys=True)
    os.replace(tmp, target)


def _read_records(path: Path) -> dict[str, TokenRecord]:
    """The records of a ``tokens.json`` (empty if it cannot be read: the copy's apply)."""
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        rows = json.loads(path.read_text(encoding="utf-8"))
        out = {}
        for token_id, row in rows.items():
            dates = {n: dt.datetime.fromisoformat(row[n]) if row[n] else None for n in _DATES}
            out[token_id] = TokenRecord(token_id, row["name"], row["role"], row["secret_sha256"], **dates)
        return out
    return {}


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
        self._published: dict[str, TokenRecord] = {}
        self._seen: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def published(self) -> dict[str, TokenRecord]:
        """Token records of ``tokens.json`` by id (read again when the file changed)."""
        try:
            st = os.stat(self.path)
            fingerprint = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            fingerprint = None
        if fingerprint != self._seen:
            records = _read_records(self.path) if fingerprint is not None else {}
            with self._lock:
                self._published, self._seen = records, fingerprint
        return self._published

    def lookup(self, token_id: str, tokens: dict[str, TokenRecord]) -> TokenRecord | None:
        """The newest record of ``token_id``: the token file's, else the copy's (``tokens``)."""
        return self.published().get(token_id) or tokens.get(token_id)

    def active(self, record: TokenRecord | None, now: dt.datetime | None = None) -> bool:
        """Whether a stored token may be used now (not expired, not revoked anywhere)."""
        if record is None:
            return False
        newest = self.published().get(record.token_id, record)
        return newest.state(now) == "active"

    def verify(self, token: str, tokens: dict[str, TokenRecord], copy: int = 0) -> TokenRecord | None:
        """The active record of ``token`` (checked against the token file and ``tokens``, the
        copy's, at most ``ttl`` seconds ago and on the same copy: ``copy``, the number of the
        store copy ``tokens`` come from), or None."""
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        clock = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and clock - hit[1] < self.ttl and hit[2] == copy:
            record = hit[0]
            return record if record.expires_at is None or record.expires_at > _utcnow() else None
        record = verify(token, collections.ChainMap(self.published(), tokens))
        with self._lock:
            if record is None:
                self._cache.pop(key, None)
            else:
                if len(self._cache) >= _MAX_ENTRIES:
                    self._cache.clear()
                self._cache[key] = (record, clock, copy)
        return record


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
