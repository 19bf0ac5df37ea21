"""Simulate one chunk of customers: attributes, latent paths, orders, sessions, campaigns.

All work is vectorised NumPy over the customers of the chunk and over their months; the only
Python loops run over months and campaigns. Times are int64 seconds since the Unix epoch
(tz-naive UTC). The output is *clean* data; defects are injected later (``_defects.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segflow.datasets import _spec as S

DAY = 86_400


@dataclass(frozen=True)
class Calendar:
    """The months of the data: starts (epoch seconds), lengths and calendar months."""

    start: np.ndarray  # (M + 1,) int64, month starts, last = end of the data
    cal_month: np.ndarray  # (M,) int 1..12

    @classmethod
    def build(cls, start: str, months: int) -> Calendar:
        first = np.datetime64(start, "M")
        starts = first + np.arange(months + 1)
        secs = starts.astype("datetime64[s]").astype(np.int64)
        cal = (starts[:-1].astype(np.int64) % 12) + 1
        return cls(start=secs, cal_month=cal)

    @property
    def months(self) -> int:
        return len(self.cal_month)

    @property
    def end(self) -> int:
        return int(self.start[-1])

    @property
    def length(self) -> np.ndarray:
        return np.diff(self.start)


def _choice(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    return rng.choice(len(weights), size=size, p=weights)


def _choice_rows(rng: np.random.Generator, table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Draw one category per element from the probability row ``table[rows]``."""
    cum = np.cumsum(table, axis=1)[rows]
    u = rng.random(len(rows))[:, None]
    return np.minimum((u > cum).sum(axis=1), table.shape[1] - 1)


def simulate_customers(rng: np.random.Generator, n: int, cal: Calendar) -> dict[str, np.ndarray]:
    """Acquisition month, sign-up time, entry group and attributes of ``n`` customers."""
    M = cal.months
    existing = rng.random(n) < S.EXISTING_SHARE if M > 1 else np.ones(n, dtype=bool)
    later = np.arange(1, max(M, 2))
    w = 1.0 + S.ACQUISITION_GROWTH * (later - 1) / max(M - 2, 1)
    acq = np.where(existing, 0, rng.choice(later, size=n, p=w / w.sum())).astype(np.int64)
    # Existing customers signed up in the two years before the data; new ones in their month,
    # early enough to leave time for a first order in the same month.
    before = cal.start[0] - rng.integers(DAY, 730 * DAY, size=n)
    within = cal.start[acq] + (rng.random(n) * (cal.length[acq] - 2 * 3600)).astype(np.int64)
    created = np.where(existing, before, within)
    entry = np.where(
        existing, _choice(rng, S.ENTRY_EXISTING, n), _choice(rng, S.ENTRY_NEW, n)
    ).astype(np.int8)
    return {
        "acq": acq,
        "created": created,
        "existing": existing,
        "entry": entry,
        "age": _choice(rng, S.AGE_WEIGHTS, n),
        "gender": _choice(rng, S.GENDER_WEIGHTS, n),
        "income": _choice_rows(rng, S.INCOME_WEIGHTS, entry),
        "place": _choice(rng, np.array([p[2] for p in S.PLACES]), n),
        "signup": _choice(rng, S.SIGNUP_WEIGHTS, n),
        "has_email": rng.random(n) < 0.96,
        "phone": np.where(rng.random(n) < 0.7, rng.integers(0, 1_000_000, size=n), -1),
        "favourite": _choice(rng, S.CATEGORY_WEIGHTS, n),
        "spend_mult": rng.gamma(S.SPEND_SHAPE, 1.0 / S.SPEND_SHAPE, size=n),
        "tracked": rng.random(n) < S.TRACKED_SHARE,
    }


def draw_arms(
    rng: np.random.Generator, acq: np.ndarray, months: int
) -> list[dict[str, np.ndarray]]:
    """Eligible customers of each campaign (acquired before its send month) and their arm.

    Each eligible customer is randomised to the control arm with the campaign's control share,
    independently of everything else (a true randomised hold-out).
    """
    arms = []
    for send_m, camp in zip(campaign_send_months(months), S.CAMPAIGNS, strict=True):
        idx = np.flatnonzero(acq < send_m)
        arms.append({"idx": idx, "treated": rng.random(len(idx)) >= camp.control_share,
                     "month": send_m})
    return arms


