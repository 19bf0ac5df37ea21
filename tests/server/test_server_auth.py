"""Authentication, roles, personal data, CSRF, Host check, headers: every route is checked."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import time

import duckdb
import pytest
from fastapi.routing import APIRoute
from tests.server.conftest import EMAIL, FORMULA, PHONE

#: Values for path and required query parameters, so every route can be called.
PARAMS = {"scheme": "rfm", "customer_id": "C001", "name": "swagger-ui.css", "campaign_id": "CMP1"}
QUERY = {"from_date": "2024-06-01", "to_date": "2024-07-01", "from_segment": "Champions",
         "to_segment": "Champions"}
PUBLIC = {"/login", "/favicon.ico", "/api/v1/live", "/static/plotly.js", "/static/swagger/{name}", "/static/docs-init.js"}
CUSTOMER_LEVEL = ["/api/v1/customers/C001", "/api/v1/customers?q=C00", "/api/v1/customers?format=csv",
                  "/api/v1/migration/rfm/customers?" + "&".join(f"{k}={v}" for k, v in QUERY.items()),
                  "/customers?q=C001", "/customers/C001",
                  "/migration/rfm/customers?" + "&".join(f"{k}={v}" for k, v in QUERY.items())]


def _routes(app):
    """(route, url) of every route of the app; FastAPI >= 0.165 nests included routers."""
    import fastapi.routing

    if hasattr(fastapi.routing, "iter_route_contexts"):
        routes = list(fastapi.routing.iter_route_contexts(app.routes))
    else:
        routes = [r for r in app.routes if isinstance(r, APIRoute)]
    for route in routes:
        if route.methods:
            # {scheme} and {scheme:path} alike (before, the latter stayed in the URL as written)
            path = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PARAMS[m.group(1)], route.path)
            yield route, path + "?" + "&".join(f"{k}={v}" for k, v in QUERY.items())


def test_no_route_answers_without_a_token(app, anon):
    checked = 0
    for route, url in _routes(app):
        for method in route.methods:
            r = anon.request(method, url, follow_redirects=False, json={} if method == "POST" else None)
            checked += 1
            assert "C001" not in r.text and EMAIL not in r.text, (method, url)
            if route.path in PUBLIC:
                continue
            if r.status_code == 303:  # a page: to the login form
                assert r.headers["location"].startswith("/login?next="), (method, url)
            else:
                assert r.status_code == 401, (method, url, r.status_code, r.text[:200])
    assert checked >= 25


def test_wrong_expired_and_malformed_tokens_are_refused(anon, served_project, tokens, app):
    token_id = tokens["admin"].split("_")[1]
    bad = [tokens["admin"][:-2] + "xx", "sf_deadbeef_" + "a" * 43, "nonsense", ""]
    for value in bad:
        r = anon.get("/api/v1/schemes", headers={"authorization": f"Bearer {value}"})
        assert r.status_code == 401
    r = anon.get("/api/v1/schemes", headers={"authorization": f"Basic {tokens['admin']}"})
    assert r.status_code == 401
    assert token_id not in r.text


def test_viewer_sees_aggregates_only(viewer, served_project):
    assert viewer.get("/api/v1/segments/rfm").status_code == 200
    assert viewer.get("/api/v1/migration/rfm").status_code == 200
    assert viewer.get("/segments/rfm").status_code == 200
    for url in CUSTOMER_LEVEL + ["/api/v1/customers/C001?pii=full", "/api/v1/tokens", "/api/v1/audit", "/audit"]:
        r = viewer.get(url, follow_redirects=False)
        assert r.status_code == 403, url
        assert EMAIL not in r.text and "C001" not in r.text.replace("/C001", "")
    # the migration page has no links to customers for a viewer
    page = viewer.get("/migration/rfm").text
    assert "/migration/rfm/customers" not in page and EMAIL not in page


def test_analyst_gets_personal_data_masked_unless_asked(analyst):
    body = analyst.get("/api/v1/customers/C001").json()
    assert body["meta"]["attributes"]["email"] == "j***@example.com"
    assert body["meta"]["attributes"]["phone"] == "***23"
    assert EMAIL not in analyst.get("/api/v1/customers/C001").text
    assert EMAIL not in analyst.get("/customers/C001").text
    for word in ("include", "full"):  # the CLI's word, and the older one kept as an alias
        full = analyst.get(f"/api/v1/customers/C001?pii={word}").json()
        assert full["meta"]["attributes"]["email"] == EMAIL and full["meta"]["attributes"]["phone"] == PHONE
        assert full["meta"]["pii"] == "full"
    # search by e-mail finds the customer, masked
    found = analyst.get("/api/v1/customers", params={"q": EMAIL.upper()}).json()
    assert [r["customer_id"] for r in found["data"]] == ["C001"]
    assert found["data"][0]["email"] == "j***@example.com"


def test_csv_export_hashes_personal_data_and_neutralises_formulas(analyst):
    """The hashes are named as ``segflow export --pii hash`` names them (``email_sha256``;
    before, the download put them under ``email`` and ``phone``); ``pii=full`` keeps
    ``email``."""
    import csv
    import io

    from segflow.exports import phone_key

    r = analyst.get("/api/v1/customers?format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    reader = csv.DictReader(io.StringIO(r.text))
    assert {"email_sha256", "phone_sha256"} <= set(reader.fieldnames) and not {"email", "phone"} & set(reader.fieldnames)
    rows = {row["customer_id"]: row for row in reader}
    assert rows["C001"]["email_sha256"] == hashlib.sha256(EMAIL.lower().encode()).hexdigest()
    assert rows["C001"]["phone_sha256"] == hashlib.sha256(phone_key(PHONE).encode()).hexdigest()
    assert EMAIL not in r.text
    full = analyst.get("/api/v1/customers?format=csv&pii=full")
    rows = {row["customer_id"]: row for row in csv.DictReader(io.StringIO(full.text))}
    assert rows["C001"]["email"] == EMAIL and "email_sha256" not in rows["C001"]
    assert analyst.get("/api/v1/customers?format=csv&pii=include").text == full.text
    assert rows["C002"]["email"] == "'" + FORMULA  # formula cell neutralised


def test_audit_log_records_reads_and_exports(admin, analyst, tokens, viewer):
    analyst_id = tokens["analyst"].split("_")[1]
    analyst.get("/api/v1/customers/C003")
    analyst.get("/api/v1/customers?format=csv&scheme=rfm&segment=Champions")
    events = admin.get("/api/v1/audit", params={"token_id": analyst_id, "limit": 1000}).json()["data"]
    reads = [e for e in events if e["action"] == "read_customer" and e["resource"] == "/api/v1/customers/C003"]
    exports = [e for e in events if e["action"] == "export" and "segment=Champions" in e["resource"]]
    assert reads and exports and all(e["role"] == "analyst" for e in reads + exports)
    assert admin.get("/api/v1/audit", params={"action": "export"}).json()["count"] >= 1
    assert analyst.get("/api/v1/audit").status_code == 403


def test_admin_lists_tokens_without_secrets(admin, tokens):
    body = admin.get("/api/v1/tokens").json()
    assert {r["role"] for r in body["data"]} >= {"viewer", "analyst", "admin"}
    text = admin.get("/api/v1/tokens").text
    for token in tokens.values():
        secret = token.split("_", 2)[2]
        assert secret not in text and hashlib.sha256(secret.encode()).hexdigest() not in text


def test_store_stays_writable_and_revocation_reaches_the_server(app, served_project, tokens):
    """The server reads a copy: a writer opens the store while it serves; a revoked token is
    refused after the next copy."""
    from fastapi.testclient import TestClient

    from segflow.server._tokens import create_token, revoke_token

    con = duckdb.connect(str(served_project / "segflow.duckdb"))  # would fail if serve held it
    token, record = create_token(con, "viewer", name="short-lived")
    con.execute("CHECKPOINT")
    con.close()
    assert app.state.replica.refresh()
    with TestClient(app, base_url="https://testserver", headers={"authorization": f"Bearer {token}"}) as c:
        assert c.get("/api/v1/schemes").status_code == 200
        con = duckdb.connect(str(served_project / "segflow.duckdb"))
        revoke_token(con, record.token_id)
        con.execute("CHECKPOINT")
        con.close()
        assert app.state.replica.refresh()
        assert c.get("/api/v1/schemes").status_code == 401
        # an expired token (inserted as the CLI would, with a past expiry)
        con = duckdb.connect(str(served_project / "segflow.duckdb"))
        past_token, past = create_token(con, "admin", expires_at=dt.datetime(2020, 1, 1))
        con.execute("CHECKPOINT")
        con.close()
        app.state.replica.refresh()
        assert c.get("/api/v1/schemes", headers={"authorization": f"Bearer {past_token}"}).status_code == 401


def _login(anon, token, origin=None):
    form = anon.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    headers = {"origin": origin} if origin else {}
    return anon.post("/login", data={"token": token, "csrf_token": csrf, "next": "/segments/rfm"},
                     headers=headers, follow_redirects=False), form


def test_login_sets_a_secure_session_and_csrf_guards_posts(app, tokens):
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver") as browser:
        r, form = _login(browser, tokens["analyst"])
        assert "samesite=strict" in form.headers["set-cookie"].lower()
        assert r.status_code == 303 and r.headers["location"] == "/segments/rfm"
        cookie = r.headers["set-cookie"].lower()
        assert "segflow_session=" in cookie and "httponly" in cookie and "secure" in cookie
        assert "samesite=strict" in cookie
        assert browser.get("/customers/C001").status_code == 200
        who = browser.get("/api/v1/whoami").json()
        assert who["role"] == "analyst" and who["csrf_token"]
        # POSTs with the cookie need the CSRF token and a same-origin Origin
        assert browser.post("/logout", follow_redirects=False).status_code == 403
        # a CSRF token that is not ASCII is wrong, not an error (hmac.compare_digest raised: 500)
        for sent in ({"data": {"csrf_token": "é"}}, {"headers": {"x-csrf-token": "é".encode("latin-1")}}):
            r = browser.post("/logout", follow_redirects=False, **sent)
            assert r.status_code == 403 and r.json()["detail"] == "missing or wrong CSRF token"
        assert browser.post("/logout", data={"csrf_token": who["csrf_token"]},
                            headers={"origin": "https://evil.example"}, follow_redirects=False).status_code == 403
        r = browser.post("/logout", data={"csrf_token": who["csrf_token"]}, follow_redirects=False)
        assert r.status_code == 303
        assert browser.get("/api/v1/whoami").status_code == 401
    with TestClient(app, base_url="https://testserver") as browser:
        r, _ = _login(browser, tokens["analyst"], origin="https://evil.example")
        assert r.status_code == 403
        r, _ = _login(browser, "sf_00000000_" + "x" * 43)
        assert r.status_code == 401 and "unknown, expired or revoked" in r.text
        r = browser.post("/login", data={"token": tokens["analyst"], "csrf_token": "forged"})
        assert r.status_code == 403
        r = browser.post("/login", data={"token": tokens["analyst"], "csrf_token": "forgé"})
        assert r.status_code == 403 and "login form expired" in r.text


def test_login_redirect_stays_on_this_site(app, tokens):
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver") as browser:
        form = browser.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        r = browser.post("/login", data={"token": tokens["viewer"], "csrf_token": csrf,
                                         "next": "//evil.example/x"}, follow_redirects=False)
        assert r.headers["location"] == "/"
        # the page shows only segflow's own messages: not one given in the link
        spoof = browser.get("/login", params={"error": "Session expired: mail your token to x"})
        assert spoof.status_code == 200 and "mail your token" not in spoof.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', spoof.text).group(1)
        wrong = browser.post("/login", data={"token": "nope", "csrf_token": csrf})
        assert wrong.status_code == 401 and "unknown, expired or revoked" in wrong.text


def test_host_header_is_checked(viewer):
    r = viewer.get("/api/v1/schemes", headers={"host": "evil.example"})
    assert r.status_code == 400


def test_security_headers_and_no_cors(viewer):
    r = viewer.get("/segments/rfm", headers={"origin": "https://evil.example"})
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self' 'nonce-" in csp and "unsafe-eval" not in csp
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", r.text)
    assert inline and all(f'nonce="{nonce}"' in attrs for attrs in inline)
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in r.headers
    pre = viewer.options("/api/v1/schemes", headers={"origin": "https://evil.example",
                                                     "access-control-request-method": "GET"})
    assert "access-control-allow-origin" not in pre.headers and pre.status_code == 405


def test_docs_work_offline(viewer, anon):
    page = viewer.get("/docs")
    assert page.status_code == 200
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)
    for url in re.findall(r"(?:src|href)=\"(/static/[^\"]+)\"", page.text):
        asset = anon.get(url)
        assert asset.status_code == 200 and len(asset.content) > 200, url
    spec = viewer.get("/api/v1/openapi.json").json()
    assert "/api/v1/customers/{customer_id}" in spec["paths"] and "/api/v1/score" in spec["paths"]
    assert anon.get("/api/v1/openapi.json").status_code == 401


def test_paging_and_filters(viewer):
    full = viewer.get("/api/v1/migration/rfm", params={"limit": 1000}).json()
    page = viewer.get("/api/v1/migration/rfm", params={"limit": 3, "offset": 2}).json()
    assert page["data"] == full["data"][2:5] and page["total"] == full["total"] == len(full["data"])
    champions = viewer.get("/api/v1/migration/rfm", params={"from_segment": "Champions"}).json()
    assert champions["data"] and {r["from_segment"] for r in champions["data"]} == {"Champions"}
    assert viewer.get("/api/v1/migration/rfm", params={"limit": 0}).status_code == 422


@pytest.mark.parametrize("snapshot", ["2024-06-01", "2024-07-01"])
def test_segment_picker_and_change_since_previous(viewer, served_project, snapshot):
    con = duckdb.connect(str(served_project / "segflow.duckdb"), read_only=True)
    try:
        counts = dict(con.execute(
            "SELECT segment, count(*) FROM segment_assignments WHERE scheme = 'rfm' AND snapshot_date = ? "
            "GROUP BY 1", [snapshot]).fetchall())
        prev = dict(con.execute(
            "SELECT segment, count(*) FROM segment_assignments WHERE scheme = 'rfm' AND snapshot_date = "
            "(SELECT max(snapshot_date) FROM segment_assignments WHERE scheme = 'rfm' AND snapshot_date < ?) "
            "GROUP BY 1", [snapshot]).fetchall())
    finally:
        con.close()
    body = viewer.get("/api/v1/segments/rfm", params={"snapshot": snapshot}).json()
    # a segment of the previous snapshot with no customer now is listed with 0 and its fall
    assert {r["segment"]: r["customers"] for r in body["data"]} == {**{s: 0 for s in prev}, **counts}
    assert {r["segment"]: r["change_customers"] for r in body["data"]} == {
        s: counts.get(s, 0) - prev.get(s, 0) for s in {*counts, *prev}}
    page = viewer.get("/segments/rfm", params={"snapshot": snapshot}).text
    assert f'<option value="{snapshot}" selected>' in page


def test_migration_cell_lists_its_customers(analyst):
    cells = analyst.get("/api/v1/migration/rfm", params={"limit": 1000}).json()
    meta = cells["meta"]
    for cell in [c for c in cells["data"] if c["customers"]][:4]:
        params = {"from_date": meta["from_date"], "to_date": meta["to_date"],
                  "from_segment": cell["from_segment"], "to_segment": cell["to_segment"], "limit": 1000}
        body = analyst.get("/api/v1/migration/rfm/customers", params=params).json()
        assert body["total"] == cell["customers"]
    page = analyst.get("/migration/rfm")
    assert "/migration/rfm/customers?" in page.text and "plotly_click" in page.text


def test_errors_are_pages_for_browsers_and_json_for_the_api(analyst):
    r = analyst.get("/segments/nope", headers={"accept": "text/html"})
    assert r.status_code == 404 and "<html" in r.text and "nope" in r.text
    r = analyst.get("/api/v1/segments/nope")
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    r = analyst.get("/api/v1/segments/rfm", params={"snapshot": "not-a-date"})
    assert r.status_code == 422 and "snapshot" in r.json()["detail"]


def test_new_and_revoked_tokens_reach_a_running_server_without_a_new_copy(served_project):
    """`segflow tokens create` while the server runs: the token works on its first request
    (the token file is read when it changes). A verified token is trusted for
    ``token_cache_seconds``; `segflow tokens revoke` rewrites the token file, and every server
    process refuses the token once its cached check is older than that. No new copy of the
    store is made (the poller is off here)."""
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from segflow.cli import app as cli
    from segflow.server import ServerSettings, create_app

    runner = CliRunner()
    ttl = 1.0
    server = create_app(ServerSettings(project_dir=served_project, allowed_hosts=["testserver"], poll_seconds=0,
                                       token_cache_seconds=ttl, warm=False))
    with TestClient(server, base_url="https://testserver") as c:
        copy = server.state.replica.current.number
        made = runner.invoke(cli, ["tokens", "create", "--role", "analyst", "--json", "-p", str(served_project)])
        assert made.exit_code == 0, made.output
        created = json.loads(made.stdout)
        headers = {"authorization": f"Bearer {created['token']}"}
        assert c.get("/api/v1/whoami", headers=headers).json()["role"] == "analyst"  # at once
        customer = _first_customer(served_project)
        assert c.get(f"/api/v1/customers/{customer}", headers=headers).status_code == 200  # the hot path too
        revoked = runner.invoke(cli, ["tokens", "revoke", created["token_id"], "-p", str(served_project)])
        assert revoked.exit_code == 0, revoked.output
        t0 = time.monotonic()
        statuses = []
        while time.monotonic() - t0 < ttl + 2:
            statuses.append((time.monotonic() - t0, c.get("/api/v1/whoami", headers=headers).status_code))
            if statuses[-1][1] == 401:
                break
            time.sleep(0.05)
        assert server.state.replica.current.number == copy  # no new copy was made
        assert statuses[-1][1] == 401, statuses
        assert statuses[-1][0] <= ttl + 0.5, statuses  # refused within the cache lifetime
        assert c.get(f"/api/v1/customers/{customer}", headers=headers).status_code == 401
        # a wrong secret for a known id is never taken from the cache
        wrong = created["token"][:-4] + ("AAAA" if not created["token"].endswith("AAAA") else "BBBB")
        assert c.get("/api/v1/whoami", headers={"authorization": f"Bearer {wrong}"}).status_code == 401


def _first_customer(project_dir) -> str:
    import duckdb

    con = duckdb.connect(str(project_dir / "segflow.duckdb"), read_only=True)
    try:
        return con.execute("SELECT min(customer_id) FROM customers").fetchone()[0]
    finally:
        con.close()


def test_token_book_reuses_a_check_for_its_lifetime_only(tmp_path):
    """The cache in isolation: a check is reused (even after the token file marks the token
    revoked) until ``ttl`` has passed, then the revocation applies; a new copy of the store
    (another ``copy`` number) checks again at once; a wrong secret is never a cache hit; a
    token only in the token file (created after the copy) is known at once; a token file the
    copy was made after (its publish_id kept with the copy) is ignored: the copy counts."""
    import dataclasses
    import types

    from segflow.server._token_cache import TOKENS_FILE, TokenBook
    from segflow.server._tokens import TokenRecord, hash_secret

    def publish(*records, publish_id="p1"):
        rows = {}
        for r in records:
            row = dataclasses.asdict(r)
            for name in ("created_at", "expires_at", "revoked_at"):
                row[name] = row[name].isoformat() if row[name] else None
            rows[r.token_id] = row
        (tmp_path / TOKENS_FILE).write_text(json.dumps({"publish_id": publish_id, "tokens": rows}))

    def copy(number, before=None):
        return types.SimpleNamespace(number=number, tokens=tokens, token_file_before=before)

    secret = "s" * 43
    record = TokenRecord("0123abcd", None, "viewer", hash_secret(secret), dt.datetime(2026, 1, 1), None, None)
    revoked = dataclasses.replace(record, revoked_at=dt.datetime(2026, 12, 1))
    tokens = {record.token_id: record}
    token = f"sf_{record.token_id}_{secret}"
    book = TokenBook(tmp_path, ttl=0.6)
    assert book.verify(token, copy(1)) == record
    publish(revoked)
    assert book.verify(token, copy(1)) == record  # cached: at most ttl old
    assert book.verify(token, copy(2)) is None  # a new copy: checked again, revoked
    assert book.lookup(record.token_id, copy(2)) == revoked
    assert book.verify(f"sf_{record.token_id}_{'t' * 43}", copy(1)) is None
    publish(record, publish_id="p2")
    assert book.verify(token, copy(1)) == record
    publish(revoked, publish_id="p3")
    time.sleep(0.7)
    assert book.verify(token, copy(1)) is None  # after ttl the revocation applies
    fresh = TokenRecord("89abcdef", "new", "analyst", hash_secret("n" * 43), dt.datetime(2026, 12, 1), None, None)
    assert book.verify(f"sf_89abcdef_{'n' * 43}", copy(1)) is None
    publish(revoked, fresh, publish_id="p4")
    assert book.verify(f"sf_89abcdef_{'n' * 43}", copy(1)) == fresh  # not in the copy, known at once
    assert book.lookup("89abcdef", copy(1)) == fresh and book.lookup("0123abcd", copy(1)) == revoked
    # a copy made after that file: the copy's records alone count (the store is the authority)
    assert book.verify(f"sf_89abcdef_{'n' * 43}", copy(3, before="p4")) is None
    assert book.verify(token, copy(3, before="p4")) == record
    assert book.lookup("89abcdef", copy(3, before="p4")) is None
    (tmp_path / TOKENS_FILE).write_text("{not json")
    assert book.verify(token, copy(4)) == record  # an unreadable file: the copy's records apply
    (tmp_path / TOKENS_FILE).write_text(json.dumps({"89abcdef": {}}))  # an older segflow's file
    assert book.verify(f"sf_89abcdef_{'n' * 43}", copy(5)) is None


def test_worker_processes_share_one_copy_of_the_store(served_project):
    """What `serve --workers N` relies on: replicas of one project (one per worker) open the
    same copy instead of making one each, and the last to close deletes it."""
    from segflow.server._replica import Replica

    first = Replica(served_project, poll_seconds=0)
    second = Replica(served_project, poll_seconds=0)
    try:
        assert first.current.path == second.current.path and first.current.path.exists()
        assert first.current.db.execute("SELECT count(*) FROM customers").fetchone()[0] > 0
        # one set of lookup files too, mapped by both
        assert first.current.lookup is not None and second.current.lookup is not None
        assert first.current.path.with_suffix(".lookup").is_dir()
        first.close()
        assert second.current.path.exists()  # still in use by the other "worker"
        assert second.current.path.with_suffix(".lookup").is_dir()
        path = second.current.path
    finally:
        first.close()
        second.close()
    if path.exists():  # only while another server of this module (the app fixture) serves it
        import fcntl
        import os

        fd = os.open(path.with_suffix(".users"), os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    else:
        assert not path.with_suffix(".lookup").exists(), "the lookup files go with the copy"


def test_score_with_the_session_and_a_form_body_is_a_clean_415(app, tokens):
    """The CSRF check reads a form body to find ``csrf_token``; the route then read the body
    again: "RuntimeError: Stream consumed", an HTTP 500."""
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver") as browser:
        r, _ = _login(browser, tokens["analyst"])
        assert r.status_code == 303
        csrf = browser.get("/api/v1/whoami").json()["csrf_token"]
        form = browser.post("/api/v1/score", data={"csrf_token": csrf})
        assert form.status_code == 415 and "X-CSRF-Token" in form.json()["detail"]
        multipart = browser.post("/api/v1/score", files={"csrf_token": (None, csrf)})
        assert multipart.status_code == 415
        body = {"transactions": [{"ts": "2024-05-01T10:00:00", "amount": 20.0}]}
        assert browser.post("/api/v1/score", json=body, headers={"x-csrf-token": csrf}).status_code == 200


def test_an_unexpected_error_is_one_json_line_with_the_security_headers(app, tokens, monkeypatch):
    """A bug in a route: the API answers one JSON line (a page for a browser), never the
    traceback or its text, with the security headers; the error still reaches the log
    (the test client re-raises it when asked to)."""
    from fastapi.testclient import TestClient

    from segflow.server import _views

    def broken(*args, **kwargs):
        raise RuntimeError("secret detail /srv/segflow/store.duckdb")

    monkeypatch.setattr(_views, "schemes", broken)
    headers = {"authorization": f"Bearer {tokens['viewer']}"}
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False, headers=headers) as c:
        api = c.get("/api/v1/schemes")
        assert api.status_code == 500 and api.headers["content-type"] == "application/json"
        assert api.json() == {"detail": "internal server error; the server log has the details"}
        page = c.get("/", headers={"accept": "text/html"})
        assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
        assert "<title>Error 500 · segflow</title>" in page.text
        for answer in (api, page):
            assert "secret" not in answer.text and "Traceback" not in answer.text
            assert answer.headers["x-frame-options"] == "DENY" and "default-src 'none'" in answer.headers[
                "content-security-policy"]
    with TestClient(app, base_url="https://testserver", headers=headers) as c, \
            pytest.raises(RuntimeError, match="secret detail"):
        c.get("/api/v1/schemes")


def test_csv_download_hashes_whole_columns_by_the_exports_expression(analyst, served_project, monkeypatch):
    """The download hashed value by value in Python (``hashlib`` per value and column:
    about 6 CPU-s per million rows of three personal columns); now the exports' own
    expression (``segflow.exports._pii.hash_key``) hashes each column at once in the engine,
    and the hashes are those of ``segflow export --pii hash`` for the same customers."""
    import csv
    import io

    import ibis

    from segflow.exports import personal_columns

    con = duckdb.connect(str(served_project / "segflow.duckdb"), read_only=True)
    customers = con.execute("SELECT customer_id, email, phone FROM customers").arrow()
    con.close()
    if not hasattr(customers, "num_rows"):  # a record batch reader (newer DuckDB)
        customers = customers.read_all()
    exported = {r["customer_id"]: r for r in personal_columns(ibis.memtable(customers), "hash").to_pyarrow().to_pylist()}

    calls = []
    sha256 = hashlib.sha256
    monkeypatch.setattr(hashlib, "sha256", lambda *a, **k: calls.append(1) or sha256(*a, **k))
    r = analyst.get("/api/v1/customers?format=csv")
    monkeypatch.undo()
    rows = {row["customer_id"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert len(rows) == len(exported) > 50
    for customer_id, row in rows.items():
        want = exported[customer_id]
        assert (row["email_sha256"] or None, row["phone_sha256"] or None) == (want["email_sha256"], want["phone_sha256"])
    assert rows["C001"]["email_sha256"] == sha256(EMAIL.encode()).hexdigest()
    assert len(calls) <= 2  # the token's check at most, not one per value


def _keyed(secret: bytes, key_text: str) -> str:
    """The audit log's q_hmac of a search's key text, from its documented definition
    (docs/server.md): HMAC-SHA-256 under the project's secret of the context and the text."""
    return hmac.new(secret, b"segflow audit search\x00" + key_text.encode(), "sha256").hexdigest()


