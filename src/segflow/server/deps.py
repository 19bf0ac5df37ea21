"""FastAPI dependencies: the server settings and the open project (one per app)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from pydantic import BaseModel, Field

from segflow.project import Project


class ServerSettings(BaseModel):
    """Settings of ``segflow serve``."""

    project_dir: Path = Field(default=Path("."), description="Project folder holding segflow.toml.")
    title: str = Field(default="segflow", description="Title shown on dashboard pages.")


@lru_cache
def get_settings() -> ServerSettings:
    return ServerSettings()


class ProjectHandle:
    """The project opened read-only, with a lock: DuckDB connections are not shared across
    threads, so requests take turns on the one connection (reads are short)."""

    def __init__(self, project_dir: Path) -> None:
        self.project = Project.open(project_dir, read_only=True)
        self.lock = threading.Lock()


def get_project(request: Request) -> Iterator[Project]:
    handle: ProjectHandle = request.app.state.project_handle
    with handle.lock:
        yield handle.project


SettingsDep = Annotated[ServerSettings, Depends(get_settings)]
ProjectDep = Annotated[Project, Depends(get_project)]