def simulate_paths(
    rng: np.random.Generator, acq: np.ndarray, entry: np.ndarray, months: int,
    arms: list[dict[str, np.ndarray]] | None = None,
) -> np.ndarray:
    """Latent group per customer and month, ``-1`` before acquisition; shape (n, months).

    The move from month m to m+1 draws from the row of the current group in
    :data:`_spec.TRANSITION_MATRIX`, except for customers treated by a campaign sent in month
    m whose group has a ``migration`` row for that campaign.
    """
    n = len(acq)
    groups = np.full((n, months), -1, dtype=np.int8)
    k = len(S.GROUPS)
    base = np.broadcast_to(np.cumsum(S.TRANSITION_MATRIX, axis=1), (n, k, k))
    current = np.full(n, -1, dtype=np.int8)
    for m in range(months):
        cum = base
        for arm, camp in zip(arms or [], S.CAMPAIGNS, strict=False):
            if arm["month"] == m - 1 and camp.migration:
                cum = cum.copy() if cum is base else cum
                treated = arm["idx"][arm["treated"]]
                for name, row in camp.migration.items():
                    cum[treated, S.G[name]] = np.cumsum(row)
        active = current >= 0
        u = rng.random(n)
        rows = cum[np.arange(n), np.maximum(current, 0)]
        moved = np.minimum((u[:, None] > rows).sum(axis=1), k - 1)
        current = np.where(active, moved, current).astype(np.int8)
        current = np.where(acq == m, entry, current).astype(np.int8)
        groups[:, m] = current
    return groups


def campaign_send_months(months: int) -> list[int]:
    """Send month of each campaign of :data:`_spec.CAMPAIGNS` (never month 0)."""
    return [min(max(int(c.at * months), 1), months - 1) for c in S.CAMPAIGNS]


