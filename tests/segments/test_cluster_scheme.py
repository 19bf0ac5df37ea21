"""Cluster schemes: fitted once, saved in the store, re-applied to later snapshots."""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from segflow.config import SchemeSettings
from segflow.errors import ConfigError, InputError
from segflow.segments._cluster_scheme import (
    assign_cluster_scheme,
    fit_cluster_table,
    load_cluster_model,
    sample_features,
)

CENTERS = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])


def _snapshot(store, name: str, sizes: list[int], seed: int, start: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(3), sizes)
    xy = CENTERS[truth] + rng.normal(0, 0.7, (len(truth), 2))
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{start + i:05d}" for i in range(len(truth))],
            "frequency": xy[:, 0] + 10,
            "monetary": xy[:, 1] + 10,
        }
    )
    store.replace(name, pa.Table.from_pandas(frame, preserve_index=False))
    return store.table(name), truth


def test_reapplication_keeps_labels(memory_store):
    scheme = SchemeSettings(name="behaviour", kind="cluster", features=["frequency", "monetary"])
    s1, truth1 = _snapshot(memory_store, "feat_2024_01", [500, 300, 200], seed=1)
    out1 = assign_cluster_scheme(scheme, s1, store=memory_store).to_pandas().sort_values("customer_id")
    saved = load_cluster_model(memory_store, "behaviour", "1")
    assert saved is not None and saved.k == 3
    label_of = pd.Series(out1["segment"].to_numpy()).groupby(truth1).agg(lambda s: s.mode()[0])
    assert label_of.nunique() == 3
    # a later snapshot where the proportions flip: a fresh fit would renumber the segments
    s2, truth2 = _snapshot(memory_store, "feat_2024_02", [100, 300, 600], seed=2, start=5000)
    out2 = assign_cluster_scheme(scheme, s2, store=memory_store).to_pandas().sort_values("customer_id")
    agree = (out2["segment"].to_numpy() == label_of[truth2].to_numpy()).mean()
    assert agree > 0.99
    fresh = fit_cluster_table(s2, ["frequency", "monetary"], k="auto", n_bootstrap=0)
    assert fresh.names_ != saved.names or fresh.model_.shares != saved.shares  # would differ
    # still one saved model; a new version fits a new one
    assert memory_store.sql("SELECT count(*) AS n FROM cluster_models").column("n")[0].as_py() == 1
    bumped = scheme.model_copy(update={"version": "2", "k": 2})
    assign_cluster_scheme(bumped, s2, store=memory_store).to_pandas()
    assert load_cluster_model(memory_store, "behaviour", "2").k == 2


def test_names_override_and_missing_features(memory_store):
    s1, _ = _snapshot(memory_store, "feat_a", [300, 300, 300], seed=3)
    scheme = SchemeSettings(name="b2", kind="cluster", k=3, names={"2": "second"})
    out = assign_cluster_scheme(scheme, s1, store=memory_store).to_pandas()
    assert set(out.loc[out["segment_rank"] == 2, "segment"]) == {"second"}
    assert out["customer_id"].is_unique and len(out) == 900
    narrow = s1.select("customer_id", "frequency")
    with pytest.raises(ConfigError, match="bump the scheme's version"):
        assign_cluster_scheme(scheme, narrow, store=memory_store)
    with pytest.raises(InputError, match="unknown feature"):
        fit_cluster_table(s1, ["nope"])


def _md5_sample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """Independent: the customers first by MD5 of "seed:id" (then id), in id order."""
    import hashlib

    key = [hashlib.md5(f"{seed}:{c}".encode()).hexdigest() for c in frame["customer_id"]]
    first = frame.assign(_k=key).sort_values(["_k", "customer_id"]).head(size)
    return first.sort_values("customer_id").drop(columns=["_k", "customer_id"]).reset_index(drop=True)


