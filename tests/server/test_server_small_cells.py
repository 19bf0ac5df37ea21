"""Small cells: a viewer (no customer-level access) read the exact revenue, CLV and profile
means of segments and migration cells of one or two customers, which are those customers'
own figures. Below ``[server] min_cell_customers`` they are null for a viewer, with the
reason in ``withheld``; counts stay; analysts see every figure. Checked on a copy of the
served fixture whose threshold is set between its segments' sizes, so that some rows are
small and some are not."""

from __future__ import annotations

import shutil

import duckdb
import pytest
from tests.server.conftest import _client

from segflow.server._disclosure import reason


@pytest.fixture(scope="module")
def small(_served_template, tmp_path_factory):
    """(project folder, threshold): the served fixture with ``min_cell_customers`` above the
    smallest rfm segment of the last snapshot and at or below the largest."""
    directory = tmp_path_factory.mktemp("small_cells") / "proj"
    shutil.copytree(_served_template, directory)
    con = duckdb.connect(str(directory / "segflow.duckdb"), read_only=True)
    sizes = sorted(n for (n,) in con.execute(
        "SELECT count(*) FROM segment_assignments WHERE scheme = 'rfm' AND snapshot_date = "
        "(SELECT max(snapshot_date) FROM segment_assignments WHERE scheme = 'rfm') GROUP BY segment").fetchall())
    con.close()
    threshold = sizes[len(sizes) // 2]  # the median size: smaller segments are withheld
    assert sizes[0] < threshold <= sizes[-1]
    with open(directory / "segflow.toml", "a", encoding="utf-8") as fh:
        fh.write(f"\n[server]\nmin_cell_customers = {threshold}\n")
    return directory, threshold


@pytest.fixture(scope="module")
def clients(small):
    from segflow.server import ServerSettings, create_app

    directory, _ = small
    tokens = dict(line.split(" ", 1) for line in (directory / "tokens.txt").read_text().splitlines())
    app = create_app(ServerSettings(project_dir=directory, allowed_hosts=["testserver"], poll_seconds=0))
    with _client(app, tokens["viewer"]) as viewer, _client(app, tokens["analyst"]) as analyst:
        yield viewer, analyst


def _pair(clients, url: str):
    viewer, analyst = clients
    seen, full = viewer.get(url), analyst.get(url)
    assert seen.status_code == 200 and full.status_code == 200, (seen.text, full.text)
    return seen.json(), full.json()


def _check(seen: dict, full: dict, threshold: int, count: str, values: list[str]) -> int:
    """Each viewer row against the analyst's: small ones' ``values`` null with the reason,
    the others' as the analyst's; counts equal; the analyst has no ``withheld``. The number
    of small rows."""
    assert seen["count"] == full["count"] > 0
    small = 0
    for mine, theirs in zip(seen["data"], full["data"], strict=True):
        assert "withheld" not in theirs and mine[count] == theirs[count]
        hidden = 0 < theirs[count] < threshold
        small += hidden
        assert mine["withheld"] == (reason(threshold) if hidden else None), mine
        for column in values:
            assert mine[column] == (None if hidden else theirs[column]), (column, mine, theirs)
    return small


def test_viewers_get_no_value_figures_of_small_segments(clients, small):
    _, threshold = small
    seen, full = _pair(clients, "/api/v1/segments/rfm")
    small_rows = _check(seen, full, threshold, "customers", ["revenue_12m", "revenue_share"])
    assert 0 < small_rows < full["count"]
    assert all(r["revenue_12m"] is not None for r in full["data"])
    seen, full = _pair(clients, "/api/v1/profiles/rfm")
    means = [c for c in full["data"][0] if c.startswith(("mean__", "median__"))]
    assert means and 0 < _check(seen, full, threshold, "size", [*means, "value", "revenue_share"]) < full["count"]
    assert all(r["mean__monetary"] is not None for r in full["data"] if "mean__monetary" in r)


def test_viewers_get_no_value_figures_of_small_migration_cells(clients, small):
    _, threshold = small
    seen, full = _pair(clients, "/api/v1/migration/rfm")
    values = [c for c in ("revenue", "value") if c in full["data"][0]]
    assert "revenue" in values
    assert _check(seen, full, threshold, "customers", values) > 0
    seen, full = _pair(clients, "/api/v1/migration/rfm/value")
    assert _check(seen, full, threshold, "customers", ["clv_moved", "mean_clv"]) > 0


def test_the_pages_withhold_as_their_json(clients, small):
    """The segments and migration pages show the viewer the reason where the figures were;
    the analyst's pages have none."""
    _, threshold = small
    viewer, analyst = clients
    for url in ("/segments/rfm", "/migration/rfm"):
        seen, full = viewer.get(url), analyst.get(url)
        assert seen.status_code == 200 and full.status_code == 200
        assert reason(threshold) in seen.text and reason(threshold) not in full.text
