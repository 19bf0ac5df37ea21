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
    "PromotionSensitivity",
    "promotion_response",
    "promotion_sensitivity",
    "ClassTransformationUplift",
    "TwoModelUplift",
    "UpliftResult",
    "fit_uplift",
    "qini_curve",
    "qini_scores",
    "ACTIONS",
    "Audience",
    "Playbook",
    "build_audience",
    "column_name",
    "customer_view",
    "export_table",
    "load_playbook",
    "neutralise_formulas",
    "EFFECT_COLUMNS",
    "CampaignReport",
    "EffectReport",
    "MigrationLift",
    "campaign_cohort",
    "campaigns_summary",
    "campaign_effect",
    "campaign_report",
    "campaign_reports",
    "exposure_responses",
    "migration_lift",
]
