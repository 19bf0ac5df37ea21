"""A project with a completed run, served by the real app."""

from __future__ import annotations

import pytest
from tests.pipeline._fixture import PROJECT_TOML, fixture_tables


@pytest.fixture(scope="module")
def served_project(tmp_path_factory):
    from segflow.project import Project

    directory = tmp_path_factory.mktemp("served") / "proj"
    project = Project.init(directory, toml_text=PROJECT_TOML)
    for name, table in fixture_tables().items():
        project.store.append(name, table)
    project.run()
    project.close()
    return directory


@pytest.fixture(scope="module")
def client(served_project):
    from fastapi.testclient import TestClient

    from segflow.server import ServerSettings, create_app

    app = create_app(ServerSettings(project_dir=served_project))
    with TestClient(app) as c:
        yield c
    app.state.project_handle.project.close()
