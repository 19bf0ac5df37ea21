"""Built-in rule schemes on product breadth, and the psychographic example scheme.

They are plain rule schemes (``kind = "rules"``), so their definitions read like any
project's own rules and can be copied into ``segflow.toml`` and changed there.
"""

from __future__ import annotations

from segflow.config import RuleSettings, SchemeSettings

#: Distinct products (all history before the snapshot) from which a buyer counts as buying
#: "many" products; 2 up to this minus 1 is "few".
MANY_PRODUCTS = 5


def product_breadth_scheme() -> SchemeSettings:
    """``product_breadth``: single product / few products / many products (ordered).

    Uses ``products_total`` (distinct product ids bought before the snapshot), which only
    grows, so a migration view shows customers broadening. Buyers without product ids and
    customers who never bought are ``No product data``.
    """
    return SchemeSettings(
        name="product_breadth",
        kind="rules",
        ordered=True,
        rules=[
            RuleSettings(segment=f"Many products ({MANY_PRODUCTS}+)",
                         when=f"products_total >= {MANY_PRODUCTS}"),
            RuleSettings(segment=f"Few products (2-{MANY_PRODUCTS - 1})",
                         when="products_total >= 2"),
            RuleSettings(segment="Single product", when="products_total = 1"),
        ],
        default="No product data",
    )


def category_breadth_scheme() -> SchemeSettings:
    """``category_breadth``: cross-category / single category buyers (ordered)."""
    return SchemeSettings(
        name="category_breadth",
        kind="rules",
        ordered=True,
        rules=[
            RuleSettings(segment="Cross-category", when="categories_total >= 2"),
            RuleSettings(segment="Single category", when="categories_total = 1"),
        ],
        default="No category data",
    )


def psychographic_example_scheme() -> SchemeSettings:
    """``price_vs_quality``: a psychographic example on the survey question
    ``price_sensitivity`` (answers low / medium / high, as in the demo data) and behaviour.

    Price-sensitive: said ``high``, or said ``medium`` and bought half or more of their orders
    with a promo code; quality-seeking: said ``low``; the rest who answered are ``Balanced``,
    and customers without an answer are ``Not surveyed``. Not built in (it needs that survey
    question); the demo project lists it.
    """
    return SchemeSettings(
        name="price_vs_quality",
        kind="rules",
        rules=[
            RuleSettings(segment="Price-sensitive", when="price_sensitivity = 'high'"),
            RuleSettings(segment="Price-sensitive",
                         when="price_sensitivity = 'medium' and promo_share >= 0.5"),
            RuleSettings(segment="Quality-seeking", when="price_sensitivity = 'low'"),
            RuleSettings(segment="Balanced", when="price_sensitivity is not null"),
        ],
        default="Not surveyed",
    )
