"""The prediction methods refuse arguments outside the fit's domain (note58: they returned
numbers that looked like answers: P(alive) 1.013 for t_x > T, negative expected purchases
for a negative horizon, NaN or a NumPy warning for NaN), and still give the published
values inside it. No fit: the models carry the published CDNOW estimates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from segflow.errors import ArgumentError, InputError
from segflow.models import (
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
)

# Fader, Hardie & Lee (2005), Marketing Science 24(2); the same paper's Pareto/NBD
PUBLISHED = {BetaGeoModel: {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
             ModifiedBetaGeoModel: {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
             ParetoNBDModel: {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}}
COUNT_MODELS = list(PUBLISHED)


def _model(cls):
    model = cls()
    model.params_ = dict(PUBLISHED[cls])
    return model


def test_published_conditional_expectation_still_matches() -> None:
    """FHL (2005), section 5: a customer with x = 2, t_x = 30.43, T = 38.86 (weeks) is
    expected to make 1.226 purchases in the next 39 weeks."""
    model = _model(BetaGeoModel)
    assert round(float(model.expected_purchases(39, 2, 30.43, 38.86)), 3) == 1.226
    assert float(model.expected_purchases(np.array([39.0]), [2], [30.43], [38.86])[0]) == \
        pytest.approx(1.2260282, abs=1e-7)  # the array path (real-time scoring) agrees


@pytest.mark.parametrize("cls", COUNT_MODELS)
@pytest.mark.parametrize(("args", "message"), [
    ((-1, 2, 30.43, 38.86), "argument 't': expected a finite number >= 0; got -1.0"),
    ((np.nan, 2, 30.43, 38.86), "argument 't': expected a finite number >= 0; got nan"),
    ((39, [2, np.nan, 1, np.nan], 0.0, 38.86),
     "argument 'x': expected a whole number >= 0; got nan at position 2 (2 of 4 values)"),
    ((39, -1, 0, 38.86), "argument 'x': expected a whole number >= 0; got -1.0"),
    ((39, 1.5, 3, 38.86), "argument 'x': expected a whole number >= 0; got 1.5"),
    ((39, 2, [30, 40, 41], 38.86),
     "argument 't_x': expected t_x <= T; got x=2, t_x=40, T=38.86 at position 2 (2 of 3 values)"),
    ((39, 0, 3, 38.86), "argument 't_x': expected t_x = 0 when x = 0 (no repeat purchase); "
                        "got x=0, t_x=3, T=38.86"),
    ((39, 2, 30, np.inf), "argument 'T': expected a finite number >= 0; got inf"),
    ((39, [[1, 2], [3, 4]], 1, -1.0),
     "argument 'T': expected a finite number >= 0; got -1.0 at index (0, 0) (4 of 4 values)"),
])
def test_out_of_domain_arguments_are_value_errors_naming_argument_and_count(cls, args, message) -> None:
    model = _model(cls)
    t, x, t_x, T = args
    name = cls.__name__
    calls = {"expected_purchases": lambda: model.expected_purchases(t, x, t_x, T),
             "p_no_purchase": lambda: model.p_no_purchase(t, x, t_x, T)}
    if "argument 't'" not in message:
        calls["p_alive"] = lambda: model.p_alive(x, t_x, T)
    for method, call in calls.items():
        with pytest.raises(ArgumentError) as err:
            call()
        assert isinstance(err.value, ValueError) and isinstance(err.value, InputError)
        assert str(err.value) == f"{name}.{method}: {message}"


@pytest.mark.parametrize("cls", COUNT_MODELS)
def test_the_edges_of_the_domain_are_accepted(cls) -> None:
    """A repeat buyer with t_x = 0 (accepted by the fit: a summary in months), a customer
    first seen on the last day (T = 0), a horizon of 0, t_x = T: finite and in range."""
    model = _model(cls)
    x, t_x, T = np.array([2.0, 0, 3, 1]), np.array([0.0, 0, 7, 5]), np.array([10.0, 0, 7, 5])
    alive = model.p_alive(x, t_x, T)
    assert np.all((alive > 0) & (alive <= 1))
    # x = 0 at T = 0: alive, but for the MBG/NBD's drop-out right after the first purchase
    assert alive[1] == pytest.approx(2.426 / (0.793 + 2.426) if cls is ModifiedBetaGeoModel else 1.0)
    assert np.all(model.expected_purchases(0, x, t_x, T) == 0)
    assert np.all(model.p_no_purchase(0, x, t_x, T) == pytest.approx(1.0))
    assert float(model.expected_purchases_new(0)) == 0
    with pytest.raises(ArgumentError, match=rf"^{cls.__name__}.expected_purchases_new: argument 't'"):
        model.expected_purchases_new([1, -3])


@pytest.mark.parametrize("cls", [*COUNT_MODELS, BetaGeoBetaBinomModel])
def test_not_fitted_comes_before_the_argument_check(cls) -> None:
    with pytest.raises(NotFittedError):
        cls().p_alive(-1, 0, 5)


def test_bgbb_whole_numbers_and_one_customer_as_scalars() -> None:
    """BG/BB's opportunities are whole numbers with x <= t_x <= n; one customer given as
    plain numbers raised TypeError ('numpy.float64' has no len())."""
    model = BetaGeoBetaBinomModel()
    model.params_ = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}  # FHS (2010)
    assert model.p_alive(1, 1, 6) == pytest.approx(float(model.p_alive([1], [1], [6])[0]), rel=1e-15)
    assert model.expected_purchases(5, 1, 1, 6) == pytest.approx(
        float(model.expected_purchases(5, [1], [1], [6])[0]), rel=1e-15)
    for call, message in [
        (lambda: model.expected_purchases(1.5, 1, 1, 6), "expected_purchases: argument 't': expected a "
                                                         "whole number >= 0; got 1.5"),
        (lambda: model.p_alive(2, 1, 6), "p_alive: argument 'x': expected x <= t_x (one transaction "
                                         "per opportunity at most); got x=2, t_x=1, n=6"),
        (lambda: model.p_alive([1, 3], [1, 7], 6), "p_alive: argument 't_x': expected t_x <= n; got x=3, "
                                                   "t_x=7, n=6 at position 2 (1 of 2 values)"),
        (lambda: model.expected_purchases_new(2.5), "expected_purchases_new: argument 'n': expected a "
                                                    "whole number >= 0; got 2.5"),
    ]:
        with pytest.raises(ArgumentError) as err:
            call()
        assert str(err.value) == f"BetaGeoBetaBinomModel.{message}"


def test_spend_prediction_refuses_bad_counts_and_infinite_spend() -> None:
    model = GammaGammaModel()
    model.params_ = {"p": 6.25, "q": 3.74, "gamma": 15.44}  # Fader & Hardie (2013)
    # E(Z | x, m) = p (gamma + m x) / (p x + q - 1); no repeat spend (NaN): the population mean
    assert float(model.expected_spend(2, 30.0)) == pytest.approx(6.25 * (15.44 + 60) / (12.5 + 2.74))
    assert float(model.expected_spend(2, np.nan)) == pytest.approx(6.25 * 15.44 / 2.74)
    with pytest.raises(ArgumentError) as err:
        model.expected_spend([1, -2], 30.0)
    assert str(err.value) == ("GammaGammaModel.expected_spend: argument 'x': expected a whole number "
                              ">= 0; got -2.0 at position 2 (1 of 2 values)")
    with pytest.raises(ArgumentError) as err:
        model.expected_spend(2, np.inf)
    assert str(err.value) == ("GammaGammaModel.expected_spend: argument 'monetary_value': expected a "
                              "finite number or NaN; got inf")


def test_scoring_functions_check_horizon_and_discount_rate() -> None:
    """An infinite or NaN horizon raised Python's OverflowError / ValueError from the monthly
    steps of discounted_purchases; a negative horizon scored negative purchases."""
    import ibis

    from segflow.models import discounted_purchases, predict_triples, score_customers

    model = _model(BetaGeoModel)
    triples = pd.DataFrame({"x": [0.0, 2.0], "t_x": [0.0, 30.43], "T": [10.0, 38.86]})
    summary = ibis.memtable(triples.assign(customer_id=["a", "b"], monetary_value=[np.nan, 20.0]))
    x, t_x, T = (triples[c].to_numpy() for c in ("x", "t_x", "T"))
    calls = {"discounted_purchases": lambda **kw: discounted_purchases(model, x, t_x, T, **kw),
             "predict_triples": lambda **kw: predict_triples(model, triples, **kw),
             "score_customers": lambda **kw: score_customers(summary, model, **kw)}
    for name, call in calls.items():
        for kw, message in [({"horizon": float("inf")}, "argument 'horizon': expected a finite number >= 0; got inf"),
                            ({"horizon": float("nan")}, "argument 'horizon': expected a finite number >= 0; got nan"),
                            ({"horizon": -1.0}, "argument 'horizon': expected a finite number >= 0; got -1.0"),
                            ({"horizon": 52, "annual_discount_rate": -1.0},
                             "argument 'annual_discount_rate': expected a finite number >= 0; got -1.0"),
                            # session 59's review: a TypeError each, and two rates were taken one
                            # per customer
                            ({"horizon": [52, 104]}, "argument 'horizon': expected one number; got 2 values"),
                            ({"horizon": 52, "annual_discount_rate": np.array([0.1, 0.2])},
                             "argument 'annual_discount_rate': expected one number; got 2 values")]:
            with pytest.raises(ArgumentError) as err:
                call(**kw)
            assert str(err.value) == f"{name}: {message}"
    with pytest.raises(ArgumentError, match="^discounted_purchases: argument 'steps_per_year': expected a whole "
                                            "number >= 1; got 0$"):  # (divided by zero: a number, a warning)
        discounted_purchases(model, x, t_x, T, horizon=52, steps_per_year=0)
    # a horizon written as text (the prediction methods read it so): a TypeError, now the number's
    np.testing.assert_array_equal(predict_triples(model, triples, horizon="52"), predict_triples(model, triples, horizon=52))
    # undiscounted over one month (a single step): the expected purchases themselves
    month = 365.25 / 7 / 12
    np.testing.assert_allclose(discounted_purchases(model, x, t_x, T, horizon=month, annual_discount_rate=0.0),
                               model.expected_purchases(month, x, t_x, T), rtol=1e-12)


def test_pandas_series_in_series_out_by_label_scalars_as_floats() -> None:
    """A notebook passes df["frequency"], df["recency"], df["T"] with a customer index
    (filtered: not 0..n-1): the predictions come back as Series with that index (they were
    bare arrays); Series with different indexes are refused, not matched by position."""
    model = _model(BetaGeoModel)
    r, alpha, a, b = (PUBLISHED[BetaGeoModel][k] for k in ("r", "alpha", "a", "b"))
    df = pd.DataFrame({"frequency": [2, 0, 5, 1], "recency": [30.43, 0.0, 20.0, 3.0],
                       "T": [38.86, 38.86, 30.0, 12.0]}, index=pd.Index(["c7", "c9", "c12", "c40"], name="cid"))
    df = df[df["T"] > 20]  # filtered: labels c7, c9, c12
    alive = model.p_alive(df["frequency"], df["recency"], df["T"])
    # FHL (2007 note) eq. 2, computed here; x = 0: alive
    x, t_x, T = df.to_numpy().T
    ref = np.where(x > 0, 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)), 1.0)
    assert isinstance(alive, pd.Series) and alive.name == "p_alive"
    assert alive.index.equals(df.index)
    np.testing.assert_allclose(alive.to_numpy(), ref, rtol=1e-12)
    # FHL (2005) section 5: 1.226 purchases in the next 39 weeks for c7's history; a
    # scalar horizon and T broadcast over the Series
    expected = model.expected_purchases(39, df["frequency"], df["recency"], T=df["T"])
    assert expected.name == "expected_purchases" and round(expected["c7"], 3) == 1.226
    # discounted purchases alike (one monthly step: the expected purchases themselves)
    from segflow.models import discounted_purchases

    month = 365.25 / 7 / 12
    disc = discounted_purchases(model, df["frequency"], df["recency"], df["T"], horizon=month,
                                annual_discount_rate=0.0)
    assert disc.name == "discounted_purchases" and disc.index.equals(df.index)
    np.testing.assert_allclose(disc, model.expected_purchases(month, x, t_x, T), rtol=1e-12)
    assert type(discounted_purchases(model, 2, 30.43, 38.86, horizon=52)) is float
    # numbers in: a float (it was a 0-d array); arrays in: arrays, as before
    one = model.expected_purchases(39, 2, 30.43, 38.86)
    assert type(one) is float and round(one, 3) == 1.226
    assert type(model.p_alive(x, t_x, T)) is np.ndarray
    for swap, how in [(df["recency"].iloc[::-1], "the same labels in another order"),
                      (df["recency"].iloc[:2], "3 labels against 2"),
                      (df["recency"].rename({"c12": "c13"}), "labels of 'x' not in 't_x': 'c12'")]:
        with pytest.raises(ArgumentError) as err:
            model.p_no_purchase(10, df["frequency"], swap, df["T"])
        assert str(err.value) == (
            f"BetaGeoModel.p_no_purchase: arguments 'x' and 't_x' are pandas Series with different "
            f"indexes ({how}); align them first (e.g. t_x.reindex(x.index)): they are matched by "
            "label, not by position")
    # a nullable column with a missing value: refused by the domain check (pd.NA was a
    # TypeError), naming the customer's label beside the position
    with pytest.raises(ArgumentError) as err:
        model.p_alive(pd.Series([1, pd.NA, 2], dtype="Int64", index=[10, 20, 30]), 1.0, 5.0)
    assert str(err.value) == ("BetaGeoModel.p_alive: argument 'x': expected a whole number >= 0; got nan "
                              "at position 2 (label 20) (1 of 3 values)")
    with pytest.raises(ArgumentError, match=r"got x=5, t_x=40, T=38.86 at position 3 \(label 'c12'\) "):
        model.p_alive(df["frequency"], df["recency"].replace(20.0, 40.0), 38.86)
    # the spend model and BG/BB alike: Fader & Hardie (2013) eq. 5, FHS (2010) eq. 11
    spend = GammaGammaModel()
    spend.params_ = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    got = spend.expected_spend(pd.Series([2, 0], index=[10, 20]), pd.Series([30.0, np.nan], index=[10, 20]))
    assert got.name == "expected_spend" and list(got.index) == [10, 20]
    np.testing.assert_allclose(got, [6.25 * (15.44 + 60) / (12.5 + 2.74), 6.25 * 15.44 / 2.74])
    bgbb = BetaGeoBetaBinomModel()
    bgbb.params_ = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
    series = bgbb.p_alive(pd.Series([1, 0], index=["p", "q"]), pd.Series([1, 0], index=["p", "q"]), 6)
    assert list(series.index) == ["p", "q"] and series["p"] == pytest.approx(bgbb.p_alive(1, 1, 6), rel=1e-15)


def test_a_one_column_frame_is_its_column_and_duplicated_labels_are_named() -> None:
    """``df[["frequency"]]`` (double brackets) beside Series: NumPy read the (n, 1) frame as
    a column vector and the prediction came back as an n-by-n array of every pairing of one
    customer's x with another's t_x and T, without a word. Now a one-column frame is its
    column (a Series out, the same values as with df["frequency"]) and a wider one is
    refused. Indexes of the same labels repeated other numbers of times were "the same
    labels in another order"; a nullable boolean's <NA> gave "expected numbers, got True"."""
    model = _model(BetaGeoModel)
    df = pd.DataFrame({"x": [2, 0, 5], "t_x": [30.43, 0.0, 20.0], "T": [38.86, 38.86, 30.0]},
                      index=["c7", "c9", "c12"])
    by_column = model.p_alive(df["x"], df["t_x"], df["T"])
    framed = model.p_alive(df[["x"]], df["t_x"], df["T"])
    assert isinstance(framed, pd.Series) and framed.index.equals(df.index)
    np.testing.assert_array_equal(framed.to_numpy(), by_column.to_numpy())
    assert by_column["c7"] == pytest.approx(float(model.p_alive(2, 30.43, 38.86)), rel=1e-15)
    with pytest.raises(ArgumentError) as err:
        model.expected_purchases(39, df[["x", "t_x"]], df["t_x"], df["T"])
    assert str(err.value) == ("BetaGeoModel.expected_purchases: argument 'x': expected a pandas Series "
                              "(one column, df['x']); got a DataFrame of 2 columns")
    twice = pd.Series([1, 1, 1], index=["a", "a", "b"])
    with pytest.raises(ArgumentError) as err:
        model.p_alive(twice, twice.set_axis(["a", "b", "b"]), 40)
    # the hint is not reindex, which raises on repeated labels ("cannot reindex on an axis
    # with duplicate labels")
    assert str(err.value) == (
        "BetaGeoModel.p_alive: arguments 'x' and 't_x' are pandas Series with different indexes "
        "(the same labels, repeated a different number of times); align them first (a label "
        "repeats, which reindex cannot align: take the arguments as columns of one DataFrame): "
        "they are matched by label, not by position")
    with pytest.raises(ValueError, match="duplicate labels"):
        twice.set_axis(["a", "b", "b"]).reindex(twice.index)
    with pytest.raises(ArgumentError) as err:
        model.p_alive(pd.Series([True, pd.NA], dtype="boolean", index=["a", "b"]), 0.0, 5.0)
    assert str(err.value) == ("BetaGeoModel.p_alive: argument 'x': expected a whole number >= 0; got nan "
                              "at position 2 (label 'b') (1 of 2 values)")
