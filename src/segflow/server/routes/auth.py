"""Login and logout, the offline API docs, and the static library files.

The only routes that answer without a token: the login form and the library files
(plotly.js, Swagger UI, the docs start script), which hold no data.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from segflow.server._auth import SESSION_COOKIE, CsrfChecked, Viewer, same_origin, same_secret
from segflow.server.routes._render import env

router = APIRouter(tags=["auth"])
LOGIN_CSRF_COOKIE = "segflow_login_csrf"
_STATIC = Path(__file__).parents[1] / "static"
_SWAGGER_FILES = {"swagger-ui.css", "swagger-ui-bundle.js"}


def _safe_next(target: str | None) -> str:
    """Only local paths: no open redirect to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, secure=True, samesite="strict", path="/")


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    """The login form (no message: a message from the query string would let a link put any
    text on this page)."""
    return login_form(request, next=next)


def login_form(request: Request, next: str | None = None, error: str | None = None) -> HTMLResponse:
    """The login form, with ``error`` (segflow's own message) when a login failed."""
    csrf = secrets.token_urlsafe(32)
    html = env.get_template("login.html.j2").render(
        project=request.app.state.replica.settings.project.name, csrf=csrf, next=_safe_next(next),
        error=error,
    )
    response = HTMLResponse(html, status_code=401 if error else 200)
    _cookie(response, LOGIN_CSRF_COOKIE, csrf, 1800)
    return response


@router.post("/login", include_in_schema=False)
def login(request: Request, token: Annotated[str, Form()], csrf_token: Annotated[str, Form()],
          next: Annotated[str, Form()] = "/") -> Response:
    """Check the token and set the session cookie (Secure, HttpOnly, SameSite=Strict)."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not same_origin(request) or not expected or not same_secret(csrf_token, expected):
        raise HTTPException(status_code=403, detail="the login form expired or came from another site; reload it")
    record = request.app.state.token_book.verify(token, request.app.state.replica.current)
    if record is None:
        return login_form(request, next=next, error="That token is unknown, expired or revoked.")
    session = request.app.state.sessions.create(record)
    response = RedirectResponse(_safe_next(next), status_code=303)
    _cookie(response, SESSION_COOKIE, session.session_id, int(request.app.state.sessions.hours * 3600))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request, who: CsrfChecked) -> Response:
    if who.session is not None:
        request.app.state.sessions.drop(who.session.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/api/v1/openapi.json", include_in_schema=False)
def openapi(request: Request, who: Viewer) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
def docs(request: Request, who: Viewer) -> HTMLResponse:
    """Swagger UI from the installed ``swagger-ui-py`` package: works offline."""
    html = env.get_template("docs.html.j2").render(title=request.app.title)
    return HTMLResponse(html)


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    return Response(status_code=204)


@router.get("/static/plotly.js", include_in_schema=False)
def plotly_js() -> Response:
    """plotly.js from the installed plotly package: the dashboard works offline."""
    import plotly.offline

    return Response(plotly.offline.get_plotlyjs(), media_type="application/javascript",
                    headers={"cache-control": "public, max-age=86400"})


@router.get("/static/swagger/{name}", include_in_schema=False)
def swagger_asset(name: str) -> FileResponse:
    if name not in _SWAGGER_FILES:
        raise HTTPException(status_code=404, detail="not found")
    import swagger_ui  # the swagger-ui-py package ships Swagger UI 5 (OpenAPI 3.1)

    return FileResponse(Path(swagger_ui.__file__).parent / "static" / name,
                        headers={"cache-control": "public, max-age=86400"})


@router.get("/static/docs-init.js", include_in_schema=False)
def docs_init() -> FileResponse:
    return FileResponse(_STATIC / "docs-init.js", media_type="application/javascript")
