"""Clustering segmenters: planted clusters, automatic k, stability, engine assignment."""

from __future__ import annotations

import warnings

import ibis
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, davies_bouldin_score, silhouette_score

from segflow.errors import InputError
from segflow.segments._cluster import (
    GaussianMixtureSegmenter,
    KMeansSegmenter,
    KPrototypesSegmenter,
    choose_k,
)
from segflow.segments._cluster_model import ClusterModel
from segflow.segments._stability import (
    SmallSegmentWarning,
    UnstableSegmentWarning,
    _best_jaccard,
)

SEGMENTERS = [KMeansSegmenter, GaussianMixtureSegmenter, KPrototypesSegmenter]


@pytest.fixture(scope="module")
def blobs() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_blobs(1500, n_features=4, centers=4, cluster_std=1.0, random_state=1)
    return pd.DataFrame(X, columns=["a", "b", "c", "d"]), y


def _engine_table(frame: pd.DataFrame) -> ibis.Table:
    con = ibis.duckdb.connect()
    data = frame.assign(customer_id=[f"c{i:05d}" for i in range(len(frame))])
    return con.create_table("features", data)


@pytest.mark.parametrize("cls", SEGMENTERS)
def test_planted_clusters_recovered_with_right_k(cls, blobs):
    X, y = blobs
    seg = cls(k_range=(2, 7), n_bootstrap=8, random_state=0).fit(X)
    assert seg.k_ == 4
    assert adjusted_rand_score(y, seg.labels_) >= 0.9
    assert list(seg.quality_["k"]) == list(range(2, 8))
    assert seg.quality_.loc[seg.quality_["chosen"], "k"].item() == 4
    # well-separated clusters are stable: every segment Jaccard close to 1
    assert seg.stability_.per_segment["jaccard"].min() > 0.95
    assert seg.stability_.ari > 0.95
    # segment 1 is the largest in the sample
    counts = np.bincount(seg.labels_)[1:]
    assert list(counts) == sorted(counts, reverse=True)


def test_quality_table_matches_sklearn_metrics(blobs):
    X, _ = blobs
    seg = KMeansSegmenter(k_range=(3, 4), n_bootstrap=0, log_transform=False, random_state=0).fit(X)
    # standard scaling (population std), written independently
    Z = ((X - X.mean()) / X.std(ddof=0)).to_numpy()
    row = seg.quality_.set_index("k").loc[4]
    labels = seg.labels_
    assert row["davies_bouldin"] == pytest.approx(davies_bouldin_score(Z, labels), rel=1e-9)
    assert row["silhouette"] == pytest.approx(silhouette_score(Z, labels), rel=1e-9)
    assert row["min_share"] == pytest.approx(np.bincount(labels)[1:].min() / len(labels))
    # the centres are k-means centres of the scaled data (up to relabelling)
    ref = KMeans(4, n_init=4, random_state=0).fit(Z)
    assert adjusted_rand_score(ref.labels_, labels) == pytest.approx(1.0)


def test_uniform_noise_reported_unstable():
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.uniform(size=(1200, 4)), columns=["a", "b", "c", "d"])
    with pytest.warns(UnstableSegmentWarning, match=r"segments (is|are) unstable .*Jaccard 0\.\d\d"):
        seg = KMeansSegmenter(k=6, n_bootstrap=10, random_state=0).fit(X)
    assert seg.stability_.per_segment["jaccard"].min() < 0.75
    assert seg.stability_.ari < 0.8


def test_small_segment_guard():
    rng = np.random.default_rng(4)
    big = rng.normal(0, 1, (980, 2))
    tiny = rng.normal(30, 0.5, (20, 2))  # 2 % of customers
    X = pd.DataFrame(np.vstack([big, tiny]), columns=["a", "b"])
    with pytest.warns(SmallSegmentWarning, match=r"1 of 2 segments holds less than .*5\.0%.*2\.0%"):
        KMeansSegmenter(k=2, min_segment_share=0.05, n_bootstrap=0, log_transform=False,
                        random_state=0).fit(X)
    quality = pd.DataFrame(
        {"k": [2, 3, 4], "silhouette": [0.5, 0.7, 0.6], "davies_bouldin": [0.9, 0.5, 0.6],
         "calinski_harabasz": [100.0, 300.0, 200.0], "min_share": [0.3, 0.01, 0.2]}
    )
    assert choose_k(quality, 0.0) == 3  # all three indices agree
    assert choose_k(quality, 0.05) == 4  # k=3 has a 1 % segment: excluded; 4 wins 3 votes


