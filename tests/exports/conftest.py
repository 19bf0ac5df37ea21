"""Fixtures of the export and refresh tests."""

from __future__ import annotations

import os

import pytest
from tests._postgres import postgres_server


@pytest.fixture()
def umask_022():
    """The usual umask of a shared machine (new files 0644), restored after the test: the
    modes of files with personal data in clear are checked against it."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as url:
        yield url