def test_engine_sampling_caps_rows(memory_store):
    """The sample is the documented MD5 order, whatever the engine's threads (DuckDB's own
    seeded sample is repeatable on one thread only)."""
    s1, _ = _snapshot(memory_store, "feat_b", [3000, 2000, 1000], seed=4)
    frame = s1.to_pandas()
    for threads, seed in ((1, 0), (4, 0), (4, 7)):
        memory_store.raw.execute(f"SET threads = {threads}")
        sample = sample_features(s1, ["frequency", "monetary"], sample_size=500, seed=seed)
        assert len(sample) == 500 and list(sample.columns) == ["frequency", "monetary"]
        pd.testing.assert_frame_equal(sample, _md5_sample(frame, 500, seed), check_exact=True)
    # a seed draws other customers; every customer when the sample holds them all
    assert not _md5_sample(frame, 500, 0).equals(_md5_sample(frame, 500, 7))
    everyone = sample_features(s1, ["frequency"], sample_size=10_000)
    assert len(everyone) == 6000


@pytest.mark.spark
@pytest.mark.slow
def test_spark_draws_the_same_sample(memory_store):
    """On Spark (Ibis has no seeded sample there: the fit of a cluster scheme of more
    customers than its sample failed) the sample is DuckDB's, row for row."""
    from tests._engines import require_spark

    require_spark()
    from segflow.engine import spark_session

    s1, _ = _snapshot(memory_store, "feat_s", [300, 200, 100], seed=5)
    frame = s1.to_pandas()
    con = ibis.pyspark.connect(spark_session("local[1]"))
    # a temporary view: a managed table would leave its folder in ./spark-warehouse, and a
    # second run in the same checkout would fail on it (LOCATION_ALREADY_EXISTS)
    on_spark = con.create_view("feat_s", ibis.memtable(frame), overwrite=True)
    got = sample_features(on_spark, ["frequency", "monetary"], sample_size=250)
    pd.testing.assert_frame_equal(got, sample_features(s1, ["frequency", "monetary"],
                                                       sample_size=250), check_exact=True)
    pd.testing.assert_frame_equal(got, _md5_sample(frame, 250, 0), check_exact=True)


def test_decimal_and_boolean_features_are_numeric(memory_store):
    rng = np.random.default_rng(8)
    frame = pd.DataFrame(
        {
            "customer_id": [f"d{i}" for i in range(300)],
            "spend": np.round(np.r_[rng.normal(20, 2, 150), rng.normal(80, 2, 150)], 2),
            "member": np.r_[np.zeros(150, bool), np.ones(150, bool)],
        }
    )
    memory_store.replace("raw_dec", pa.Table.from_pandas(frame, preserve_index=False))
    memory_store.raw.execute(
        "CREATE TABLE dec AS SELECT customer_id, CAST(spend AS DECIMAL(18, 2)) AS spend, member "
        "FROM raw_dec"
    )
    table = memory_store.table("dec")
    seg = fit_cluster_table(table, ["spend", "member"], k=2, n_bootstrap=0)
    assert [s.name for s in seg.prep_.numeric] == ["spend", "member"] and not seg.prep_.categorical
    out = seg.assign(table).to_pandas().sort_values("customer_id", key=lambda c: c.str[1:].astype(int))
    assert out["segment_rank"].nunique() == 2
    assert (out["segment_rank"].to_numpy()[:150] != out["segment_rank"].to_numpy()[150:]).all()


def test_an_infinite_feature_names_its_customers():
    """A feature table's infinite value (DuckDB's 1.0/0 is inf) named no customer."""
    frame = pd.DataFrame({"customer_id": [f"C{i}" for i in range(8)],
                          "x": [1.0, 2.0, float("inf"), 3.0, 1.0, 2.0, 3.0, 1.0]})
    with pytest.raises(InputError) as err:
        fit_cluster_table(ibis.memtable(frame), ["x"], k=2, n_bootstrap=0)
    assert str(err.value) == ("column 'x': numeric feature has 1 infinite value (customer 'C2'); "
                              "expected finite numbers (or empty cells for missing)")
