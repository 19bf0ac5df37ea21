"""Token checks of a running server: a short-lived cache, and revocations seen within seconds.

The server reads tokens from its copy of the store, which is refreshed only when the store
changes and after the copy is made and indexed (minutes on a large store). So that a
revocation does not wait for that, ``segflow tokens revoke`` (and ``create``) also write the
revoked token ids to ``revoked.json`` in the server's work folder beside the store
(:func:`publish_revocations`, atomically, after the store's commit); every server process
reads that file again when its size or modification time changes.

:class:`TokenBook` verifies a bearer token (:func:`segflow.server._tokens.verify`: SHA-256 and a
constant-time comparison) and remembers a successful check for ``ttl`` seconds, keyed by the
SHA-256 of the presented token (the token itself is never kept). Failed checks are not
remembered (a flood of wrong tokens cannot fill the memory). After ``ttl`` the token is
checked again against the current copy and the revocation file, so **a revoked token is
refused at most ``ttl`` seconds after ``segflow tokens revoke`` returns** (default 5 s,
``ServerSettings.token_cache_seconds``), in every worker process, whatever the size of the
store; a new copy of the store empties the cache at once. Expiry is checked on every
request, cached or not.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from segflow.server._tokens import TokenRecord, load_tokens, verify

REVOKED_FILE = "revoked.json"
_MAX_ENTRIES = 10_000


def publish_revocations(work_dir: Path, con: Any) -> None:
    """Write the ids of every revoked token of the store (``con``) to the work folder's
    ``revoked.json`` (write to a temporary file, then rename: readers see all or nothing)."""
    revoked = {t.token_id: t.revoked_at.isoformat() for t in load_tokens(con).values() if t.revoked_at is not None}
    target = Path(work_dir) / REVOKED_FILE
    tmp = target.with_name(f".{REVOKED_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(revoked, fh, sort_keys=True)
    os.replace(tmp, target)


class TokenBook:
    """Verified tokens of one server process (see the module notes).

    Parameters
    ----------
    work_dir : Path
        The server's work folder (holds ``revoked.json``).
    ttl : float
        Seconds a successful check is reused; 0 checks every request.
    """

    def __init__(self, work_dir: Path, ttl: float = 5.0) -> None:
        self.path = Path(work_dir) / REVOKED_FILE
        self.ttl = ttl
        self._cache: dict[bytes, tuple[TokenRecord, float, int]] = {}
        self._revoked: frozenset[str] = frozenset()
        self._seen: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def revoked(self) -> frozenset[str]:
        """Token ids revoked in ``revoked.json`` (read again when the file changed)."""
        try:
            st = os.stat(self.path)
            fingerprint = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            fingerprint = None
        if fingerprint != self._seen:
            ids: frozenset[str] = frozenset()
            if fingerprint is not None:
                with contextlib.suppress(OSError, ValueError):
                    ids = frozenset(json.loads(self.path.read_text(encoding="utf-8")))
            with self._lock:
                self._revoked, self._seen = ids, fingerprint
        return self._revoked

    def active(self, record: TokenRecord | None, now: dt.datetime | None = None) -> bool:
        """Whether a stored token may be used now (not expired, not revoked anywhere)."""
        return record is not None and record.state(now) == "active" and record.token_id not in self.revoked()

    def verify(self, token: str, tokens: dict[str, TokenRecord], copy: int = 0) -> TokenRecord | None:
        """The active record of ``token`` (checked against ``tokens``, the copy's, and the
        revocation file at most ``ttl`` seconds ago and on the same copy: ``copy``, the number
        of the store copy ``tokens`` come from), or None."""
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        clock = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and clock - hit[1] < self.ttl and hit[2] == copy:
            record = hit[0]
            return record if record.expires_at is None or record.expires_at > _utcnow() else None
        record = verify(token, tokens)
        if record is not None and record.token_id in self.revoked():
            record = None
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