def _secret(store_path) -> bytes:
    """The project's secret as its key file beside the store holds it (hex)."""
    return bytes.fromhex(store_path.with_name(store_path.name + ".idkey").read_text().strip())


def test_audit_log_stores_no_searched_address(app, admin, analyst, tokens):
    """A search by e-mail (API and page) is audited with the HMAC of the address's key
    (str.strip().lower(), as the exports hash it) under the project's secret, q_hmac, in the
    detail and the resource; the stored lines hold no address, in any case or URL encoding,
    nor its plain SHA-256 (which anyone could test a list of addresses against: the
    q_sha256 of before). An id search keeps its q."""
    from urllib.parse import quote

    from segflow.server import _audit

    work_dir = app.state.replica.work_dir
    searched = f"  {EMAIL.upper()} "
    assert analyst.get("/api/v1/customers", params={"q": searched}).json()["total"] == 1
    assert analyst.get("/customers", params={"q": searched}).status_code == 200
    assert analyst.get("/api/v1/customers", params={"q": "C00", "format": "csv"}).status_code == 200
    for other in ("Smithson", "+44 7700 886287"):  # a name and a phone number: hashed too
        assert analyst.get("/api/v1/customers", params={"q": other}).status_code == 200
    _audit.flush()
    stored = "".join(p.read_text(encoding="utf-8") for p in sorted(work_dir.glob("audit.jsonl*")))
    for form in ("smithson", "886287", "%2b44"):
        assert form not in stored.lower(), form
    secret = _secret(app.state.replica.store_path)
    assert _keyed(secret, "+447700886287") in stored
    for plain in ("+447700886287", "smithson", EMAIL.lower()):
        assert hashlib.sha256(plain.encode()).hexdigest() not in stored, plain
    for form in (EMAIL, quote(EMAIL), quote(EMAIL, safe=""), "jane.doe", "JANE.DOE", "jane%2Edoe"):
        assert form.lower() not in stored.lower(), form
    key = _keyed(secret, EMAIL.lower())
    analyst_id = tokens["analyst"].split("_")[1]
    events = admin.get("/api/v1/audit", params={"token_id": analyst_id, "limit": 1000}).json()["data"]
    searches = [e for e in events if e["action"] == "read_customers" and key in e["resource"]]
    assert {e["resource"].partition("?")[0] for e in searches} == {"/api/v1/customers", "/customers"}
    assert all(json.loads(e["detail"])["q_hmac"] == key and "q" not in json.loads(e["detail"])
               for e in searches)
    assert all(e["resource"].endswith(f"?q_hmac={key}") for e in searches)
    by_id = [e for e in events if e["action"] == "export" and e["resource"] == "/api/v1/customers?q=C00&format=csv"]
    assert by_id and json.loads(by_id[0]["detail"])["q"] == "C00"


