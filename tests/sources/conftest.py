"""Fixtures of the sources tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from sources_project import make_project  # noqa: E402


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A project folder holding the fixture files and a segflow.toml mapping them."""
    return make_project(tmp_path)
