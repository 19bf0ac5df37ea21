"""Fixtures of the export and refresh tests."""

from __future__ import annotations

import pytest
from tests._postgres import postgres_server


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as url:
        yield url