def test_audit_drain_scrubs_addresses_an_older_server_spooled(tmp_path):
    """A spool line written before the scrub (the address in the detail and the resource) is
    moved into audit_log with q_hmac instead (keyed with the secret of the store the spool
    belongs to); an id search's q stays."""
    from segflow.server import _audit

    work = _audit.work_dir_for(tmp_path / "segflow.duckdb")
    old = {"event_id": "e1", "at": "2026-01-02T03:04:05.000000", "token_id": "t", "role": "analyst",
           "action": "read_customers", "resource": "/api/v1/customers?q=Jane.Doe%40Example.com&limit=5",
           "detail": json.dumps({"q": "Jane.Doe@Example.com", "rows": 1}), "client": "x"}
    kept = {**old, "event_id": "e2", "resource": "/api/v1/customers?q=C00", "detail": json.dumps({"q": "C00"})}
    _audit.spool_path(work).write_text(json.dumps(old) + "\n" + json.dumps(kept) + "\n")
    con = duckdb.connect()
    con.execute("CREATE TABLE audit_log (event_id VARCHAR PRIMARY KEY, event_at TIMESTAMP NOT NULL, "
                "token_id VARCHAR, role VARCHAR, action VARCHAR NOT NULL, resource VARCHAR, detail VARCHAR, "
                "client VARCHAR)")
    assert _audit.drain(work, con) == 2
    rows = dict(con.execute("SELECT event_id, resource || ' ' || detail FROM audit_log").fetchall())
    key = _keyed(_secret(tmp_path / "segflow.duckdb"), "jane.doe@example.com")
    assert rows["e1"] == f'/api/v1/customers?q_hmac={key}&limit=5 {{"q_hmac": "{key}", "rows": 1}}'
    assert rows["e2"] == '/api/v1/customers?q=C00 {"q": "C00"}'


