"""CLI: ``serve`` and ``tokens create|list|revoke|audit`` (API tokens of the server)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import typer

from segflow.cli._common import (
    Choice,
    EngineOption,
    JsonOption,
    ProjectDirOption,
    Table,
    Text,
    console,
    user_errors,
)

tokens_app = typer.Typer(help="API tokens of `segflow serve`: create, list, revoke; the audit log.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``tokens`` group to the root app."""
    app.command("serve")(serve)
    tokens_app.command("create")(create)
    tokens_app.command("list")(list_tokens)
    tokens_app.command("revoke")(revoke)
    tokens_app.command("audit")(audit)
    app.add_typer(tokens_app, name="tokens")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_patterns(values: list[str] | None) -> list[str] | None:
    """``--allowed-host`` values as Starlette's Host check takes them: a name, ``*`` (any), or
    ``*.`` and a domain; anything else (``*.*``, `` * ``, ``a*b``) is a usage error (Starlette
    asserted on it: a traceback, and an abort with ``--workers``)."""
    for value in values or ():
        wildcard = value.startswith("*") and value != "*" and not value.startswith("*.")
        if not value or "*" in value[1:] or wildcard or value != value.strip():
            raise typer.BadParameter(f"{value!r} is not a host name, '*' or a domain pattern such as "
                                     "'*.example.com'")
    return values


def _proxies(values: list[str] | None) -> list[str] | None:
    """``--trusted-proxy`` values: IP addresses or networks (``10.0.0.5``, ``10.0.0.0/8``);
    anything else (``*``, a name) is a usage error: trusting every sender of
    ``X-Forwarded-For`` lets any client choose the address the audit log records."""
    for value in values or ():
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not an IP address or network (such as 10.0.0.5 "
                                     "or 10.0.0.0/8)") from None
    return values


#: ``serve --max-connections``'s default: open connections per server process (uvicorn's
#: ``limit_concurrency``; uvicorn sets none). Each connection costs a few kB and a request
#: being answered one of ``--pool-size`` store cursors, so 256 is far above what 8 cursors
#: answer at once and far below what exhausts the process's file descriptors (1024).
MAX_CONNECTIONS = 256


