"""Product breadth: how many different products and categories a customer has bought."""

from __future__ import annotations

import ibis

from segflow.features._window import DAYS_12M, Frame


def breadth_features(lines: ibis.Table, frame: Frame, *,
                     categories: ibis.Table | None = None) -> ibis.Table:
    """Distinct products and categories among the customer's purchase lines before ``s``, in
    all history and in the 12 months before ``s``.

    ``lines`` is :func:`segflow.features._purchases.prepare_lines` (rows before ``s`` with the
    purchase flag ``_buy``). A count is null when the customer has no purchase line with a
    product id (a category) at all, so data without product ids never reads as "a single
    product"; the 12-month count is then 0 when all those lines are older.

    Returns one row per customer with a purchase line with a product id or a category:
    ``customer_id``, ``products_total``, ``products_12m``, ``categories_total``,
    ``categories_12m`` (int64; customers without any such line are absent, i.e. null when
    left-joined).

    ``categories``: one row per (customer, category) bought before ``s`` with ``_last``, the
    last purchase line's ``ts``, when the caller has them (e.g.
    :func:`segflow.features._purchases.value_spend` of ``category`` without a window, which
    the top category reads too); else grouped here from ``lines``.
    """
    t = lines.filter(lines._buy)
    counts = []
    for column, name in (("product_id", "products"), ("category", "categories")):
        # one row per (customer, value) bought with its last line: a value counts in the 12
        # months when that line is in them (two groupings: cheaper than distinct counts)
        if column == "category" and categories is not None:
            bought = categories.select("customer_id", column, "_last")
        else:
            bought = t.filter(t[column].notnull()).group_by(["customer_id", column]).aggregate(
                _last=t.ts.max())
        c = bought.group_by("customer_id").aggregate(
            **{f"{name}_total": bought.count(),
               f"{name}_12m": bought.count(where=frame.within(bought._last, DAYS_12M))})
        counts.append(c)
    products, categories = counts
    categories = categories.rename(_ccid="customer_id")
    j = products.outer_join(categories, products.customer_id == categories._ccid)
    # a customer without any line with a product id (a category) is absent from its side:
    # null counts, as for customers without purchase lines
    return j.select(
        customer_id=j.customer_id.fill_null(j._ccid),
        **{n: j[n].cast("int64") for n in ("products_total", "products_12m",
                                            "categories_total", "categories_12m")},
    )
