"""The Spark store on the two-worker cluster: runs are visible whole or not at all, later
runs replace the keys they write. (A driver killed mid-run: tests/spark/test_warehouse_pipeline.py,
where a real ``segflow run`` is killed.)"""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
import pyarrow as pa
import pytest

from segflow.errors import StoreError

pytestmark = [pytest.mark.spark, pytest.mark.slow]

D1, D2 = dt.date(2024, 1, 1), dt.date(2024, 2, 1)


def _assignments(rows: list[tuple[str, dt.date, str, str, int]]) -> pa.Table:
    scheme, day, cust, seg, rank = zip(*rows, strict=True)
    return pa.table({"scheme": scheme, "snapshot_date": pa.array(day, pa.date32()),
                     "customer_id": cust, "segment": seg,
                     "segment_rank": pa.array(rank, pa.int32())})


def _state(store) -> list[tuple]:
    df = store.table("segment_assignments").to_pandas()
    day = [None if pd.isna(v) else str(pd.Timestamp(v).date()) for v in df["snapshot_date"]]
    return sorted((s, str(d), c, g) for s, d, c, g in
                  zip(df["scheme"], day, df["customer_id"], df["segment"], strict=True))


@pytest.fixture()
def spark_store(cluster_session, tmp_path):
    from segflow.engine import warehouse_url
    from segflow.store._spark import SparkStore

    return SparkStore(cluster_session, warehouse_url(str(tmp_path / "warehouse")), "seg")


def test_runs_commit_whole_replace_their_keys_and_failed_runs_stay_invisible(spark_store, tmp_path):
    store = spark_store
    root = tmp_path / "warehouse" / "seg.db"
    assert store.committed_runs() == [] and _state(store) == []
    with store.run("first") as first:
        n = store.write("segment_assignments", _assignments([
            ("rfm", D1, "a", "Champions", 1), ("rfm", D1, "b", "Lost", 5),
            ("rfm", D2, "a", "Champions", 1), ("life", D2, "a", "Active", 1)]), first)
        assert n == 4
        assert _state(store) == []  # written, not yet committed: invisible
        # a cached table of the run is checkpointed in the run's folder (engine.ibis_backend)
        kept = store.cache(store.table("segment_assignments", pending=first))
        assert list((root / "_checkpoints" / first).rglob("part-*"))
        assert kept.count().to_pyarrow().as_py() == 4
        kept.release()
    assert store.committed_runs() == [first]
    assert not (root / "_checkpoints" / first).exists()  # removed when the run ends
    # the data really is Parquet partitioned by run id under <warehouse>/<database>.db
    assert (tmp_path / "warehouse" / "seg.db" / "segment_assignments" / f"run_id={first}").is_dir()

    # a second run rewrites (rfm, D2) only: (rfm, D1) and (life, D2) keep the first run's rows
    with store.run("second") as second:
        store.write("segment_assignments",
                    _assignments([("rfm", D2, "a", "At risk", 3), ("rfm", D2, "c", "New", 2)]),
                    second)
    assert _state(store) == sorted([
        ("life", str(D2), "a", "Active"), ("rfm", str(D1), "a", "Champions"),
        ("rfm", str(D1), "b", "Lost"), ("rfm", str(D2), "a", "At risk"),
        ("rfm", str(D2), "c", "New")])
    # a null in a key is a key like any other (as in a grouping): replaced by a later run
    with store.run("null key") as nulls:
        store.write("segment_assignments", _assignments([("rfm", None, "n", "Old", 9)]), nulls)
    with store.run("null key again") as again:
        store.write("segment_assignments", _assignments([("rfm", None, "n", "Newer", 9)]), again)
    got = store.table("segment_assignments").to_pandas()
    assert got.loc[got.customer_id == "n", "segment"].tolist() == ["Newer"]
    assert len(got) == 6

    # a run that fails after writing leaves no trace in the state; its log says failed
    before = _state(store)
    with pytest.raises(RuntimeError, match="boom"), store.run("third") as third:
        store.write("segment_assignments", _assignments([("rfm", D1, "z", "X", 1)]), third)
        raise RuntimeError("boom")
    assert _state(store) == before
    log = {r.status for r in store.runs().where(f"run_id = '{third}'").collect()}
    assert log == {"running", "failed"}
    assert not (root / "_checkpoints" / third).exists()  # a failed run's too
    (root / "_checkpoints" / "killed-run" / "rdd-1").mkdir(parents=True)  # a killed run's
    assert store.vacuum() == [third]
    assert not (root / "_checkpoints" / "killed-run").exists()
    assert not (tmp_path / "warehouse" / "seg.db" / "segment_assignments" / f"run_id={third}").exists()
    assert _state(store) == before
    assert store.committed_runs() == [first, second, nulls, again]


def test_store_refuses_unknown_tables_and_columns(spark_store):
    with pytest.raises(StoreError, match="no table 'nope'"):
        spark_store.table("nope")
    with spark_store.run("bad") as run_id, pytest.raises(StoreError, match=r"no column\(s\) \['colour'\]"):
        spark_store.write("segment_assignments", pa.table({"colour": ["red"]}), run_id)


def test_ibis_expressions_on_the_store_are_computed_and_written_by_spark(spark_store):
    """Table work stays in the engine: an Ibis aggregate of the committed assignments is
    written back as scores without passing through the driver; the counts are the ones the
    input says (2 customers in Champions, 1 in Lost)."""
    store = spark_store
    with store.run("assign") as first:
        store.write("segment_assignments", _assignments([
            ("rfm", D1, "a", "Champions", 1), ("rfm", D1, "b", "Champions", 1),
            ("rfm", D1, "c", "Lost", 5)]), first)
    t = store.table("segment_assignments")
    sizes = t.group_by(["snapshot_date", "segment"]).aggregate(value=t.count().cast("float64"))
    scores = sizes.mutate(customer_id=sizes.segment, model=ibis.literal("segment_size"),
                          score=ibis.literal("customers")).select(
        "snapshot_date", "customer_id", "model", "score", "value")
    with store.run("sizes") as second:
        assert store.write("customer_scores", scores, second) == 2
    got = store.table("customer_scores").to_pandas().sort_values("customer_id")
    assert got[["customer_id", "value"]].values.tolist() == [["Champions", 2.0], ["Lost", 1.0]]
    assert set(got["run_id"]) == {second} and set(got["snapshot_date"].astype(str)) == {str(D1)}