def simulate_campaigns(
    rng: np.random.Generator, arms: list[dict[str, np.ndarray]], groups: np.ndarray,
    cal: Calendar,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Exposures of every campaign and the order-rate multiplier they cause.

    Control customers get a ``send`` row (the moment they were held out) but no open or
    click. The effect multiplies the order rate of treated customers in the calendar month of
    the send, by their latent group in that month. Adds ``group`` (the latent group in the send
    month) to each entry of ``arms``.
    """
    n, M = groups.shape
    mult = np.ones((n, M))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("campaign", "cust", "ts", "arm", "type")}
    for c, (arm, camp) in enumerate(zip(arms, S.CAMPAIGNS, strict=True)):
        idx, treated, send_m = arm["idx"], arm["treated"], arm["month"]
        effect = np.ones(len(S.GROUPS))
        for name, value in camp.rate_multiplier.items():
            effect[S.G[name]] = value
        g = groups[idx, send_m]
        mult[idx[treated], send_m] *= effect[g[treated]]
        arm["group"] = g
        send = cal.start[send_m] + rng.integers(0, 2 * 3600, size=len(idx))
        opened = treated & (rng.random(len(idx)) < camp.p_open)
        clicked = opened & (rng.random(len(idx)) < camp.p_click)
        open_ts = send + rng.integers(600, 3 * DAY, size=len(idx))
        click_ts = open_ts + rng.integers(5, 600, size=len(idx))
        for mask, ts, kind in ((None, send, 0), (opened, open_ts, 1), (clicked, click_ts, 2)):
            sel = np.ones(len(idx), dtype=bool) if mask is None else mask
            parts["campaign"].append(np.full(sel.sum(), c))
            parts["cust"].append(idx[sel])
            parts["ts"].append(ts[sel])
            parts["arm"].append(np.where(treated[sel], 0, 1))
            parts["type"].append(np.full(sel.sum(), kind))
    out = {k: np.concatenate(v) if v else np.zeros(0, dtype=np.int64) for k, v in parts.items()}
    order = np.lexsort((out["ts"], out["cust"], out["campaign"]))
    return {k: v[order] for k, v in out.items()}, mult


def order_rates(groups: np.ndarray, cust: dict[str, np.ndarray], cal: Calendar) -> np.ndarray:
    """Expected orders per customer and month (before campaign effects), 0 before acquisition."""
    g = np.maximum(groups, 0)
    season = S.SEASONALITY[cal.cal_month - 1][None, :]
    rate = S.ORDER_RATE[g] * season
    in_season = np.isin(cal.cal_month, S.SEASONAL_MONTHS)[None, :]
    rate = np.where((g == S.G["seasonal"]) & in_season, S.SEASONAL_PEAK_RATE * season, rate)
    return np.where(groups >= 0, rate, 0.0) * _active_fraction(cust, cal)


def _active_fraction(cust: dict[str, np.ndarray], cal: Calendar) -> np.ndarray:
    """Share of each month after sign-up (1 for full months, partial in the sign-up month)."""
    M = cal.months
    frac = np.ones((len(cust["acq"]), M))
    new = np.flatnonzero(~cust["existing"])
    m = cust["acq"][new]
    frac[new, m] = (cal.start[m + 1] - cust["created"][new]) / cal.length[m]
    return frac


def _times_in_month(
    rng: np.random.Generator, cells_cust: np.ndarray, cells_month: np.ndarray,
    cust: dict[str, np.ndarray], cal: Calendar, margin: int = 0,
) -> np.ndarray:
    """Uniform times within the month, after the customer's sign-up, ``margin`` s before its end."""
    lo = np.maximum(cal.start[cells_month], cust["created"][cells_cust])
    hi = cal.start[cells_month + 1] - margin
    return lo + (rng.random(len(lo)) * np.maximum(hi - lo, 1)).astype(np.int64)


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(customer, month) of each event, from a count matrix of shape (n, M)."""
    flat = counts.ravel()
    cells = np.repeat(np.arange(flat.size), flat)
    return cells // counts.shape[1], cells % counts.shape[1]


def simulate_orders(
    rng: np.random.Generator, cust: dict[str, np.ndarray], groups: np.ndarray,
    mult: np.ndarray, cal: Calendar,
) -> dict[str, np.ndarray]:
    """Orders and returns of the chunk, sorted by time (returns reference their order)."""
    counts = rng.poisson(order_rates(groups, cust, cal) * mult)
    c, m = _expand(counts)
    ts = _times_in_month(rng, c, m, cust, cal, margin=60)
    first = np.flatnonzero(~cust["existing"])
    first = first[rng.random(len(first)) < S.FIRST_ORDER_PROB[cust["entry"][first]]]
    c = np.concatenate([first, c])
    m = np.concatenate([cust["acq"][first], m])
    ts = np.concatenate([cust["created"][first] + rng.integers(60, 1800, size=len(first)), ts])
    is_first = np.arange(len(c)) < len(first)
    g = groups[c, m]
    target = S.SPEND_MEAN[g] * cust["spend_mult"][c] * rng.lognormal(-0.06125, 0.35, size=len(c))
    qty = 1 + rng.poisson(0.7, size=len(c))
    unit = np.maximum(np.round(target / qty, 2), 0.5)
    category = np.where(
        rng.random(len(c)) < S.FAVOURITE_PROB, cust["favourite"][c],
        _choice(rng, S.CATEGORY_WEIGHTS, len(c)),
    )
    channel = _choice(rng, S.CHANNEL_WEIGHTS, len(c))
    december = cal.cal_month[m] == 12
    promo = np.where(december, 1, rng.integers(2, len(S.PROMO_CODES), size=len(c)))
    promo = np.where(is_first & (rng.random(len(c)) < 0.5), 0, promo)
    promo = np.where(is_first | (rng.random(len(c)) < S.PROMO_PROB), promo, -1)
    order = np.lexsort((c, ts))
    orders = {
        "cust": c, "ts": ts, "qty": qty, "unit": unit, "category": category,
        "channel": channel, "promo": promo,
    }
    orders = {k: v[order] for k, v in orders.items()}
    orders["seq"] = np.arange(len(c))
    orders["amount"] = np.round(orders["qty"] * orders["unit"], 2)
    return _add_returns(rng, orders, cal)


def _add_returns(
    rng: np.random.Generator, orders: dict[str, np.ndarray], cal: Calendar
) -> dict[str, np.ndarray]:
    n = len(orders["cust"])
    ret = np.flatnonzero(rng.random(n) < S.RETURN_PROB)
    rts = orders["ts"][ret] + rng.integers(2 * DAY, 30 * DAY, size=len(ret))
    ret, rts = ret[rts < cal.end], rts[rts < cal.end]
    rqty = -(1 + (rng.random(len(ret)) * orders["qty"][ret]).astype(np.int64))
    returns = {k: v[ret] for k, v in orders.items()}
    returns["ts"], returns["qty"] = rts, rqty
    returns["amount"] = np.round(rqty * returns["unit"], 2)
    rows = {k: np.concatenate([orders[k], returns[k]]) for k in orders}
    rows["is_return"] = np.arange(len(rows["cust"])) >= n
    order = np.lexsort((rows["is_return"], rows["seq"], rows["ts"]))
    return {k: v[order] for k, v in rows.items()}


def assign_products(
    rng: np.random.Generator, orders: dict[str, np.ndarray], cust: dict[str, np.ndarray]
) -> np.ndarray:
    """A product number (``category * 1000 + item``, item 0-399) for every row of ``orders``.

    A customer's first order is their *home* item; each later order repeats it with
    probability ``S.HOME_PRODUCT_PROB`` and is otherwise a random item, in the order's
    category. So one-order buyers have a single product and customers broaden as they keep
    buying. A return carries the product of its order. ``rng`` is a stream of its own, so the
    other tables do not change with it.
    """
    buy = np.flatnonzero(~orders["is_return"])
    c, seq = orders["cust"][buy], orders["seq"][buy]
    order = np.lexsort((seq, c))
    c_sorted = c[order]
    start = np.r_[True, c_sorted[1:] != c_sorted[:-1]]
    run_start = np.maximum.accumulate(np.where(start, np.arange(len(order)), 0))
    k = np.empty(len(order), dtype=np.int64)
    k[order] = np.arange(len(order)) - run_start  # 0 for a customer's first order
    home = rng.integers(0, 400, size=len(cust["acq"]))
    other = rng.integers(0, 400, size=len(buy))
    repeat = (k == 0) | (rng.random(len(buy)) < S.HOME_PRODUCT_PROB)
    item = np.where(repeat, home[c], other)
    by_seq = np.zeros(int(orders["seq"].max(initial=-1)) + 1, dtype=np.int64)
    by_seq[seq] = orders["category"][buy] * 1000 + item
    return by_seq[orders["seq"]]


def simulate_sessions(
    rng: np.random.Generator, cust: dict[str, np.ndarray], groups: np.ndarray,
    orders: dict[str, np.ndarray], cal: Calendar,
) -> dict[str, np.ndarray]:
    """Web events: one session per web/app order (ending in its purchase) plus browsing sessions.

    A session is a ``visit``, 1+ ``product_view`` events, maybe a ``cart_add`` and, for an
    order, a ``purchase`` at the order's time. Browsing sessions without purchase that add to
    the cart are abandoned carts.
    """
    tracked = cust["tracked"]
    buy = np.flatnonzero(
        ~orders["is_return"]
        & np.isin(orders["channel"], S.SESSION_CHANNELS)
        & tracked[orders["cust"]]
    )
    season = S.SEASONALITY[cal.cal_month - 1][None, :]
    g = np.maximum(groups, 0)
    rate = np.where(groups >= 0, S.BROWSE_RATE[g] * season, 0.0) * _active_fraction(cust, cal)
    rate *= tracked[:, None]
    bc, bm = _expand(rng.poisson(rate))
    n_buy, n_browse = len(buy), len(bc)
    sess_cust = np.concatenate([orders["cust"][buy], bc])
    purchase = np.arange(n_buy + n_browse) < n_buy
    category = np.concatenate(
        [orders["category"][buy],
         np.where(rng.random(n_browse) < S.FAVOURITE_PROB, cust["favourite"][bc],
                  _choice(rng, S.CATEGORY_WEIGHTS, n_browse))]
    )
    views = 1 + rng.poisson(0.6, size=len(sess_cust))
    cart = purchase.copy()
    cart[n_buy:] = rng.random(n_browse) < S.CART_ADD_PROB[g[bc, bm]]
    n_events = 1 + views + cart + purchase
    gap = rng.integers(20, 240, size=len(sess_cust))
    browse_start = _times_in_month(rng, bc, bm, cust, cal, margin=2 * 3600)
    start = np.concatenate([orders["ts"][buy] - (n_events[:n_buy] - 1) * gap[:n_buy], browse_start])
    sess = np.repeat(np.arange(len(sess_cust)), n_events)
    offsets = np.concatenate([[0], np.cumsum(n_events)[:-1]])
    k = np.arange(len(sess)) - offsets[sess]
    etype = np.where(k == 0, 0, np.where(k <= views[sess], 1, 2))
    etype = np.where(purchase[sess] & (k == n_events[sess] - 1), 3, etype)
    item = rng.integers(0, 400, size=len(sess_cust))
    return {
        "session": sess,
        "cust": sess_cust[sess],
        "ts": start[sess] + k * gap[sess],
        "type": etype,
        "category": category[sess],
        "item": np.where(etype == 0, -1, item[sess] + 1000 * category[sess]),
    }


def simulate_surveys(
    rng: np.random.Generator, cust: dict[str, np.ndarray], groups: np.ndarray, cal: Calendar
) -> dict[str, np.ndarray]:
    """One survey per responding customer: a lifestyle and a price-sensitivity answer."""
    n = len(cust["acq"])
    who = np.flatnonzero(rng.random(n) < S.SURVEY_SHARE)
    lo = np.maximum(cust["created"][who], cal.start[0])
    ts = lo + (rng.random(len(who)) * np.maximum(cal.end - DAY - lo, 0)).astype(np.int64)
    month = np.searchsorted(cal.start, ts, side="right") - 1
    g = groups[who, month]
    lifestyle = _choice(rng, S.LIFESTYLE_WEIGHTS, len(who))
    price = _choice_rows(rng, S.PRICE_WEIGHTS, np.maximum(g, 0))
    return {
        "cust": np.repeat(who, 2),
        "ts": np.repeat(ts, 2) + np.tile([0, 20], len(who)),
        "question": np.tile([0, 1], len(who)),
        "answer_lifestyle": np.repeat(lifestyle, 2),
        "answer_price": np.repeat(price, 2),
    }
