"""Segment schemes: RFM scores and named segments, lifecycle buckets, value tiers, the rule
language, nested schemes, and (from the clustering modules) cluster schemes and profiles.

:func:`assign` turns a scheme and a features table into one segment per customer;
:func:`builtin_schemes` lists the schemes used when a project names none. See
``docs/segments.md``.
"""

from segflow.segments._assign import (
    NEST_SEPARATOR,
    assign,
    builtin_schemes,
    rfm_scores_for,
    segment_names,
)
from segflow.segments._buckets import (
    BROWSE_BUCKETS,
    BROWSE_DEFAULT,
    LIFECYCLE_BUCKETS,
    LIFECYCLE_DEFAULT,
    LIFECYCLE_ORDER,
    Bucket,
    lifecycle_buckets,
    tier_names,
    value_tier_expr,
    value_tier_thresholds,
)
from segflow.segments._builtin_extra import (
    category_breadth_scheme,
    product_breadth_scheme,
    psychographic_example_scheme,
)
from segflow.segments._checks import SchemeCheckWarning, check_scheme, rule_coverage
from segflow.segments._cluster import (
    GaussianMixtureSegmenter,
    KMeansSegmenter,
    KPrototypesSegmenter,
    choose_k,
    quality_table,
)
from segflow.segments._cluster_model import ClusterModel
from segflow.segments._cluster_scheme import assign_cluster_scheme, fit_cluster_table
from segflow.segments._frozen import freeze_cutoffs, score_basis, with_project_defaults
from segflow.segments._naming import suggest_name, suggest_names
from segflow.segments._profile import SegmentProfile, profile_segments
from segflow.segments._rfm import (
    NO_PURCHASE,
    RFM_SEGMENT_ORDER,
    RFM_SEGMENTS,
    RfmSegment,
    grid_score,
    rfm_cut_points,
    rfm_scores,
    rfm_segment_expr,
)
from segflow.segments._rules import RuleSyntaxError, compile_condition, compile_rules
from segflow.segments._sizes import SegmentSizes, segment_sizes
from segflow.segments._stability import (
    SmallSegmentWarning,
    Stability,
    UnstableSegmentWarning,
    bootstrap_stability,
)

__all__ = [
    "BROWSE_BUCKETS",
    "BROWSE_DEFAULT",
    "LIFECYCLE_BUCKETS",
    "LIFECYCLE_DEFAULT",
    "LIFECYCLE_ORDER",
    "NEST_SEPARATOR",
    "NO_PURCHASE",
    "RFM_SEGMENTS",
    "RFM_SEGMENT_ORDER",
    "Bucket",
    "ClusterModel",
    "GaussianMixtureSegmenter",
    "KMeansSegmenter",
    "KPrototypesSegmenter",
    "RfmSegment",
    "RuleSyntaxError",
    "SchemeCheckWarning",
    "SegmentProfile",
    "SegmentSizes",
    "SmallSegmentWarning",
    "Stability",
    "UnstableSegmentWarning",
    "assign",
    "assign_cluster_scheme",
    "bootstrap_stability",
    "check_scheme",
    "freeze_cutoffs",
    "grid_score",
    "lifecycle_buckets",
    "rfm_cut_points",
    "rfm_scores_for",
    "rule_coverage",
    "score_basis",
    "segment_names",
    "value_tier_thresholds",
    "with_project_defaults",
    "category_breadth_scheme",
    "builtin_schemes",
    "choose_k",
    "compile_condition",
    "compile_rules",
    "fit_cluster_table",
    "product_breadth_scheme",
    "profile_segments",
    "psychographic_example_scheme",
    "quality_table",
    "rfm_scores",
    "rfm_segment_expr",
    "segment_sizes",
    "suggest_name",
    "suggest_names",
    "tier_names",
    "value_tier_expr",
]
