"""A demo dataset generated once per test session (medium size: enough rows for statistics)."""

from __future__ import annotations

from pathlib import Path

import pytest

MEDIUM = {"customers": 8_000, "months": 24, "seed": 7, "start": "2024-01-01"}


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory):
    from segflow.datasets import generate_demo

    return generate_demo(tmp_path_factory.mktemp("demo"), **MEDIUM)


@pytest.fixture(scope="session")
def demo_dir(demo) -> Path:
    return demo.out_dir
