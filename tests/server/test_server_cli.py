"""`segflow tokens create|list|revoke|audit` and `serve`'s refusals, through the CLI."""

from __future__ import annotations

import hashlib
import json
import sys
import warnings

import duckdb
from typer.testing import CliRunner

from segflow.cli import app


def test_tokens_lifecycle_and_audit_drain(tmp_path):
    from segflow.project import Project
    from segflow.server import _audit

    directory = tmp_path / "proj"
    Project.init(directory).close()
    runner = CliRunner()
    created = runner.invoke(app, ["tokens", "create", "--role", "analyst", "--name", "crm", "--expires", "30d",
                                  "-p", str(directory), "--json"])
    assert created.exit_code == 0, created.output
    body = json.loads(created.stdout)
    token, token_id = body["token"], body["token_id"]
    assert token.startswith(f"sf_{token_id}_") and body["role"] == "analyst" and body["state"] == "active"
    con = duckdb.connect(str(directory / "segflow.duckdb"), read_only=True)
    stored = con.execute("SELECT secret_sha256 FROM api_tokens WHERE token_id = ?", [token_id]).fetchone()[0]
    con.close()
    assert stored == hashlib.sha256(token.split("_", 2)[2].encode()).hexdigest()
    listed = runner.invoke(app, ["tokens", "list", "-p", str(directory), "--json"])
    assert listed.exit_code == 0 and token.split("_", 2)[2] not in listed.stdout and stored not in listed.stdout
    assert [r["name"] for r in json.loads(listed.stdout)] == ["crm"]
    bad = runner.invoke(app, ["tokens", "create", "--role", "root", "-p", str(directory)])
    assert bad.exit_code == 2 and "'--role': 'root' is not one of viewer, analyst, admin" in bad.output
    from segflow.cli._server import ROLE_CHOICES
    from segflow.server._tokens import ROLES

    assert ROLE_CHOICES == ROLES  # the command line's list is the server's
    past = runner.invoke(app, ["tokens", "create", "--role", "viewer", "--expires", "2001-01-01", "-p", str(directory)])
    assert past.exit_code == 1 and "lies in the past" in past.output
    for far in ("99999999d", "3000000d", "36501d"):  # a date beyond 9999 was a traceback
        late = runner.invoke(app, ["tokens", "create", "--role", "viewer", "--expires", far,
                                   "-p", str(directory)])
        assert late.exit_code == 1 and "at most 36,500 days" in late.output, late.output
        assert "Traceback" not in late.output
    revoked = runner.invoke(app, ["tokens", "revoke", token_id, "-p", str(directory)])
    assert revoked.exit_code == 0
    states = {r["token_id"]: r["state"] for r in json.loads(
        runner.invoke(app, ["tokens", "list", "-p", str(directory), "--json"]).stdout)}
    assert states[token_id] == "revoked"
    assert runner.invoke(app, ["tokens", "revoke", "nope", "-p", str(directory)]).exit_code == 1
    # events spooled by a server move into the store's audit_log, once
    work = _audit.work_dir_for(directory / "segflow.duckdb")
    empty = runner.invoke(app, ["tokens", "audit", "-p", str(directory)])
    assert empty.exit_code == 0 and empty.stdout == ""
    assert "no events in the audit log yet" in empty.stderr
    assert runner.invoke(app, ["tokens", "audit", "--action", "exports", "-p", str(directory)]).exit_code == 2
    from segflow.cli._server import AUDIT_ACTIONS

    assert AUDIT_ACTIONS == _audit.ACTIONS  # the command line's list is the server's
    event = _audit.record(work, token_id=token_id, role="analyst", action="export", resource="/api/v1/customers?format=csv")
    shown = runner.invoke(app, ["tokens", "audit", "-p", str(directory), "--json"])
    assert [e["event_id"] for e in json.loads(shown.stdout)] == [event["event_id"]]
    assert not _audit.spool_path(work).exists()
    scores = runner.invoke(app, ["tokens", "audit", "--action", "score", "-p", str(directory)])
    assert scores.stdout == "" and "no 'score' events in the audit log yet" in scores.stderr
    runner.invoke(app, ["tokens", "audit", "-p", str(directory), "--json"])
    con = duckdb.connect(str(directory / "segflow.duckdb"), read_only=True)
    assert con.execute("SELECT count(*), min(action) FROM audit_log").fetchone() == (1, "export")
    con.close()


