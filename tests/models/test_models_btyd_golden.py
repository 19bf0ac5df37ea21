"""Golden tests: published estimates on CDNOW and the donations panel (see the data README)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segflow.models import (
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    GammaGammaModel,
    ParetoNBDModel,
    compress,
)

# Fader, Hardie & Lee (2005), Marketing Science 24(2)
BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
BGNBD_LL = -9582.4
# as reported in the same paper
PNBD = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
PNBD_LL = -9595.0
PNBD_TOL = {"r": 5e-4, "alpha": 5e-3, "s": 5e-4, "beta": 0.02}
# Fader & Hardie (2013); Fader, Hardie & Lee (2005), JMR 42(4)
GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}
# Fader, Hardie & Shang (2010), Marketing Science 29(6)
BGBB = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
BGBB_TOL = {"alpha": 5e-4, "beta": 5e-4, "gamma": 5e-4, "delta": 5e-3}


@pytest.fixture(scope="module")
def triples(cdnow_summary: pd.DataFrame) -> pd.DataFrame:
    return compress(cdnow_summary)


def test_cdnow_summary_counts(cdnow_summary: pd.DataFrame) -> None:
    s = cdnow_summary
    assert len(s) == 2357
    assert int((s.x > 0).sum()) == 946
    assert s.x.sum() == 2457  # repeat transactions in weeks 1-39 (FHL 2005, Fig. 1 total)
    assert s.monetary_value.mean() == pytest.approx(35.08, abs=0.005)
    assert s.monetary_value.max() == pytest.approx(299.63, abs=0.005)
    assert set(s.duration_holdout) == {39.0}
    # T of the earliest cohort: 1997-01-01 .. 1997-09-30 = 272 days
    assert s["T"].max() == pytest.approx(272 / 7)


def test_bgnbd_golden(triples: pd.DataFrame) -> None:
    model = BetaGeoModel().fit(triples)
    for name, value in BGNBD.items():
        assert model.params_[name] == pytest.approx(value, abs=5e-4), name
    assert model.log_likelihood_ == pytest.approx(BGNBD_LL, abs=0.05)
    assert model.converged_
    assert model.n_customers_ == 2357


def test_bgnbd_loglik_at_published(triples: pd.DataFrame) -> None:
    assert BetaGeoModel().log_likelihood(triples, BGNBD) == pytest.approx(BGNBD_LL, abs=0.05)


def test_pnbd_golden(triples: pd.DataFrame) -> None:
    model = ParetoNBDModel().fit(triples)
    for name, value in PNBD.items():
        assert model.params_[name] == pytest.approx(value, abs=PNBD_TOL[name]), name
    assert model.log_likelihood_ == pytest.approx(PNBD_LL, abs=0.05)
    assert model.converged_


def test_pnbd_loglik_at_published(triples: pd.DataFrame) -> None:
    assert ParetoNBDModel().log_likelihood(triples, PNBD) == pytest.approx(PNBD_LL, abs=0.05)


def test_gamma_gamma_golden(cdnow_summary: pd.DataFrame) -> None:
    model = GammaGammaModel().fit(cdnow_summary[["x", "monetary_value"]])
    for name, value in GAMMA_GAMMA.items():
        assert round(model.params_[name], 2) == pytest.approx(value, abs=1e-9), name
    assert model.n_customers_ == 946
    assert model.n_excluded_ == 2357 - 946
    assert model.mean_spend_ == pytest.approx(35.08, abs=0.005)
    # the independence check, against numpy's Pearson correlation on the repeat buyers
    rep = cdnow_summary[cdnow_summary.x > 0]
    expected = np.corrcoef(rep.x, rep.monetary_value)[0, 1]
    assert model.frequency_spend_correlation_ == pytest.approx(expected, abs=1e-12)


def test_bgbb_golden(cdnow_dir) -> None:
    panel = pd.read_csv(cdnow_dir / "donations_bgbb.csv")
    assert panel.weights.sum() == 11104
    model = BetaGeoBetaBinomModel().fit(panel)
    for name, value in BGBB.items():
        assert model.params_[name] == pytest.approx(value, abs=BGBB_TOL[name]), name
    assert model.n_customers_ == 11104
    assert model.converged_
    # optimizer-free: the LL at the published values is within rounding of the optimum
    at_published = model.log_likelihood(panel, BGBB)
    assert at_published <= model.log_likelihood_ + 1e-9
    assert at_published == pytest.approx(model.log_likelihood_, abs=0.01)
