"""Shared fixtures: the real datasets in ../shared/data and throw-away stores."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def cdnow_dir() -> Path:
    """Folder with CDNOW_sample.txt and donations_bgbb.csv (skips when absent)."""
    path = SHARED_DATA / "cdnow"
    if not (path / "CDNOW_sample.txt").exists():
        pytest.skip(f"CDNOW data not found at {path} (the shared/ folder sits beside the repo)")
    return path


@pytest.fixture()
def memory_store():
    from segflow.store import Store

    store = Store(":memory:")
    yield store
    store.close()
