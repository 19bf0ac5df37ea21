"""CLV scores of earlier snapshots after their input changed: what a run from scratch has."""

from __future__ import annotations

import datetime as dt
import shutil

import pandas as pd
import pyarrow.parquet as pq

from segflow.datasets import generate_demo
from segflow.project import Project

TOML = """
[periods]
granularity = "month"

[[sources]]
name = "orders"
table = "transactions"
path = "orders"
format = "csv"
max_date = 2025-01-01
[sources.columns]
transaction_id = "order_id"
customer_id = "customer_id"
ts = "order_date"
amount = "amount"

[[schemes]]
name = "rfm"
kind = "rfm"
"""


def _results(directory) -> dict[str, pd.DataFrame]:
    with Project.open(directory, read_only=True) as project:
        con = project.store.raw
        out = {"scores": con.execute("SELECT snapshot_date, customer_id, score, value "
                                     "FROM customer_scores ORDER BY ALL").df(),
               # the fitted models saved with the scores: which snapshots have one
               "model_params": con.execute("SELECT snapshot_date, model FROM model_params "
                                           "ORDER BY ALL").df()}
        for table in ("summary_segments", "summary_transitions"):
            names = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
            cols = ", ".join(n for n in names if n not in ("run_id", "computed_at"))
            out[table] = con.execute(f"SELECT {cols} FROM {table} ORDER BY ALL").df()
    return out


def _update(directory) -> None:
    with Project.open(directory) as project:
        project.ingest()
        project.run()


def test_scores_of_a_snapshot_computed_again_are_not_kept(tmp_path):
    """Orders to October, then November and December, then the first file corrected
    (amounts): the scores written at 2024-11-01 (the latest snapshot of the first run) came
    from the uncorrected data; they stayed, and the aggregates of 2024-11-01 counted them
    (scored customers, CLV of movers), where a run from scratch on the same files has no
    scores at 2024-11-01. The models fitted there (``model_params``, which the report's and
    the server's scoring read) stayed too, after their scores were deleted."""
    generate_demo(tmp_path / "gen", customers=600, months=12, seed=3, formats=("parquet",))
    orders = pq.read_table(tmp_path / "gen" / "transactions.parquet").to_pandas()
    orders = orders[(orders.order_date >= "2024-01-01") & (orders.order_date < "2025-01-01")]
    project = tmp_path / "a"
    (project / "orders").mkdir(parents=True)
    (project / "segflow.toml").write_text(TOML)
    early = orders[orders.order_date < "2024-11-01"]
    early.to_csv(project / "orders" / "1.csv", index=False)
    _update(project)
    orders[orders.order_date >= "2024-11-01"].to_csv(project / "orders" / "2.csv", index=False)
    _update(project)
    early.assign(amount=(early.amount * 1.5).round(2)).to_csv(project / "orders" / "1.csv",
                                                               index=False)
    _update(project)
    fresh = tmp_path / "b"
    shutil.copytree(project, fresh, ignore=shutil.ignore_patterns("segflow.duckdb*"))
    _update(fresh)
    got, want = _results(project), _results(fresh)
    assert set(pd.to_datetime(want["scores"].snapshot_date).dt.date) == {dt.date(2025, 1, 1)}
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], check_dtype=False, obj=name)
