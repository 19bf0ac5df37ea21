"""Per-customer, per-snapshot features as Ibis expressions.

:func:`customer_features` computes every feature of the registry :data:`FEATURES` (name ->
unit and one-line definition) and one column per survey question (:func:`survey_registry`)
from the canonical tables, using only rows before the snapshot date. The purchase definition
every module shares is in :func:`is_purchase_line` and its siblings. See
``docs/features.md``.
"""

from segflow.features._core import REQUIRED_TABLES, customer_features, feature_registry
from segflow.features._purchase_def import (
    is_purchase_line,
    is_return_line,
    is_spend_line,
    purchase_lines,
)
from segflow.features._registry import FEATURE_GROUPS, FEATURES, Feature
from segflow.features._snapshots import snapshot_features
from segflow.features._survey import question_column, survey_registry
from segflow.features._window import EXACT_MONEY, exact_decimal, money_sum, score_sum

__all__ = [
    "EXACT_MONEY",
    "FEATURES",
    "FEATURE_GROUPS",
    "REQUIRED_TABLES",
    "Feature",
    "customer_features",
    "exact_decimal",
    "feature_registry",
    "is_purchase_line",
    "is_return_line",
    "is_spend_line",
    "money_sum",
    "purchase_lines",
    "question_column",
    "score_sum",
    "snapshot_features",
    "survey_registry",
]
