"""One customer's features in plain Python, for real-time scoring (no query engine).

The definitions are those of :func:`segflow.features.customer_features` (the Ibis code is
the reference; ``tests/server/test_server_score_demo.py`` checks that both agree on every stored
customer of a demo store): only rows with ``ts < s`` are used, returns and purchase lines
follow :mod:`segflow.features._purchase_def`, orders are keyed by ``transaction_id`` (one
order per timestamp without one), day counts are whole calendar days.

Money is summed in Python (``math.fsum``, exactly rounded) where the engine sums in its own
order; the two differ at most in the last bits, and every comparison of money is made after
rounding to cents (:func:`segflow.segments._scores.comparable`). Campaign features use the
posted exposures (none posted: those of a customer who received no campaign).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from segflow.features._attributes import ATTRIBUTE_COLUMNS
from segflow.features._behaviour import (
    CART_ADD_TYPES,
    CLICK_TYPES,
    CONTROL_ARMS,
    OPEN_TYPES,
    PRODUCT_VIEW_TYPES,
    PURCHASE_TYPES,
    RESPONSE_DAYS,
)
from segflow.features._registry import FEATURES
from segflow.features._survey import NUMBER_PATTERN
from segflow.features._window import DAYS_12M, DAYS_WEB, EPOCH

_SPACE = re.compile(r"^\s+|\s+$", re.ASCII)
_NUMBER = re.compile(NUMBER_PATTERN)  # the engine's rule (features._survey), ASCII digits


@dataclass(frozen=True)
class Line:
    """One posted transaction line."""

    ts: dt.datetime
    amount: float | None
    quantity: float | None = None
    category: str | None = None
    channel: str | None = None
    promo_code: str | None = None
    is_return: bool | None = None
    transaction_id: str | None = None
    product_id: str | None = None


@dataclass(frozen=True)
class Event:
    """One posted web/app event."""

    ts: dt.datetime
    event_type: str | None
    session_id: str | None = None


@dataclass(frozen=True)
class Exposure:
    """One posted campaign exposure (send, open, click; ``arm`` control rows are not receipts)."""

    ts: dt.datetime
    campaign_id: str | None
    exposure_type: str | None = None
    arm: str | None = None


@dataclass(frozen=True)
class Answer:
    """One posted survey answer."""

    ts: dt.datetime
    question: str | None
    answer: str | None


def _day(ts: dt.datetime) -> int:
    return (ts.date() - EPOCH).days


def _ratio(num: float | None, den: float | None) -> float | None:
    """``safe_ratio``: null when the denominator is 0 or null."""
    if num is None or den is None or float(den) == 0.0:
        return None
    return float(num) / float(den)


def _sum(values: Iterable[float | None]) -> float | None:
    """SQL ``sum``: nulls ignored, null when nothing is left."""
    kept = [v for v in values if v is not None]
    return math.fsum(kept) if kept else None


def _stdev(values: Sequence[float]) -> float:
    """Sample standard deviation (``stddev_samp``; at least two values), two passes in floats:
    within a few units in the last place of the exact value (``statistics.stdev`` computes
    that exactly, with fractions, at 20 times the cost)."""
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) * (v - mean) for v in values) / (len(values) - 1))


def _to_float(text: str) -> float | None:
    """``TRY_CAST(text AS DOUBLE)`` for a trimmed answer."""
    return float(text) if _NUMBER.fullmatch(text) else None


class FeatureComputer:
    """Features of one customer at one snapshot, from posted rows.

    Parameters
    ----------
    snapshot : date
        The snapshot ``s``.
    window_days : int, optional
        The project's ``[rfm] window_days`` (None: all history).
    survey : mapping
        :func:`segflow.features.survey_registry` of the store: column -> (feature, raw
        questions); it fixes the survey columns and whether each one is a number.
    """

    def __init__(self, snapshot: dt.date, window_days: int | None,
                 survey: Mapping[str, tuple[Any, tuple[str, ...]]]) -> None:
        self.snapshot = snapshot
        self.s_ts = dt.datetime.combine(snapshot, dt.time())
        self.s_day = (snapshot - EPOCH).days
        self.window_start = None if window_days is None else self.s_ts - dt.timedelta(days=window_days)
        self.m12_start = self.s_ts - dt.timedelta(days=DAYS_12M)
        self.prev_start = self.s_ts - dt.timedelta(days=2 * DAYS_12M)
        self.web_start = self.s_ts - dt.timedelta(days=DAYS_WEB)
        self.survey = dict(survey)
        self.question_column = {raw: col for col, (_, raws) in self.survey.items() for raw in raws}
        self.columns = [*FEATURES, *self.survey]

    def _win(self, ts: dt.datetime) -> bool:
        return self.window_start is None or ts >= self.window_start

    # -- the whole row --------------------------------------------------------------------
    def compute(self, lines: Sequence[Line], events: Sequence[Event] = (), answers: Sequence[Answer] = (),
                attributes: Mapping[str, Any] | None = None, customer_id: str = "",
                exposures: Sequence[Exposure] = ()) -> dict[str, Any] | None:
        """The feature row (columns of ``customer_features``), or None when the customer is
        not known at ``s`` (no sign-up and no transaction before it)."""
        attributes = attributes or {}
        lines = [ln for ln in lines if ln.ts < self.s_ts]
        created = attributes.get("created_at")
        created_day = _day(created) if isinstance(created, dt.datetime) and created < self.s_ts else None
        if created_day is None and not lines:
            return None
        row: dict[str, Any] = {"customer_id": customer_id}
        orders = self.orders(lines)  # once per request: four feature groups read it
        row.update(self._values(lines, orders))
        row.update(self._patterns(lines, orders))
        row.update(self._breadth(lines))
        row.update(self._seasonality(orders))
        row.update(self._web(events))
        row.update(self._campaigns(exposures, orders))
        row["signup_date"] = None if created_day is None else created.date()
        # a record made on or after s does not describe the customer at s (customer_records)
        current = not isinstance(created, dt.datetime) or created < self.s_ts
        for name in ATTRIBUTE_COLUMNS:
            value = attributes.get(name)
            row[name] = None if value is None or not current else str(value)
        row.update(self._answers(answers))
        first_any = min((_day(ln.ts) for ln in lines), default=None)
        if created_day is None:
            start = first_any
        elif first_any is None or created_day <= first_any:
            start = created_day
        else:
            start = first_any
        row["tenure_days"] = self.s_day - start
        return {c: row.get(c) for c in self.columns}

    # -- purchases ------------------------------------------------------------------------
    @staticmethod
    def _is_return(ln: Line) -> bool:
        return bool(ln.is_return) or (ln.amount is not None and ln.amount < 0)

    def _is_buy(self, ln: Line) -> bool:
        return not self._is_return(ln) and ln.amount is not None and ln.amount >= 0

    def orders(self, lines: Sequence[Line]) -> list[dict[str, Any]]:
        """The order table: purchase lines grouped by (transaction_id, ts without one)."""
        groups: dict[tuple[Any, Any], list[Line]] = defaultdict(list)
        for ln in lines:
            if self._is_buy(ln):
                groups[(ln.transaction_id, ln.ts if ln.transaction_id is None else None)].append(ln)
        out = []
        for group in groups.values():
            first = min(ln.ts for ln in group)
            promo = any(ln.promo_code is not None and ln.promo_code.strip() != "" for ln in group)
            out.append({"ts": first, "day": _day(first), "amount": _sum(ln.amount for ln in group),
                        "qty": _sum(ln.quantity for ln in group), "promo": int(promo)})
        return out

    def _values(self, lines: Sequence[Line], orders: list[dict[str, Any]]) -> dict[str, Any]:
        win = [o for o in orders if self._win(o["ts"])]
        m12 = [o for o in orders if o["ts"] >= self.m12_start]
        prev = [o for o in orders if self.prev_start <= o["ts"] < self.m12_start]
        rets = [ln for ln in lines if self._is_return(ln)]

        def returned(rows: Iterable[Line]) -> float:
            return _sum(abs(ln.amount) if ln.amount is not None else None for ln in rows) or 0.0

        ret_w = returned(ln for ln in rets if self._win(ln.ts))
        ret_12m = returned(ln for ln in rets if ln.ts >= self.m12_start)
        ret_prev = returned(ln for ln in rets if self.prev_start <= ln.ts < self.m12_start)
        gross_w = _sum(o["amount"] for o in win) or 0.0
        gross_12m = _sum(o["amount"] for o in m12) or 0.0
        gross_prev = _sum(o["amount"] for o in prev) or 0.0
        frequency = len(win)
        paid_w = sum(1 for o in win if o["amount"] is not None and o["amount"] > 0)
        first_day = min((o["day"] for o in orders), default=None)
        last_day = max((o["day"] for o in orders), default=None)
        return {
            "recency_days": None if last_day is None else self.s_day - last_day,
            "frequency": frequency,
            "monetary": gross_w - ret_w,
            "frequency_12m": len(m12),
            "monetary_12m": gross_12m - ret_12m,
            "frequency_prev_12m": len(prev),
            "monetary_prev_12m": gross_prev - ret_prev,
            "orders_total": len(orders),
            "first_purchase_date": None if first_day is None else EPOCH + dt.timedelta(days=first_day),
            "last_purchase_date": None if last_day is None else EPOCH + dt.timedelta(days=last_day),
            "avg_order_value": _ratio(gross_w, paid_w),
            "basket_size": _ratio(_sum(o["qty"] for o in win), frequency),
            "promo_share": _ratio(sum(o["promo"] for o in win), frequency),
            "return_rate": _ratio(ret_w, gross_w),
            "spend_trend": _ratio(gross_12m - gross_prev, gross_12m + gross_prev),
        }

    def _patterns(self, lines: Sequence[Line], orders: list[dict[str, Any]]) -> dict[str, Any]:
        orders = [o for o in orders if self._win(o["ts"])]
        days = sorted({o["day"] for o in orders})
        n = len(days)
        mean = (days[-1] - days[0]) / (n - 1) if n >= 2 else None
        cv = None
        if n >= 3:
            gaps = [float(b - a) for a, b in zip(days, days[1:], strict=False)]
            cv = _ratio(_stdev(gaps), mean)
        out: dict[str, Any] = {"ipt_mean_days": mean, "ipt_cv": cv}
        buys = [ln for ln in lines if self._is_buy(ln) and self._win(ln.ts)]
        for column, prefix, count_name in (("category", "top_category", "category_count"),
                                           ("channel", "main_channel", "channel_count")):
            spend: dict[str, list[float]] = defaultdict(list)
            for ln in buys:
                value = getattr(ln, column)
                if value is not None:
                    spend[value].append(ln.amount)  # type: ignore[arg-type]
            totals = {k: math.fsum(v) for k, v in spend.items()}
            if not totals:
                out.update({prefix: None, f"{prefix}_share": None, count_name: None})
                continue
            top = min(totals, key=lambda k: (-totals[k], k))
            out.update({prefix: top, f"{prefix}_share": _ratio(totals[top], math.fsum(totals.values())),
                        count_name: len(totals)})
        out["category_count"] = out["category_count"] or 0
        out["channel_count"] = out["channel_count"] or 0
        return out

    def _breadth(self, lines: Sequence[Line]) -> dict[str, Any]:
        buys = [ln for ln in lines if self._is_buy(ln)]
        out: dict[str, Any] = {}
        for column, total, last12 in (("product_id", "products_total", "products_12m"),
                                      ("category", "categories_total", "categories_12m")):
            known = [ln for ln in buys if getattr(ln, column) is not None]
            if not known:
                out[total] = out[last12] = None
                continue
            out[total] = len({getattr(ln, column) for ln in known})
            out[last12] = len({getattr(ln, column) for ln in known if ln.ts >= self.m12_start})
        return out

    def _seasonality(self, orders: list[dict[str, Any]]) -> dict[str, Any]:
        if not orders:
            return {"peak_quarter": None, "peak_quarter_share": None, "same_season_flag": False}
        yq: dict[tuple[int, int], int] = defaultdict(int)
        for o in orders:
            yq[(o["ts"].year, (o["ts"].month - 1) // 3 + 1)] += 1
        per_q: dict[int, int] = defaultdict(int)
        for (_, q), n in yq.items():
            per_q[q] += n
        peak = min(per_q, key=lambda q: (-per_q[q], q))
        share = _ratio(per_q[peak], sum(per_q.values()))
        years: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for (year, q), n in yq.items():
            years[year][0] += n
            years[year][1] += n if q == peak else 0
        ok = all(in_peak * 2 >= total for total, in_peak in years.values())
        return {"peak_quarter": peak, "peak_quarter_share": share,
                "same_season_flag": len(years) >= 2 and ok}

    # -- web, survey ----------------------------------------------------------------------
    def _web(self, events: Sequence[Event]) -> dict[str, Any]:
        events = [e for e in events if e.ts < self.s_ts]
        out: dict[str, Any] = {"visits_90d": 0, "product_views_90d": 0, "cart_adds_90d": 0,
                               "cart_abandonment_rate_90d": None, "browse_to_buy_90d": None,
                               "days_since_last_visit": None}
        if not events:
            return out
        out["days_since_last_visit"] = self.s_day - max(_day(e.ts) for e in events)
        sessions: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for e in events:
            if e.ts < self.web_start:
                continue
            key = e.session_id if e.session_id is not None else f"day:{_day(e.ts)}"
            kind = None if e.event_type is None else e.event_type.lower()
            s = sessions[key]
            s[0] += kind in PRODUCT_VIEW_TYPES
            s[1] += kind in CART_ADD_TYPES
            s[2] += kind in PURCHASE_TYPES
        if sessions:
            cart = sum(1 for s in sessions.values() if s[1] > 0)
            out.update({
                "visits_90d": len(sessions),
                "product_views_90d": sum(s[0] for s in sessions.values()),
                "cart_adds_90d": sum(s[1] for s in sessions.values()),
                "cart_abandonment_rate_90d": _ratio(sum(1 for s in sessions.values() if s[1] > 0 and s[2] == 0), cart),
                "browse_to_buy_90d": _ratio(sum(1 for s in sessions.values() if s[2] > 0), len(sessions)),
            })
        return out

    def _campaigns(self, exposures: Sequence[Exposure], orders: list[dict[str, Any]]) -> dict[str, Any]:
        treated = [e for e in exposures if self.m12_start <= e.ts < self.s_ts
                   and e.campaign_id is not None
                   and (e.arm is None or e.arm.lower() not in CONTROL_ARMS)]
        received = {e.campaign_id for e in treated}
        kinds = [(e, None if e.exposure_type is None else e.exposure_type.lower()) for e in treated]
        clicked = {e.campaign_id for e, k in kinds if k in CLICK_TYPES}
        opened = {e.campaign_id for e, k in kinds if k in OPEN_TYPES} | clicked
        out: dict[str, Any] = {"campaigns_received_12m": len(received),
                               "campaign_open_rate_12m": _ratio(len(opened), len(received)),
                               "campaign_click_rate_12m": _ratio(len(clicked), len(received)),
                               "campaign_response_rate_12m": None}
        first: dict[str, dt.datetime] = {}
        for e in treated:
            if e.campaign_id not in first or e.ts < first[e.campaign_id]:
                first[e.campaign_id] = e.ts
        cutoff = self.s_ts - dt.timedelta(days=RESPONSE_DAYS)
        eligible = {c: t0 for c, t0 in first.items() if t0 <= cutoff}
        if eligible:
            times = [o["ts"] for o in orders if o["ts"] >= self.m12_start]
            window = dt.timedelta(days=RESPONSE_DAYS)
            hits = {c for c, t0 in eligible.items() if any(t0 <= t < t0 + window for t in times)}
            out["campaign_response_rate_12m"] = _ratio(len(hits), len(eligible))
        return out

    def _answers(self, answers: Sequence[Answer]) -> dict[str, Any]:
        latest: dict[str, tuple[dt.datetime, str]] = {}
        for a in answers:
            if a.question is None or a.answer is None or a.ts >= self.s_ts:
                continue
            text = _SPACE.sub("", str(a.answer))
            column = self.question_column.get(a.question)
            if text == "" or column is None:
                continue
            if column not in latest or (a.ts, text) > latest[column]:
                latest[column] = (a.ts, text)
        out: dict[str, Any] = {}
        for column, (feature, _) in self.survey.items():
            text = latest[column][1] if column in latest else None
            out[column] = _to_float(text) if text is not None and feature.kind == "numeric" else text
        return out