def test_serve_get_needs_a_token(tmp_path, monkeypatch):
    from segflow.project import Project

    directory = tmp_path / "proj"
    Project.init(directory).close()
    runner = CliRunner()
    refused = runner.invoke(app, ["serve", "-p", str(directory), "--get", "/api/v1/schemes"])
    assert refused.exit_code == 1 and "Bearer" in refused.stdout
    token = json.loads(runner.invoke(app, ["tokens", "create", "--role", "viewer", "-p", str(directory),
                                           "--json"]).stdout)["token"]
    for module in ("starlette.testclient", "fastapi.testclient"):  # imported as on a first call
        monkeypatch.delitem(sys.modules, module, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ok = runner.invoke(app, ["serve", "-p", str(directory), "--get", "/api/v1/schemes", "--token", token])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["count"] == 0
    # Starlette's notice about its httpx-based client is not the user's business
    assert not [w for w in caught if "httpx" in str(w.message)], [str(w.message) for w in caught]
    assert "httpx" not in ok.stderr


def test_serve_refuses_a_store_of_a_newer_segflow(tmp_path):
    # every other command refuses a store whose schema version this segflow does not know;
    # the server's read-only copies must too (it would misread tables it does not know)
    from segflow.project import Project
    from segflow.store import SCHEMA_VERSION

    directory = tmp_path / "proj"
    Project.init(directory).close()
    runner = CliRunner()
    token = json.loads(runner.invoke(app, ["tokens", "create", "--role", "admin", "-p", str(directory),
                                           "--json"]).stdout)["token"]
    con = duckdb.connect(str(directory / "segflow.duckdb"))
    con.execute("INSERT INTO schema_info VALUES (?, now())", [SCHEMA_VERSION + 1])
    con.close()
    out = runner.invoke(app, ["serve", "-p", str(directory), "--get", "/api/v1/schemes", "--token", token])
    assert out.exit_code == 1, out.stdout
    assert f"schema version {SCHEMA_VERSION + 1}" in out.stderr and "upgrade segflow" in out.stderr
    # the message names the project's store, not the server's temporary copy of it
    assert f"store {directory / 'segflow.duckdb'} has" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and '"count"' not in out.stdout


def test_serve_get_reads_the_token_from_a_file_stdin_or_env_and_warns_when_typed(tmp_path, monkeypatch):
    """A token typed after --token is in the process list (ps) for every user to read: it
    still works, with a warning on stderr naming the safe ways; --token-file, --token - and
    SEGFLOW_TOKEN give the same answer without the warning."""
    from segflow.project import Project

    directory = tmp_path / "proj"
    Project.init(directory).close()
    runner = CliRunner()
    token = json.loads(runner.invoke(app, ["tokens", "create", "--role", "viewer", "-p", str(directory),
                                           "--json"]).stdout)["token"]
    get = ["serve", "-p", str(directory), "--get", "/api/v1/whoami"]
    token_id = token.split("_")[1]
    typed = runner.invoke(app, [*get, "--token", token])
    assert typed.exit_code == 0 and json.loads(typed.stdout)["token_id"] == token_id
    assert "visible to every user of this machine in the process list (ps)" in typed.stderr
    assert "--token-file" in typed.stderr and "SEGFLOW_TOKEN" in typed.stderr and token not in typed.stderr
    secret = tmp_path / "token.txt"
    secret.write_text(token + "\n")
    secret.chmod(0o600)
    quiet = [runner.invoke(app, [*get, "--token-file", str(secret)]),
             runner.invoke(app, [*get, "--token", "-"], input=token + "\n"),
             runner.invoke(app, get, env={"SEGFLOW_TOKEN": token})]
    for out in quiet:
        assert out.exit_code == 0, out.output
        assert json.loads(out.stdout)["token_id"] == token_id and out.stderr == ""
    secret.chmod(0o644)  # others may read it: said, and used all the same
    loose = runner.invoke(app, [*get, "--token-file", str(secret)])
    assert loose.exit_code == 0 and "can be read by other users (mode 644); chmod 600 it" in loose.stderr
    for args, input_text, message in [
        (["--token-file", str(tmp_path / "missing")], None, f"--token-file {tmp_path / 'missing'}: No such file"),
        (["--token-file", str(secret), "--token", token], None, "give --token or --token-file, not both"),
        (["--token", "-"], "", "--token -: no token on the standard input"),
    ]:
        out = runner.invoke(app, [*get, *args], input=input_text)
        assert out.exit_code == 1 and message in out.stderr and "Traceback" not in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


def test_export_warns_about_a_password_or_token_typed_in_a_url(tmp_path):
    from segflow.project import Project

    directory = tmp_path / "proj"
    Project.init(directory).close()
    runner = CliRunner()
    base = ["export", "segments", "-p", str(directory), "--scheme", "rfm", "--table", "t"]
    with_password = runner.invoke(app, [*base, "--to", "postgresql://crm:s3cret@127.0.0.1:1/db"])
    assert "a password in the --to URL on the command line is visible" in with_password.stderr
    assert "PGPASSWORD" in with_password.stderr and "s3cret" not in with_password.stderr
    without = runner.invoke(app, [*base, "--to", "postgresql://crm@127.0.0.1:1/db"])
    assert "visible to every user" not in without.stderr
    hook = "https://hooks.example.test/x?token=abc123"
    typed = runner.invoke(app, [*base, "--to", "out.csv", "--changes", "--webhook", hook])
    assert "a secret in the --webhook URL" in typed.stderr and "SEGFLOW_WEBHOOK" in typed.stderr
    from_env = runner.invoke(app, [*base, "--to", "out.csv", "--changes"], env={"SEGFLOW_WEBHOOK": hook})
    assert "visible to every user" not in from_env.stderr


def test_tokens_expires_takes_a_date_only_as_yyyy_mm_dd():
    """--expires 2027-W01-1 made a token expiring on 2027-01-04 and 20270131 one on
    2027-01-31 (Python 3.11's fromisoformat): refused like 2027-13-01; a date and a date
    with a time still work."""
    import datetime as dt

    import pytest

    from segflow.errors import SegflowError
    from segflow.server._tokens import parse_expires

    now = dt.datetime(2026, 1, 1)
    for text in ("2027-W01-1", "20270131", "20270131T1200", "2027-13-01"):
        with pytest.raises(SegflowError, match="give a duration like 30d"):
            parse_expires(text, now)
    assert parse_expires("2027-01-31", now) == dt.datetime(2027, 1, 31)
    assert parse_expires(" 2027-01-31T12:30 ", now) == dt.datetime(2027, 1, 31, 12, 30)
    assert parse_expires("2027-01-31 12:30+01:00", now) == dt.datetime(2027, 1, 31, 11, 30)


def test_serve_warns_when_any_host_header_is_allowed(tmp_path):
    """--allowed-host '*' turns Starlette's Host check (against DNS rebinding) off without a
    word: a warning says so; a pattern of one domain does not warn."""
    from segflow.project import Project

    directory = tmp_path / "proj"
    Project.init(directory).close()
    runner = CliRunner()
    live = ["serve", "-p", str(directory), "--get", "/api/v1/live"]
    star = runner.invoke(app, [*live, "--allowed-host", "*"])
    assert star.exit_code == 0, star.output
    assert star.stderr.startswith("warning: --allowed-host '*' answers any Host header"), star.stderr
    assert "DNS rebinding" in star.stderr and "'*.example.com'" in star.stderr
    domain = runner.invoke(app, [*live, "--allowed-host", "*.example.com"])
    assert domain.exit_code == 0 and domain.stderr == "", domain.stderr
    for bad in ("*.*", "**", " * ", "a*b", ""):  # Starlette asserted: a traceback (and an abort)
        refused = runner.invoke(app, [*live, "--allowed-host", bad])
        assert refused.exit_code == 2, (bad, refused.output)
        assert refused.stderr.startswith(f"segflow serve: invalid value for '--allowed-host': {bad!r} "), refused.stderr


def test_tokens_list_prints_a_name_as_written(tmp_path):
    """A token's name is text, not Rich markup: ``[/]`` made `tokens list` a traceback
    (MarkupError) and ``[red]`` restyled the row; both are printed as typed. An escape
    sequence in a name is printed as ``\\x1b``, not sent to the terminal."""
    from segflow.project import Project

    directory = tmp_path / "proj"
    Project.init(directory).close()
    runner = CliRunner()
    for name in ("[/]x", "[red]y", "z\x1b[2J"):
        made = runner.invoke(app, ["tokens", "create", "--role", "viewer", "--name", name, "-p", str(directory)])
        assert made.exit_code == 0, made.output
    listed = runner.invoke(app, ["tokens", "list", "-p", str(directory)], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "[/]x" in listed.stdout and "[red]y" in listed.stdout and "Traceback" not in listed.output
    assert "z\\x1b[2J" in listed.stdout and "\x1b" not in listed.stdout


def test_serve_binds_loopback_by_default_and_warns_on_other_addresses(tmp_path, monkeypatch):
    """`serve` listens on 127.0.0.1 unless told otherwise, and any address that is not
    loopback (0.0.0.0, ::, a LAN address) gets a warning naming the TLS proxy and
    --allowed-host; the Host check answers a bound LAN address but never the wildcards
    (no server is started: uvicorn.run and create_app are stand-ins)."""
    import uvicorn

    import segflow.server
    from segflow.project import Project

    directory = tmp_path / "proj"
    Project.init(directory).close()
    runs, settings = [], []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: runs.append(kw))
    monkeypatch.setattr(segflow.server, "create_app", lambda s: settings.append(s) or s)
    runner = CliRunner()
    for host in (None, "::1", "localhost", "0.0.0.0", "::", "192.0.2.7", "[/]x"):  # [/]: not markup
        args = ["serve", "-p", str(directory), "--port", "8123"] + (["--host", host] if host else [])
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert runs[-1]["host"] == (host or "127.0.0.1") and runs[-1]["port"] == 8123
        loud = f"warning: listening on {host}, reachable from other machines: put a TLS proxy in front"
        if host in (None, "::1", "localhost"):
            assert "warning" not in result.stderr, (host, result.stderr)
        else:
            assert result.stderr.startswith(loud) and "--allowed-host" in result.stderr, (host, result.stderr)
        allowed = settings[-1].allowed_hosts
        assert ("192.0.2.7" in allowed) == (host == "192.0.2.7") and "0.0.0.0" not in allowed and "::" not in allowed
        # X-Forwarded-For is believed from no one (uvicorn's default believed 127.0.0.1, that
        # is every client of a loopback server: any of them chose the audit log's address)
        assert runs[-1]["proxy_headers"] is False and runs[-1]["forwarded_allow_ips"] == []
    proxied = runner.invoke(app, ["serve", "-p", str(directory), "--trusted-proxy", "10.0.0.5",
                                  "--trusted-proxy", "fd00::/8"])
    assert proxied.exit_code == 0, proxied.output
    assert runs[-1]["proxy_headers"] is True and runs[-1]["forwarded_allow_ips"] == ["10.0.0.5", "fd00::/8"]
    for bad in ("*", "proxy.example.com"):
        refused = runner.invoke(app, ["serve", "-p", str(directory), "--trusted-proxy", bad])
        assert refused.exit_code == 2 and "is not an IP address or network" in refused.stderr, refused.output


def test_tokens_audit_prints_control_characters_as_escapes(tmp_path):
    """An event's path holds what a request asked for: a customer id may hold any character
    but at its ends (an escape sequence, a tab). `tokens audit` writes them as escapes, so the
    reader's terminal runs none and every line keeps its six columns; other text (``é``,
    ``顧客``) as it is."""
    from segflow.project import Project
    from segflow.server import _audit

    directory = tmp_path / "proj"
    Project.init(directory).close()
    work = _audit.work_dir_for(directory / "segflow.duckdb")
    _audit.record(work, token_id="t1", role="analyst", action="read_customer",
                  resource="/customers/A\x1b]0;pwn\x07B\tC é 顧客\\t", detail={"customer_id": "A\x1b"})
    shown = CliRunner().invoke(app, ["tokens", "audit", "-p", str(directory)])
    assert shown.exit_code == 0, shown.output
    line = shown.stdout.rstrip("\n")
    assert "\x1b" not in line and "\x07" not in line and len(line.split("\t")) == 6
    # a backslash of the id doubled: its "\\t" (two characters) is not the escaped tab
    assert line.split("\t")[4] == "/customers/A\\x1b]0;pwn\\x07B\\tC é 顧客\\\\t"


def test_serve_max_connections_reaches_uvicorns_config(tmp_path, monkeypatch):
    """uvicorn set no limit on open connections; `serve` gives its Config limit_concurrency
    (default MAX_CONNECTIONS = 256, or --max-connections), with one worker or several; 1
    (every request refused, its own connection counted) is a usage error (no server is
    started: uvicorn.run is a stand-in, its keywords build uvicorn's own Config)."""
    import uvicorn

    import segflow.server
    from segflow.cli._server import MAX_CONNECTIONS
    from segflow.project import Project

    directory = tmp_path / "proj"
    Project.init(directory).close()
    runs = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: runs.append(uvicorn.Config(app, **kw)))
    monkeypatch.setattr(segflow.server, "create_app", lambda s: s)
    monkeypatch.setenv("SEGFLOW_SERVE_SETTINGS", "")  # the workers path sets it: undone after
    runner = CliRunner()
    for extra, limit in (([], 256), (["--max-connections", "40"], 40),
                         (["--max-connections", "40", "--workers", "2"], 40)):
        result = runner.invoke(app, ["serve", "-p", str(directory), *extra])
        assert result.exit_code == 0, result.output
        assert runs[-1].limit_concurrency == limit and MAX_CONNECTIONS == 256
    assert runs[-1].workers == 2
    refused = runner.invoke(app, ["serve", "-p", str(directory), "--max-connections", "1"])
    assert refused.exit_code == 2 and "--max-connections" in refused.stderr, refused.output


