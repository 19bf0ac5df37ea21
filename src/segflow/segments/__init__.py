"""Segment schemes: RFM scores and named segments, lifecycle buckets, value tiers, the rule
language, nested schemes, and (from the clustering modules) cluster schemes and profiles.

:func:`assign` turns a scheme and a features table into one segment per customer;
:func:`builtin_schemes` lists the schemes used when a project names none. See
``docs/segments.md``.

Names are imported lazily on first use (PEP 562), so ``import segflow.segments`` stays light:
the clustering modules load scikit-learn only when a clustering name is used.
"""

from __future__ import annotations

from segflow._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "BROWSE_BUCKETS": "_buckets",
    "BROWSE_DEFAULT": "_buckets",
    "LIFECYCLE_BUCKETS": "_buckets",
    "LIFECYCLE_DEFAULT": "_buckets",
    "LIFECYCLE_ORDER": "_buckets",
    "NEST_SEPARATOR": "_assign",
    "NO_PURCHASE": "_rfm",
    "RFM_SEGMENTS": "_rfm",
    "RFM_SEGMENT_ORDER": "_rfm",
    "Bucket": "_buckets",
    "ClusterModel": "_cluster_model",
    "GaussianMixtureSegmenter": "_cluster",
    "KMeansSegmenter": "_cluster",
    "KPrototypesSegmenter": "_cluster",
    "RfmSegment": "_rfm",
    "RuleSyntaxError": "_rules",
    "SchemeCheckWarning": "_checks",
    "SegmentProfile": "_profile",
    "SegmentSizes": "_sizes",
    "SmallSegmentWarning": "_stability",
    "Stability": "_stability",
    "UnstableSegmentWarning": "_stability",
    "assign": "_assign",
    "assign_cluster_scheme": "_cluster_scheme",
    "bootstrap_stability": "_stability",
    "check_scheme": "_checks",
    "freeze_cutoffs": "_frozen",
    "grid_score": "_rfm",
    "lifecycle_buckets": "_buckets",
    "rfm_cut_points": "_rfm",
    "reference_notes": "_frozen",
    "rfm_scores_for": "_assign",
    "rule_coverage": "_checks",
    "score_basis": "_frozen",
    "segment_names": "_assign",
    "value_tier_thresholds": "_buckets",
    "with_project_defaults": "_frozen",
    "category_breadth_scheme": "_builtin_extra",
    "builtin_schemes": "_assign",
    "choose_k": "_cluster_quality",
    "compile_condition": "_rules",
    "compile_rules": "_rules",
    "fit_cluster_table": "_cluster_scheme",
    "product_breadth_scheme": "_builtin_extra",
    "profile_segments": "_profile",
    "psychographic_example_scheme": "_builtin_extra",
    "quality_table": "_cluster_quality",
    "rfm_scores": "_rfm",
    "rfm_segment_expr": "_rfm",
    "segment_sizes": "_sizes",
    "suggest_name": "_naming",
    "suggest_names": "_naming",
    "tier_names": "_buckets",
    "value_tier_expr": "_buckets",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
