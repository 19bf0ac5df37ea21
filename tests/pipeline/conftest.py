"""Fixtures for pipeline, report and engine-conformance tests."""

from __future__ import annotations

import pytest
from tests.pipeline._fixture import PROJECT_TOML, fixture_tables

from segflow.project import Project


@pytest.fixture()
def fixture_project(tmp_path) -> Project:
    project = Project.init(tmp_path / "proj", toml_text=PROJECT_TOML)
    for name, table in fixture_tables().items():
        project.store.append(name, table)
    yield project
    project.close()
