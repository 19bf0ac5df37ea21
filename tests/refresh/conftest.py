"""The refresh tests' shared project: five months of orders after a first refresh."""

from __future__ import annotations

import pytest
from tests.refresh._project import make_project

from segflow.refresh import refresh


@pytest.fixture(scope="session")
def refreshed_shop(tmp_path_factory):
    """``make_project(months=5)`` after its first refresh, built once per xdist worker (the
    tests using it are one xdist group: tests/conftest.py SHARED_FIXTURES): (its folder, the
    refresh's result). Read it or copy it; never change it."""
    directory = make_project(tmp_path_factory.mktemp("refresh") / "shop")
    return directory, refresh(directory)
