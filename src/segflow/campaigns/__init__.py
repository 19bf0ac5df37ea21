"""Campaign effectiveness and targeting by segment: experiment read-outs, uplift, migration
lift, audiences and promotion sensitivity."""

from segflow.campaigns._effect import EFFECT_COLUMNS, EffectReport, campaign_effect
from segflow.campaigns._migration import MigrationLift, migration_lift
from segflow.campaigns._report import CampaignReport, campaign_report
from segflow.campaigns._store import campaign_cohort, exposure_responses

__all__ = [
    "EFFECT_COLUMNS",
    "CampaignReport",
    "EffectReport",
    "MigrationLift",
    "campaign_cohort",
    "campaign_effect",
    "campaign_report",
    "exposure_responses",
    "migration_lift",
]
