"""The store is the authority on tokens; unauthenticated requests never take a store lease.

A security review found that tokens the store no longer held (a rebuilt store, a backup
copied back) still logged in, from the server's published ``tokens.json``, while ``segflow
tokens revoke`` could not find them; and that requests without a token waited for a store
connection (the admission gate) before they were refused.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil

import pytest
from typer.testing import CliRunner


def _server(project_dir):  # noqa: ANN202
    from segflow.server import ServerSettings, create_app

    return create_app(ServerSettings(project_dir=project_dir, allowed_hosts=["testserver"], poll_seconds=0,
                                     warm=False, token_cache_seconds=0))


def _client(app):  # noqa: ANN202
    from fastapi.testclient import TestClient

    return TestClient(app, base_url="https://testserver")


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _login(c, token: str) -> None:  # noqa: ANN001
    form = c.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    r = c.post("/login", data={"token": token, "csrf_token": csrf, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text[:300]


def test_a_token_the_replaced_store_lacks_is_refused_everywhere(served_project, tokens):
    """The reviewer's reproduction: an admin token is created while a server runs (so it is in
    ``tokens.json``), then the store is replaced by a copy made before the token (a backup
    copied back; a rebuilt store is the same case: the token is not in it). Once the server
    serves the replaced store, the token, and the browser session logged in with it, are
    refused (401), in the running server and in a new one, and ``/api/v1/tokens`` lists what
    ``segflow tokens list`` lists; tokens created after the replacement work at once."""
    from segflow.cli import app as cli

    runner = CliRunner()
    store = served_project / "segflow.duckdb"
    backup = served_project / "backup.duckdb"
    shutil.copyfile(store, backup)
    server = _server(served_project)
    with _client(server) as c:
        made = runner.invoke(cli, ["tokens", "create", "--role", "admin", "--name", "before-rebuild", "--json",
                                   "-p", str(served_project)])
        assert made.exit_code == 0, made.output
        stale = json.loads(made.stdout)
        assert c.get("/api/v1/whoami", headers=_bearer(stale["token"])).json()["role"] == "admin"
        _login(c, stale["token"])
        assert c.get("/api/v1/whoami").json()["token_id"] == stale["token_id"]  # the session cookie

        shutil.copyfile(backup, store)  # the backup from before the token is copied back
        assert server.state.replica.refresh()
        assert c.get("/api/v1/whoami", headers=_bearer(stale["token"])).status_code == 401
        assert c.get("/api/v1/whoami").status_code == 401  # its session ends too
        c.cookies.clear()
        listed = c.get("/api/v1/tokens", headers=_bearer(tokens["admin"])).json()["data"]
        cli_list = runner.invoke(cli, ["tokens", "list", "--json", "-p", str(served_project)])
        assert sorted(t["token_id"] for t in listed) == sorted(t["token_id"] for t in json.loads(cli_list.stdout))
        assert stale["token_id"] not in {t["token_id"] for t in listed}
        revoked = runner.invoke(cli, ["tokens", "revoke", stale["token_id"], "-p", str(served_project)])
        assert revoked.exit_code != 0 and "no token" in revoked.output  # the CLI agrees with the server
        # still refused after `tokens list`/`revoke` republished the file from the store
        assert c.get("/api/v1/whoami", headers=_bearer(stale["token"])).status_code == 401

        made = runner.invoke(cli, ["tokens", "create", "--role", "viewer", "--json", "-p", str(served_project)])
        assert made.exit_code == 0, made.output
        after = json.loads(made.stdout)
        number = server.state.replica.current.number
        assert c.get("/api/v1/whoami", headers=_bearer(after["token"])).json()["role"] == "viewer"  # at once
        assert server.state.replica.current.number == number  # without a new copy

    # a server started after the replacement (`segflow serve --get ...` in the report)
    shutil.copyfile(backup, store)
    fresh = _server(served_project)
    with _client(fresh) as c:
        assert c.get("/api/v1/whoami", headers=_bearer(stale["token"])).status_code == 401
        assert c.get("/api/v1/whoami", headers=_bearer(after["token"])).status_code == 401  # not in the backup
        assert c.get("/api/v1/whoami", headers=_bearer(tokens["viewer"])).status_code == 200


#: Routes reading the store, without credentials: a customer-level route, scheme routes, pages.
UNAUTHENTICATED = ["/api/v1/customers?q=C00", "/api/v1/segments/rfm", "/api/v1/migration/rfm", "/api/v1/health",
                   "/segments/rfm", "/customers?q=C001"]


def _count_leases(replica, monkeypatch) -> list[int]:  # noqa: ANN001
    """A list that gets a 1 for every store lease ``replica`` gives from now on."""
    leases: list[int] = []
    lease = replica.lease

    @contextlib.contextmanager
    def counted(*args, **kwargs):  # noqa: ANN202
        leases.append(1)
        with lease(*args, **kwargs) as got:
            yield got

    monkeypatch.setattr(replica, "lease", counted)
    return leases


@pytest.mark.parametrize("auth", ["none", "wrong"])
def test_requests_without_valid_credentials_take_no_store_lease(app, anon, tokens, monkeypatch, auth):
    """A request without (valid) credentials is refused (401, or a page's redirect to the login
    form) before it asks for a store connection: it never waits at the admission gate, so a
    flood of them cannot make the server answer its callers 503. ``/api/v1/live`` stays public
    and needs no connection either; an authenticated request does lease one."""
    leases = _count_leases(app.state.replica, monkeypatch)
    headers = {} if auth == "none" else _bearer(tokens["admin"][:-2] + "xx")
    for url in UNAUTHENTICATED:
        r = anon.get(url, headers=headers, follow_redirects=False)
        if r.status_code == 303:  # a page asked for by a browser: to the login form
            assert r.headers["location"].startswith("/login"), url
        else:
            assert r.status_code == 401, (url, r.status_code)
    assert leases == []
    assert anon.get("/api/v1/live").json()["status"] == "ok"
    assert leases == []
    assert anon.get("/api/v1/segments/rfm", headers=_bearer(tokens["viewer"])).status_code == 200
    assert leases == [1]


#: Routes refusing each role (403), method and path: customer-level data for analysts,
#: tokens and audit for admins.
TOO_LOW = {
    "viewer": [("GET", "/api/v1/audiences"), ("GET", "/api/v1/audit"), ("GET", "/api/v1/customers"),
               ("GET", "/api/v1/customers/{customer_id:path}"), ("GET", "/api/v1/migration/{scheme:path}/customers"),
               ("GET", "/api/v1/tokens"), ("GET", "/audiences"), ("GET", "/audit"), ("GET", "/customers"),
               ("GET", "/customers/{customer_id:path}"), ("GET", "/migration/{scheme:path}/customers"),
               ("POST", "/api/v1/score")],
    "analyst": [("GET", "/api/v1/audit"), ("GET", "/api/v1/tokens"), ("GET", "/audit")],
}


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_a_role_too_low_for_the_route_takes_no_store_lease(app, anon, tokens, monkeypatch, role):
    """A caller whose role is below the route's gets its 403 before it asks for a store
    connection, on every route of the app (the route's parameters put the connection before
    the role check, so the check came after the lease and such callers held places of the
    admission gate); a caller of the route's role takes one lease."""
    from tests.server.test_server_auth import PUBLIC, _routes

    leases = _count_leases(app.state.replica, monkeypatch)
    refused = []
    for route, url in _routes(app):
        if route.path in PUBLIC:
            continue
        for method in sorted(route.methods):
            r = anon.request(method, url, headers=_bearer(tokens[role]), follow_redirects=False,
                             json={} if method == "POST" else None)
            if r.status_code == 403:
                assert "role or above" in r.text, (method, url)
                refused.append((method, route.path))
                assert leases == [], (method, url)
            leases.clear()
    assert sorted(refused) == TOO_LOW[role]
    allowed = {"viewer": "/api/v1/segments/rfm", "analyst": "/api/v1/customers?q=C00"}[role]
    assert anon.get(allowed, headers=_bearer(tokens[role])).status_code == 200
    assert leases == [1]
    leases.clear()
    assert anon.get("/api/v1/audit", headers=_bearer(tokens["admin"])).status_code == 200
    assert leases == [1]