def test_audit_scrub_hashes_every_search_text_but_an_id():
    """Names and phone numbers searched are not stored in clear either: every search text
    but an id-like one (``C00``, ``CUST-0042``, a short number) is recorded as q_hmac, keyed
    with the project's secret, of the key the exports hash for that kind of value (a name
    trimmed and lower-cased, a phone number in E.164, an address as for email_sha256), so an
    admin can find who searched for a person (``tokens audit --searched``) and nobody without
    the secret can test guesses against the log. The secret is read only for such a search."""
    from urllib.parse import quote

    from segflow.server import _audit

    secret = bytes(range(32))
    asked = []

    def given() -> bytes:
        asked.append(1)
        return secret

    def mac(text: str) -> str:
        return _keyed(secret, text)

    cases = {  # q as typed -> what the log holds, by hand
        "Smith": ("q_hmac", mac("smith")), " John Smith ": ("q_hmac", mac("john smith")),
        "+44 7700 886287": ("q_hmac", mac("+447700886287")),
        "0044 7700-886287": ("q_hmac", mac("+447700886287")),
        "07700886287": ("q_hmac", mac("07700886287")),
        "Jane@Example.com": ("q_hmac", mac("jane@example.com")),
        "C00": ("q", "C00"), "CUST-0042": ("q", "CUST-0042"), "123456": ("q", "123456"),
    }
    for q, (name, value) in cases.items():
        typed = f"/api/v1/customers?q={quote(q)}&limit=5"
        resource, detail = _audit.scrub(typed, {"q": q, "rows": 1}, given)
        assert detail == {name: value, "rows": 1}, q
        assert resource == (typed if name == "q" else f"/api/v1/customers?q_hmac={value}&limit=5"), q
    assert mac("smith") != _keyed(bytes(32), "smith")  # another project's secret, another value
    # the name percent-encoded (%71 is q: the server searches for it alike) is scrubbed too;
    # before, the address stayed in the path with query
    hidden = "/api/v1/customers?%71=Jane%40Example.com&limit=5"
    key = mac("jane@example.com")
    assert _audit.scrub(hidden, {"q": "Jane@Example.com"}, given) == (
        f"/api/v1/customers?q_hmac={key}&limit=5", {"q_hmac": key})
    # a hot route's query (no search) is kept as it came, without reading the secret
    asked.clear()
    assert _audit.scrub("/api/v1/score?customer_id=C001", None, given) == ("/api/v1/score?customer_id=C001", None)
    assert _audit.scrub("/api/v1/customers?q=C00", {"q": "C00"}, given)[1] == {"q": "C00"}
    assert asked == []
