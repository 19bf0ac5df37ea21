"""Predictive models: BTYD customer-base models, the spend model, churn and next-segment.

BTYD ("buy till you die") models are fitted on the compressed summary of the transaction log
(distinct ``(x, t_x, T)`` triples with counts, built in the engine by :func:`btyd_summary` and
:func:`compress`); predictions are computed per triple and joined back in the engine
(:func:`score_customers`).
"""

from segflow.models._bgbb import BetaGeoBetaBinomModel
from segflow.models._bgnbd import BetaGeoModel, ModifiedBetaGeoModel
from segflow.models._churn import ChurnEvaluation, ChurnModel, evaluate_churn
from segflow.models._gammagamma import GammaGammaModel
from segflow.models._next_segment import NextSegmentModel, evaluate_next_segment
from segflow.models._pnbd import ParetoNBDModel
from segflow.models._scoring import (
    MODEL_NAMES,
    SCORE_COLUMNS,
    discounted_purchases,
    predict_triples,
    score_customers,
    write_scores,
)
from segflow.models._summary import (
    TIME_UNITS,
    btyd_summary,
    compress,
    discrete_summary,
    purchase_days,
)
from segflow.models._validation import (
    Backtest,
    HoldoutValidation,
    backtest,
    tracking_curves,
    validate_holdout,
)

__all__ = [
    "MODEL_NAMES",
    "SCORE_COLUMNS",
    "TIME_UNITS",
    "Backtest",
    "HoldoutValidation",
    "BetaGeoBetaBinomModel",
    "BetaGeoModel",
    "ChurnEvaluation",
    "ChurnModel",
    "GammaGammaModel",
    "ModifiedBetaGeoModel",
    "NextSegmentModel",
    "ParetoNBDModel",
    "backtest",
    "btyd_summary",
    "compress",
    "discounted_purchases",
    "discrete_summary",
    "evaluate_churn",
    "evaluate_next_segment",
    "predict_triples",
    "purchase_days",
    "score_customers",
    "tracking_curves",
    "validate_holdout",
    "write_scores",
]