def test_a_session_is_bound_to_its_tokens_secret(served_project, tmp_path):
    """A browser session ends when the store's token of its id is another token (another
    secret: a store whose token reuses the id), not only when the id is gone; and a sessions
    file of an older segflow (without the token's hash) is emptied once, not misread."""
    import sqlite3

    import duckdb

    from segflow.server._auth import Sessions
    from segflow.server._tokens import create_token, hash_secret

    server = _server(served_project)
    store = str(served_project / "segflow.duckdb")
    con = duckdb.connect(store)
    token, record = create_token(con, "analyst", name="session")
    con.execute("CHECKPOINT")
    con.close()
    with _client(server) as c:
        server.state.replica.refresh()
        _login(c, token)
        assert c.get("/api/v1/whoami").json()["token_id"] == record.token_id
        con = duckdb.connect(store)
        con.execute("UPDATE api_tokens SET secret_sha256 = ? WHERE token_id = ?", [hash_secret("x" * 43), record.token_id])
        con.execute("CHECKPOINT")
        con.close()
        assert server.state.replica.refresh()
        assert c.get("/api/v1/whoami").status_code == 401

    old = sqlite3.connect(tmp_path / "sessions.sqlite")
    old.execute("CREATE TABLE sessions (id_sha256 TEXT PRIMARY KEY, token_id TEXT, csrf TEXT, expires_at TEXT)")
    old.execute("INSERT INTO sessions VALUES ('k', ?, 'c', '2999-01-01T00:00:00')", [record.token_id])
    old.commit()
    old.close()
    sessions = Sessions(path=tmp_path, ttl=0)
    made = sessions.create(record)
    assert Sessions(path=tmp_path, ttl=0).get(made.session_id).token_sha256 == record.secret_sha256