def test_choose_k_silhouette_breaks_disagreement():
    quality = pd.DataFrame(
        {"k": [2, 3, 4], "silhouette": [0.4, 0.7, 0.6], "davies_bouldin": [0.3, 0.5, 0.6],
         "calinski_harabasz": [100.0, 200.0, 300.0], "min_share": [0.3, 0.3, 0.3]}
    )
    assert choose_k(quality, 0.02) == 3


@pytest.mark.parametrize("cls", SEGMENTERS)
def test_engine_assignment_equals_predict(cls):
    rng = np.random.default_rng(5)
    n = 2000
    X = pd.DataFrame(
        {
            "recency": rng.exponential(100, n),
            "frequency": rng.poisson(3, n).astype(float),
            "monetary": rng.lognormal(4, 1, n),
            "region": rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    X.loc[rng.choice(n, 50, replace=False), "monetary"] = np.nan
    X.loc[rng.choice(n, 30, replace=False), "region"] = None
    seg = cls(k=4, n_bootstrap=0, random_state=0).fit(X)
    later = X.sample(frac=1.0, random_state=1).reset_index(drop=True)
    later.loc[:9, "region"] = "west"  # a level never seen in fitting
    later.loc[10:19, "monetary"] = -5.0  # negative spend (returns) on a log1p column
    out = seg.assign(_engine_table(later)).to_pandas().sort_values("customer_id")
    expected = seg.predict(later)
    assert out["segment_rank"].to_numpy().tolist() == expected.tolist()
    assert set(out["segment"]) <= set(seg.names_)
    # the in-memory sklearn model and the exported model agree too
    design = seg.prep_.transform(later)
    assert (seg.model_.predict_design(design) + 1).tolist() == expected.tolist()


def test_kmeans_predict_is_sklearn_predict():
    rng = np.random.default_rng(6)
    X = pd.DataFrame(rng.normal(size=(800, 3)), columns=["a", "b", "c"])
    seg = KMeansSegmenter(k=3, n_bootstrap=0, log_transform=False, random_state=0).fit(X)
    Z = (X - X.mean()) / X.std(ddof=0)
    raw = seg.core_.predict(Z.to_numpy())
    assert (seg.relabel_[raw] + 1).tolist() == seg.predict(X).tolist()
    out = seg.assign(_engine_table(X)).to_pandas().sort_values("customer_id")
    assert out["segment_rank"].tolist() == (seg.relabel_[raw] + 1).tolist()


def test_kprototypes_on_mixed_data():
    rng = np.random.default_rng(7)
    n = 600
    group = rng.integers(0, 3, n)
    X = pd.DataFrame(
        {
            "spend": np.array([0.0, 0.0, 6.0])[group] + rng.normal(0, 0.5, n),
            "visits": np.array([0.0, 6.0, 0.0])[group] + rng.normal(0, 0.5, n),
            # groups 0 and 1 differ numerically; the channel separates group 0 from the rest
            "channel": np.where(group == 0, "store", "web"),
            "city": rng.choice(["a", "b"], n),  # noise
        }
    )
    seg = KPrototypesSegmenter(k_range=(2, 5), n_bootstrap=5, log_transform=False,
                               random_state=0).fit(X)
    assert seg.k_ == 3
    assert adjusted_rand_score(group, seg.labels_) >= 0.9
    # prototypes carry a modal level: one indicator per categorical block is set
    w = seg.prep_.categorical[0].weight
    block = seg.cluster_centers_[:, 2:4]
    assert np.allclose(np.sort(block, axis=1), [[0.0, w]] * 3)
    # Huang's cost of the fitted partition is the squared design distance
    design = seg.prep_.transform(X)
    cost = ((design - seg.cluster_centers_[seg.labels_ - 1]) ** 2).sum()
    mism = sum(
        (X[c].to_numpy() != np.array(
            [seg.prep_.categorical[i].levels[j] for j in
             np.argmax(seg.cluster_centers_[:, s:e], axis=1)])[seg.labels_ - 1]).sum()
        for i, (c, s, e) in enumerate([("channel", 2, 4), ("city", 4, 6)])
    )
    num = ((design[:, :2] - seg.cluster_centers_[seg.labels_ - 1, :2]) ** 2).sum()
    assert cost == pytest.approx(num + 0.5 * mism)


def test_model_json_round_trip(blobs):
    X, _ = blobs
    seg = KMeansSegmenter(k=4, n_bootstrap=3, random_state=0).fit(X)
    again = ClusterModel.from_json(seg.model_.to_json())
    assert again.names == seg.names_
    assert np.array_equal(again.predict_design(seg.prep_.transform(X)) + 1, seg.predict(X))
    assert again.info["k"] == 4 and len(again.info["quality"]) == 1


def test_sklearn_conventions(blobs):
    X, _ = blobs
    seg = KMeansSegmenter(k=3, random_state=1)
    params = seg.get_params()
    assert params["k"] == 3 and params["k_range"] == (2, 10)
    assert clone(seg).get_params() == params
    assert seg.fit(X.iloc[:300]) is seg  # fit returns self
    with pytest.raises(Exception, match="not fitted"):
        KMeansSegmenter().predict(X)


def test_bad_input_is_a_clear_error():
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 5.0, 2.0]})
    with pytest.raises(InputError, match="k=5 segments cannot be fitted on 3"):
        KMeansSegmenter(k=5, n_bootstrap=0).fit(X)
    with pytest.raises(InputError, match="k_range"):
        KMeansSegmenter(k_range=(5, 2)).fit(X)
    with pytest.raises(InputError, match="missing"):
        KMeansSegmenter(k=2, n_bootstrap=0).fit(X).predict(X[["a"]])
    with pytest.raises(InputError, match="column 'b': numeric feature has 1 infinite value;"):
        KMeansSegmenter(k=2, n_bootstrap=0).fit(X.assign(b=[1.0, np.inf, 2.0]))
    with pytest.raises(InputError, match="^one customer only: there is nothing to cluster;"):
        KMeansSegmenter(n_bootstrap=0).fit(X.iloc[:1])  # said "all 1 customers have the same values"


