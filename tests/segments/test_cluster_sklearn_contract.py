"""The scikit-learn estimator contract, from scikit-learn's own checks.

The full ``check_estimator`` suite also demands things we refuse by design: mixed-type (object)
columns are categorical features here, not an error; missing values are imputed, not refused;
segment numbers start at 1; bad input raises segflow's ``InputError`` (one line in the CLI),
not ``ValueError``. The checks below are the contract itself: parameters, cloning, fit
returning self, no data kept in ``__init__``, idempotent and picklable fits.
"""

from __future__ import annotations

import warnings

import pytest
from sklearn.utils import estimator_checks as ec

from segflow.segments._cluster import (
    GaussianMixtureSegmenter,
    KMeansSegmenter,
    KPrototypesSegmenter,
)

CHECKS = [
    ec.check_no_attributes_set_in_init,
    ec.check_parameters_default_constructible,
    ec.check_get_params_invariance,
    ec.check_set_params,
    ec.check_estimators_overwrite_params,
    ec.check_dont_overwrite_parameters,
    ec.check_fit_idempotent,
    ec.check_estimators_pickle,
    ec.check_estimators_fit_returns_self,
    ec.check_fit_score_takes_y,
    ec.check_fit_check_is_fitted,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("cls", [KMeansSegmenter, GaussianMixtureSegmenter, KPrototypesSegmenter])
def test_sklearn_contract(cls, check):
    estimator = cls(k=3, n_bootstrap=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(cls.__name__, estimator)