def test_tokens_audit_finds_the_searches_for_a_text_in_new_and_older_lines(tmp_path):
    """``tokens audit --searched TEXT`` lists the searches for that person: the lines of this
    server (q_hmac, keyed with the project's secret), those of an older server (the plain
    SHA-256 as q_sha256, kept and shown as written) and an id search's q as typed; nothing
    else. Without the option every line shows, the older one as it was written."""
    import hmac

    from segflow.project import Project
    from segflow.server import _audit

    directory = tmp_path / "proj"
    Project.init(directory).close()
    work = _audit.work_dir_for(directory / "segflow.duckdb")
    runner = CliRunner()
    new = _audit.record(work, token_id="t1", role="analyst", action="read_customers",
                        resource="/api/v1/customers?q=Jane.Doe%40Example.com", detail={"q": "Jane.Doe@Example.com"})
    other = _audit.record(work, token_id="t1", role="analyst", action="read_customers",
                          resource="/customers?q=Smith", detail={"q": "Smith"})
    by_id = _audit.record(work, token_id="t1", role="analyst", action="export",
                          resource="/api/v1/customers?q=C00&format=csv", detail={"q": "C00"})
    sha = hashlib.sha256(b"jane.doe@example.com").hexdigest()
    older = {"event_id": "old1", "at": "2026-01-02T03:04:05.000000", "token_id": "t0", "role": "analyst",
             "action": "read_customers", "resource": f"/api/v1/customers?q_sha256={sha}",
             "detail": json.dumps({"q_sha256": sha, "rows": 1}), "client": "127.0.0.1"}
    with _audit.spool_path(work).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(older) + "\n")
    secret = bytes.fromhex((directory / "segflow.duckdb.idkey").read_text().strip())
    keyed = hmac.new(secret, b"segflow audit search\x00jane.doe@example.com", "sha256").hexdigest()
    assert json.loads(new["detail"]) == {"q_hmac": keyed} and sha not in json.dumps(new)

    def found(text: str) -> list[str]:
        shown = runner.invoke(app, ["tokens", "audit", "--searched", text, "-p", str(directory), "--json"])
        assert shown.exit_code == 0, shown.output
        return [e["event_id"] for e in json.loads(shown.stdout)]

    assert found("  JANE.doe@example.COM ") == [new["event_id"], "old1"]
    assert found("smith") == [other["event_id"]]
    assert found("C00") == [by_id["event_id"]]
    assert found("nobody@example.com") == []
    every = runner.invoke(app, ["tokens", "audit", "-p", str(directory)])
    assert every.exit_code == 0 and len(every.stdout.splitlines()) == 4
    assert f'{{"q_sha256": "{sha}", "rows": 1}}' in every.stdout.splitlines()[-1]
    none = runner.invoke(app, ["tokens", "audit", "--searched", "x@y.z", "-p", str(directory)])
    assert "no events of a search for that text in the audit log yet" in none.stderr
