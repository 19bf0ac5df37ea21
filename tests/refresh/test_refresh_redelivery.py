"""Operating a refreshed project for months: an empty month dropped into the orders folder,
and a month delivered again with orders deleted upstream.

Before: the empty month failed every refresh until someone removed the file; the deleted
orders stayed in the store without a word. Now the empty month loads as 0 rows with a
warning on stderr; the re-delivery warns with the number of rows left behind (default
``redelivery = "keep"``), and with ``redelivery = "replace"`` the refreshed store's segment
assignments equal those of a project refreshed from the current files alone.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from tests.refresh._project import TOML, add_month
from typer.testing import CliRunner

from segflow.cli import app
from segflow.refresh import refresh
from segflow.store import Store

pytestmark = pytest.mark.slow


def _assignments(project) -> pd.DataFrame:
    with Store(project / "segflow.duckdb", read_only=True) as store:
        return store.sql("SELECT scheme, snapshot_date, customer_id, segment FROM "
                         "segment_assignments ORDER BY ALL").to_pandas()


def _refresh_cli(project) -> str:
    """``segflow refresh -p PROJECT`` (in this process: what it prints is the same as a
    process's; the process itself, killed or refused, is tested in test_refresh.py): its
    stderr."""
    result = CliRunner().invoke(app, ["refresh", "-p", str(project)])
    assert result.exit_code == 0, result.output
    return result.stderr


def _drop_orders(path, n: int, seed: int = 7) -> set[str]:
    """Delete ``n`` orders of the order file ``path`` (as a source system would re-export
    it); returns their ids."""
    frame = pd.read_csv(path, dtype=str)
    gone = set(np.random.default_rng(seed).choice(frame.order_id, n, replace=False))
    frame[~frame.order_id.isin(gone)].to_csv(path, index=False)
    return gone


def test_an_empty_month_is_warned_about_and_the_refresh_goes_on(refreshed_shop, tmp_path):
    project = tmp_path / "shop"
    shutil.copytree(refreshed_shop[0], project)  # January to May, refreshed
    empty = project / "data" / "orders" / "orders-2024-06.csv"
    empty.write_text("order_id,customer,ts,amount\n")
    err = _refresh_cli(project)
    assert ("warning: file data/orders/orders-2024-06.csv has a header but no data rows; "
            "loaded as 0 rows") in err.splitlines()
    with Store(project / "segflow.duckdb", read_only=True) as store:
        row = store.sql("SELECT rows_read, rows_accepted, rows_quarantined, status FROM loads "
                        "WHERE source_file = 'data/orders/orders-2024-06.csv'").to_pylist()
    assert row == [{"rows_read": 0, "rows_accepted": 0, "rows_quarantined": 0, "status": "ok"}]
    assert "nothing new" in _refresh_cli(project)  # recorded: not new at the next refresh
    add_month(project, 6)  # July arrives: the folder keeps loading
    assert "0 rows" not in _refresh_cli(project)


@pytest.fixture(scope="module")
def delivered(refreshed_shop, tmp_path_factory):
    """Five months refreshed (the project to copy: tests/refresh/conftest.py), 30 orders of
    March deleted from a copy of its files, and those files refreshed into a new project:
    (the first, the deleted order ids, the new project's assignments)."""
    root = tmp_path_factory.mktemp("redelivery")
    project, first = refreshed_shop
    assert first.status == "refreshed"
    rebuilt = root / "rebuilt"
    shutil.copytree(project / "data", rebuilt / "data")
    (rebuilt / "segflow.toml").write_text(TOML)
    gone = _drop_orders(rebuilt / "data" / "orders" / "orders-2024-03.csv", 30)
    assert refresh(rebuilt).status == "refreshed"
    return project, gone, _assignments(rebuilt)


@pytest.mark.parametrize("redelivery", ["keep", "replace"])
def test_a_month_delivered_again_with_30_orders_deleted(delivered, tmp_path, redelivery):
    first, gone, theirs = delivered
    project = tmp_path / "shop"
    shutil.copytree(first, project)
    toml = TOML.replace('format = "csv"', f'format = "csv"\nredelivery = "{redelivery}"')
    (project / "segflow.toml").write_text(toml)
    march = project / "data" / "orders" / "orders-2024-03.csv"
    assert _drop_orders(march, 30) == gone
    err = _refresh_cli(project)
    # the same files refreshed into a new project: ``theirs``
    mine = _assignments(project)
    with Store(project / "segflow.duckdb", read_only=True) as store:
        stored = set(store.sql("SELECT transaction_id FROM transactions")
                     ["transaction_id"].to_pylist())
        loads = store.sql("SELECT status, rows_stale FROM loads WHERE source_file = "
                          "'data/orders/orders-2024-03.csv' ORDER BY started_at").to_pylist()
    if redelivery == "keep":
        assert ("warning: file data/orders/orders-2024-03.csv: delivered again with other "
                "content; 30 rows stored from its earlier delivery are not in it (no row of it "
                "has their transaction_id) and stay in the store; set redelivery = \"replace\" "
                "on source 'shop' to replace the file's rows (docs/data.md)") in err.splitlines()
        assert loads == [{"status": "ok", "rows_stale": 0}, {"status": "ok", "rows_stale": 30}]
        assert gone <= stored
        assert len(mine) == len(theirs) and not mine.equals(theirs)  # the 30 orders count
    else:
        assert any(line.startswith("warning: file data/orders/orders-2024-03.csv: delivered "
                                   "again with other content; the ") for line in err.splitlines())
        assert loads == [{"status": "replaced", "rows_stale": 0},
                         {"status": "ok", "rows_stale": 0}]
        assert not gone & stored
        pd.testing.assert_frame_equal(mine, theirs)
