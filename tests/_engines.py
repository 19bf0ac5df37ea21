"""Engine availability for tests: one place that decides whether Spark tests can run."""

from __future__ import annotations

import shutil

import pytest


def require_spark() -> None:
    """Skip the calling test (or fixture) when pyspark or a Java runtime is missing."""
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'segflow[spark]')")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime on PATH (apt-get install openjdk-17-jre-headless)")
