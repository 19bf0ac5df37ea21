"""Settings of segment schemes: RFM, lifecycle, rules, value tiers, clusters."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SchemeKind = Literal["rfm", "lifecycle", "rules", "value_tiers", "browse_no_buy", "cluster"]


class RuleSettings(BaseModel):
    """One rule of a rule scheme: the first rule whose condition holds names the segment."""

    model_config = ConfigDict(extra="forbid")

    segment: str = Field(description="Segment name given to customers matching the rule.")
    when: str = Field(description="Condition in the rule language, e.g. \"monetary_12m >= 500\".")


class SchemeSettings(BaseModel):
    """One ``[[schemes]]`` entry of ``segflow.toml``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Name of the scheme; assignments are stored under it.")
    kind: SchemeKind = Field(description="Kind of scheme.")
    version: str = Field(default="1", description="Version; bump it when the definition changes.")
    rules: list[RuleSettings] = Field(
        default_factory=list, description="Ordered rules (kind = 'rules'); first match wins."
    )
    default: str = Field(default="Other", description="Segment of customers no rule matches.")
    features: list[str] = Field(
        default_factory=list, description="Features used by a cluster scheme."
    )
    k: int | Literal["auto"] = Field(default="auto", description="Number of clusters, or 'auto'.")
    within: str | None = Field(
        default=None, description="Nest this scheme inside the segments of another scheme."
    )
    names: dict[str, str] = Field(
        default_factory=dict, description="Overrides of suggested segment names (cluster schemes)."
    )
    ordered: bool = Field(
        default=False,
        description=(
            "Rule schemes: rank segments in rule order (1 = first rule, the default segment "
            "last); otherwise segment_rank is empty."
        ),
    )
    tiers: list[float] = Field(
        default_factory=lambda: [1.0, 5.0, 10.0, 25.0, 50.0],
        description="Value tiers: cut-offs in percent of spending customers, ascending.",
    )
    value_feature: str = Field(
        default="monetary_12m", description="Value tiers: the feature customers are ranked by."
    )

    @field_validator("tiers")
    @classmethod
    def _tiers_ascending(cls, value: list[float]) -> list[float]:
        if not value or any(not 0 < q < 100 for q in value) or value != sorted(set(value)):
            raise ValueError("tiers must be ascending, distinct percentages between 0 and 100")
        return value
