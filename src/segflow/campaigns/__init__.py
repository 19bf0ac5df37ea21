"""Campaign effectiveness and targeting by segment: experiment read-outs, uplift, migration
lift, audiences and promotion sensitivity."""

from segflow.campaigns._effect import EFFECT_COLUMNS, EffectReport, campaign_effect
from segflow.campaigns._migration import MigrationLift, migration_lift
from segflow.campaigns._playbook import ACTIONS, Playbook, load_playbook
from segflow.campaigns._promotions import (
    PromotionSensitivity,
    promotion_response,
    promotion_sensitivity,
)
from segflow.campaigns._report import CampaignReport, campaign_report, campaign_reports
from segflow.campaigns._store import campaign_cohort, campaigns_summary, exposure_responses
from segflow.campaigns._targeting import (
    Audience,
    build_audience,
    column_name,
    customer_view,
    export_table,
    neutralise_formulas,
)
from segflow.campaigns._uplift import (
    ClassTransformationUplift,
    TwoModelUplift,
    UpliftResult,
    fit_uplift,
    qini_curve,
    qini_scores,
)

__all__ = [
    "ACTIONS",
    "Audience",
    "CampaignReport",
    "ClassTransformationUplift",
    "EFFECT_COLUMNS",
    "EffectReport",
    "MigrationLift",
    "Playbook",
    "PromotionSensitivity",
    "TwoModelUplift",
    "UpliftResult",
    "build_audience",
    "campaign_cohort",
    "campaign_effect",
    "campaign_report",
    "campaign_reports",
    "campaigns_summary",
    "column_name",
    "customer_view",
    "export_table",
    "exposure_responses",
    "fit_uplift",
    "load_playbook",
    "migration_lift",
    "neutralise_formulas",
    "promotion_response",
    "promotion_sensitivity",
    "qini_curve",
    "qini_scores",
]
