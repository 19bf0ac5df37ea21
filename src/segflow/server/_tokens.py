"""API tokens of ``segflow serve``: creation, listing, revocation and verification.

A token reads ``sf_<token_id>_<secret>``: ``token_id`` (8 hex characters) is public and
names the token in lists and the audit log; ``secret`` is 32 random bytes from
:mod:`secrets` (256 bits, URL-safe base64). The store keeps only the SHA-256 of the secret
(:mod:`hashlib`), compared with :func:`hmac.compare_digest` (constant time).

Why SHA-256 and not a password hash (bcrypt, Argon2): those are slow on purpose because
passwords are guessable; a 256-bit random secret is not, so one SHA-256 already makes the
stored hash useless to whoever reads the store, and checking a token costs microseconds
instead of tens of milliseconds on every request. This module imports no web framework:
the ``tokens`` CLI uses it too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from typing import Any

from segflow.errors import SegflowError

#: The roles, each allowed everything the ones before it may do.
ROLES = ("viewer", "analyst", "admin")
_TOKEN = re.compile(r"^sf_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")


#: The longest lifetime ``--expires`` accepts (a hundred years; much later dates overflow).
MAX_EXPIRES_DAYS = 36_500


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def role_at_least(role: str, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` may (viewer < analyst < admin)."""
    return ROLES.index(role) >= ROLES.index(needed)


def hash_secret(secret: str) -> str:
    """Hex SHA-256 of a token secret (what the store keeps)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class TokenRecord:
    """A stored token (without its secret)."""

    token_id: str
    name: str | None
    role: str
    secret_sha256: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def state(self, now: dt.datetime | None = None) -> str:
        """``active``, ``expired`` or ``revoked``."""
        now = now or _now()
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def public(self) -> dict[str, Any]:
        """The token as shown in lists: never the hash."""
        return {
            "token_id": self.token_id,
            "name": self.name,
            "role": self.role,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "state": self.state(),
        }


def parse_expires(text: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """``--expires``: a duration (``30d``, ``12h``, ``90m``) or an ISO date/time (UTC).

    Raises
    ------
    SegflowError
        When the text is neither, or lies in the past.
    """
    if not text:
        return None
    now = now or _now()
    match = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", text)
    if match:
        n, unit = int(match.group(1)), match.group(2)
        if n <= 0:
            raise SegflowError(f"--expires {text!r}: the duration must be positive")
        minutes = n * {"d": 1440, "h": 60, "m": 1}[unit]
        if minutes > MAX_EXPIRES_DAYS * 1440:
            raise SegflowError(f"--expires {text!r}: at most {MAX_EXPIRES_DAYS:,} days")
        return now + dt.timedelta(minutes=minutes)
    try:
        # the date as YYYY-MM-DD first: Python 3.11 also reads 20270131 and 2027-W01-1 (a week day)
        if not re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ]|$)", text.strip()):
            raise ValueError(text)
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise SegflowError(
            f"--expires {text!r}: give a duration like 30d, 12h or 90m, or a UTC date like 2027-01-31"
        ) from None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    if when <= now:
        raise SegflowError(f"--expires {text!r} lies in the past (now is {now:%Y-%m-%d %H:%M} UTC)")
    return when


def create_token(con: Any, role: str, *, name: str | None = None, expires_at: dt.datetime | None = None) -> tuple[str, TokenRecord]:
    """Create a token in the store (``con``: a DuckDB connection open for writing).

    Returns the full token text (shown once, never stored) and its record.
    """
    if role not in ROLES:
        raise SegflowError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    token_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    record = TokenRecord(token_id, name, role, hash_secret(secret), _now(), expires_at, None)
    con.execute(
        "INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?, ?, ?)",
        [record.token_id, record.name, record.role, record.secret_sha256, record.created_at,
         record.expires_at, None],
    )
    return f"sf_{token_id}_{secret}", record


def load_tokens(con: Any) -> dict[str, TokenRecord]:
    """Every stored token by id (an empty dict on a store without the table)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'api_tokens'"
    ).fetchone()[0]
    if not exists:
        return {}
    rows = con.execute(
        "SELECT token_id, name, role, secret_sha256, created_at, expires_at, revoked_at "
        "FROM api_tokens ORDER BY created_at, token_id"
    ).fetchall()
    return {r[0]: TokenRecord(*r) for r in rows}


def revoke_token(con: Any, token_id: str) -> TokenRecord:
    """Mark a token revoked (kept for the audit log). Raises when it does not exist."""
    tokens = load_tokens(con)
    if token_id not in tokens:
        raise SegflowError(f"no token {token_id!r}; `segflow tokens list` shows the ids")
    if tokens[token_id].revoked_at is None:
        con.execute("UPDATE api_tokens SET revoked_at = ? WHERE token_id = ?", [_now(), token_id])
    return load_tokens(con)[token_id]


def verify(token: str, tokens: Mapping[str, TokenRecord], now: dt.datetime | None = None) -> TokenRecord | None:
    """The active token record matching ``token``, or ``None`` (unknown, wrong secret,
    expired or revoked). The secret's hash is compared in constant time."""
    match = _TOKEN.match(token.strip())
    if not match:
        return None
    record = tokens.get(match.group(1))
    if record is None:
        # Same work as for a known id, so timing does not tell which ids exist.
        hmac.compare_digest(hash_secret(match.group(2)), "0" * 64)
        return None
    if not hmac.compare_digest(hash_secret(match.group(2)), record.secret_sha256):
        return None
    return record if record.state(now) == "active" else None
