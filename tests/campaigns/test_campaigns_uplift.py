"""Uplift models and the Qini curve: a planted-uplift fixture is ranked far better than at
random on held-out customers; the Qini curve matches a pandas computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from segflow.campaigns import (
    ClassTransformationUplift,
    TwoModelUplift,
    fit_uplift,
    qini_curve,
    qini_scores,
)
from segflow.errors import InputError


def _planted(n: int = 12000, seed: int = 0, treated_share: float = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    region = rng.choice(["north", "south", "east"], n)
    t = rng.random(n) < treated_share
    # uplift +0.25 for x1 > 0 in the south, +0.10 for x1 > 0 elsewhere, 0 otherwise;
    # baseline depends on x2 (a predictor of response that carries no uplift)
    tau = np.where(x1 > 0, np.where(region == "south", 0.25, 0.10), 0.0)
    p = 0.10 + 0.05 * (x2 > 0) + t * tau
    y = (rng.random(n) < p).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "region": region, "arm": np.where(t, "mail", "none"),
                         "y": y, "tau": tau})


def _qini_pandas(y, t, s):
    """Qini at every distinct score, written with pandas groupby (the independent path)."""
    f = pd.DataFrame({"y": y, "t": t.astype(int), "s": s})
    g = f.groupby("s", sort=True).agg(nt=("t", "sum"), n=("t", "size"),
                                        rt=("y", lambda v: v[f.loc[v.index, "t"] == 1].sum()),
                                        rc=("y", lambda v: v[f.loc[v.index, "t"] == 0].sum()))
    g = g.iloc[::-1].cumsum()
    nc = g.n - g.nt
    return np.where(nc > 0, g.rt - g.rc * g.nt / nc.replace(0, np.nan), g.rt)


def test_qini_curve_matches_pandas_and_handles_ties():
    rng = np.random.default_rng(1)
    n = 500
    y, t = rng.integers(0, 2, n), rng.random(n) < 0.4
    s = np.round(rng.normal(size=n), 1)  # many ties
    curve = qini_curve(y, t, s)
    np.testing.assert_allclose(curve.qini.to_numpy()[1:], _qini_pandas(y, t, s), rtol=1e-12)
    assert curve.k.iloc[-1] == n and curve.fraction.iloc[-1] == 1.0
    overall = y[t].mean() - y[~t].mean()
    assert curve.qini.iloc[-1] == pytest.approx(y[t].sum() - y[~t].sum() * t.sum() / (~t).sum())
    assert qini_scores(curve)["overall_lift"] == pytest.approx(overall)
    # constant scores: one group, the curve is the random line, coefficient 0
    flat = qini_scores(qini_curve(y, t, np.zeros(n)))
    assert flat["qini_coefficient"] == pytest.approx(0.0, abs=1e-12)


def test_qini_coefficient_and_auuc_equal_areas_worked_by_hand():
    """Six customers, one tie: the curve's points and both areas worked out by hand.

    Groups by score (highest first) give (N_t, N_c, R_t, R_c) = (1,0,1,0), (2,1,2,0), (3,1,2,0),
    (3,2,2,1), (3,3,2,1) at k = 1, 3, 4, 5, 6: Qini 1, 2, 2, 1/2, 1 (R_t while N_c = 0) and
    uplift curve 1, 3, 8/3, 5/6, 2. Trapezoids over k/6: Qini area 30/24, random line 1/2,
    so the coefficient is (5/4 - 1/2) / 6 = 1/8; uplift-curve area 126/72, so AUUC = 7/24.
    """
    s = np.array([0.9, 0.5, 0.5, 0.2, 0.1, 0.0])
    t = np.array([True, False, True, True, False, False])
    y = np.array([1, 0, 1, 0, 1, 0])
    curve = qini_curve(y, t, s)
    np.testing.assert_allclose(curve.k, [0, 1, 3, 4, 5, 6])
    np.testing.assert_allclose(curve.qini, [0, 1, 2, 2, 0.5, 1])
    np.testing.assert_allclose(curve.uplift_curve, [0, 1, 3, 8 / 3, 5 / 6, 2])
    scores = qini_scores(curve)
    assert scores["qini_coefficient"] == pytest.approx(1 / 8, rel=1e-12)
    assert scores["auuc"] == pytest.approx(7 / 24, rel=1e-12)
    assert scores["auuc_random"] == pytest.approx(1 / 6, rel=1e-12)
    assert scores["overall_lift"] == pytest.approx(1 / 3, rel=1e-12)


@pytest.mark.parametrize("method", ["two_model", "class_transformation"])
def test_planted_uplift_beats_random_on_holdout(method):
    df = _planted(treated_share=0.7 if method == "class_transformation" else 0.5)
    res = fit_uplift(df, arm_col="arm", control="none", outcome="y",
                     features=["x1", "x2", "region"], method=method, random_state=0)
    s = res.scores
    # oracle ranking by the true uplift on the same held-out customers: the ceiling
    oracle = qini_scores(qini_curve(df.y, df.arm == "mail", df.tau))["qini_coefficient"]
    shuffled = qini_scores(qini_curve(df.y, df.arm == "mail",
                                      np.random.default_rng(2).random(len(df))))["qini_coefficient"]
    assert s["qini_coefficient"] > 0.4 * oracle > 0
    assert abs(shuffled) < 0.25 * oracle
    assert s["auuc"] > s["auuc_random"]
    # the top decile's observed lift is well above the bottom decile's
    d = res.deciles
    assert d.observed_lift.iloc[0] > d.observed_lift.iloc[-1] + 0.08
    assert len(res.figure().data) == 2
    # predictions follow the planted structure
    probe = pd.DataFrame({"x1": [1.0, 1.0, -1.0], "x2": [0.0, 0.0, 0.0],
                          "region": ["south", "north", "south"]})
    u = res.model.predict(probe)
    assert u[0] > u[1] > u[2] - 0.02 and abs(u[2]) < 0.06


def test_estimator_contract():
    df = _planted(3000)
    X, y, t = df[["x1", "x2"]], df.y, df.arm == "mail"
    m = TwoModelUplift(LogisticRegression(), random_state=3)
    assert clone(m).get_params()["random_state"] == 3 and m.estimator is not None
    with pytest.raises(Exception, match="not fitted"):
        m.predict(X)
    assert m.fit(X, y, t) is m
    check_is_fitted(m)
    # logistic T-learner uplift is the difference of the two fitted probabilities
    p1 = LogisticRegression().fit(X[t], y[t]).predict_proba(X)[:, 1]
    p0 = LogisticRegression().fit(X[~t], y[~t]).predict_proba(X)[:, 1]
    np.testing.assert_allclose(m.predict(X), p1 - p0, rtol=1e-10)
    with pytest.raises(InputError, match="0/1 outcome"):
        ClassTransformationUplift().fit(X, df.x2, t)
    with pytest.raises(InputError, match="both treated and control"):
        TwoModelUplift().fit(X, y, np.ones(len(y)))


def test_file_errors_name_the_file_rows_and_column():
    """The models' own checks said "class transformation needs a 0/1 outcome" and "uplift
    needs both treated and control customers", with no file, row or column; fit_uplift now
    names them (rows from 1: the first data row, line 2 of the file)."""
    frame = pd.DataFrame({"arm": ["mail", "none"] * 4, "x": np.arange(8.0),
                          "y": [0, 1, 2, 0, 1, 3, 0, 5]})  # not 0/1 on rows 3, 6 and 8
    with pytest.raises(InputError) as info:
        fit_uplift(frame, arm_col="arm", control="none", outcome="y", features=["x"],
                   method="class_transformation", source="r.csv")
    assert str(info.value) == (
        "file r.csv, rows 3, 6 and 8, column 'y': the class transformation needs a 0/1 outcome, "
        "got 2; use the two-model method (--method two_model) for amounts or counts")
    with pytest.raises(InputError, match=r"^file r.csv, column 'arm': no customer has the "
                                         r"control arm 'ctl'; arms found: 'mail', 'none'$"):
        fit_uplift(frame, arm_col="arm", control="ctl", outcome="y", features=["x"], source="r.csv")
    with pytest.raises(InputError, match=r"^file r.csv, column 'arm': no customer has the "
                                         r"treated arm 'sms'; arms found: 'mail', 'none'$"):
        fit_uplift(frame, arm_col="arm", control="none", outcome="y", features=["x"],
                   treated="sms", source="r.csv")


def test_a_library_error_names_the_file_a_command_runs_it_on():
    """errors.about_file: an InputError raised without a file (the library knows tables)
    names the command's file, keeping its rows and column; one naming a file is kept."""
    from segflow.errors import about_file

    with pytest.raises(InputError) as info, about_file("tx.csv"):
        raise InputError("bad", row=[4, 9], column="amount", rows_in_all=12)
    assert str(info.value) == "file tx.csv, rows 4, 9, ... (12 in all), column 'amount': bad"
    assert (info.value.file, info.value.rows, info.value.column) == ("tx.csv", (4, 9), "amount")
    with pytest.raises(InputError, match="^file other.csv, header: bad$"), about_file("tx.csv"):
        raise InputError("bad", file="other.csv", row=0)
    with pytest.raises(InputError, match="^file tx.csv, header, column 'a': bad$"), about_file("tx.csv"):
        raise InputError("bad", row=0, column="a")
