"""ChurnModel on a planted mechanism, its evaluation metrics, and the estimator contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from tests.models.test_churn_synth import planted_features

from segflow.errors import InputError, SegflowError
from segflow.models._churn import (
    ChurnModel,
    band_labels,
    decile_table,
    evaluate_churn,
)


@pytest.fixture(scope="module")
def planted():
    X, p, y, g = planted_features(24_000, seed=11)
    test = g == g.max()
    model = ChurnModel(n_threads=1, random_state=0).fit(X[~test], y[~test], groups=g[~test])
    return model, X[test], p[test], y[test]


def test_auc_close_to_true_probabilities(planted):
    model, X, p_true, y = planted
    p_hat = model.predict_proba(X)[:, 1]
    fitted = evaluate_churn(y, p_hat)
    oracle = evaluate_churn(y, p_true)
    assert fitted.auc > 0.75
    assert fitted.auc == pytest.approx(oracle.auc, abs=0.015)
    assert fitted.brier == pytest.approx(oracle.brier, abs=0.004)
    # calibration: decile-weighted |observed - predicted| small, and close to the oracle's
    assert fitted.ece < 0.03
    # the predicted probabilities track the true ones
    assert np.mean(np.abs(p_hat - p_true)) < 0.06
    assert model.calibration_split_ == "time"


def test_isotonic_calibration_also_calibrated(planted):
    _, X, p_true, y = planted
    Xa, pa_, ya, g = planted_features(24_000, seed=11)
    test = g == g.max()
    iso = ChurnModel(n_threads=1, calibration="isotonic", random_state=0).fit(Xa[~test], ya[~test], groups=g[~test])
    ev = evaluate_churn(y, iso.predict_proba(X)[:, 1])
    assert ev.ece < 0.03 and ev.auc > 0.75


def test_metrics_against_independent_computation():
    rng = np.random.default_rng(5)
    p = rng.random(1003)
    y = (rng.random(1003) < p).astype(int)
    ev = evaluate_churn(y, p)
    u = mannwhitneyu(p[y == 1], p[y == 0]).statistic
    assert ev.auc == pytest.approx(u / (y.sum() * (len(y) - y.sum())), rel=1e-12)
    assert ev.brier == pytest.approx(np.mean((p - y) ** 2), rel=1e-12)
    assert ev.log_loss == pytest.approx(-np.mean(np.where(y == 1, np.log(p), np.log(1 - p))))
    # deciles by pandas: rank descending (ties by position), 10 equal-count bins
    frame = pd.DataFrame({"y": y, "p": p})
    frame["rank"] = frame.p.rank(ascending=False, method="first") - 1
    frame["decile"] = (frame["rank"] * 10 // len(frame)).astype(int) + 1
    by = frame.groupby("decile").agg(n=("y", "size"), rate=("y", "mean"), mp=("p", "mean"))
    table = ev.to_pandas()
    assert table.customers.tolist() == by.n.tolist()
    np.testing.assert_allclose(table.churn_rate, by.rate)
    np.testing.assert_allclose(table.mean_predicted, by.mp)
    np.testing.assert_allclose(table.lift, by.rate / y.mean())
    top10 = frame.nsmallest(100, "rank").y.mean() / y.mean()
    assert ev.lift_at_10 == pytest.approx(top10)
    ece = np.sum(by.n * (by.rate - by.mp).abs()) / len(frame)
    assert ev.ece == pytest.approx(ece)
    assert table.cumulative_capture.iloc[-1] == pytest.approx(1.0)


def test_decile_table_ties_keep_input_order():
    p = np.array([0.5, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    table = decile_table(y, p, n_bins=5)
    assert table.churners.tolist() == [1, 0, 0, 0, 1]


def test_risk_bands_from_quantiles(planted):
    model, X, _, _ = planted
    lo, hi = model.band_thresholds_
    assert 0 < lo < hi < 1
    bands = model.risk_band(X)
    p = model.predict_proba(X)[:, 1]
    assert set(bands) == {"low", "medium", "high"}
    assert (p[bands == "high"] >= hi).all() and (p[bands == "low"] < lo).all()
    # the test snapshot comes from the same population: shares near the 50/30/20 design
    shares = pd.Series(bands).value_counts(normalize=True)
    assert shares["high"] == pytest.approx(0.2, abs=0.03)
    assert shares["low"] == pytest.approx(0.5, abs=0.03)
    # explicit thresholds override the quantiles; boundaries belong to the upper band
    assert band_labels(np.array([0.1, 0.3, 0.6, 0.59]), (0.3, 0.6)).tolist() == [
        "low", "medium", "high", "medium"
    ]


def test_explicit_band_thresholds():
    X, _, y, g = planted_features(3000, seed=3)
    model = ChurnModel(n_threads=1, band_thresholds=(0.2, 0.7), max_iter=30, random_state=0).fit(X, y, groups=g)
    assert model.band_thresholds_.tolist() == [0.2, 0.7]


def test_estimator_contract_and_categories():
    X, _, y, g = planted_features(3000, seed=4)
    model = ChurnModel(n_threads=1, max_iter=30, random_state=0)
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model.predict_proba(X)
    assert model.fit(X, y, groups=g) is model
    assert list(model.feature_names_in_) == ["recency_days", "frequency", "region", "noise"]
    assert model.categories_ == {"region": ["east", "north", "south", "west"]}
    # unseen categories and missing values are scored (treated as missing), column order free
    Z = X.iloc[:5][["noise", "region", "frequency", "recency_days"]].copy()
    Z.loc[Z.index[0], "region"] = "atlantis"
    Z.loc[Z.index[1], "recency_days"] = np.nan
    proba = model.predict_proba(Z)
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1)
    with pytest.raises(InputError, match="lacks the feature"):
        model.predict_proba(X.drop(columns="noise"))


def test_bad_inputs():
    X, _, y, g = planted_features(500, seed=5)
    with pytest.raises(InputError, match="0 .purchased. or 1"):
        ChurnModel(n_threads=1).fit(X, y * 2, groups=g)
    with pytest.raises(SegflowError, match="single class"):
        ChurnModel(n_threads=1).fit(X, np.zeros(len(y), int), groups=g)
    bad = X.assign(when=pd.Timestamp("2024-01-01"))
    with pytest.raises(InputError, match="when"):
        ChurnModel(n_threads=1).fit(bad, y, groups=g)
    with pytest.warns(UserWarning, match="single snapshot"):
        model = ChurnModel(n_threads=1, max_iter=20, random_state=0).fit(X, y, groups=np.zeros(len(y)))
    assert model.calibration_split_ == "random"


def test_figures_and_json(planted):
    model, X, _, y = planted
    ev = evaluate_churn(y, model.predict_proba(X)[:, 1])
    fig = ev.figure()
    assert len(fig.data) == 2 and len(fig.data[1].x) == 10
    assert len(ev.lift_figure().data[0].x) == 10
    payload = ev.to_dict()
    assert payload["count"] == 10 and payload["metrics"]["auc"] == pytest.approx(ev.auc)
    assert "auc=" in repr(ev)


@pytest.mark.parametrize("kind", ["churn", "next"])
def test_contract_params_idempotent_pickle_no_data(kind):
    import pickle

    from segflow.models._next_segment import NextSegmentModel

    X, _, y, g = planted_features(2000, seed=9)
    if kind == "next":
        y = np.where(X.recency_days > 60, "lapsed", np.where(y == 1, "at risk", "active"))
        model = NextSegmentModel(n_threads=1, max_iter=40, random_state=0)
    else:
        model = ChurnModel(n_threads=1, max_iter=40, random_state=0)
    params = model.get_params()
    first = model.fit(X, y, groups=g).predict_proba(X)
    assert model.get_params() == params  # fit never changes hyper-parameters
    np.testing.assert_allclose(model.fit(X, y, groups=g).predict_proba(X), first)  # idempotent
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(restored.predict_proba(X), first)
    # the model keeps no training data: no fitted attribute is as long as X
    for name, value in vars(model).items():
        if name.endswith("_") and hasattr(value, "__len__") and not isinstance(value, str):
            assert len(value) != len(X), name


def test_object_column_of_numbers_is_numeric():
    X, _, y, g = planted_features(1500, seed=10)
    X["visits"] = pd.Series([None if i % 3 else float(i % 7) for i in range(len(X))], dtype=object)
    model = ChurnModel(n_threads=1, max_iter=20, random_state=0).fit(X, y, groups=g)
    assert "visits" not in model.categories_ and "region" in model.categories_


def test_unreadable_model_file_is_a_clear_error(tmp_path):
    from segflow.models._churn_train import load_churn_model

    path = tmp_path / "churn_90d.joblib"
    path.write_bytes(b"not a model")
    with pytest.raises(SegflowError, match="retrain it"):
        load_churn_model(path)


def test_unseen_level_is_missing_without_a_pandas_deprecation():
    """A level unseen at fit time is a missing value (as the docstring says), made explicit:
    pd.Categorical with values outside its categories warns (Pandas4Warning) and will raise."""
    import warnings

    X = pd.DataFrame({"region": ["east", "west"] * 20, "visits": np.arange(40.0)})
    y = np.array([0, 1] * 20)
    model = ChurnModel(n_threads=1, max_iter=5, random_state=0).fit(X, y)
    Z = pd.DataFrame({"region": ["atlantis", None, "west"], "visits": [3.0, 3.0, 3.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        matrix = model._transform(Z)
        proba = model.predict_proba(Z)[:, 1]
    assert matrix.region.isna().tolist() == [True, True, False]
    assert matrix.region.cat.categories.tolist() == ["east", "west"]
    assert proba[0] == proba[1]  # unseen is scored as missing


def test_uplift_prepare_makes_unseen_levels_missing_without_a_warning():
    """campaigns._uplift._prepare: the same explicit rule for its categorical columns."""
    import warnings

    from segflow.campaigns._uplift import _prepare

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = _prepare(pd.DataFrame({"a": ["x", "zz", None, "y"]}), {"a": ["x", "y"]})
    assert out.a.isna().tolist() == [False, True, True, False]
    assert out.a.cat.categories.tolist() == ["x", "y"]
