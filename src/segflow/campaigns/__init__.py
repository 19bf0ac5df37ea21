"""Campaign effectiveness and targeting by segment: experiment read-outs, uplift, migration
lift, audiences and promotion sensitivity.
Names are imported lazily on first use (PEP 562): the uplift models load scikit-learn and
the read-outs SciPy only when they are used.
"""

from __future__ import annotations

from segflow._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "ACTIONS": "_playbook",
    "Audience": "_targeting",
    "CampaignReport": "_report",
    "ClassTransformationUplift": "_uplift",
    "EFFECT_COLUMNS": "_effect",
    "EffectReport": "_effect",
    "MigrationLift": "_migration",
    "Playbook": "_playbook",
    "PromotionSensitivity": "_promotions",
    "TwoModelUplift": "_uplift",
    "UpliftResult": "_uplift",
    "build_audience": "_targeting",
    "campaign_cohort": "_store",
    "campaign_effect": "_effect",
    "campaign_report": "_report",
    "campaign_reports": "_report",
    "campaigns_summary": "_store",
    "column_name": "_targeting",
    "customer_view": "_targeting",
    "known_segments": "_targeting",
    "export_table": "_targeting",
    "exposure_responses": "_store",
    "fit_uplift": "_uplift",
    "load_playbook": "_playbook",
    "migration_lift": "_migration",
    "neutralise_formulas": "_targeting",
    "promotion_response": "_promotions",
    "promotion_sensitivity": "_promotions",
    "qini_curve": "_uplift",
    "qini_scores": "_uplift",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
