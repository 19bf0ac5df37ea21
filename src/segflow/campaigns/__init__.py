"""Campaign effectiveness and targeting by segment: experiment read-outs, uplift, migration
lift, audiences and promotion sensitivity."""

from segflow.campaigns._effect import EFFECT_COLUMNS, EffectReport, campaign_effect

__all__ = ["EFFECT_COLUMNS", "EffectReport", "campaign_effect"]
