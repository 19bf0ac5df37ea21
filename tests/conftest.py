"""Shared fixtures: the real datasets in ../shared/data and throw-away stores; the grouping
of tests for parallel runs (pytest-xdist, ``make test``: ``-n auto --dist loadgroup``)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

#: Session-scoped fixtures that take seconds to build and serve several test modules: under
#: xdist every worker builds its own copy, so the tests using one run on the same worker.
SHARED_FIXTURES = ("demo_project", "demo", "campaign_store", "campaign_project", "cdnow_summary")
#: Modules whose tests are independent and cheap to set up: spread them over the workers.
SPREAD_MODULES = ("test_sources_bad_corpus.py",)


def xdist_group_of(item: pytest.Item) -> str | None:
    """The xdist group of a test: one for every Spark test (one JVM, started once), one per
    shared session fixture, else its module (module fixtures are built once); None spreads."""
    path = Path(str(item.fspath))
    if item.get_closest_marker("spark") or path.parent.name == "spark":
        return "spark"
    names = getattr(item, "fixturenames", ())
    for name in SHARED_FIXTURES:
        if name in names:  # defined in the conftest of the test's folder
            return f"{path.parent.name}:{name}"
    if path.name in SPREAD_MODULES:
        return None
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.name


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its xdist group (used by ``--dist loadgroup``; without xdist the
    mark does nothing). A test marked ``xdist_group`` itself keeps its own."""
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        group = xdist_group_of(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


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