def test_infinite_values_are_named_by_row_or_customer():
    """'numeric feature has N infinite values' named no row; predict failed with
    scikit-learn's 'Input X contains infinity' (a traceback in the CLI)."""
    b = [1.0, np.inf, 2.0, 3.0, -np.inf, 1.0, 2.0, np.inf, np.inf]
    X = pd.DataFrame({"a": np.arange(9.0), "b": b})
    expected = "; expected finite numbers (or empty cells for missing)"
    with pytest.raises(InputError) as err:  # rows: positions from 1, as where() writes them
        KMeansSegmenter(k=2, n_bootstrap=0).fit(X)
    assert str(err.value) == ("rows 2, 5, 8, ... (4 in all), column 'b': numeric feature has 4 "
                              "infinite values" + expected)
    ids = X.set_index(pd.Index([f"C{i}" for i in range(9)], name="customer_id"))
    with pytest.raises(InputError) as err:  # an index of customer ids: the customers
        KMeansSegmenter(k=2, n_bootstrap=0).fit(ids.iloc[:6])
    assert str(err.value) == ("column 'b': numeric feature has 2 infinite values (customers "
                              "'C1' and 'C4')" + expected)
    # out of a sample of 4 of the 9 rows: all of X is checked, not only the sample
    with pytest.raises(InputError, match=r"^rows 2, 5, 8, \.\.\. \(4 in all\), column 'b'"):
        KMeansSegmenter(k=2, n_bootstrap=0, sample_size=4).fit(X)
    fitted = KMeansSegmenter(k=2, n_bootstrap=0).fit(X.assign(b=np.arange(9.0) % 4))
    with pytest.raises(InputError) as err:  # predict: the rows of its X
        fitted.predict(X.iloc[3:])
    assert str(err.value) == ("rows 2, 5 and 6, column 'b': numeric feature has 3 infinite "
                              "values" + expected)


def test_engine_assignment_refuses_infinite_values_as_predict():
    """``fit`` and ``predict`` refused an infinite feature value, ``assign`` (the engine's
    assignment, the saved model's) put the customer in a segment: now the same error,
    naming the customers by id (a table's order is no row number), the first by id."""
    X = pd.DataFrame({"a": np.arange(9.0), "b": np.arange(9.0) % 4})
    fitted = KMeansSegmenter(k=2, n_bootstrap=0).fit(X)
    expected = "; expected finite numbers (or empty cells for missing)"
    later = X.assign(b=[1.0, np.inf, 2.0, 3.0, -np.inf, 1.0, 2.0, np.inf, np.inf])
    table = _engine_table(later)  # customers c00000 .. c00008
    for assign in (fitted.assign, fitted.model_.assign):
        with pytest.raises(InputError) as err:
            assign(table)
        assert str(err.value) == ("column 'b': numeric feature has 4 infinite values (customers "
                                  "'c00001', 'c00004', 'c00007', ... (4 in all))" + expected)
    with pytest.raises(InputError) as err:
        fitted.assign(_engine_table(later.assign(a=[np.inf] + [0.0] * 8)))  # the first column first
    assert str(err.value) == "column 'a': numeric feature has 1 infinite value (customer 'c00000')" + expected
    finite = later.assign(b=later.b.where(np.isfinite(later.b)))  # missing values are fine
    out = fitted.assign(_engine_table(finite)).to_pandas().sort_values("customer_id")
    assert out["segment_rank"].tolist() == fitted.predict(finite).tolist()


