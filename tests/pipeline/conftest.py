"""Fixtures for pipeline, report and engine-conformance tests."""

from __future__ import annotations

import shutil

import pytest
from tests.pipeline._fixture import new_fixture_project

from segflow.project import Project


@pytest.fixture()
def fixture_project(tmp_path) -> Project:
    project = new_fixture_project(tmp_path / "proj")
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
