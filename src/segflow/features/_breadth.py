"""Product breadth: how many different products and categories a customer has bought."""

from __future__ import annotations

import ibis

from segflow.features._window import DAYS_12M, Frame


def breadth_features(lines: ibis.Table, frame: Frame) -> ibis.Table:
    """Distinct products and categories among the customer's purchase lines before ``s``, in
    all history and in the 12 months before ``s``.

    ``lines`` is :func:`segflow.features._purchases.prepare_lines` (rows before ``s`` with the
    purchase flag ``_buy``). A count is null when the customer has no purchase line with a
    product id (a category) at all, so data without product ids never reads as "a single
    product"; the 12-month count is then 0 when all those lines are older.
    """
    t = lines.filter(lines._buy)
    m12 = frame.within(t.ts, DAYS_12M)
    agg = t.group_by("customer_id").aggregate(
        _products=t.product_id.nunique(),
        _products_12m=t.product_id.nunique(where=m12),
        _with_product=t.product_id.count(),
        _categories=t.category.nunique(),
        _categories_12m=t.category.nunique(where=m12),
        _with_category=t.category.count(),
    )

    def known(value: ibis.IntegerValue, rows: ibis.IntegerValue) -> ibis.IntegerValue:
        return ibis.ifelse(rows > 0, value.fill_null(0), ibis.null("int64")).cast("int64")

    return agg.select(
        "customer_id",
        products_total=known(agg._products, agg._with_product),
        products_12m=known(agg._products_12m, agg._with_product),
        categories_total=known(agg._categories, agg._with_category),
        categories_12m=known(agg._categories_12m, agg._with_category),
    )
