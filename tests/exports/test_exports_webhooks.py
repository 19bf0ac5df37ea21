"""Webhooks per segment change: retried with backoff against a local server that fails the
first attempts, and every delivery recorded in the store."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest
from tests.exports._store import HISTORY, S2, S3, build, changes_by_hand
from typer.testing import CliRunner

from segflow.cli import app
from segflow.exports import WebhookPolicy, export_segments, watermark
from segflow.project import Project

runner = CliRunner()


class _Receiver(http.server.ThreadingHTTPServer):
    """Answers ``fail_first`` requests with 503 (then 200), or every one with ``always``."""

    def __init__(self, fail_first: int = 0, always: int | None = None) -> None:
        self.fail_first, self.always = fail_first, always
        self.requests: list[tuple[float, str, dict]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv: _Receiver = self.server  # type: ignore[assignment]
        with srv.lock:
            srv.requests.append((time.monotonic(), self.headers["Idempotency-Key"], body))
            n = len(srv.requests)
        status = srv.always or (503 if n <= srv.fail_first else 200)
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def receiver(request):
    srv = _Receiver(**getattr(request, "param", {}))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture()
def project(tmp_path):
    build(tmp_path / "shop")
    with Project.open(tmp_path / "shop") as p:
        yield p


@pytest.mark.parametrize("receiver", [{"fail_first": 2}], indirect=True)
def test_retried_with_backoff_and_recorded(project, tmp_path, receiver):
    store = project.store
    export_segments(store, "rfm", tmp_path / "a.csv", mode="changes", as_of=S2, name="crm")
    assert receiver.requests == []  # the first export is full: no webhooks
    policy = WebhookPolicy(receiver.url, attempts=4, backoff=0.05)
    result = export_segments(store, "rfm", tmp_path / "b.csv", mode="changes", name="crm", webhook=policy)
    expected = changes_by_hand(S2, S3)
    assert result.webhooks_delivered == len(expected) and result.webhooks_failed == 0
    # 2 failed attempts + one per change
    assert len(receiver.requests) == len(expected) + 2
    # the first change was tried three times, with the same idempotency key, waiting >= 0.05 s
    # then >= 0.1 s (exponential backoff)
    t, keys, bodies = zip(*receiver.requests, strict=True)
    assert keys[0] == keys[1] == keys[2] and len(set(keys)) == len(expected)
    assert t[1] - t[0] >= 0.05 and t[2] - t[1] >= 0.1
    got = {b["customer_id"]: (b["change"], b["previous_segment"], b["segment"]) for b in bodies}
    assert got == expected
    assert all(b["scheme"] == "rfm" and b["export_id"] == result.export_id for b in bodies)
    rec = store.sql("SELECT customer_id, status, attempts, http_status FROM webhook_deliveries "
                    "ORDER BY customer_id").to_pylist()
    assert [r["customer_id"] for r in rec] == sorted(expected)
    assert [r["attempts"] for r in rec] == [3] + [1] * (len(expected) - 1)
    assert {r["status"] for r in rec} == {"delivered"} and {r["http_status"] for r in rec} == {200}


@pytest.mark.parametrize("receiver", [{"always": 500}], indirect=True)
def test_failures_are_recorded_and_the_command_fails(project, tmp_path, receiver):
    store, directory = project.store, str(project.directory)
    export_segments(store, "rfm", tmp_path / "a.csv", mode="changes", as_of=S2, name="crm")
    project.close()
    res = runner.invoke(app, ["export", "segments", "-p", directory, "-s", "rfm", "--changes",
                              "--name", "crm", "--to", str(tmp_path / "b.csv"), "--webhook",
                              receiver.url, "--webhook-attempts", "3", "--webhook-backoff", "0.01"])
    n = len(changes_by_hand(S2, S3))
    assert res.exit_code == 1
    assert f"{n} of {n} webhooks failed after 3 attempts" in res.output
    assert "the watermark did not move: run the same command again to retry" in res.stderr
    assert len(receiver.requests) == 3 * n
    with Project.open(directory) as p:
        rec = p.store.sql("SELECT status, attempts, http_status, error FROM webhook_deliveries").to_pylist()
        assert watermark(p.store, "crm") == S2
    assert len(rec) == n
    assert all(r == {"status": "failed", "attempts": 3, "http_status": 500, "error": "HTTP 500"} for r in rec)


@pytest.mark.parametrize("receiver", [{"always": 400}], indirect=True)
def test_client_errors_are_not_retried(project, tmp_path, receiver):
    export_segments(project.store, "rfm", tmp_path / "a.csv", mode="changes", as_of=S2, name="crm")
    result = export_segments(project.store, "rfm", tmp_path / "b.csv", mode="changes", name="crm",
                             webhook=WebhookPolicy(receiver.url, attempts=5, backoff=0.01))
    n = len(changes_by_hand(S2, S3))
    assert result.webhooks_failed == n and len(receiver.requests) == n


def test_unreachable_receiver(project, tmp_path):
    export_segments(project.store, "rfm", tmp_path / "a.csv", mode="changes", as_of=S2, name="crm")
    # a port nothing listens on (bound, then closed)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = export_segments(project.store, "rfm", tmp_path / "b.csv", mode="changes", name="crm",
                             webhook=WebhookPolicy(f"http://127.0.0.1:{port}/", attempts=2, backoff=0.01))
    rec = project.store.sql("SELECT attempts, http_status, error FROM webhook_deliveries").to_pylist()
    assert result.webhooks_failed == len(rec) > 0
    assert all(r["attempts"] == 2 and r["http_status"] is None and "ConnectError" in r["error"] for r in rec)


def test_a_non_ascii_customer_id_is_delivered_with_an_ascii_key(receiver):
    """A header value must be ASCII: the id Müller-7 raised inside httpx and stopped the
    export halfway through its webhooks, before any delivery was recorded."""
    import httpx

    from segflow.exports._webhook import deliver, idempotency_key

    key = idempotency_key("exp1", "Müller-7")
    assert key == "exp1:M%C3%BCller-7"
    with httpx.Client(timeout=5) as client:
        result = deliver(client, WebhookPolicy(receiver.url, attempts=2, backoff=0.01),
                         {"customer_id": "Müller-7"}, key)
    assert result["status"] == "delivered" and result["attempts"] == 1
    assert [(k, b["customer_id"]) for _, k, b in receiver.requests] == [(key, "Müller-7")]
    # a request that cannot be built (a raw non-ASCII key) is a recorded failure, not a crash
    with httpx.Client(timeout=5) as client:
        failed = deliver(client, WebhookPolicy(receiver.url, attempts=3, backoff=0.01),
                         {"customer_id": "x"}, "exp1:Müller-7")
    assert failed["status"] == "failed" and failed["attempts"] == 1 and "Error" in failed["error"]


def _killed_after_sending(monkeypatch, *args, **kwargs) -> None:
    """``export_segments(*args, **kwargs)`` stopped (KeyboardInterrupt) after its webhooks
    went out, before their deliveries and the export were logged."""
    import segflow.exports._export as export_module

    real_send = export_module.send_changes

    def killed(*a, **k):  # noqa: ANN002, ANN003, ANN202
        real_send(*a, **k)
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(export_module, "send_changes", killed)
        with pytest.raises(KeyboardInterrupt):
            export_segments(*args, **kwargs)


def test_an_interrupted_export_run_again_sends_the_same_keys(project, tmp_path, receiver, monkeypatch):
    """An export stopped after its webhooks went out but before it was logged (killed,
    Ctrl-C, a timer's timeout) leaves the watermark where it was: run again, it sends the same
    changes. Their Idempotency-Key held a new random export id, so a receiver could not drop
    the ones it had; now the id of an incremental export is SHA-256 of the watermark export's
    id, the scheme and the snapshot: the same keys again, and new ones once an export is logged."""
    import hashlib

    store = project.store
    first = export_segments(store, "rfm", tmp_path / "a.csv", mode="changes", as_of=S2, name="crm")
    policy = WebhookPolicy(receiver.url, attempts=1)
    _killed_after_sending(monkeypatch, store, "rfm", tmp_path / "b.csv", mode="changes", name="crm",
                          webhook=policy)
    sent = sorted(k for _, k, _ in receiver.requests)
    n = len(changes_by_hand(S2, S3))
    assert len(sent) == n and store.sql("SELECT count(*) AS n FROM export_log").to_pylist() == [{"n": 1}]
    again = export_segments(store, "rfm", tmp_path / "b.csv", mode="changes", name="crm", webhook=policy)
    want = hashlib.sha256(f"{first.export_id}\x00rfm\x00{S3.isoformat()}".encode()).hexdigest()[:12]
    assert again.export_id == want and again.webhooks_delivered == n
    assert sorted(k for _, k, _ in receiver.requests[n:]) == sent
    assert all(k.startswith(f"{want}:") for k in sent)
    # logged now: the next export continues from it (no rows, another id)
    nothing = export_segments(store, "rfm", tmp_path / "c.csv", mode="changes", name="crm", webhook=policy)
    assert nothing.rows == 0 and nothing.export_id not in (want, first.export_id)


@pytest.mark.parametrize("receiver", [{"fail_first": 2}], indirect=True)
def test_failed_webhooks_leave_the_watermark_and_the_re_run_sends_only_those(project, tmp_path, receiver):
    """Webhooks failing moved the watermark all the same: the re-run after the receiver came
    back wrote an empty delta and sent nothing, and the failed changes were lost. Now an
    export whose webhooks failed is logged without becoming the watermark; its re-run has the
    same id and sends the failed changes only, with the same Idempotency-Keys. The first
    export of a name (no watermark: random id) too, and it sends every customer as 'new'."""
    store, directory = project.store, str(project.directory)
    at_s2 = {c: s[1] for c, s in HISTORY.items() if s[1] is not None}
    policy = WebhookPolicy(receiver.url, attempts=1)
    first = export_segments(store, "rfm", tmp_path / "a.csv", mode="changes", as_of=S2, name="crm",
                            webhook=policy)
    assert (first.webhooks_failed, first.webhooks_delivered) == (2, len(at_s2) - 2)
    assert not first.watermark_moved and watermark(store, "crm") is None
    assert sorted((b["customer_id"], b["change"], b["previous_segment"], b["segment"])
                  for _, _, b in receiver.requests) == sorted((c, "new", None, s) for c, s in at_s2.items())
    failed_keys = sorted(k for _, k, _ in receiver.requests[:2])
    again = export_segments(store, "rfm", tmp_path / "a.csv", mode="changes", as_of=S2, name="crm",
                            webhook=policy)
    assert again.export_id == first.export_id and again.watermark_moved
    assert (again.webhooks_delivered, again.webhooks_failed, again.webhooks_delivered_before) == (
        2, 0, len(at_s2) - 2)
    assert sorted(k for _, k, _ in receiver.requests[len(at_s2):]) == failed_keys
    assert watermark(store, "crm") == S2
    # the next changes: from S2, sent once
    before = len(receiver.requests)
    project.close()
    res = runner.invoke(app, ["export", "segments", "-p", directory, "-s", "rfm", "--changes",
                              "--name", "crm", "--to", str(tmp_path / "b.csv"), "--webhook",
                              receiver.url, "--webhook-attempts", "1"])
    assert res.exit_code == 0, res.output
    assert len(receiver.requests) - before == len(changes_by_hand(S2, S3))
    with Project.open(directory) as p:
        log = p.store.sql("SELECT export_id, status FROM export_log ORDER BY exported_at").to_pylist()
    assert [r["status"] for r in log] == ["webhooks_failed", "done", "done"]
    assert log[0]["export_id"] == log[1]["export_id"] == first.export_id


def test_resend_writes_the_last_delta_again_with_its_id(project, tmp_path, receiver):
    """The CRM's upload of the written delta failed; the export run again wrote an empty
    delta, since the watermark had moved, and the delta was lost. `--changes --resend`
    writes the last export of the name again: the same rows, snapshot and export id (the
    webhooks' Idempotency-Keys alike); the watermark stays."""
    store, directory = project.store, str(project.directory)
    first = export_segments(store, "rfm", tmp_path / "a.csv", mode="changes", as_of=S2, name="crm")
    first_again = export_segments(store, "rfm", tmp_path / "a2.csv", mode="changes", name="crm",
                                  resend=True)
    assert (tmp_path / "a2.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()
    assert first_again.export_id == first.export_id and first_again.snapshot_date == S2
    policy = WebhookPolicy(receiver.url, attempts=1)
    second = export_segments(store, "rfm", tmp_path / "b.csv", mode="changes", name="crm", webhook=policy)
    n = len(changes_by_hand(S2, S3))
    assert second.rows == n and second.since_snapshot == S2
    project.close()
    base = ["export", "segments", "-p", directory, "-s", "rfm", "--name", "crm"]
    res = runner.invoke(app, [*base, "--changes", "--resend", "--to", str(tmp_path / "b2.csv"),
                              "--webhook", receiver.url, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert (out["export_id"], out["resent"], out["rows"], out["webhooks_delivered"]) == (
        second.export_id, True, n, n)
    assert (tmp_path / "b2.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    keys = [k for _, k, _ in receiver.requests]
    assert sorted(keys[n:]) == sorted(keys[:n])
    # the watermark stays: the next changes export has nothing to send
    nothing = runner.invoke(app, [*base, "--changes", "--to", str(tmp_path / "c.csv"), "--json"])
    assert json.loads(nothing.stdout)["rows"] == 0
    # refused in one line: without --changes, another --pii, another snapshot, an unknown name
    for extra, message in (([], "--resend writes the last --changes export of a name again: give --changes"),
                           (["--changes", "--pii", "mask"], "was written with --pii hash: give --pii hash"),
                           (["--changes", "--snapshot", "2024-01-01"], "leave out --snapshot 2024-01-01"),
                           (["--changes", "--name", "other"], "no export named 'other' to send again")):
        bad = runner.invoke(app, [*base, "--resend", *extra, "--to", str(tmp_path / "d.csv")])
        assert bad.exit_code == 1 and message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_an_interrupted_first_export_run_again_sends_the_same_keys(project, tmp_path, receiver, monkeypatch):
    """The first --changes export of a name POSTs every customer as 'new' (the longest run of
    a name, the likeliest to be killed). Stopped after sending but before it was logged, it
    drew a new random export id when run again: every customer a second time under new keys.
    Its id is derived now (name, scheme, snapshot, assignments): the same keys again; another
    name gets others."""
    store = project.store
    policy = WebhookPolicy(receiver.url, attempts=1)
    _killed_after_sending(monkeypatch, store, "rfm", tmp_path / "a.csv", mode="changes", as_of=S2,
                          name="crm", webhook=policy)
    n = sum(s[1] is not None for s in HISTORY.values())
    sent = sorted(k for _, k, _ in receiver.requests)
    assert len(sent) == n and watermark(store, "crm") is None
    again = export_segments(store, "rfm", tmp_path / "a.csv", mode="changes", as_of=S2, name="crm",
                            webhook=policy)
    assert again.webhooks_delivered == n and sorted(k for _, k, _ in receiver.requests[n:]) == sent
    assert all(k.startswith(f"{again.export_id}:") for k in sent)
    other = export_segments(store, "rfm", tmp_path / "b.csv", mode="changes", as_of=S2, name="erp")
    assert other.export_id != again.export_id
