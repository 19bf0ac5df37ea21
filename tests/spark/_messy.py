"""A messy export for tests/spark/test_warehouse_messy.py: what real exports hold.

Customers (CSV, day-first two-digit years), orders (CSV with ``;``, thousand separators,
month-first dates in two formats, credit notes) and refunds (Parquet as pandas writes it:
nanosecond timestamps, a decimal column), all in local time of ``Europe/Berlin``. Ids have
22 digits with leading zeros. Filler customers fall in groups with identical histories
(exact ties of recency, frequency and money on the quantile cut points) or follow a seeded
buy-and-die process (so that BG/NBD can be fitted); the named customers below carry the
edge cases, each with a value worked out by hand in the test.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

#: The inter-purchase gaps of customer G (days): ipt_cv = sqrt(7340 / 30) / (238 / 6).
GAPS = [17, 48, 23, 51, 45, 54]
#: G's ipt_cv, written as the rule of the ``named`` scheme reads it (Python's repr).
G_IPT_CV = "0.3943317044252123"


def cid(i: int) -> str:
    """A 22-digit customer id with two leading zeros (beyond 2^64 as a number)."""
    return f"00{12345678901234567890 + i}"


#: The named customers.
A, B, C, W, G, N1, E, D, Z, R, H = (cid(i) for i in range(1, 12))
FILLER = 80

TOML = """
[project]
name = "messy export"
currency = "EUR"

[periods]
granularity = "month"
start = 2024-02-01
end = 2024-12-01

[rfm]
bins = 4

[[sources]]
name = "crm"
table = "customers"
path = "data/customers.csv"
date_formats = ["%d.%m.%y %H:%M", "%d.%m.%y"]
timezone = "Europe/Berlin"
max_date = 2025-01-01
[sources.columns]
customer_id = "Kundennummer"
created_at = "Anmeldung"
gender = "Geschlecht"
region = "Region"
[sources.value_maps.gender]
M = "male"
F = "female"

[[sources]]
name = "orders"
table = "transactions"
path = "data/orders.csv"
date_formats = ["%m/%d/%Y %H:%M:%S", "%m/%d/%y %H:%M"]
timezone = "Europe/Berlin"
max_date = 2025-01-01
credit_note_prefix = "CN"
options = { delimiter = ";", thousands = "," }
[sources.columns]
transaction_id = "Order No"
customer_id = "Customer"
ts = "Order Date"
amount = "Total"
quantity = "Qty"

[[sources]]
name = "refunds"
table = "transactions"
path = "data/refunds.parquet"
timezone = "Europe/Berlin"
max_date = 2025-01-01
[sources.columns]
transaction_id = "refund_id"
customer_id = "customer"
ts = "refunded_at"
amount = "= -refund"
is_return = "'true'"

[[schemes]]
name = "rfm"
kind = "rfm"

[[schemes]]
name = "rfm_ntile"
kind = "rfm"
score_method = "ntile"

[[schemes]]
name = "lifecycle"
kind = "lifecycle"

[[schemes]]
name = "value_tiers"
kind = "value_tiers"
tiers = [10.0, 25.0, 50.0]

[[schemes]]
name = "named"
kind = "rules"
ordered = true
rules = [
  { segment = "Steady", when = "ipt_cv = G_IPT_CV" },
  { segment = "Zentrum", when = "region = 'Zentrum'" },
  { segment = "Whale", when = "monetary >= 1000000" },
  { segment = "Returner", when = "return_rate > 0" },
  { segment = "Freebie", when = "monetary = 0 and frequency > 0" },
]

[[schemes]]
name = "orders_so_far"
kind = "rules"
ordered = true
default = "None"
rules = [
  { segment = "Repeat", when = "frequency >= 2" },
  { segment = "Once", when = "frequency = 1" },
]

