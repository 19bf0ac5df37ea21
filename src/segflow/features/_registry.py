"""The feature registry: every column of :func:`customer_features` with its unit and meaning.

The docs (``docs/features.md``) and the report read this table; a test checks that every
column the library computes is registered here and documented there.

Conventions used in the definitions
-----------------------------------
* ``s`` is the snapshot date; only rows with ``ts < s`` are used.
* *window* is the look-back of ``window_days`` (``[s - window_days days, s)``); with
  ``window_days=None`` (the default) it is all history before ``s``.
* *12m* is ``[s - 365 days, s)``: a row exactly 365 days before ``s`` (at 00:00) is included.
* A *purchase line* is a transaction row that is not a return and has ``amount >= 0``; a
  *return line* has ``is_return`` true or ``amount < 0`` (its value is ``abs(amount)``); see
  :mod:`segflow.features._purchase_def`, the one definition every module uses.
* An *order* is a distinct ``transaction_id`` among purchase lines (lines without one: one
  order per customer and timestamp); a *paid order* has a positive amount.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FeatureKind = Literal["numeric", "categorical", "date", "boolean", "id"]


@dataclass(frozen=True)
class Feature:
    """One registered feature.

    Parameters
    ----------
    name : str
        Column name in the features table.
    unit : str
        Unit of the value (``"days"``, ``"currency"``, ``"orders"``, ``"share 0-1"``, ...).
    definition : str
        One-line definition, in the words of the field.
    group : str
        Family the feature belongs to (``"rfm"``, ``"pattern"``, ``"web"``, ...).
    kind : {"numeric", "categorical", "date", "boolean", "id"}
        Type of the value; clustering and profiles use it to pick columns.
    """

    name: str
    unit: str
    definition: str
    group: str
    kind: FeatureKind = "numeric"


_F = Feature

_ALL: tuple[Feature, ...] = (
    _F("customer_id", "id", "Customer identifier.", "id", "id"),
    # -- RFM -----------------------------------------------------------------------------
    _F("recency_days", "days",
       "Days from the calendar day of the last purchase (all history) to s; null if the "
       "customer never purchased.", "rfm"),
    _F("frequency", "orders", "Number of orders in the window (returns excluded).", "rfm"),
    _F("monetary", "currency",
       "Net spend in the window: purchase lines minus returned value; 0 without rows.", "rfm"),
    _F("frequency_12m", "orders", "Number of orders in the 365 days before s.", "rfm"),
    _F("monetary_12m", "currency", "Net spend (purchases minus returns) in the 365 days before s.",
       "rfm"),
    _F("frequency_prev_12m", "orders",
       "Number of orders 365 to 730 days before s (the year before the last 12 months).", "rfm"),
    _F("monetary_prev_12m", "currency",
       "Net spend (purchases minus returns) 365 to 730 days before s.", "rfm"),
    _F("orders_total", "orders", "Number of orders in all history before s.", "rfm"),
    _F("first_purchase_date", "date", "Calendar day of the first purchase (all history).",
       "rfm", "date"),
    _F("last_purchase_date", "date", "Calendar day of the last purchase (all history).",
       "rfm", "date"),
    _F("tenure_days", "days",
       "Days from the customer's start (earlier of sign-up and first transaction row of any "
       "kind) to s.", "rfm"),
    # -- purchase patterns ---------------------------------------------------------------
    _F("avg_order_value", "currency",
       "Gross purchase amount in the window divided by paid orders (amount > 0); null without "
       "paid orders.", "pattern"),
    _F("basket_size", "items",
       "Mean quantity per order in the window; null without orders or quantities.", "pattern"),
    _F("ipt_mean_days", "days",
       "Mean days between consecutive distinct purchase days in the window (span / (days - 1)); "
       "null with fewer than 2 purchase days.", "pattern"),
    _F("ipt_cv", "ratio",
       "Regularity: sample standard deviation / mean of the gaps between purchase days; "
       "0 = clockwork; null with fewer than 3 purchase days.", "pattern"),
    _F("spend_trend", "ratio -1..1",
       "(gross spend last 365 days - gross spend the 365 days before) / (their sum); "
       "+1 = all recent, -1 = all earlier; null if both are 0.", "pattern"),
    _F("category_count", "categories", "Distinct categories bought in the window.", "pattern"),
    _F("top_category", "category",
       "Category with the highest gross spend in the window (spend summed exactly, to the millionth; ties: alphabetical first).",
       "pattern", "categorical"),
    _F("top_category_share", "share 0-1",
       "Share of the window's gross spend (lines with a category) in the top category.",
       "pattern"),
    _F("promo_share", "share 0-1", "Share of orders in the window that used a promo code.",
       "pattern"),
    _F("return_rate", "share of value",
       "Returned value / gross purchase value in the window; null without purchases.", "pattern"),
    _F("main_channel", "channel",
       "Channel with the highest gross spend in the window (spend summed exactly, to the millionth; ties: alphabetical first).",
       "pattern", "categorical"),
    _F("main_channel_share", "share 0-1",
       "Share of the window's gross spend (lines with a channel) in the main channel.",
       "pattern"),
    _F("channel_count", "channels", "Distinct channels bought through in the window.", "pattern"),
    # -- product breadth -----------------------------------------------------------------
    _F("products_total", "products",
       "Distinct product ids among the purchase lines in all history before s; null without a "
       "purchase line that has a product id.", "breadth"),
    _F("products_12m", "products",
       "Distinct product ids among the purchase lines in the 365 days before s; null without a "
       "purchase line that has a product id.", "breadth"),
    _F("categories_total", "categories",
       "Distinct categories among the purchase lines in all history before s; null without a "
       "purchase line that has a category.", "breadth"),
    _F("categories_12m", "categories",
       "Distinct categories among the purchase lines in the 365 days before s; null without a "
       "purchase line that has a category.", "breadth"),
    _F("peak_quarter", "quarter 1-4",
       "Calendar quarter with the most orders in all history (ties: earliest quarter).",
       "seasonality"),
    _F("peak_quarter_share", "share 0-1", "Share of all orders (all history) in the peak quarter.",
       "seasonality"),
    _F("same_season_flag", "flag",
       "Bought in at least 2 calendar years and, in every one of them, placed at least half of "
       "that year's orders in the peak quarter (all history).", "seasonality", "boolean"),
    # -- web behaviour -------------------------------------------------------------------
    _F("visits_90d", "sessions",
       "Web/app sessions in the 90 days before s (distinct session_id; events without one "
       "count one session per day).", "web"),
    _F("product_views_90d", "events", "Product-view events in the 90 days before s.", "web"),
    _F("cart_adds_90d", "events", "Add-to-cart events in the 90 days before s.", "web"),
    _F("cart_abandonment_rate_90d", "share 0-1",
       "Share of sessions with a cart add but no purchase event, among sessions with a cart "
       "add (90 days); null without cart adds.", "web"),
    _F("browse_to_buy_90d", "share 0-1",
       "Share of sessions with a purchase event (90 days); null without sessions.", "web"),
    _F("days_since_last_visit", "days",
       "Days from the calendar day of the last web/app event to s; null if none.", "web"),
    # -- campaigns -----------------------------------------------------------------------
    _F("campaigns_received_12m", "campaigns",
       "Distinct campaigns sent to the customer (treatment arm) in the 365 days before s.",
       "campaign"),
    _F("campaign_open_rate_12m", "share 0-1",
       "Share of received campaigns the customer opened; null if none received.", "campaign"),
    _F("campaign_click_rate_12m", "share 0-1",
       "Share of received campaigns the customer clicked; null if none received.", "campaign"),
    _F("campaign_response_rate_12m", "share 0-1",
       "Share of campaigns first received 14 to 365 days before s that were followed by an "
       "order within 14 days of the first exposure; null if none.", "campaign"),
    # -- attributes ----------------------------------------------------------------------
    _F("signup_date", "date", "Calendar day the customer record was created (sign-up).",
       "attribute", "date"),
    _F("age_band", "band", "Age band from the customer record.", "attribute", "categorical"),
    _F("gender", "category", "Gender from the customer record.", "attribute", "categorical"),
    _F("income_band", "band", "Income band from the customer record.", "attribute",
       "categorical"),
    _F("region", "region", "Region from the customer record.", "attribute", "categorical"),
    _F("city", "city", "City from the customer record.", "attribute", "categorical"),
    _F("signup_channel", "channel", "Channel through which the customer signed up.",
       "attribute", "categorical"),
)

#: Registry of features: name -> :class:`Feature` (unit, definition, group, kind), in the
#: column order of :func:`segflow.features.customer_features`.
FEATURES: dict[str, Feature] = {f.name: f for f in _ALL}

#: Every feature group, in column order; ``survey`` columns are not in :data:`FEATURES`: one
#: per question of the survey table, named after it (see ``segflow.features.survey_registry``).
FEATURE_GROUPS: tuple[str, ...] = (
    *dict.fromkeys(f.group for f in _ALL if f.group != "id"),
    "survey",
)

#: Human label of each registered feature, with its unit; ``{currency}`` is replaced by the
#: project's currency (see :func:`feature_label`). The report, the profile heat-maps and the
#: profile tables read their feature names from here.
FEATURE_LABELS: dict[str, str] = {
    "customer_id": "Customer",
    "recency_days": "Days since last purchase",
    "frequency": "Orders, feature window",
    "monetary": "Revenue, feature window ({currency})",
    "frequency_12m": "Orders, last 12 months",
    "monetary_12m": "Revenue, last 12 months ({currency})",
    "frequency_prev_12m": "Orders, the 12 months before",
    "monetary_prev_12m": "Revenue, the 12 months before ({currency})",
    "orders_total": "Orders, all time",
    "first_purchase_date": "First purchase (date)",
    "last_purchase_date": "Last purchase (date)",
    "tenure_days": "Customer for (days)",
    "avg_order_value": "Average order value ({currency})",
    "basket_size": "Items per order",
    "ipt_mean_days": "Inter-purchase time, mean (days)",
    "ipt_cv": "Inter-purchase time, CV",
    "spend_trend": "Spend trend (-1 earlier to +1 recent)",
    "category_count": "Categories bought",
    "top_category": "Top category",
    "top_category_share": "Top category, share of spend (%)",
    "promo_share": "Orders with a promo code (%)",
    "return_rate": "Returned, share of value (%)",
    "main_channel": "Main channel",
    "main_channel_share": "Main channel, share of spend (%)",
    "channel_count": "Channels used",
    "products_total": "Products bought, all time",
    "products_12m": "Products bought, last 12 months",
    "categories_total": "Categories bought, all time",
    "categories_12m": "Categories bought, last 12 months",
    "peak_quarter": "Peak quarter (1-4)",
    "peak_quarter_share": "Orders in the peak quarter (%)",
    "same_season_flag": "Buys in the same season each year",
    "visits_90d": "Visits, last 90 days",
    "product_views_90d": "Product views, last 90 days",
    "cart_adds_90d": "Cart adds, last 90 days",
    "cart_abandonment_rate_90d": "Cart abandonment, last 90 days (%)",
    "browse_to_buy_90d": "Visits with a purchase, last 90 days (%)",
    "days_since_last_visit": "Days since last visit",
    "campaigns_received_12m": "Campaigns received, last 12 months",
    "campaign_open_rate_12m": "Campaign open rate, last 12 months (%)",
    "campaign_click_rate_12m": "Campaign click rate, last 12 months (%)",
    "campaign_response_rate_12m": "Campaign response rate, last 12 months (%)",
    "signup_date": "Sign-up date",
    "age_band": "Age band",
    "gender": "Gender",
    "income_band": "Income band",
    "region": "Region",
    "city": "City",
    "signup_channel": "Sign-up channel",
}

#: Units whose values are shares 0-1 (shown as percentages).
SHARE_UNITS = frozenset({"share 0-1", "share of value"})


def feature_label(name: str, currency: str | None = None) -> str:
    """The human label of a feature column with its unit (``monetary_12m`` -> ``Revenue,
    last 12 months (EUR)`` with ``currency="EUR"``; ``ipt_cv`` -> ``Inter-purchase time,
    CV``). Shares are labelled ``(%)``: show their values as percentages. A column that is
    not registered (a survey question, a project's own feature) is de-snake-cased
    (``nps_score`` -> ``Nps score``)."""
    text = FEATURE_LABELS.get(name)
    if text is None:
        text = name.replace("__", " ").replace("_", " ").strip()
        return text[:1].upper() + text[1:]
    return text.replace("{currency}", currency or "currency")