def serve(
    ctx: typer.Context,
    project_dir: Path = ProjectDirOption,
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    allowed_host: list[str] = typer.Option(
        None, "--allowed-host", callback=_host_patterns,
        help="Host header value to answer besides 127.0.0.1/localhost (repeatable; others get 400).",
    ),
    trusted_proxy: list[str] = typer.Option(
        None, "--trusted-proxy", callback=_proxies,
        help="Address of a reverse proxy whose X-Forwarded-For/-Proto headers are believed "
        "(repeatable; none by default: the audit log records the connecting address).",
    ),
    pool_size: int = typer.Option(8, min=1, max=64, help="Read-only store connections (requests read in parallel)."),
    workers: int = typer.Option(1, min=1, max=64, help="Server processes (uvicorn workers) sharing one copy of the store."),
    max_connections: int = typer.Option(
        MAX_CONNECTIONS, "--max-connections", min=2,
        help="Open connections per server process (its own counted) at which a request gets "
        "503 instead of being served (uvicorn's limit_concurrency).",
    ),
    get: str = typer.Option(
        None, "--get", help="Run one GET request against this path in-process, print it and exit."
    ),
    token: str = typer.Option(
        None, "--token", envvar="SEGFLOW_TOKEN", show_envvar=False,
        help="API token for --get: '-' reads it from the standard input; the env SEGFLOW_TOKEN "
        "or --token-file keep it out of the process list (a token typed here is visible in ps).",
    ),
    token_file: Path = typer.Option(
        None, "--token-file", metavar="<path>", help="File whose first line is the API token for --get."
    ),
    engine: str | None = EngineOption,
) -> None:
    """Serve the dashboard and the JSON API (/api/v1) of a project, from a read-only copy of
    its store (ingest and run keep working). Every route needs a token: `segflow tokens create --role viewer`.
    On Spark the copy shows the warehouse: its aggregates, logs and customer-level tables."""
    with user_errors():
        from segflow.cli import _secrets

        typed = token not in (None, "-") and _secrets.typed(ctx, "token")
        token = _secrets.read_token(token, token_file)
        if typed:
            _secrets.warn("the API token (--token)", "use --token-file PATH, --token - (standard input) "
                          "or the environment variable SEGFLOW_TOKEN")
        try:
            import uvicorn
        except ImportError as exc:
            from segflow.errors import SegflowError

            raise SegflowError(
                "serve needs the optional server extra: pip install 'segflow[server]'"
            ) from exc
        from segflow.server import ServerSettings, create_app
        from segflow.server.app import SETTINGS_ENV
        from segflow.server.deps import LOOPBACK_HOSTS

        hosts = [*LOOPBACK_HOSTS, *(allowed_host or [])]
        if get:
            hosts.append("testserver")
        if not _is_loopback(host) and host not in ("0.0.0.0", "::"):
            hosts.append(host)
        if "*" in hosts:
            console.print(
                "[bold yellow]warning:[/] --allowed-host '*' answers any Host header: the check "
                "that keeps other web sites from reaching this server through DNS rebinding is off; "
                "pass the names it is reached by (a pattern such as '*.example.com' is fine)",
                soft_wrap=True, highlight=False,
            )
        settings = ServerSettings(project_dir=project_dir, allowed_hosts=hosts, pool_size=pool_size,
                                  engine=engine)
        if get:
            app = create_app(settings)
            import warnings

            headers = {"authorization": f"Bearer {token}"} if token else {}
            with warnings.catch_warnings():  # Starlette's notices about its httpx-based client
                warnings.filterwarnings("ignore", message=".*httpx.*")
                warnings.simplefilter("ignore", DeprecationWarning)
                from fastapi.testclient import TestClient

                with TestClient(app, base_url="https://testserver") as client:
                    response = client.get(get, headers=headers)
            typer.echo(response.text)
            raise typer.Exit(0 if response.status_code < 400 else 1)
        if not _is_loopback(host):
            from rich.markup import escape

            console.print(
                f"[bold yellow]warning:[/] listening on {escape(host)}, reachable from other machines: "
                "put a TLS proxy in front (the session cookie is Secure; tokens travel in the clear "
                "otherwise) and pass the public name with --allowed-host"
            )
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        console.print(
            f"segflow serve: project {project_dir.resolve()}\n"
            f"  dashboard  {url}/   (log in with a token: segflow tokens create --role viewer)\n"
            f"  API        {url}/api/v1   docs {url}/docs",
            soft_wrap=True, highlight=False, markup=False,
        )
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: every client of a
        # loopback server is 127.0.0.1, so any of them chose the address the audit recorded;
        # and it answers any number of connections unless limit_concurrency bounds them
        options = {"proxy_headers": bool(trusted_proxy), "forwarded_allow_ips": trusted_proxy or [],
                 "limit_concurrency": max_connections}
        if workers == 1:
            # access_log off: at log level warning its lines are dropped anyway, after being
            # formatted (a few microseconds a request on the hot routes)
            uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False,
                        http=_http_protocol(), **options)
            return
        # several processes: uvicorn starts each worker, which builds its own app from these
        # settings; the workers share one copy of the store (see segflow.server._replica)
        import os

        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        uvicorn.run("segflow.server.app:app_from_environment", factory=True, workers=workers, host=host,
                    port=port, log_level="warning", access_log=False, http=_http_protocol(), **options)


def _http_protocol() -> Any:
    """uvicorn's httptools protocol writing each answer once (segflow.server._protocol), or
    uvicorn's own choice when httptools is not installed."""
    try:
        from segflow.server._protocol import CoalescingHttpTools
    except ImportError:
        return "auto"
    return CoalescingHttpTools


#: ``--role``'s values: segflow.server._tokens ROLES (not imported here: the server package
#: imports its web framework; tests/server/test_server_cli.py checks they are equal).
ROLE_CHOICES = ("viewer", "analyst", "admin")
#: The actions the server records (segflow.server._audit; not imported here: --help stays fast).
AUDIT_ACTIONS = ("read_customer", "read_customers", "export", "score")
RoleOption = typer.Option(..., "--role", parser=Choice(*ROLE_CHOICES), help="viewer (aggregates), analyst (+ customer data, exports) or admin (+ tokens, audit).")


def _printable(text: str) -> str:
    """``text`` with its control and format characters written as escapes (``\\x1b``,
    ``\\t``) and each backslash doubled: an event's path comes from a request and may hold
    a customer id with any character but at its ends, so an escape sequence in it reached
    the terminal of whoever read the log (and a tab added a column); a backslash doubled
    keeps a written ``\\t`` (two characters in the id) apart from an escaped tab. See
    :func:`segflow.errors.printable`."""
    from segflow.errors import printable

    return printable(text.replace("\\", "\\\\"))


def _open(project_dir: Path):  # noqa: ANN202
    from segflow.project import Project
    from segflow.server._audit import drain, work_dir_for

    project = Project.open(project_dir)
    drain(work_dir_for(project.store.path), project.store.raw)
    return project


