"""The segflow web app: a JSON API under /api/v1 and dashboard pages, on one project."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

from segflow.server.deps import ProjectHandle, ServerSettings, get_settings
from segflow.server.routes import api, pages


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """Build the app for one project folder (opened read-only)."""
    settings = settings or get_settings()
    app = FastAPI(title=settings.title, generate_unique_id_function=_operation_id)
    app.state.project_handle = ProjectHandle(settings.project_dir)
    app.dependency_overrides[get_settings] = lambda: settings
    app.include_router(api.router)
    app.include_router(pages.router)
    return app
