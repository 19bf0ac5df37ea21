"""Settings of segment schemes: RFM, lifecycle, rules, value tiers, clusters."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Endings of a scheme name that the server's paths could not tell apart from a sub-page of
#: another scheme (``/migration/{scheme}/customers``, ``/api/v1/migration/{scheme}/value``).
RESERVED_SCHEME_ENDINGS = ("/customers", "/value")


def check_scheme_name(name: str) -> str:
    """``name`` if it can name a scheme, else a ValueError saying why.

    Any text is a scheme name (spaces, ``/ # ? % & < >``, quotes, any script, any length:
    the pages percent-encode it in links and escape it in text) except an empty or blank
    one, one holding a control character (line breaks, tabs: invisible on a page and cut in
    a header), ``.`` and ``..`` (browsers and HTTP clients remove such path segments) and one
    ending in ``/customers`` or ``/value`` (the paths of a scheme's sub-pages)."""
    if not name.strip():
        raise ValueError("scheme name is empty")
    controls = sorted({f"U+{ord(ch):04X}" for ch in name if unicodedata.category(ch) == "Cc"})
    if controls:
        raise ValueError(f"scheme name {name!r} holds control characters ({', '.join(controls)})")
    if name in (".", ".."):
        raise ValueError(f"scheme name {name!r} is a path step that browsers remove from links")
    for ending in RESERVED_SCHEME_ENDINGS:
        if name.endswith(ending):
            raise ValueError(f"scheme name {name!r} ends with {ending!r}, the path of a sub-page of "
                             f"scheme {name[: -len(ending)]!r} in the server; rename it")
    return name


def column_name(*parts: str) -> str:
    """A safe column name from a scheme or a (model, score) pair: ``churn_90d__probability``
    (runs of characters other than letters, digits and ``_`` as one ``_``, lower case): the
    columns of an audience (``segflow.campaigns.customer_view``)."""
    return "__".join(re.sub(r"\W+", "_", p).strip("_").lower() for p in parts)


SchemeKind = Literal["rfm", "lifecycle", "rules", "value_tiers", "browse_no_buy", "cluster"]


class RuleSettings(BaseModel):
    """One rule of a rule scheme: the first rule whose condition holds names the segment."""

    model_config = ConfigDict(extra="forbid")

    segment: str = Field(description="Segment name given to customers matching the rule.")
    when: str = Field(description="Condition in the rule language, e.g. \"monetary_12m >= 500\".")


class SchemeSettings(BaseModel):
    """One ``[[schemes]]`` entry of ``segflow.toml``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description=(
        "Name of the scheme; assignments are stored under it. Any text (spaces, / # ? % &, "
        "quotes, any script, any length) except blank, '.' or '..', control characters, a name "
        "ending in '/customers' or '/value' (server paths), and two schemes of one name or of "
        "one audience column (the name lower-cased, other characters than letters and digits "
        "as '_': 'a/b' and 'A b' are both a_b)."))
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

    bins: int | None = Field(
        default=None,
        description=(
            "RFM scores (kind 'rfm' and rules naming r/f/m/fm_score): number of score bins; "
            "empty = [rfm] bins of the project (5)."
        ),
    )
    score_method: Literal["quantile", "ntile"] = Field(
        default="quantile",
        description=(
            "Quantile scores (RFM, value tiers): 'quantile' = cut points from value quantiles, "
            "equal values get equal scores; 'ntile' = equal-count bins with ties split by "
            "customer_id (the old rule)."
        ),
    )
    cutoffs: Literal["per_snapshot", "reference", "fixed"] = Field(
        default="per_snapshot",
        description=(
            "Quantile scores: 'per_snapshot' = cut points recomputed at every snapshot "
            "(relative to the base); 'reference' = cut points of reference_snapshot used at "
            "every snapshot; 'fixed' = the values in cut_points."
        ),
    )
    reference_snapshot: dt.date | None = Field(
        default=None, description="cutoffs = 'reference': the snapshot whose cut points are kept."
    )
    cut_points: dict[str, list[float]] = Field(
        default_factory=dict,
        description=(
            "cutoffs = 'fixed': RFM: recency_days, frequency, monetary (bins - 1 values each); "
            "value tiers: value (one threshold per tier, in the feature's unit)."
        ),
    )
    active_days: int = Field(
        default=365, description="Lifecycle: days without a purchase after which a buyer is inactive."
    )
    loyal_orders_12m: int = Field(
        default=2, description="Lifecycle: orders in the last 365 days that make a loyalist."
    )
    decline_ratio: float = Field(
        default=0.5,
        description=(
            "Lifecycle: under-performer when orders or net spend of the last 365 days are at "
            "most this share of the 365 days before."
        ),
    )
    min_prior_orders: int = Field(
        default=2,
        description="Lifecycle: orders needed in the 365 days before the last 365 to judge a decline.",
    )
    seasonal: bool = Field(
        default=True, description="Lifecycle: keep the seasonal bucket (same_season_flag)."
    )
    min_segment_share: float = Field(
        default=0.01,
        description=(
            "Warn at run/segment when a segment holds less than this share of the base "
            "(0 = never); rule schemes also report rules that match nobody."
        ),
    )

    @field_validator("name")
    @classmethod
    def _name_fits_a_link(cls, value: str) -> str:
        return check_scheme_name(value)

    @model_validator(mode="after")
    def _check_scores(self) -> SchemeSettings:
        if self.bins is not None and self.bins < 2:
            raise ValueError(f"bins must be at least 2, got {self.bins}")
        if self.cutoffs != "per_snapshot" and self.kind not in ("rfm", "value_tiers", "rules"):
            raise ValueError(f"cutoffs = {self.cutoffs!r} applies to kinds rfm, value_tiers and "
                             f"rules, not {self.kind!r}")
        if self.cutoffs == "reference" and self.reference_snapshot is None:
            raise ValueError("cutoffs = 'reference' needs reference_snapshot = YYYY-MM-DD")
        if self.cutoffs == "fixed" and not self.cut_points:
            raise ValueError("cutoffs = 'fixed' needs cut_points")
        if not 0 < self.decline_ratio < 1:
            raise ValueError(f"decline_ratio must be between 0 and 1, got {self.decline_ratio}")
        if not 0 <= self.min_segment_share < 1:
            raise ValueError(f"min_segment_share must be in [0, 1), got {self.min_segment_share}")
        return self

    @field_validator("tiers")
    @classmethod
    def _tiers_ascending(cls, value: list[float]) -> list[float]:
        if not value or any(not 0 < q < 100 for q in value) or value != sorted(set(value)):
            raise ValueError("tiers must be ascending, distinct percentages between 0 and 100")
        return value
