"""The behavioural model behind the demo data: latent groups, their rates and transitions.

Everything the generator draws from is written here as plain constants, so the ground truth
(``truth/transition_matrix.csv``, ``truth/campaign_effects.csv``) is exactly what was used.
Units: rates are expected orders (or web sessions) per customer per calendar month before
seasonality; spends are currency units per order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Latent behavioural groups; ``churned`` is absorbing (no purchases, no way back).
GROUPS: tuple[str, ...] = (
    "champions",
    "regulars",
    "occasional",
    "browsers",
    "seasonal",
    "lapsing",
    "churned",
)
G = {name: i for i, name in enumerate(GROUPS)}

#: True monthly transition matrix: row = group in month m, column = group in month m+1.
TRANSITION_MATRIX = np.array(
    [
        # champ  reg   occ   brows  seas  laps  churn
        [0.90, 0.06, 0.01, 0.00, 0.00, 0.03, 0.00],  # champions
        [0.04, 0.86, 0.05, 0.00, 0.00, 0.05, 0.00],  # regulars
        [0.00, 0.05, 0.83, 0.03, 0.00, 0.07, 0.02],  # occasional
        [0.00, 0.00, 0.03, 0.92, 0.00, 0.02, 0.03],  # browsers
        [0.00, 0.01, 0.01, 0.00, 0.95, 0.02, 0.01],  # seasonal
        [0.00, 0.04, 0.06, 0.00, 0.00, 0.75, 0.15],  # lapsing
        [0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 1.00],  # churned
    ]
)

#: Group of a customer in the month of acquisition: the base existing at the start of the
#: data (month 0) is a mature mix; customers acquired later start as newcomers.
ENTRY_EXISTING = np.array([0.10, 0.22, 0.25, 0.13, 0.10, 0.12, 0.08])
ENTRY_NEW = np.array([0.03, 0.15, 0.45, 0.25, 0.12, 0.00, 0.00])

#: Share of customers that exist at the start of the data; the rest are acquired over the
#: following months, with acquisition growing linearly over time by ``ACQUISITION_GROWTH``.
EXISTING_SHARE = 0.35
ACQUISITION_GROWTH = 0.5

#: Expected orders per customer per month (before the calendar seasonality below).
ORDER_RATE = np.array([6.2, 2.8, 0.90, 0.05, 0.10, 0.45, 0.0])
#: The seasonal group buys mainly in these calendar months, at this rate instead.
SEASONAL_MONTHS = (11, 12)
SEASONAL_PEAK_RATE = 4.0
#: Mean spend per order (currency units); customers vary around it (gamma, shape 5).
SPEND_MEAN = np.array([85.0, 60.0, 45.0, 30.0, 75.0, 40.0, 40.0])
SPEND_SHAPE = 5.0
#: Expected web sessions without a purchase per customer per month: browsers browse a lot.
BROWSE_RATE = np.array([0.6, 0.4, 0.3, 3.0, 0.1, 0.25, 0.02])
#: Probability that a browsing session without purchase adds to the cart (abandoned cart).
CART_ADD_PROB = np.array([0.30, 0.25, 0.20, 0.45, 0.20, 0.20, 0.10])
#: Probability that a newly acquired customer places an order right at sign-up.
FIRST_ORDER_PROB = np.array([0.95, 0.95, 0.90, 0.15, 0.90, 0.90, 0.0])

#: Calendar seasonality of orders and sessions (January..December); December peaks.
SEASONALITY = np.array([0.85, 0.80, 0.95, 0.95, 1.00, 0.95, 0.95, 1.00, 1.00, 1.05, 1.25, 1.60])

#: Share of orders returned (a separate row with negative quantity and amount, id "R...").
RETURN_PROB = 0.04

CATEGORIES: tuple[str, ...] = (
    "electronics",
    "home",
    "fashion",
    "beauty",
    "sports",
    "books",
    "toys",
    "grocery",
)
CATEGORY_WEIGHTS = np.array([0.14, 0.16, 0.20, 0.10, 0.10, 0.10, 0.08, 0.12])
#: Probability that an order is in the customer's favourite category.
FAVOURITE_PROB = 0.5

CHANNELS: tuple[str, ...] = ("web", "app", "store")
CHANNEL_WEIGHTS = np.array([0.45, 0.25, 0.30])
#: Orders on these channels leave a web session (visit, views, cart add, purchase) in events.
SESSION_CHANNELS = (0,)
#: Share of customers who accepted analytics cookies: only their web sessions are in events.
TRACKED_SHARE = 0.6

PROMO_CODES: tuple[str, ...] = ("WELCOME10", "XMAS20", "SPRING15", "SUMMER10", "VIP5", "FREESHIP")
PROMO_PROB = 0.10

AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
AGE_WEIGHTS = np.array([0.12, 0.24, 0.22, 0.18, 0.14, 0.10])
#: Gender codes as they appear in the files; the demo mapping turns them into words.
GENDER_CODES: tuple[str, ...] = ("F", "M", "X")
GENDER_WEIGHTS = np.array([0.50, 0.47, 0.03])
GENDER_WORDS = {"F": "female", "M": "male", "X": "other"}
INCOME_BANDS: tuple[str, ...] = ("<25k", "25-50k", "50-100k", "100k+")
#: Income band weights per latent group at entry (champions earn more).
INCOME_WEIGHTS = np.array(
    [
        [0.10, 0.25, 0.40, 0.25],
        [0.15, 0.35, 0.35, 0.15],
        [0.25, 0.40, 0.27, 0.08],
        [0.30, 0.35, 0.25, 0.10],
        [0.15, 0.35, 0.35, 0.15],
        [0.25, 0.40, 0.27, 0.08],
        [0.25, 0.40, 0.27, 0.08],
    ]
)
#: (region, city, weight)
PLACES: tuple[tuple[str, str, float], ...] = (
    ("London", "London", 0.22),
    ("North West", "Manchester", 0.10),
    ("North West", "Liverpool", 0.05),
    ("West Midlands", "Birmingham", 0.09),
    ("Yorkshire", "Leeds", 0.07),
    ("Yorkshire", "Sheffield", 0.05),
    ("South West", "Bristol", 0.07),
    ("Scotland", "Glasgow", 0.07),
    ("Scotland", "Edinburgh", 0.06),
    ("Wales", "Cardiff", 0.05),
    ("North East", "Newcastle", 0.05),
    ("East", "Cambridge", 0.04),
    ("South East", "Brighton", 0.08),
)
SIGNUP_CHANNELS: tuple[str, ...] = ("web", "app", "store", "referral", "social")
SIGNUP_WEIGHTS = np.array([0.35, 0.25, 0.20, 0.10, 0.10])

#: Probability that a repeat order is the customer's home item again (else a random item).
HOME_PRODUCT_PROB = 0.5

LIFESTYLES: tuple[str, ...] = ("family", "professional", "student", "retired", "outdoor")
LIFESTYLE_WEIGHTS = np.array([0.30, 0.30, 0.15, 0.12, 0.13])
PRICE_SENSITIVITY: tuple[str, ...] = ("low", "medium", "high")
#: Price sensitivity per latent group at the time of the survey.
PRICE_WEIGHTS = np.array(
    [
        [0.55, 0.35, 0.10],
        [0.35, 0.45, 0.20],
        [0.15, 0.45, 0.40],
        [0.10, 0.35, 0.55],
        [0.30, 0.45, 0.25],
        [0.15, 0.40, 0.45],
        [0.15, 0.40, 0.45],
    ]
)
#: Share of customers answering the survey (once, at a random time after sign-up).
SURVEY_SHARE = 0.20

@dataclass(frozen=True)
class Campaign:
    """A campaign with a random control arm and a planted, group-specific effect.

    Every customer acquired before the send month is eligible. In the calendar month of the
    send, the order rate of a treated customer is multiplied by ``rate_multiplier[group]``
    (group = latent group in that month; 1 when absent). A treated customer in a group of
    ``migration`` moves to next month's group with that row instead of the base matrix row.
    """

    campaign_id: str
    at: float  # send month as a fraction of the data span
    control_share: float
    p_open: float
    p_click: float  # given an open
    rate_multiplier: dict[str, float] = field(default_factory=dict)
    migration: dict[str, tuple[float, ...]] = field(default_factory=dict)


#: The win-back campaign lifts lapsing customers a lot (purchases in the send month and their
#: chance to move back to regulars/occasional), occasional ones a little, nobody else; the
#: newsletter has no effect at all.
CAMPAIGNS: tuple[Campaign, ...] = (
    Campaign(
        "CMP_WINBACK", 0.5, 0.2, 0.30, 0.25,
        rate_multiplier={"lapsing": 2.5, "occasional": 1.3},
        migration={"lapsing": (0.00, 0.10, 0.14, 0.00, 0.00, 0.66, 0.10)},
    ),
    Campaign("CMP_NEWSLETTER", 0.25, 0.2, 0.40, 0.10),
)


def check_spec() -> None:
    """Sanity checks on the constants (rows of probability tables sum to 1)."""
    for name, arr in {
        "TRANSITION_MATRIX": TRANSITION_MATRIX,
        "INCOME_WEIGHTS": INCOME_WEIGHTS,
        "PRICE_WEIGHTS": PRICE_WEIGHTS,
    }.items():
        if not np.allclose(arr.sum(axis=1), 1.0):
            raise AssertionError(f"{name} rows must sum to 1")
    for name, vec in {
        "ENTRY_EXISTING": ENTRY_EXISTING,
        "ENTRY_NEW": ENTRY_NEW,
        "CATEGORY_WEIGHTS": CATEGORY_WEIGHTS,
        "CHANNEL_WEIGHTS": CHANNEL_WEIGHTS,
        "AGE_WEIGHTS": AGE_WEIGHTS,
        "GENDER_WEIGHTS": GENDER_WEIGHTS,
        "SIGNUP_WEIGHTS": SIGNUP_WEIGHTS,
        "LIFESTYLE_WEIGHTS": LIFESTYLE_WEIGHTS,
    }.items():
        if not np.isclose(vec.sum(), 1.0):
            raise AssertionError(f"{name} must sum to 1")
    for c in CAMPAIGNS:
        for row in c.migration.values():
            if len(row) != len(GROUPS) or not np.isclose(sum(row), 1.0):
                raise AssertionError(f"{c.campaign_id}: migration rows must sum to 1")