def test_sample_size_caps_the_fit(blobs):
    X, y = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        seg = KMeansSegmenter(k=4, sample_size=400, n_bootstrap=0, random_state=0).fit(X)
    assert seg.n_sample_ == 400 and len(seg.labels_) == 400
    assert adjusted_rand_score(y, seg.predict(X)) >= 0.9


def test_best_jaccard_by_hand():
    original = np.array([0, 0, 0, 1, 1, 1])
    boot = np.array([1, 1, 0, 0, 0, 0])
    # cluster 0 = {0,1,2}; best match boot 1 = {0,1}: 2/3. cluster 1 = {3,4,5} vs boot 0 =
    # {2,3,4,5}: 3/4
    assert _best_jaccard(original, boot, 2).tolist() == pytest.approx([2 / 3, 3 / 4])


def test_a_few_negative_values_do_not_switch_the_log_off_for_a_money_column():
    # one refund (net spend -5) among 2,000 customers made `monetary` "not non-negative": it
    # lost its log transform and a handful of big spenders defined the segments (adjusted
    # Rand index 0.24 against the partition without the refund)
    from scipy.stats import skew

    from segflow.segments._cluster_prep import ClippedNegativesWarning

    rng = np.random.default_rng(7)
    n = 2000
    X = pd.DataFrame({"recency": rng.exponential(100, n),
                      "frequency": rng.poisson(3, n).astype(float) + 1,
                      "monetary": rng.lognormal(4, 1, n)})
    base = KMeansSegmenter(k=4, n_bootstrap=0, random_state=0).fit(X)
    refund = X.copy()
    refund.loc[17, "monetary"] = -5.0
    with pytest.warns(ClippedNegativesWarning, match=r"monetary: 1 of 2,000 values are below 0"):
        seg = KMeansSegmenter(k=4, n_bootstrap=0, random_state=0).fit(refund)
    logged = {spec.name: spec.log1p for spec in seg.prep_.numeric}
    # the decision on the clipped values, computed here: skewness above 1
    assert logged["monetary"] is bool(skew(np.maximum(refund["monetary"], 0)) > 1.0) is True
    assert logged == {spec.name: spec.log1p for spec in base.prep_.numeric}
    others = np.arange(n) != 17
    # one customer moved: the partition of the others nearly unchanged (0.24 without the log)
    assert adjusted_rand_score(base.predict(X)[others], seg.predict(refund)[others]) > 0.95
    # a genuinely signed column (5 % below 0: a change in spend) is not log-transformed
    signed = X.copy()
    signed.loc[:99, "monetary"] = -rng.lognormal(2, 1, 100)
    seg = KMeansSegmenter(k=4, n_bootstrap=0, random_state=0).fit(signed)
    assert {s.name: s.log1p for s in seg.prep_.numeric}["monetary"] is False


@pytest.mark.parametrize("log_transform", ["auto", False])
def test_huge_amounts_cluster_as_their_scaled_down_copy(log_transform):
    """Amounts past ~1e154 overflowed the standard deviation (squared) and the skewness: the
    scale fell back to 1, the log off, and k-means said "k=2 leaves a segment without
    customers" of two clear groups, the Gaussian mixture raised scikit-learn's "array must not
    contain infs or NaNs" (session 59). Scaling is equivariant: the same partition as 1e-200 x."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"recency": np.r_[rng.normal(10, 2, 60), rng.normal(200, 5, 60)],
                      "monetary": np.r_[rng.gamma(20, 10, 60), rng.gamma(20, 1, 60)]})
    for cls in (KMeansSegmenter, GaussianMixtureSegmenter):
        small = cls(k=2, random_state=0, n_bootstrap=0, log_transform=log_transform).fit_predict(X)
        huge = cls(k=2, random_state=0, n_bootstrap=0, log_transform=log_transform).fit_predict(
            X.assign(monetary=X.monetary * 1e200))
        np.testing.assert_array_equal(huge, small)
        assert sorted(np.bincount(small)[1:]) == [60, 60]  # the two planted groups
