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


def _scores(rows: list[tuple[str, dt.date, str, str, float]]) -> pa.Table:
    """Rows of ``customer_scores`` (keyed by snapshot date and model): ``(model, day,
    customer, score, value)``."""
    model, day, cust, score, value = zip(*rows, strict=True)
    return pa.table({"model": model, "snapshot_date": pa.array(day, pa.date32()),
                     "customer_id": cust, "score": score, "value": pa.array(value, pa.float64())})


def _state(store) -> list[tuple]:
    df = store.table("customer_scores").to_pandas()
    day = [None if pd.isna(v) else str(pd.Timestamp(v).date()) for v in df["snapshot_date"]]
    return sorted((m, str(d), c, s) for m, d, c, s in
                  zip(df["model"], day, df["customer_id"], df["score"], strict=True))


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
        n = store.write("customer_scores", _scores([
            ("rfm", D1, "a", "Champions", 1), ("rfm", D1, "b", "Lost", 5),
            ("rfm", D2, "a", "Champions", 1), ("life", D2, "a", "Active", 1)]), first)
        assert n == 4
        assert _state(store) == []  # written, not yet committed: invisible
        # a cached table of the run is checkpointed in the run's folder (engine.ibis_backend)
        kept = store.cache(store.table("customer_scores", pending=first))
        assert list((root / "_checkpoints" / first).rglob("part-*"))
        assert kept.count().to_pyarrow().as_py() == 4
        kept.release()
    assert store.committed_runs() == [first]
    assert not (root / "_checkpoints" / first).exists()  # removed when the run ends
    # the data really is Parquet partitioned by run id under <warehouse>/<database>.db
    assert (tmp_path / "warehouse" / "seg.db" / "customer_scores" / f"run_id={first}").is_dir()

    # a second run rewrites (rfm, D2) only: (rfm, D1) and (life, D2) keep the first run's rows
    with store.run("second") as second:
        store.write("customer_scores",
                    _scores([("rfm", D2, "a", "At risk", 3), ("rfm", D2, "c", "New", 2)]),
                    second)
    assert _state(store) == sorted([
        ("life", str(D2), "a", "Active"), ("rfm", str(D1), "a", "Champions"),
        ("rfm", str(D1), "b", "Lost"), ("rfm", str(D2), "a", "At risk"),
        ("rfm", str(D2), "c", "New")])
    # a null in a key is a key like any other (as in a grouping): replaced by a later run
    with store.run("null key") as nulls:
        store.write("customer_scores", _scores([("rfm", None, "n", "Old", 9)]), nulls)
    with store.run("null key again") as again:
        store.write("customer_scores", _scores([("rfm", None, "n", "Newer", 9)]), again)
    got = store.table("customer_scores").to_pandas()
    assert got.loc[got.customer_id == "n", "score"].tolist() == ["Newer"]
    assert len(got) == 6

    # a run that fails after writing leaves no trace in the state; its log says failed
    before = _state(store)
    with pytest.raises(RuntimeError, match="boom"), store.run("third") as third:
        store.write("customer_scores", _scores([("rfm", D1, "z", "X", 1)]), third)
        raise RuntimeError("boom")
    assert _state(store) == before
    log = {r.status for r in store.runs().where(f"run_id = '{third}'").collect()}
    assert log == {"running", "failed"}
    # the catalog's view is the committed state (the failed run's row left out, per key the
    # latest run's rows); <table>_by_run every row written; an older segflow's external
    # table of the view's name (every partition) is replaced by the view
    from segflow.store._spark_catalog import _drop_external

    sql = store.session.sql
    _drop_external(store, "customer_scores")  # the session's catalog is the tests' own
    sql(f"CREATE TABLE seg.customer_scores USING parquet LOCATION '{store.root}/customer_scores'")
    assert "customer_scores" in store.register_catalog_tables()
    view = sql("SELECT model, snapshot_date, customer_id, score FROM seg.customer_scores")
    assert sorted((m, str(d), c, s) for m, d, c, s in view.collect()) == before
    assert sql("SELECT count(*) AS n FROM seg.customer_scores_by_run").first().n == 4 + 2 + 1 + 1 + 1
    assert not (root / "_checkpoints" / third).exists()  # a failed run's too
    (root / "_checkpoints" / "killed-run" / "rdd-1").mkdir(parents=True)  # a killed run's
    assert store.vacuum() == [third]
    assert not (root / "_checkpoints" / "killed-run").exists()
    assert not (tmp_path / "warehouse" / "seg.db" / "customer_scores" / f"run_id={third}").exists()
    assert _state(store) == before
    assert store.committed_runs() == [first, second, nulls, again]


def test_store_refuses_unknown_tables_and_columns(spark_store):
    with pytest.raises(StoreError, match="no table 'nope'"):
        spark_store.table("nope")
    with spark_store.run("bad") as run_id, pytest.raises(StoreError, match=r"no column\(s\) \['colour'\]"):
        spark_store.write("customer_scores", pa.table({"colour": ["red"]}), run_id)
    with spark_store.run("derived") as run_id, pytest.raises(StoreError, match="derived from"):
        spark_store.write("segment_assignments", pa.table({"scheme": ["rfm"]}), run_id)


def _spells(rows: list[tuple[str, str, str, int, dt.date, dt.date | None]]) -> pa.Table:
    """Rows of ``segment_spells``: ``(scheme, customer, segment, rank, valid_from, valid_to)``
    (scheme version ``v1``)."""
    scheme, cust, seg, rank, start, end = zip(*rows, strict=True)
    return pa.table({"scheme": scheme, "scheme_version": ["v1"] * len(rows), "customer_id": cust,
                     "segment": seg, "segment_rank": pa.array(rank, pa.int32()),
                     "valid_from": pa.array(start, pa.date32()), "valid_to": pa.array(end, pa.date32())})


