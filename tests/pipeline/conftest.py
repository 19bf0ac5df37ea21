"""Fixtures for pipeline, report and engine-conformance tests."""

from __future__ import annotations

import shutil

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


@pytest.fixture()
def ran_project(ran_fixture, tmp_path):
    """A copy of the fixture project after its first run (``ran_fixture``, tests/conftest.py):
    (the project, that run's summary)."""
    root, summary = ran_fixture
    shutil.copytree(root, tmp_path / "proj")
    project = Project.open(tmp_path / "proj")
    yield project, summary
    project.close()
