"""Per-customer, per-snapshot features as Ibis expressions.

:func:`customer_features` computes every feature of the registry :data:`FEATURES` (name ->
unit and one-line definition) from the canonical tables, using only rows before the
snapshot date. See ``docs/features.md``.
"""

from segflow.features._core import REQUIRED_TABLES, customer_features
from segflow.features._registry import FEATURES, SURVEY_QUESTIONS, Feature

__all__ = ["FEATURES", "REQUIRED_TABLES", "SURVEY_QUESTIONS", "Feature", "customer_features"]
