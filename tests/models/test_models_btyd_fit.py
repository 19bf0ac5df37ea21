"""Estimator contract, identification errors, penalty, compression and standard errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from segflow.errors import InputError, SegflowError
from segflow.models import (
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
)
from segflow.models._btyd_base import bootstrap_intervals

TRUE = dict(r=0.25, alpha=4.4, a=0.8, b=2.4)
COUNT_MODELS = [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel]


def _simulated(
    n: int = 3000, seed: int = 3, cls=BetaGeoModel, params=TRUE, digits: int = 1
) -> pd.DataFrame:
    model = cls()
    model.params_ = params
    T = np.round(np.random.default_rng(seed).uniform(20, 39, n), digits)
    sim = pd.DataFrame(model.simulate(T, random_state=seed))
    return sim.groupby(["x", "t_x", "T"]).size().reset_index(name="count")


@pytest.mark.parametrize("cls", [*COUNT_MODELS, BetaGeoBetaBinomModel, GammaGammaModel])
def test_estimator_contract(cls) -> None:
    model = cls(penalizer=0.1, n_starts=2)
    assert model.get_params()["penalizer"] == 0.1
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model._params()


def _bgbb_panel() -> pd.DataFrame:
    """(x, t_x, count, n) of the donations panel (6 opportunities), read from ../shared/data
    by the dataset loader (not a copy kept in the project)."""
    from segflow.datasets import load_donations_bgbb

    d = load_donations_bgbb()
    return pd.DataFrame({"x": d.frequency, "t_x": d.recency, "count": d.weights, "n": d.periods})


def _spend() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    x = rng.integers(1, 8, 800)
    return pd.DataFrame({"x": x, "monetary_value": rng.gamma(6.0, 1 / rng.gamma(4.0, 1 / 60.0, 800))})


@pytest.mark.parametrize("cls", [*COUNT_MODELS, BetaGeoBetaBinomModel, GammaGammaModel])
def test_fit_takes_y_none_so_a_pipeline_can_end_in_the_model(cls) -> None:
    """scikit-learn's convention: ``fit(X, y=None)`` for a model without a target. ``fit``
    took the summary alone, so ``Pipeline([...]).fit(X)``, which calls ``fit(X, None)``,
    raised 'takes 2 positional arguments but 3 were given'."""
    from sklearn.pipeline import Pipeline

    data = (_simulated(n=600) if cls in COUNT_MODELS else _bgbb_panel()
            if cls is BetaGeoBetaBinomModel else _spend())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = cls(n_starts=2).fit(data)
        assert cls(n_starts=2).fit(data, None).params_ == direct.params_
        piped = Pipeline([("model", cls(n_starts=2))]).fit(data)
    assert piped.named_steps["model"].params_ == direct.params_


@pytest.mark.parametrize("cls", COUNT_MODELS)
def test_compressed_fit_equals_per_customer_fit(cls) -> None:
    triples = _simulated(800)
    per_customer = triples.loc[triples.index.repeat(triples["count"])].drop(columns="count")
    a = cls().fit(triples)
    b = cls().fit(per_customer)
    assert a.n_customers_ == b.n_customers_ == 800
    assert a.log_likelihood_ == pytest.approx(b.log_likelihood_, abs=1e-6)
    for name in a.params_:
        assert a.params_[name] == pytest.approx(b.params_[name], rel=1e-4)
    assert a.fit_seconds_ > 0 and a.converged_


def test_recovers_simulated_parameters() -> None:
    model = BetaGeoModel().fit(_simulated(20_000, seed=8))
    for name, value in TRUE.items():
        se = model.standard_errors_[name]
        assert abs(model.params_[name] - value) < 4 * se, name


def test_identification_errors() -> None:
    no_repeat = pd.DataFrame({"x": [0, 0], "t_x": [0.0, 0.0], "T": [10.0, 20.0], "count": [5, 7]})
    for cls in COUNT_MODELS:
        with pytest.raises(SegflowError, match="no repeat buyers"):
            cls().fit(no_repeat)
    with pytest.raises(SegflowError, match="no customer transacts"):
        BetaGeoBetaBinomModel().fit(pd.DataFrame({"x": [0], "t_x": [0], "n": [6]}))
    with pytest.raises(SegflowError, match="Gamma-Gamma|spend model cannot"):
        GammaGammaModel().fit(pd.DataFrame({"x": [0, 1], "monetary_value": [np.nan, 3.0]}))


def test_a_boundary_error_gives_each_runaway_parameter_its_own_value() -> None:
    """The message gave the largest and smallest of all the parameters as if they were the
    named one's ("parameter r ran to a boundary (5.74e+09 or 1.01e+03 on the unit-free
    scale)"): now each parameter past the bound, grouped by the way it went, the farthest
    first, with its value in the summary's units (alpha's unit factor 10 here)."""
    from segflow.models._btyd_base import _boundary_message

    got = _boundary_message("BetaGeoModel", ("r", "alpha", "a", "b"), np.array([16.0, 17.0, -18.0, 0.5]),
                            np.array([1.0, 10.0, 1.0, 1.0]))
    assert got == ("BetaGeoModel: the data cannot identify the model: parameter a ran to a boundary, "
                   "shrinking towards 0 (a = 1.52e-08 when the fit stopped); parameters alpha and r, "
                   "growing without limit (alpha = 2.42e+08, r = 8.89e+06). Check the calibration period "
                   "and that enough customers repeat; consider a penalizer or a simpler model.")
    # e^16 = 8.886e6, 10 e^17 = 2.415e8, e^-18 = 1.523e-8
    # a fit: customers who buy every 4 weeks and one who has not repeated yet; no dropout is
    # seen, so a goes to 0 and the others grow (which of a and r is farther depends on the CPU)
    regular = pd.DataFrame({"x": [1, 2, 3, 4, 0], "t_x": [4.0, 8, 12, 16, 0], "T": [5.0, 9, 13, 17, 2],
                            "count": [4, 4, 4, 4, 4]})
    with pytest.raises(SegflowError) as caught:
        BetaGeoModel().fit(regular)
    text = str(caught.value)
    assert text.startswith("BetaGeoModel: the data cannot identify the model: parameter")
    assert "unit-free" not in text and " ran to a boundary, " in text
    import re

    groups = dict(re.findall(r"(growing without limit|shrinking towards 0) \(([^)]*)\)", text))
    values = {way: dict(pair.removesuffix(" when the fit stopped").split(" = ") for pair in vals.split(", "))
              for way, vals in groups.items()}
    assert set(values["shrinking towards 0"]) == {"a"} and float(values["shrinking towards 0"]["a"]) < np.exp(-15)
    grew = {k: float(v) for k, v in values["growing without limit"].items()}
    assert set(grew) == {"r", "alpha", "b"} and min(grew["r"], grew["b"]) > np.exp(15), text
    assert grew["alpha"] / 9.2 > np.exp(15)  # alpha in weeks; the fit's unit is the mean T, 9.2 weeks


def test_bad_input_names_row_and_column() -> None:
    bad = pd.DataFrame({"x": [1, 2], "t_x": [5.0, 50.0], "T": [10.0, 20.0]})
    with pytest.raises(InputError, match=r"^summary row 2, column 't_x'"):
        BetaGeoModel().fit(bad)
    with pytest.raises(InputError) as err:
        BetaGeoModel().fit(pd.DataFrame({"x": [1.5], "t_x": [1.0], "T": [2.0]}))
    assert str(err.value) == ("summary row 1, column 'x': expected a non-negative integer, got "
                              "1.5 (x=1.5, t_x=1.0, T=2.0)")
    with pytest.raises(InputError, match="lacks the column"):
        BetaGeoModel().fit(pd.DataFrame({"x": [1]}))


RECENCY_RULE = "0 <= t_x <= T and t_x = 0 when x = 0"
SUMMARY = pd.DataFrame({"customer_id": [f"c{i}" for i in range(1, 7)],
                        "x": [0, 2, 1, 3, 0, 4], "t_x": [0.0, 5.0, 3.0, 7.0, 0.0, 6.0],
                        "T": [10.0, 10.0, 8.0, 9.0, 4.0, 9.0]})


@pytest.mark.parametrize("cls", [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel])
def test_bad_summaries_are_input_errors_naming_column_and_customers(cls) -> None:
    """Negative counts, recency beyond T, NaN, no rows: each an InputError (the CLI's one
    line) naming the column and the first customers. A repeat buyer with t_x = 0 (a summary
    in coarse units) is no error: the likelihood is defined there."""
    cases = {
        "customers 'c2', 'c4', 'c5', ... (4 in all), column 'x': expected a non-negative "
        "integer, got -1.0 (customer 'c2')": SUMMARY.assign(x=[0, -1, 1, -3, -1, -2]),
        f"customer 'c3', column 't_x': expected {RECENCY_RULE}, got x=1, t_x=9, T=8":
            SUMMARY.assign(t_x=[0.0, 5.0, 9.0, 7.0, 0.0, 6.0]),
        "customers 'c1', 'c2', 'c4', ... (4 in all), column 'T': expected a finite non-negative "
        "number, got nan (customer 'c1')": SUMMARY.assign(T=[np.nan, np.nan, 8, np.nan, 4, np.nan]),
        f"{cls.__name__}: the summary holds no customers": SUMMARY.iloc[:0],
    }
    for want, data in cases.items():
        for given in (data, data.rename(columns={"x": "frequency", "t_x": "recency"})):
            with pytest.raises(InputError) as err:
                cls().fit(given)
            assert str(err.value) == want
    sim = _simulated(2000)
    early = (sim["x"] > 0) & (sim["t_x"] < 1)
    assert early.any()
    sim.loc[early, "t_x"] = 0.0  # repeats in the unit of the first purchase (coarse units)
    assert np.isfinite(cls().fit(sim).log_likelihood_)


def test_penalizer_shrinks_parameters() -> None:
    triples = _simulated(2000)
    free = BetaGeoModel().fit(triples)
    shrunk = BetaGeoModel(penalizer=0.05).fit(triples)
    norm = lambda m: sum(v**2 for v in m.params_.values())  # noqa: E731
    assert norm(shrunk) < norm(free)
    assert shrunk.log_likelihood_ < free.log_likelihood_


def test_bootstrap_intervals_cover_estimate() -> None:
    model = BetaGeoModel().fit(_simulated(3000))
    ts = np.array([10.0, 39.0])
    for method, n in (("asymptotic", 200), ("refit", 8)):
        out = bootstrap_intervals(
            model, lambda m: m.expected_purchases_new(ts), summary=_simulated(3000), n_boot=n,
            method=method,
        )
        assert (out.lower < out.estimate).all() and (out.estimate < out.upper).all(), method


@pytest.mark.slow
def test_standard_errors_match_sampling_spread() -> None:
    """Hessian standard errors vs the spread of estimates over simulated data sets."""
    fits = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(24):
            fits.append(BetaGeoModel(n_starts=1).fit(_simulated(3000, seed=100 + seed)))
    for name in ("r", "alpha"):
        spread = np.std([f.params_[name] for f in fits], ddof=1)
        se = np.mean([f.standard_errors_[name] for f in fits])
        assert se == pytest.approx(spread, rel=0.4), name


@pytest.mark.parametrize("cls", [BetaGeoModel, ModifiedBetaGeoModel])
def test_coarse_to_fine_reaches_full_data_optimum(cls, monkeypatch) -> None:
    import segflow.models._btyd_base as base

    triples = _simulated(30_000, seed=21, digits=3)
    assert len(triples) > base._COARSE_ROWS  # the coarse-to-fine path is taken
    fast = cls().fit(triples)
    monkeypatch.setattr(base, "_COARSE_ROWS", 10**9)
    direct = cls().fit(triples)
    assert fast.converged_ and direct.converged_
    assert fast.log_likelihood_ == pytest.approx(direct.log_likelihood_, abs=1e-6)
    for name in fast.params_:
        assert fast.params_[name] == pytest.approx(direct.params_[name], rel=1e-4), name
        assert fast.standard_errors_[name] == pytest.approx(direct.standard_errors_[name], rel=1e-2)


def test_bgbb_and_spend_model_summaries_name_their_rows() -> None:
    """The BG/BB said 'SegflowError: BetaGeoBetaBinomModel: row 2: expected integers with
    x <= t_x <= n' (no column, no customer) and named rows without its summary's ids."""
    panel = pd.DataFrame({"customer_id": ["d1", "d2", "d3", "d4"], "x": [0, 2, 1, 3],
                          "t_x": [0, 5, 3, 6], "n": [6, 6, 6, 6]})
    cases = {
        "customer 'd2', column 't_x': expected 0 <= t_x <= n and t_x = 0 when x = 0, got x=2, "
        "t_x=7, n=6": panel.assign(t_x=[0, 7, 3, 6]),
        "customers 'd2' and 'd4', column 'x': expected x <= t_x (one transaction per "
        "opportunity at most), got x=2, t_x=1, n=6 (customer 'd2')": panel.assign(t_x=[0, 1, 3, 2]),
        "customer 'd3', column 't_x': expected a non-negative integer, got 2.5":
            panel.assign(t_x=[0, 5, 2.5, 6]),
        "customer 'd2', column 'n': expected a non-negative integer, got nan":
            panel.assign(n=[6, np.nan, 6, 6]),
        "BetaGeoBetaBinomModel: the summary holds no customers": panel.iloc[:0],
    }
    for want, data in cases.items():
        with pytest.raises(InputError) as err:
            BetaGeoBetaBinomModel().fit(data)
        assert str(err.value) == want
    spend = pd.DataFrame({"customer_id": ["k1", "k2", "k3"], "x": [1, -2, 3],
                          "monetary_value": [10.0, 20.0, 30.0]})
    with pytest.raises(InputError) as err:
        GammaGammaModel().fit(spend)
    assert str(err.value) == "customer 'k2', column 'x': expected a non-negative integer, got -2.0"


def test_an_arrow_summary_is_read_and_predictions_refuse_what_is_no_number() -> None:
    """A pyarrow Table (documented) was refused ('expected a pandas DataFrame, Arrow or Ibis
    table, got Table'); p_alive(['a'], ...) raised NumPy's bare ValueError."""
    import pyarrow as pa

    triples = _simulated(2000)
    fitted = BetaGeoModel().fit(triples)
    from_arrow = BetaGeoModel().fit(pa.Table.from_pandas(triples, preserve_index=False))
    assert from_arrow.params_ == fitted.params_
    with pytest.raises(InputError) as err:
        fitted.p_alive([1, "a"], [1, 2], [5, 5])
    assert str(err.value) == "argument 'x': expected numbers, got 'a' (position 2)"
    with pytest.raises(InputError) as err:
        fitted.expected_purchases(4, [1, 2, 3], [1, 2], [5, 5])
    assert str(err.value) == ("the arguments do not broadcast to one shape: x (3,), t_x (2,), "
                              "T (2,)")


@pytest.mark.parametrize("cls", COUNT_MODELS)
def test_a_summary_of_newcomers_only_says_so(cls) -> None:
    """Every customer first seen on the last calibration day (T = 0, left out of the fit):
    the library said "the summary holds no customers" of a summary of three (the CLI has
    its own message before the fit)."""
    data = pd.DataFrame({"x": [0, 0], "t_x": [0.0, 0.0], "T": [0.0, 0.0], "count": [2, 1]})
    with pytest.raises(SegflowError) as err:
        cls().fit(data)
    assert str(err.value) == (
        f"{cls.__name__}: every customer of the summary (3) was first seen on the last calibration "
        "day (T = 0), which tells nothing about purchase rates or dropout; use a later calibration end")
