"""FastAPI dependencies: the server settings and a project on a pooled read-only connection.

A store connection is leased only for an authenticated caller: :func:`get_project` depends on
:func:`segflow.server._auth.principal` (FastAPI resolves it first and once per request; the
routes' role checks reuse it), so a request without valid credentials is refused with 401
(or sent to the login form) at once, without waiting at the admission gate or taking one of
its ``pool_size`` places, whatever the order of the route's parameters; a caller whose role
is below the route's (:func:`segflow.server._auth.require`) gets its 403 there too, before
the lease. The one public route
that reads the copy, ``/api/v1/live``, uses :data:`CurrentGenerationDep`: no connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from segflow.errors import StoreError
from segflow.project import Project
from segflow.server._auth import PrincipalDep, refuse_below, route_role
from segflow.server._replica import Generation, Replica

#: Host names a server bound to loopback answers to (anything else: 400, against DNS rebinding).
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


class ServerSettings(BaseModel):
    """Settings of ``segflow serve``."""

    project_dir: Path = Field(default=Path("."), description="Project folder holding segflow.toml.")
    title: str = Field(default="segflow", description="Title shown on dashboard pages.")
    allowed_hosts: list[str] = Field(
        default_factory=lambda: list(LOOPBACK_HOSTS),
        description="Host header values answered; others get 400 (DNS rebinding).",
    )
    pool_size: int = Field(default=8, ge=1, le=64, description="Read-only store connections.")
    poll_seconds: float = Field(default=2.0, ge=0, description="How often to look for a changed store.")
    min_refresh_seconds: float = Field(default=10.0, ge=0, description="Least time between two store copies.")
    warm: bool = Field(default=True, description="Precompute the first pages' aggregates of each copy.")
    session_hours: float = Field(default=8.0, gt=0, description="Lifetime of a browser login.")
    busy_seconds: float = Field(
        default=2.0, gt=0, le=300,
        description="Longest wait for a free store connection before answering 503 (load shedding).")
    duckdb_threads: int | None = Field(
        default=1, ge=1, le=256,
        description="DuckDB threads per query on the served copy (None: one per core). Concurrent "
                    "requests are the parallelism; one thread per point lookup uses a quarter less CPU.")
    hot_paths: bool = Field(
        default=True,
        description="Answer successful /api/v1/score and customer lookups without FastAPI's routing "
                    "(segflow.server._hot); refusals and errors always come from the app.")
    engine: str | None = Field(
        default=None,
        description="Where the served data come from: duckdb (the store) or spark (the project's "
                    "warehouse, see segflow.server._replica); None: [engine] kind.")
    token_cache_seconds: float = Field(
        default=5.0, ge=0, le=300,
        description="How long a verified token is trusted before it is checked again (the most "
                    "a revocation takes to reach a running server).")


@lru_cache
def default_settings() -> ServerSettings:
    return ServerSettings()


def get_settings(request: Request) -> ServerSettings:
    """The settings the app was created with (not a dependency override: FastAPI rebuilds
    every route's dependencies on each request while any override is set)."""
    return request.app.state.settings


def get_replica(request: Request) -> Replica:
    return request.app.state.replica


def _gate(request: Request) -> asyncio.Semaphore:
    """The admission gate of this event loop: as many requests as store connections."""
    gates: weakref.WeakKeyDictionary = request.app.state.gates
    loop = asyncio.get_running_loop()
    gate = gates.get(loop)
    if gate is None:
        gate = gates[loop] = asyncio.Semaphore(request.app.state.replica.pool_size)
    return gate


@contextlib.asynccontextmanager
async def leased_project(request: Request) -> AsyncIterator[Project]:
    """A project on one pooled read-only connection; the copy it reads is ``request.state.generation``.

    Admission control: at most ``pool_size`` requests per process hold a connection; the
    others wait on the event loop (not in the thread pool, where a flood of waiting requests
    would slow every admitted one down) and, after ``busy_seconds``, answer 503 with
    ``Retry-After`` (load shedding: under overload the server keeps answering the requests
    it admits instead of queueing work whose callers have given up)."""
    replica: Replica = request.app.state.replica
    gate = _gate(request)
    try:
        await asyncio.wait_for(gate.acquire(), request.app.state.settings.busy_seconds)
    except TimeoutError:
        raise HTTPException(status_code=503, detail="the server is busy: try again",
                            headers={"Retry-After": "1"}) from None
    try:
        lease = replica.lease(timeout=request.app.state.settings.busy_seconds)
        try:
            # usually free at once (admitted requests <= connections), but the background warm-up
            # also holds one: wait for it off the event loop
            generation, project = await run_in_threadpool(lease.__enter__)
        except StoreError as exc:
            raise HTTPException(status_code=503, detail=str(exc), headers={"Retry-After": "1"}) from None
        try:
            request.state.generation = generation
            yield project
        finally:
            lease.__exit__(None, None, None)
    finally:
        gate.release()


async def get_project(request: Request, who: PrincipalDep) -> AsyncIterator[Project]:
    """The dependency form of :func:`leased_project`, for an authenticated caller only
    (``who``: :func:`segflow.server._auth.principal` raises before a lease is asked for)
    whose role the route admits (:func:`segflow.server._auth.route_role`: a caller below it
    gets its 403 here, before the lease, not from the route's own role check after it)."""
    needed = route_role(request.scope.get("route"))
    if needed is not None:
        refuse_below(who, needed)
    async with leased_project(request) as project:
        yield project


def get_generation(request: Request, project: Annotated[Project, Depends(get_project)]) -> Generation:
    """The copy the leased project of this request reads."""
    return request.state.generation


def current_generation(request: Request) -> Generation:
    """The copy served now, without a store connection or a caller (public routes)."""
    return request.app.state.replica.current


SettingsDep = Annotated[ServerSettings, Depends(get_settings)]
ProjectDep = Annotated[Project, Depends(get_project)]
GenerationDep = Annotated[Generation, Depends(get_generation)]
CurrentGenerationDep = Annotated[Generation, Depends(current_generation)]