[[schemes]]
name = "clusters"
kind = "cluster"
k = 3
""".replace("G_IPT_CV", G_IPT_CV)

#: Quarantined rows per (source, rule), and rows per load (read, accepted, quarantined,
#: duplicate): worked out from the rows written below (see the comments there); the orders'
#: load has 3 duplicates and the rows of its rules quarantined, the rest accepted.
WANT_RULES = {
    ("crm", "unparseable_date"): 1,
    ("crm", "missing_customer_id"): 3,
    ("crm", "conflicting_id"): 1,
    ("orders", "missing_transaction_id"): 1,
    ("orders", "unknown_customer"): 1,
    ("orders", "unparseable_date"): 2,
    ("orders", "non_numeric_amount"): 4,
    ("orders", "missing_amount"): 1,
    ("orders", "missing_date"): 1,
    ("orders", "future_date"): 1,
    ("orders", "imprecise_amount"): 1,
    ("orders", "return_sign"): 1,
    ("orders", "conflicting_id"): 1,
}
WANT_LOADS = {
    "crm": (FILLER + 11 + 6, FILLER + 11, 5, 1),
    "refunds": (5, 5, 0, 0),
}

#: Refund rows: id, customer, local time (naive, Berlin), refund; and its UTC time.
REFUNDS = [
    ("RF1", B, dt.datetime(2024, 6, 15, 10), "2000000000000.000000", dt.datetime(2024, 6, 15, 8)),
    # 02:30 does not exist on 31 March in Berlin: read with the offset before the change
    ("RF2", D, dt.datetime(2024, 3, 31, 2, 30), "5.000001", dt.datetime(2024, 3, 31, 1, 30)),
    # 02:30 happens twice on 27 October: the second, standard-time one
    ("RF3", D, dt.datetime(2024, 10, 27, 2, 30), "1.000000", dt.datetime(2024, 10, 27, 1, 30)),
    ("RF4", None, dt.datetime(2024, 5, 1), "1.000000", dt.datetime(2024, 4, 30, 22)),
    ("RF5", R, dt.datetime(2024, 1, 28, 23, 59, 59), "10.500000", dt.datetime(2024, 1, 28, 22, 59, 59)),
]


def _us(t: dt.datetime) -> str:
    return t.strftime("%m/%d/%Y %H:%M:%S")


def build(root: Path) -> dict[str, list[str]]:
    """Write the three files under ``root/data``; returns the order lines (as written) of
    each named customer, for sums worked out apart from segflow."""
    rnd = random.Random(50)
    data = root / "data"
    data.mkdir(parents=True)
    # -- customers: 80 filler + 11 named accepted; a duplicate; 5 quarantined ---------------
    crm = ["Kundennummer,Anmeldung,Geschlecht,Region"]
    genders, regions = ["M", "F", "NA", "NULL", "", "d"], ["Nord", "Sued", "NA", ""]
    for i in range(FILLER):
        day = dt.date(2023, 11, 1) + dt.timedelta(days=(i * 7) % 120)
        when = day.strftime("%d.%m.%y") + ("" if i % 5 == 0 else f" {(i * 5) % 24:02d}:{(i * 13) % 60:02d}")
        crm.append(f"{cid(100 + i)},{when},{genders[i % 6]},{regions[i % 4]}")
    named = {A: "Zentrum", B: "Zentrum", C: "Zentrum", W: "Nord", G: "Sued", N1: "West", E: "Ost",
             D: "West", Z: "Nord", R: "Sued", H: "Ost"}
    for c, region in named.items():
        when = {N1: "31.03.24 23:59", D: "31.03.24 02:30"}.get(c, "02.01.24 09:00")
        crm.append(f"{c},{when},F,{region}")
    crm += [
        f"{cid(12)},31.02.24 10:00,F,Nord",  # unparseable_date
        ",01.02.24 10:00,F,Nord", "NULL,01.02.24 10:00,F,Nord", "NA,01.02.24,M,Sued",  # missing ids
        crm[1],  # an exact duplicate of the first filler row
        f"{cid(101)},02.01.24 10:00,M,Ost",  # another version of filler 1: conflicting_id
    ]
    (data / "customers.csv").write_text("\n".join(crm) + "\n")

    # -- orders -----------------------------------------------------------------------
    lines = ["Order No;Customer;Order Date;Total;Qty"]
    mine: dict[str, list[str]] = {}
    number = iter(range(100001, 200000))

    def order(cust: str, when: str, amount: str, qty: str = "1", no: str | None = None) -> None:
        lines.append(";".join([no or f"{next(number):08d}", cust, when, amount, qty]))
        mine.setdefault(cust, []).append(amount)

    # named customers first (lowest order numbers: the audit's examples below)
    order(A, "05/05/2024 12:00:00", "1,000,000,000,000.00")
    order(A, "06/06/2024 12:00:00", "1,000,000,000,000.00")
    order(A, "07/07/2024 12:00:00", "0.10")
    order(B, "02/02/2024 12:00:00", "0.20")
    order(C, "03/03/2024 12:00:00", "0.30")
    for month in (4, 5, 6):
        order(W, f"{month:02d}/04/2024 04:00:00", "1,234,567,890,123.45")
    day = dt.datetime(2024, 1, 2, 10)
    order(G, _us(day), "25.00")
    for gap in GAPS:
        day += dt.timedelta(days=gap)
        order(G, _us(day), "25.00")
    order(N1, "03/31/2024 23:59:59", "42.00")  # 21:59:59 UTC, the last day before April
    order(E, "05/01/2024 01:59:59", "30.00")  # 2024-04-30 23:59:59 UTC: before May's snapshot
    order(E, "05/01/2024 02:00:00", "30.00")  # 2024-05-01 00:00:00 UTC: after it
    order(D, "03/31/2024 02:30:00", "10.00")
    order(D, "10/27/24 02:30", "10.00")
    order(Z, "07/31/2024 23:59:59", "0")
    order(Z, "08/01/2024 00:00:00", "0.00")
    order(R, "03/03/2024 12:00:00", "100.00")
    order(R, "03/10/2024 12:00:00", "-100.00", "-1", no="CN000001")
    order(H, "02/02/2024 12:00:00", "999,999,999.123456")
    order(H, "03/03/2024 12:00:00", "12.345678")
    order(H, "08/08/2024 12:00:00", "1000000000000")
    # filler: half in groups of identical histories, half bought-and-gone at random
    groups = [
        [("01/15/2024 10:00:00", "100.00")],
        [("02/01/2024 00:00:00", "50.00"), ("03/01/24 00:00", "50.00")],
        [("04/30/2024 23:59:59", "1,234.50")],
        [("06/10/24 12:00", "19.99"), ("07/10/2024 12:00:00", "19.99"), ("08/10/2024 12:00:00", "0")],
    ]
    for i in range(FILLER):
        c = cid(100 + i)
        if i % 2 == 0:
            for when, amount in groups[(i // 2) % 4]:
                order(c, when, amount)
            continue
        t = dt.datetime(2024, 1, 3) + dt.timedelta(days=rnd.randrange(0, 60), hours=rnd.choice([0, 1, 22, 23]))
        rate, drop = rnd.gammavariate(0.9, 1 / 20), rnd.betavariate(1.2, 3.0)
        while t < dt.datetime(2024, 11, 25):
            order(c, _us(t) if rnd.random() < 0.5 else t.strftime("%m/%d/%y %H:%M"),
                  rnd.choice(["19.99", "1,299.00", "5", "49.5", "12.345678", "2,500.75"]),
                  rnd.choice(["1", "2"]))
            if rnd.random() < drop:
                break
            t += dt.timedelta(days=max(1, int(rnd.expovariate(max(rate, 1e-3)))), minutes=rnd.choice([0, 59]))
    f0 = cid(100)
    lines += [
        f"{next(number):08d};NA;02/02/2024 12:00:00;10.00;1",  # anonymous (kept)
        f"{next(number):08d};;02/03/2024 12:00:00;11.00;1",  # anonymous (kept)
        f";{f0};02/04/2024 12:00:00;12.00;1",  # missing_transaction_id
        f"{next(number):08d};{cid(99999)};02/04/2024 12:00:00;13.00;1",  # unknown_customer
        f"{next(number):08d};{f0};13/45/2024 10:00:00;10.00;1",  # unparseable_date
        f"{next(number):08d};{f0};02/30/2024 10:00:00;10.00;1",  # unparseable_date
        f"{next(number):08d};{f0};02/03/2024 10:00:00;12 EUR;1",  # non_numeric_amount
        f"{next(number):08d};{f0};02/03/2024 10:00:00;1.234,5;1",  # non_numeric_amount
        f"{next(number):08d};{f0};02/03/2024 10:00:00;1,00;1",  # non_numeric_amount
        f"{next(number):08d};{f0};02/03/24 10:00;1e20;1",  # non_numeric_amount (>= 1e20)
        f"{next(number):08d};{f0};02/03/2024 10:00:00;NA;1",  # missing_amount
        f"{next(number):08d};{f0};;10;1",  # missing_date
        f"{next(number):08d};{f0};12/31/2099 10:00:00;10;1",  # future_date
        f"{next(number):08d};{f0};02/03/24 10:00;1000000000000000.01;1",  # imprecise_amount
        f"CN900001;{f0};02/03/24 10:00;10.00;1",  # a credit note with a positive amount
    ]
    lines += [lines[5], lines[9], lines[30]]  # exact duplicates
    conflict = lines[40].split(";")
    conflict[3] = "1.00"
    lines.append(";".join(conflict))  # another version of an order id: conflicting_id
    (data / "orders.csv").write_text("\n".join(lines) + "\n")

    # -- refunds: Parquet as pandas writes it (nanosecond timestamps) ---------------------
    pq.write_table(pa.table({
        "refund_id": [r[0] for r in REFUNDS],
        "customer": pa.array([r[1] for r in REFUNDS], pa.string()),
        "refunded_at": pa.array([r[2] for r in REFUNDS], pa.timestamp("ns")),
        "refund": pa.array([Decimal(r[3]) for r in REFUNDS], pa.decimal128(20, 6)),
    }), data / "refunds.parquet")
    for r in REFUNDS:
        if r[1] is not None:
            mine.setdefault(r[1], []).append("-" + r[3])
    return mine


def exact(amounts: list[str]) -> Decimal:
    """The sum of amounts as written (thousand separators dropped)."""
    return sum((Decimal(a.replace(",", "")) for a in amounts), Decimal(0))