def _snapshots(scheme: str, days: list[dt.date]) -> pa.Table:
    return pa.table({"scheme": [scheme] * len(days), "scheme_version": ["v1"] * len(days),
                     "snapshot_date": pa.array(days, pa.date32()), "settings_key": ["k"] * len(days)})


def test_ibis_expressions_on_the_store_are_computed_and_written_by_spark(spark_store):
    """Table work stays in the engine: an Ibis aggregate of the committed assignments (derived
    from change rows) is written back as scores without passing through the driver; the
    counts are the ones the input says (2 customers in Champions, 1 in Lost)."""
    store = spark_store
    with store.run("assign") as first:
        store.write("segment_spells", _spells([
            ("rfm", "a", "Champions", 1, D1, None), ("rfm", "b", "Champions", 1, D1, None),
            ("rfm", "c", "Lost", 5, D1, None)]), first)
        store.write("segment_snapshots", _snapshots("rfm", [D1]), first)
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


def test_per_snapshot_assignments_are_the_duckdb_view_over_the_stored_change_rows(spark_store, tmp_path):
    """The Spark store stores no per-snapshot assignments: its ``segment_assignments`` is
    derived from the committed change rows and computed snapshots (latest run per scheme)
    and equals the DuckDB store's view over the same rows, ``run_id`` included; a run's
    pending rows read as if committed; vacuum removes an older segflow's stored folder."""
    from segflow.store import Store

    store, root = spark_store, tmp_path / "warehouse" / "seg.db"
    D3, D4 = dt.date(2024, 3, 1), dt.date(2024, 4, 1)
    assert "segment_assignments" not in store.tables()
    assert store.table("segment_assignments").to_pandas().empty
    # run 1: rfm and life; run 2: rfm again (replaces run 1's rfm, keeps its life)
    runs = {}
    written = {
        "one": {"rfm": (_spells([("rfm", "a", "Champions", 1, D1, D3), ("rfm", "a", "Lost", 5, D3, None),
                                 ("rfm", "b", "New", 2, D2, D3), ("rfm", "c", "New", 2, D1, None)]),
                        [D1, D2, D3, D4]),
                "life": (_spells([("life", "a", "Active", 1, D1, None),
                                  ("life", "b", "Lapsed", 3, D2, None)]), [D1, D2])},
        "two": {"rfm": (_spells([("rfm", "a", "Champions", 1, D2, None), ("rfm", "d", "Lost", 5, D2, D4)]),
                        [D2, D3, D4])},
    }
    for command, schemes in written.items():
        with store.run(command) as run_id:
            runs[command] = run_id
            for scheme, (spells, days) in schemes.items():
                store.write("segment_spells", spells, run_id)
                store.write("segment_snapshots", _snapshots(scheme, days), run_id)
            pending = store.table("segment_assignments", pending=run_id).to_pandas()
            assert set(pending.loc[pending.scheme.isin(list(schemes)), "run_id"]) == {run_id}
    assert "segment_assignments" in store.tables()
    assert not (root / "segment_assignments").exists()  # nothing stored per snapshot

    # the independent computation: the DuckDB store's view over the rows of each scheme's
    # latest run
    latest = {"rfm": "two", "life": "one"}
    with Store(":memory:") as duck:
        for scheme, command in latest.items():
            spells, days = written[command][scheme]
            duck.raw.register("_sp", spells)
            duck.raw.execute("INSERT INTO segment_spells SELECT scheme, scheme_version, customer_id, "
                             "segment, segment_rank, valid_from, valid_to, ? FROM _sp", [runs[command]])
            duck.raw.execute("INSERT INTO segment_snapshots SELECT ?, 'v1', unnest(?::DATE[]), 'k', ?, "
                             "now()::TIMESTAMP", [scheme, days, runs[command]])
            duck.raw.unregister("_sp")
        cols = "scheme, scheme_version, snapshot_date, customer_id, segment, segment_rank, run_id"
        want = duck.raw.execute(f"SELECT {cols} FROM segment_assignments ORDER BY ALL").df()
    got = store.table("segment_assignments").to_pandas()[want.columns.tolist()]
    got = got.sort_values(want.columns.tolist(), ignore_index=True)
    for frame in (got, want):
        frame["snapshot_date"] = pd.to_datetime(frame["snapshot_date"])
    assert len(want) == 3 + 2 + 2 + 1  # rfm: a x3, d x2 (D2, D3); life: a x2, b x1
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert sorted(map(tuple, got.loc[got.customer_id == "d", ["scheme", "segment"]].values)) == \
        [("rfm", "Lost")] * 2
    # the catalog's view: the same rows
    assert "segment_assignments" in store.register_catalog_tables()
    view = store.session.sql(f"SELECT {', '.join(want.columns)} FROM seg.segment_assignments")
    view = view.toPandas().sort_values(want.columns.tolist(), ignore_index=True)
    view["snapshot_date"] = pd.to_datetime(view["snapshot_date"])
    pd.testing.assert_frame_equal(view, want, check_dtype=False)

    # a warehouse of an earlier segflow stored the per-snapshot rows: vacuum removes them
    old = root / "segment_assignments" / f"run_id={runs['one']}"
    old.mkdir(parents=True)
    (old / "part-0.parquet").write_bytes(b"")
    store.vacuum()
    assert not (root / "segment_assignments").exists()
    assert len(store.table("segment_assignments").to_pandas()) == len(want)
