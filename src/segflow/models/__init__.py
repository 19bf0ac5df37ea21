"""Predictive models: BTYD customer-base models, the spend model, churn and next-segment.

BTYD ("buy till you die") models are fitted on the compressed summary of the transaction log
(distinct ``(x, t_x, T)`` triples with counts, built in the engine by :func:`btyd_summary` and
:func:`compress`); predictions are computed per triple and joined back in the engine
(:func:`score_customers`).

Names are imported lazily on first use (PEP 562), so ``import segflow.models`` stays light:
the churn classifier's scikit-learn ensemble modules load only when a churn name is used.
"""

from __future__ import annotations

from segflow._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "BetaGeoBetaBinomModel": "_bgbb",
    "BetaGeoModel": "_bgnbd",
    "ModifiedBetaGeoModel": "_bgnbd",
    "ParetoNBDModel": "_pnbd",
    "GammaGammaModel": "_gammagamma",
    "ConstantSpendModel": "_gammagamma",
    "DegenerateSpendError": "_gammagamma",
    "fit_spend_model": "_gammagamma",
    "bootstrap_intervals": "_btyd_base",
    "MODEL_NAMES": "_scoring",
    "SCORE_COLUMNS": "_scoring",
    "discounted_purchases": "_scoring",
    "predict_triples": "_scoring",
    "score_customers": "_scoring",
    "write_scores": "_scoring",
    "TIME_UNITS": "_summary",
    "btyd_summary": "_summary",
    "compress": "_summary",
    "discrete_summary": "_summary",
    "purchase_days": "_summary",
    "Backtest": "_validation",
    "HoldoutValidation": "_validation",
    "backtest": "_validation",
    "tracking_curves": "_validation",
    "validate_holdout": "_validation",
    "ChurnEvaluation": "_churn",
    "ChurnModel": "_churn",
    "evaluate_churn": "_churn",
    "NextSegmentModel": "_next_segment",
    "evaluate_next_segment": "_next_segment",
    "train_churn": "_churn_train",
    "score_churn": "_churn_train",
    "write_churn_scores": "_churn_train",
    "save_churn_model": "_churn_train",
    "load_churn_model": "_churn_train",
    "ChurnTraining": "_churn_train",
    "ChurnScores": "_churn_train",
    "churn_model_name": "_churn_train",
    "RISK_BANDS": "_churn",
    "band_labels": "_churn",
    "churn_labels": "_churn_data",
    "churn_training_set": "_churn_data",
    "eligible_customers": "_churn_data",
    "next_segment_labels": "_churn_data",
    "next_segment_training_set": "_churn_data",
    "train_next_segment": "_churn_next",
    "score_next_segment": "_churn_next",
    "write_next_segment_scores": "_churn_next",
    "NextSegmentTraining": "_churn_next",
    "NextSegmentScores": "_churn_next",
    "NextSegmentEvaluation": "_next_segment",
    "markov_matrix": "_next_segment",
    "model_document": "_saved",
    "save_model_params": "_saved",
    "load_model_params": "_saved",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
