"""The one purchase definition of segflow, as Ibis expressions.

Every module that asks "did the customer buy?" or "how much did they spend?" uses these
helpers: the features, the lifecycle and RFM schemes (through the features), the churn labels,
the BTYD summary, the campaign outcomes and the exports. See ``docs/features.md``
("Purchases, returns and orders").

Definitions
-----------
* A **return line** has ``is_return`` true or a negative ``amount``; its value is
  ``abs(amount)``.
* A **purchase line** is a line that is not a return and has a known ``amount >= 0``: a
  zero-value line (a free item, a fully discounted order) is a purchase occasion.
* A **spend line** is a purchase line with ``amount > 0``. Spend statistics (average order
  value, the BTYD spend model) use positive amounts only.
* An **order** is the set of purchase lines of one customer with one ``transaction_id``; lines
  without a ``transaction_id`` form one order per customer and timestamp.
* A day, order or period whose returns exceed its purchases is **net-negative**: it is still a
  purchase occasion (the purchase happened); its returns are counted as returns, never silently
  dropped.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir


def _col(t: ir.Table, name: str | None) -> ir.Value | None:
    return t[name] if name is not None and name in t.columns else None


def is_return_line(
    t: ir.Table, *, amount_col: str | None = "amount", return_col: str | None = "is_return"
) -> ir.BooleanValue:
    """True for a return line: ``is_return`` true or ``amount < 0`` (never null).

    Either column may be absent (or ``None``): then only the other one decides.
    """
    out = ibis.literal(False)
    flag, amount = _col(t, return_col), _col(t, amount_col)
    if flag is not None:
        out = out | flag.cast("boolean").fill_null(False)
    if amount is not None:
        out = out | (amount.cast("float64") < 0).fill_null(False)
    return out


def is_purchase_line(
    t: ir.Table, *, amount_col: str | None = "amount", return_col: str | None = "is_return"
) -> ir.BooleanValue:
    """True for a purchase line: not a return and ``amount >= 0`` (never null).

    Without an amount column (``amount_col=None``) every non-return line is a purchase.
    """
    amount = _col(t, amount_col)
    known = (amount.cast("float64") >= 0).fill_null(False) if amount is not None else True
    return ~is_return_line(t, amount_col=amount_col, return_col=return_col) & known


def is_spend_line(
    t: ir.Table, *, amount_col: str = "amount", return_col: str | None = "is_return"
) -> ir.BooleanValue:
    """True for a purchase line with a positive amount (the lines spend statistics use)."""
    positive = (t[amount_col].cast("float64") > 0).fill_null(False)
    return is_purchase_line(t, amount_col=amount_col, return_col=return_col) & positive


def purchase_lines(
    t: ir.Table,
    *,
    customer_col: str = "customer_id",
    amount_col: str | None = "amount",
    return_col: str | None = "is_return",
) -> ir.Table:
    """The purchase lines of a transaction table with a known customer."""
    return t.filter(
        t[customer_col].notnull(),
        is_purchase_line(t, amount_col=amount_col, return_col=return_col),
    )


#: The order key of prepared lines: an order is the lines of one customer with one
#: ``transaction_id``, or, without one, of one timestamp (:func:`order_ts_key`).
ORDER_KEY = ("customer_id", "transaction_id", "_ts_key")


def order_ts_key(t: ir.Table) -> ir.TimestampValue:
    """Second part of the order key ``(customer_id, transaction_id, ts key)``: the timestamp
    for lines without a ``transaction_id`` (one order per customer and timestamp), else null."""
    if "transaction_id" not in t.columns:
        return t.ts
    return ibis.ifelse(t.transaction_id.isnull(), t.ts, ibis.null("timestamp"))
