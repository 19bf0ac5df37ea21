"""The segflow web app: a JSON API under /api/v1 and dashboard pages, on one project.

Everything but the login form and the static library files needs a token (see
:mod:`segflow.server._auth`); requests whose Host header is not an allowed name are refused
(DNS rebinding); every answer carries the security headers of
:class:`segflow.server._security.SecurityHeaders`; no CORS.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from segflow.config._errors import message as error_message
from segflow.server import _audit
from segflow.server._auth import LoginRequired, Sessions
from segflow.server._hot import HotPaths
from segflow.server._replica import Replica
from segflow.server._security import SecurityHeaders
from segflow.server._token_cache import TokenBook
from segflow.server.deps import ServerSettings, default_settings
from segflow.server.routes import api, auth, insights, pages, score


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", "")


def _error_page(request: Request, status: int, detail: str) -> Response:
    from segflow.server.routes._render import error_block, render

    return render(request, f"Error {status}", [error_block(detail)], status_code=status)


class SegflowApp(FastAPI):
    """FastAPI with :class:`segflow.server._hot.HotPaths` in front of its middleware stack:
    the successful requests of ``POST /api/v1/score`` and ``GET /api/v1/customers/{id}`` are
    answered before any middleware, routing or dependency runs (about 0.1-0.2 ms of CPU less
    per request); everything else goes through the whole app as before."""

    hot_paths: HotPaths | None = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self.hot_paths is not None and scope["type"] == "http":
            scope["app"] = self
            await self.hot_paths(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """Build the app for one project folder (served from a read-only copy of its store)."""
    settings = settings or default_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # several test clients may share one app: close the copy when the last one stops
        app.state.running = getattr(app.state, "running", 0) + 1
        app.state.replica.start()
        try:
            yield
        finally:
            app.state.running -= 1
            _audit.flush()  # the hot routes' deferred audit events
            if app.state.running == 0:
                app.state.replica.close()

    app = SegflowApp(
        title=settings.title,
        generate_unique_id_function=_operation_id,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    from segflow.server._views import warm

    app.state.replica = Replica(
        settings.project_dir, pool_size=settings.pool_size, poll_seconds=settings.poll_seconds,
        min_refresh_seconds=settings.min_refresh_seconds, warm=warm if settings.warm else None,
        threads=settings.duckdb_threads, engine=settings.engine,
    )
    app.state.sessions = Sessions(settings.session_hours, app.state.replica.work_dir, settings.token_cache_seconds)
    app.state.token_book = TokenBook(app.state.replica.work_dir, settings.token_cache_seconds)
    app.state.settings = settings
    import weakref

    app.state.gates = weakref.WeakKeyDictionary()  # admission gate per event loop (deps.get_project)
    app.include_router(score.router)  # first: routes are matched in order, /score is the hot path
    app.include_router(auth.router)
    # insights before api: its /migration/{scheme:path}/value must be tried before the
    # matrix's /migration/{scheme:path}, which would take 'rfm/value' as a scheme's name
    app.include_router(insights.api)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(insights.pages)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.reason}, status_code=401, headers={"www-authenticate": "Bearer"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return _error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        # each error's place (0-based JSON indices) and message, without pydantic's "Value
        # error, " before a validator's own message (as segflow.toml's errors)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {error_message(e)}"
            for e in exc.errors()
        )
        if _is_api(request):
            return JSONResponse({"detail": problems}, status_code=422)
        return _error_page(request, 422, problems)

    # Added innermost first: the Host check answers before anything else and headers go on
    # everything; the hot routes' successful requests skip all of it (HotPaths, which makes
    # the same Host check and adds the same headers).
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(SecurityHeaders)
    if settings.hot_paths:
        app.hot_paths = HotPaths(functools.partial(FastAPI.__call__, app), settings.allowed_hosts)
    return app


#: Environment variable carrying the settings (JSON) to the worker processes of ``serve --workers``.
SETTINGS_ENV = "SEGFLOW_SERVE_SETTINGS"


def app_from_environment() -> FastAPI:
    """The app of one worker process of ``segflow serve --workers N`` (an app factory for
    uvicorn): the settings come as JSON in :data:`SETTINGS_ENV`."""
    import os

    return create_app(ServerSettings.model_validate_json(os.environ[SETTINGS_ENV]))
