"""Turn simulated NumPy arrays into the typed Arrow tables of the demo files.

Columns follow the fixed file contract of ``docs/demo-data.md``. Timestamps are
``timestamp[s]`` here (so ``strftime`` prints whole seconds) and are written to Parquet as
microseconds. Identifiers are strings: ``C000123`` customers, ``O000000042`` orders (returns
``R000000042``), ``S0000000007`` sessions, ``P01234`` items.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segflow.datasets import _spec as S

TS = pa.timestamp("s")


@dataclass(frozen=True)
class Offsets:
    """Global numbering of the chunk: ids continue across chunks."""

    customer: int  # number of customers in earlier chunks
    order: int
    session: int
    width: int  # digits of customer ids
    size: int = 0  # customers in this chunk


def ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded numbers, e.g. ``C000123``."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def lookup(values: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    """Strings from integer codes; a negative code is null."""
    codes = np.asarray(codes)
    return pa.array(list(values), pa.string()).take(pa.array(codes, mask=codes < 0))


def timestamps(seconds: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(seconds, dtype=np.int64), pa.int64()).cast(TS)


@lru_cache(maxsize=2)
def _chunk_customer_ids(first: int, n: int, width: int) -> pa.Array:
    return ids("C", first + np.arange(n) + 1, width)


def customer_ids(local: np.ndarray, off: Offsets) -> pa.Array:
    """Ids of the chunk's customers by local index (formatted once per chunk, then taken)."""
    local = np.asarray(local, dtype=np.int64)
    n = int(local.max()) + 1 if len(local) else 0
    n = max(n, off.size)
    return _chunk_customer_ids(off.customer, n, off.width).take(pa.array(local))


def customers_table(cust: dict[str, np.ndarray], off: Offsets) -> pa.Table:
    n = len(cust["acq"])
    local = np.arange(n)
    number = ids("", off.customer + local + 1, off.width)
    email = pc.binary_join_element_wise(pa.scalar("c"), number, pa.scalar("@example.com"), "")
    phone = ids("+44 7700 ", np.maximum(cust["phone"], 0), 6)
    region = lookup(tuple(p[0] for p in S.PLACES), cust["place"])
    city = lookup(tuple(p[1] for p in S.PLACES), cust["place"])
    return pa.table(
        {
            "customer_id": customer_ids(local, off),
            "created_at": timestamps(cust["created"]),
            "email": pc.if_else(pa.array(cust["has_email"]), email, pa.scalar(None, pa.string())),
            "phone": pc.if_else(pa.array(cust["phone"] >= 0), phone, pa.scalar(None, pa.string())),
            "age_band": lookup(S.AGE_BANDS, cust["age"]),
            "gender": lookup(S.GENDER_CODES, cust["gender"]),
            "income_band": lookup(S.INCOME_BANDS, cust["income"]),
            "region": region,
            "city": city,
            "signup_channel": lookup(S.SIGNUP_CHANNELS, cust["signup"]),
        }
    )


def transactions_table(orders: dict[str, np.ndarray], off: Offsets) -> pa.Table:
    digits = pc.utf8_lpad(pc.cast(pa.array(off.order + orders["seq"] + 1), pa.string()), 9, "0")
    prefix = pc.if_else(pa.array(orders["is_return"]), pa.scalar("R"), pa.scalar("O"))
    return pa.table(
        {
            "order_id": pc.binary_join_element_wise(prefix, digits, ""),
            "customer_id": customer_ids(orders["cust"], off),
            "order_date": timestamps(orders["ts"]),
            "amount": pa.array(orders["amount"], pa.float64()),
            "quantity": pa.array(orders["qty"], pa.int64()),
            "unit_price": pa.array(orders["unit"], pa.float64()),
            "category": lookup(S.CATEGORIES, orders["category"]),
            "channel": lookup(S.CHANNELS, orders["channel"]),
            "promo_code": lookup(S.PROMO_CODES, orders["promo"]),
            "product_id": ids("P", orders["product"], 5),
        }
    )


EVENT_TYPES = ("visit", "product_view", "cart_add", "purchase")


def events_table(ev: dict[str, np.ndarray], off: Offsets) -> pa.Table:
    order = np.lexsort((ev["session"], ev["ts"]))
    ev = {k: v[order] for k, v in ev.items()}
    visit = ev["type"] == 0
    return pa.table(
        {
            "customer_id": customer_ids(ev["cust"], off),
            "ts": timestamps(ev["ts"]),
            "event_type": lookup(EVENT_TYPES, ev["type"]),
            "item": pc.if_else(
                pa.array(visit), pa.scalar(None, pa.string()), ids("P", np.maximum(ev["item"], 0), 5)
            ),
            "category": pc.if_else(
                pa.array(visit), pa.scalar(None, pa.string()), lookup(S.CATEGORIES, ev["category"])
            ),
            "session_id": ids("S", off.session + ev["session"] + 1, 10),
        }
    )


def exposures_table(ex: dict[str, np.ndarray], off: Offsets) -> pa.Table:
    return pa.table(
        {
            "campaign_id": lookup(tuple(c.campaign_id for c in S.CAMPAIGNS), ex["campaign"]),
            "customer_id": customer_ids(ex["cust"], off),
            "ts": timestamps(ex["ts"]),
            "arm": lookup(("treatment", "control"), ex["arm"]),
            "exposure_type": lookup(("send", "open", "click"), ex["type"]),
        }
    )


def surveys_table(sv: dict[str, np.ndarray], off: Offsets) -> pa.Table:
    lifestyle = lookup(S.LIFESTYLES, sv["answer_lifestyle"])
    price = lookup(S.PRICE_SENSITIVITY, sv["answer_price"])
    return pa.table(
        {
            "customer_id": customer_ids(sv["cust"], off),
            "ts": timestamps(sv["ts"]),
            "question": lookup(("lifestyle", "price_sensitivity"), sv["question"]),
            "answer": pc.if_else(pa.array(sv["question"] == 0), lifestyle, price),
        }
    )


def latent_table(groups: np.ndarray, off: Offsets, first_month: str) -> pa.Table:
    """Long table (customer_id, month, group) for the months after acquisition."""
    cust, month = np.nonzero(groups >= 0)
    months = (np.datetime64(first_month, "M") + month).astype("datetime64[D]")
    return pa.table(
        {
            "customer_id": customer_ids(cust, off),
            "month": pa.array(months, pa.date32()),
            "group": lookup(S.GROUPS, groups[cust, month]),
        }
    )
