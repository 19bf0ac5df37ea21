"""Webhooks: one HTTP POST per segment change, retried with exponential backoff, recorded.

Each change of an incremental export (a customer who is new, changed segment or was removed)
is POSTed as JSON to the webhook URL::

    {"event": "segment_change", "scheme": "rfm", "customer_id": "C042",
     "change": "changed", "previous_segment": "Loyal", "segment": "At risk",
     "snapshot_date": "2024-06-01", "change_date": "2024-06-01", "export_id": "..."}

with an ``Idempotency-Key`` header (export id + percent-encoded customer id) so a receiver can drop the
duplicate of a retried delivery. A delivery is retried on connection errors, timeouts,
HTTP 429 and 5xx, waiting ``backoff * 2**(attempt-1)`` seconds (capped at
``max_backoff``) between attempts; other 4xx answers are final. Every delivery is recorded
in the store table ``webhook_deliveries`` (status, attempts, last HTTP status or error,
payload), delivered or not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

import httpx
import pyarrow as pa
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

#: HTTP statuses worth another attempt.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclasses.dataclass(frozen=True)
class WebhookPolicy:
    """How webhooks are sent.

    Attributes
    ----------
    url : str
    attempts : int
        Attempts per change, the first included.
    backoff : float
        Seconds before the second attempt; doubled before each further one.
    max_backoff : float
        Longest wait between two attempts, in seconds.
    timeout : float
        Seconds to wait for an answer to one attempt.
    """

    url: str
    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    timeout: float = 10.0


class _Retryable(Exception):
    def __init__(self, status: int | None, error: str) -> None:
        super().__init__(error)
        self.status, self.error = status, error


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _payload(row: dict[str, Any], export_id: str) -> dict[str, Any]:
    def iso(v: Any) -> Any:
        return v.isoformat() if isinstance(v, dt.date) else v

    return {
        "event": "segment_change",
        "scheme": row.get("scheme"),
        "customer_id": row.get("customer_id"),
        "change": row.get("change"),
        "previous_segment": row.get("segment_at_since"),
        "segment": row.get("segment"),
        "snapshot_date": iso(row.get("snapshot_date")),
        "change_date": iso(row.get("last_change_date")),
        "export_id": export_id,
    }


#: Query parameters of a URL that carry a secret (libpq's ``password``, a webhook's token).
SECRET_PARAMS = frozenset({"password", "sslpassword", "token", "access_token", "api_key",
                           "apikey", "key", "secret", "signature", "sig"})


def redact_url(url: str) -> str:
    """A URL without its secrets (for the export log and the webhook deliveries): the
    password of its user info and the values of :data:`SECRET_PARAMS` in its query (libpq
    also reads ``?password=``) as ``***``."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(k.lower() in SECRET_PARAMS for k, _ in pairs):
        query = urlencode([(k, "***" if k.lower() in SECRET_PARAMS else v) for k, v in pairs],
                          safe="*")
    else:
        query = parts.query
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def idempotency_key(export_id: str, customer_id: object) -> str:
    """``export_id:customer_id`` with the id percent-encoded (UTF-8): a header value must be
    ASCII, and an id such as ``Müller-7`` stopped the export halfway through its webhooks."""
    from urllib.parse import quote

    return f"{export_id}:{quote(str(customer_id), safe='')}"


def deliver(
    client: httpx.Client, policy: WebhookPolicy, payload: dict[str, Any], key: str
) -> dict[str, Any]:
    """POST one payload with retries; returns the delivery record (never raises for HTTP)."""
    attempts = 0
    first = _now()
    last: dict[str, Any] = {"http_status": None, "error": None}

    def attempt() -> None:
        nonlocal attempts
        attempts += 1
        try:
            response = client.post(policy.url, json=payload, headers={"Idempotency-Key": key})
        except httpx.HTTPError as exc:
            last.update(http_status=None, error=f"{type(exc).__name__}: {exc}")
            raise _Retryable(None, last["error"]) from exc
        except (ValueError, TypeError) as exc:  # a request that cannot be built: final
            last.update(http_status=None, error=f"{type(exc).__name__}: {exc}")
            return
        last.update(http_status=response.status_code, error=None)
        if response.status_code in RETRY_STATUSES:
            last["error"] = f"HTTP {response.status_code}"
            raise _Retryable(response.status_code, last["error"])
        if response.status_code >= 400:
            last["error"] = f"HTTP {response.status_code}"

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait_exponential(multiplier=policy.backoff, min=policy.backoff, max=policy.max_backoff),
        retry=retry_if_exception(lambda e: isinstance(e, _Retryable)),
        reraise=False,
    )
    try:
        retrying(attempt)
    except RetryError:
        pass
    ok = last["http_status"] is not None and last["http_status"] < 400
    return {
        "status": "delivered" if ok else "failed",
        "attempts": attempts,
        "http_status": last["http_status"],
        "error": last["error"],
        "first_attempt_at": first,
        "last_attempt_at": _now(),
    }


def send_changes(
    rows: Iterable[dict[str, Any]], policy: WebhookPolicy, export_id: str
) -> pa.Table:
    """Send one webhook per change row; returns the rows for ``webhook_deliveries``."""
    records: list[dict[str, Any]] = []
    with httpx.Client(timeout=policy.timeout, follow_redirects=False) as client:
        for row in rows:
            payload = _payload(row, export_id)
            result = deliver(client, policy, payload, idempotency_key(export_id, row.get("customer_id")))
            records.append(
                {
                    "export_id": export_id,
                    "url": redact_url(policy.url),
                    "scheme": row.get("scheme"),
                    "customer_id": row.get("customer_id"),
                    "change": row.get("change"),
                    "payload": json.dumps(payload),
                    **result,
                }
            )
    schema = pa.schema(
        [("export_id", pa.string()), ("url", pa.string()), ("scheme", pa.string()),
         ("customer_id", pa.string()), ("change", pa.string()), ("payload", pa.string()),
         ("status", pa.string()), ("attempts", pa.int32()), ("http_status", pa.int32()),
         ("error", pa.string()), ("first_attempt_at", pa.timestamp("us")),
         ("last_attempt_at", pa.timestamp("us"))]
    )
    return pa.Table.from_pylist(records, schema=schema)
