"""Web behaviour (events) and campaign responsiveness (campaign exposures).

Event and exposure types are matched case-insensitively against the vocabularies below, so
common spellings from web-analytics and e-mail tools work without a value map.
"""

from __future__ import annotations

import ibis

from segflow.features._purchase_def import ORDER_KEY
from segflow.features._window import DAYS_12M, DAYS_WEB, Frame, safe_ratio

#: Days after a campaign's first exposure in which an order counts as a response.
RESPONSE_DAYS = 14

#: ``event_type`` values (lower-cased) counted as product views, cart adds and purchases.
PRODUCT_VIEW_TYPES: tuple[str, ...] = ("product_view", "view", "item_view", "view_item")
CART_ADD_TYPES: tuple[str, ...] = ("cart_add", "add_to_cart", "addtocart")
PURCHASE_TYPES: tuple[str, ...] = ("purchase", "order", "checkout_complete")
#: ``exposure_type`` values (lower-cased) meaning an open or a click; ``arm`` values meaning
#: the control group (control rows are not a receipt of the campaign).
OPEN_TYPES: tuple[str, ...] = ("open", "opened")
CLICK_TYPES: tuple[str, ...] = ("click", "clicked")
CONTROL_ARMS: tuple[str, ...] = ("control", "holdout")


def web_features(events: ibis.Table, frame: Frame) -> ibis.Table:
    """Sessions, views, cart adds, abandonment and conversion (90 days); days since last visit."""
    e = events.filter(events.customer_id.notnull(), events.ts.notnull(), frame.before(events.ts))
    day = e.ts.date().epoch_days()
    etype = e.event_type.lower()
    e = e.mutate(
        _day=day,
        _sess=e.session_id.cast("string").fill_null("day:" + day.cast("string")),
        _view=etype.isin(PRODUCT_VIEW_TYPES).fill_null(False).cast("int64"),
        _cart=etype.isin(CART_ADD_TYPES).fill_null(False).cast("int64"),
        _buy=etype.isin(PURCHASE_TYPES).fill_null(False).cast("int64"),
    )
    last = e.group_by("customer_id").aggregate(_last_day=e._day.max())
    last = last.select(
        "customer_id", days_since_last_visit=(ibis.literal(frame.day) - last._last_day).cast("int64")
    )
    recent = e.filter(frame.within(e.ts, DAYS_WEB))
    sessions = recent.group_by(["customer_id", "_sess"]).aggregate(
        _views=recent._view.sum(), _carts=recent._cart.sum(), _buys=recent._buy.sum()
    )
    has_cart = (sessions._carts > 0).cast("int64")
    abandoned = ((sessions._carts > 0) & (sessions._buys == 0)).cast("int64")
    has_buy = (sessions._buys > 0).cast("int64")
    web = sessions.group_by("customer_id").aggregate(
        visits_90d=sessions.count(),
        product_views_90d=sessions._views.sum(),
        cart_adds_90d=sessions._carts.sum(),
        _cart_sessions=has_cart.sum(),
        _abandoned=abandoned.sum(),
        _buy_sessions=has_buy.sum(),
    )
    web = web.mutate(
        cart_abandonment_rate_90d=safe_ratio(web._abandoned, web._cart_sessions),
        browse_to_buy_90d=safe_ratio(web._buy_sessions, web.visits_90d),
    ).drop("_cart_sessions", "_abandoned", "_buy_sessions")
    return last.left_join(web, "customer_id").drop("customer_id_right")


def campaign_features(exposures: ibis.Table, lines: ibis.Table, frame: Frame) -> ibis.Table:
    """Campaigns received, opened, clicked and responded to in the 365 days before ``s``
    (treatment arm). ``lines`` are the transaction lines before ``s``
    (:func:`segflow.features._purchases.prepare_lines`; for responses)."""
    c = exposures
    c = c.filter(
        c.customer_id.notnull(),
        c.campaign_id.notnull(),  # no campaign to count (ingest quarantines such rows)
        c.ts.notnull(),
        frame.before(c.ts),
        frame.within(c.ts, DAYS_12M),
        ~c.arm.lower().isin(CONTROL_ARMS).fill_null(False),
    )
    kind = c.exposure_type.lower()
    clicked = kind.isin(CLICK_TYPES).fill_null(False)
    opened = kind.isin(OPEN_TYPES).fill_null(False) | clicked
    agg = c.group_by("customer_id").aggregate(
        campaigns_received_12m=c.campaign_id.nunique(),
        _opened=c.campaign_id.nunique(where=opened),
        _clicked=c.campaign_id.nunique(where=clicked),
    )
    rates = agg.select(
        "customer_id",
        "campaigns_received_12m",
        campaign_open_rate_12m=safe_ratio(agg._opened, agg.campaigns_received_12m),
        campaign_click_rate_12m=safe_ratio(agg._clicked, agg.campaigns_received_12m),
    )
    return rates.left_join(_responses(c, lines, frame), "customer_id").drop("customer_id_right")


def _responses(treated: ibis.Table, lines: ibis.Table, frame: Frame) -> ibis.Table:
    """Share of campaigns first received (``t0``) at least ``RESPONSE_DAYS`` before ``s``
    (``t0 <= s - RESPONSE_DAYS``: the whole response window is before ``s``) that were
    followed by an order within ``RESPONSE_DAYS`` days: an order whose time (its
    first purchase line's, :func:`segflow.features._purchases.order_table`) is in
    ``[t0, t0 + RESPONSE_DAYS)``.

    Such an order has a purchase line in that range, and no line before ``t0``; so the
    candidates are the purchase lines in the range of an eligible campaign of their customer
    (a join on the customer), and only the orders of those lines are grouped for their first
    line (the same result as the order table of all history, which groups every order)."""
    first = treated.group_by(["customer_id", "campaign_id"]).aggregate(_t0=treated.ts.min())
    eligible = first.filter(first._t0 <= frame.ts(RESPONSE_DAYS))
    buys = lines.filter(lines._buy)
    b = buys.filter(frame.within(buys.ts, DAYS_12M))  # every t0 is within the 12 months
    b = b.select(*[b[k].name(f"_b{k}") for k in ORDER_KEY], _bts=b.ts)
    window = ibis.interval(days=RESPONSE_DAYS)
    hits = eligible.join(
        b,
        [eligible.customer_id == b._bcustomer_id, b._bts >= eligible._t0,
         b._bts < eligible._t0 + window],
    ).select("customer_id", "campaign_id", "_t0", *[f"_b{k}" for k in ORDER_KEY])
    keys = hits.select(*[f"_b{k}" for k in ORDER_KEY]).distinct()
    # IS NOT DISTINCT FROM: a key part is null (no transaction id, or the ts key of one)
    same = [buys[k].identical_to(keys[f"_b{k}"]) for k in ORDER_KEY]
    mine = buys.semi_join(keys, same)
    starts = mine.group_by(list(ORDER_KEY)).aggregate(_ots=mine.ts.min())
    starts = starts.rename({f"_s{k}": k for k in ORDER_KEY})
    matched = hits.join(
        starts, [*[hits[f"_b{k}"].identical_to(starts[f"_s{k}"]) for k in ORDER_KEY],
                 starts._ots >= hits._t0],
    )
    responded = matched.group_by("customer_id").aggregate(_resp=matched.campaign_id.nunique())
    counted = eligible.group_by("customer_id").aggregate(_elig=eligible.count())
    out = counted.left_join(responded, "customer_id").drop("customer_id_right")
    return out.select(
        "customer_id",
        campaign_response_rate_12m=safe_ratio(out._resp.fill_null(0), out._elig),
    )