def _close(project) -> None:  # noqa: ANN001
    from segflow.server._audit import work_dir_for
    from segflow.server._token_cache import publish_tokens

    project.store.raw.execute("CHECKPOINT")  # a running server copies the store at checkpoints
    try:  # running servers know new and revoked tokens at once, without waiting for a copy
        publish_tokens(work_dir_for(project.store.path), project.store.raw)
    finally:
        project.close()


def create(
    role: str = RoleOption,
    name: str = typer.Option(None, "--name", help="Who or what the token is for (shown in lists)."),
    expires: str = typer.Option(None, "--expires", help="Lifetime (30d, 12h, 90m) or a UTC date (2027-01-31)."),
    project_dir: Path = ProjectDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Create a token; it is printed once on stdout and only its SHA-256 is stored."""
    from segflow.server._tokens import create_token, parse_expires

    with user_errors():
        expires_at = parse_expires(expires)
        project = _open(project_dir)
        try:
            with project.store.transaction() as con:
                token, record = create_token(con, role, name=name, expires_at=expires_at)
        finally:
            _close(project)
        if as_json:
            typer.echo(json.dumps({"token": token, **record.public()}, default=str))
        else:
            typer.echo(token)
            until = f"until {record.expires_at:%Y-%m-%d %H:%M} UTC" if record.expires_at else "without expiry"
            console.print(f"created token {record.token_id} ({record.role}, {until}); it is shown only now")


def list_tokens(project_dir: Path = ProjectDirOption, as_json: bool = JsonOption) -> None:
    """Tokens with role, dates and state (never the secret)."""
    from segflow.server._tokens import load_tokens

    with user_errors():
        project = _open(project_dir)
        try:
            rows = [t.public() for t in load_tokens(project.store.raw).values()]
        finally:
            _close(project)
        if as_json:
            typer.echo(json.dumps(rows, default=str))
            return
        table = Table("id", "name", "role", "created (UTC)", "expires (UTC)", "state")
        for r in rows:
            # Text(): a name is printed as written, never read as Rich markup (a name holding
            # "[/]" made the list a traceback; "[red]..." restyled the rows after it), and its
            # control characters as escapes (an escape sequence reached the terminal)
            table.add_row(r["token_id"], Text(_printable(r["name"] or "")), r["role"], f"{r['created_at']:%Y-%m-%d %H:%M}",
                          f"{r['expires_at']:%Y-%m-%d %H:%M}" if r["expires_at"] else "never", r["state"])
        from rich.console import Console

        Console().print(table)  # results on stdout


def revoke(
    token_id: str = typer.Argument(..., help="The token id (8 hex characters, see `tokens list`)."),
    project_dir: Path = ProjectDirOption,
) -> None:
    """Revoke a token; a running server refuses it within 5 s (`token_cache_seconds`)."""
    from segflow.server._tokens import revoke_token

    with user_errors():
        project = _open(project_dir)
        try:
            with project.store.transaction() as con:
                record = revoke_token(con, token_id)
        finally:
            _close(project)
        console.print(f"token {record.token_id} ({record.role}) revoked at {record.revoked_at:%Y-%m-%d %H:%M} UTC")


def audit(
    limit: int = typer.Option(100, min=1, help="Newest events to show."),
    action: str = typer.Option(None, "--action", parser=Choice(*AUDIT_ACTIONS),
                               help="Only this action: read_customer, read_customers, export (a CSV download) or score."),
    searched: str = typer.Option(None, "--searched", help="Only the customer searches for this text (an e-mail, "
                                 "phone number or name: the log holds its keyed hash, q_hmac, or an older "
                                 "server's q_sha256; an id as typed)."),
    project_dir: Path = ProjectDirOption,
    as_json: bool = JsonOption,
) -> None:
    """The audit log: who read customer-level data and who exported (newest first)."""
    from segflow.server._audit import read_events, work_dir_for

    with user_errors():
        project = _open(project_dir)
        try:
            events = read_events(work_dir_for(project.store.path), project.store.raw, limit=limit, action=action,
                                 searched=searched)
        finally:
            _close(project)
        if as_json:
            typer.echo(json.dumps(events, default=str))
            return
        if not events:
            what = f"no {action!r} events" if action else "no events"
            what += " of a search for that text" if searched is not None else ""
            console.print(f"{what} in the audit log yet: it records the server's reads of "
                          "customer-level data, its CSV downloads and its scoring calls", highlight=False)
        for e in events:
            fields = (e["at"], e["token_id"], e["role"], e["action"], e["resource"], e["detail"])
            typer.echo("\t".join(_printable(str(f)) for f in fields))
