"""Money is summed exactly, and huge currencies do not overflow (features and feature state).

Amounts are summed as decimals of six places (``decimal(38, 6)``): a line of 9.3e12 or 5e13
currency units, or sums past 9.22e12 from several lines, overflowed the 64-bit integer
millionths the one pass used before (a DuckDB conversion error); 0.1 + 0.2 is 0.3. The
readable definition (``customer_features``), the one pass (``snapshot_features``) and the
carried feature state (``next_state`` / ``state_features``) are checked against sums of
Python ``decimal.Decimal`` converted to float, on the edge fixture of the one-pass test
plus three customers. The values have few significant digits, so their floats are exact
(DuckDB's decimal-to-double cast is not correctly rounded in the last bit for every value).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest
from tests.features._fixture import to_store
from tests.features.test_snapshot_features import S, _tx, assert_same_columns, edge_tables

from segflow.features import REQUIRED_TABLES, customer_features, snapshot_features
from segflow.features._state import MONEY, feature_state, next_state, state_features
from segflow.store import Store


def huge_rows() -> list[dict]:
    """Transaction lines of the customers ``h1``, ``h2`` and ``c`` (each order's lines
    share a time)."""
    t = pd.Timestamp
    return [
        # single lines past 9.22e12 (their millionths overflowed int64), one order of two
        _tx("h1", t("2023-03-10 10:00"), 9.3e12, "H1"),
        _tx("h1", t("2024-02-10 10:00"), 5e13, "H2", qty=3e13),
        _tx("h1", t("2024-02-10 10:00"), 9.3e12, "H2"),
        _tx("h1", t("2024-06-10 10:00"), 1e12, "H1-ret", ret=True),
        _tx("h1", t("2024-08-10 10:00"), -2.5e12, "H2-ret"),
        # lines under the limit whose sums pass it (one order of three lines, then more)
        _tx("h2", t("2023-08-01 09:00"), 4e12, "K1"),
        _tx("h2", t("2023-08-01 09:00"), 4e12, "K1"),
        _tx("h2", t("2023-08-01 09:00"), 4000000000000.5, "K1"),
        _tx("h2", t("2024-03-01 09:00"), 4.5e12, "K2"),
        _tx("h2", t("2024-09-15 09:00"), 3e12, "K3"),
        # cents: 0.1 + 0.2 is 0.3 (in doubles 0.30000000000000004)
        _tx("c", t("2024-01-15 12:00"), 0.1, "C1"),
        _tx("c", t("2024-01-15 12:00"), 0.2, "C1"),
        _tx("c", t("2024-02-15 12:00"), 0.3, "C2"),
        _tx("c", t("2024-03-15 12:00"), 0.1, "C1-ret", ret=True),
    ]


def huge_tables() -> dict[str, pd.DataFrame]:
    """The edge fixture of tests/features/test_snapshot_features.py plus :func:`huge_rows`."""
    tables = edge_tables()
    tables["transactions"] = pd.concat([tables["transactions"], pd.DataFrame(huge_rows())],
                                       ignore_index=True)
    return tables


def expected_money(rows: list[dict], snapshot: dt.date, window_days: int | None) -> pd.DataFrame:
    """Per customer: ``monetary``, ``monetary_12m``, ``monetary_prev_12m``,
    ``avg_order_value`` and ``return_rate`` from sums of :class:`decimal.Decimal` (each
    order's lines share one time, so line windows are order windows)."""
    s = pd.Timestamp(snapshot)
    out = {}
    for cust in sorted({r["customer_id"] for r in rows}):
        mine = [r for r in rows if r["customer_id"] == cust and r["ts"] < s]
        if not mine:  # not yet known
            continue
        start = s - pd.Timedelta(days=window_days) if window_days else pd.Timestamp.min

        def net(lo: pd.Timestamp, hi: pd.Timestamp, lines: list[dict] = mine) -> tuple:
            inside = [r for r in lines if lo <= r["ts"] < hi]
            buy = [r for r in inside if not r["is_return"] and r["amount"] >= 0]
            ret = [r for r in inside if r["is_return"] or r["amount"] < 0]
            gross = sum((Decimal(str(r["amount"])) for r in buy), Decimal(0))
            back = sum((abs(Decimal(str(r["amount"]))) for r in ret), Decimal(0))
            paid = len({r["transaction_id"] for r in buy if r["amount"] > 0})
            return gross, back, paid

        gross, back, paid = net(start, s)
        year, two = s - pd.Timedelta(days=365), s - pd.Timedelta(days=730)
        g12, r12, _ = net(year, s)
        gp, rp, _ = net(two, year)
        out[cust] = {
            "monetary": float(gross - back),
            "monetary_12m": float(g12 - r12),
            "monetary_prev_12m": float(gp - rp),
            "avg_order_value": float(gross) / paid if paid else None,
            "return_rate": float(back) / float(gross) if gross else None,
        }
    return pd.DataFrame.from_dict(out, orient="index")


def assert_money(got: pd.DataFrame, snapshot: dt.date, window_days: int | None,
                 rows: list[dict] | None = None) -> None:
    """The money columns of ``got`` (indexed by customer id) for the customers of ``rows``
    (default :func:`huge_rows`; no other lines of theirs in the data) equal
    :func:`expected_money` exactly (nulls equal)."""
    rows = huge_rows() if rows is None else rows
    want = expected_money(rows, snapshot, window_days)
    known = sorted(c for c in {r["customer_id"] for r in rows} if c in got.index)
    assert known == list(want.index), (snapshot, known)
    for name in want.columns:
        g = [None if pd.isna(v) else float(v) for v in got.loc[known, name]]
        w = [None if pd.isna(v) else float(v) for v in want[name]]
        assert g == w, (snapshot, window_days, name, g, w)


@pytest.fixture(scope="module")
def huge():
    store = Store(":memory:")
    to_store(store, huge_tables())
    yield {name: store.table(name) for name in REQUIRED_TABLES}
    store.close()


def test_the_fixture_overflows_64_bit_millionths_and_floating_point_sums_drift():
    # what the old code could not do, by the numbers of the fixture
    assert 5e13 * 1e6 > 2**63 and 9.3e12 * 1e6 > 2**63 > 4e12 * 1e6
    assert sum(Decimal(str(a)) for a in (4e12, 4e12, 4000000000000.5, 4.5e12)) * 10**6 > 2**63
    assert 0.1 + 0.2 != 0.3
    want = expected_money(huge_rows(), S[-1], None)
    assert want.loc["c", "monetary"] == 0.5 and want.loc["c", "avg_order_value"] == 0.3
    assert want.loc["h1", "monetary"] == 9.3e12 + 5e13 + 9.3e12 - 1e12 - 2.5e12


@pytest.mark.parametrize("window_days", [None, 90])
def test_one_pass_and_definition_sum_huge_amounts_exactly(huge, window_days):
    got = snapshot_features(huge, S, window_days=window_days).to_pandas()
    got["snapshot_date"] = pd.to_datetime(got["snapshot_date"])
    for s in S:
        one_pass = got[got.snapshot_date == pd.Timestamp(s)].set_index("customer_id")
        assert_money(one_pass, s, window_days)
        readable = customer_features(huge, s, window_days=window_days).to_pandas()
        assert_money(readable.set_index("customer_id"), s, window_days)
        # and every column of the one pass equals the definition (money exactly)
        readable = readable.sort_values("customer_id", ignore_index=True)
        mine = one_pass.reset_index().sort_values("customer_id", ignore_index=True)
        assert mine.customer_id.tolist() == readable.customer_id.tolist()
        assert_same_columns(mine, readable, readable.columns[1:])
    if window_days is None:  # quantities are exact too: 1 + 3e13 + 1 over two orders
        last = got[got.snapshot_date == pd.Timestamp(S[-1])].set_index("customer_id")
        assert last.loc["h1", "basket_size"] == (1 + 3e13 + 1) / 2


def test_the_carried_state_sums_huge_amounts_exactly(huge):
    state = feature_state(huge, S[0], window_days=90).cache()
    for a, b in zip(S, S[1:], strict=False):
        state = next_state(huge, state, a, b, window_days=90).cache()
        got = state_features(huge, state, b, window_days=90).to_pandas()
        assert_money(got.set_index("customer_id"), b, 90)
    # the state's money columns are exact decimals, and carried equals computed at once
    carried = state.to_pandas().set_index("customer_id").sort_index()
    full = feature_state(huge, S[-1], window_days=90).to_pandas().set_index("customer_id")
    assert all(isinstance(v, Decimal) for v in carried[list(MONEY)].to_numpy().ravel())
    pd.testing.assert_frame_equal(carried, full.sort_index()[carried.columns])
    assert carried.loc["h2", "_gross_w"] == Decimal("3000000000000")  # 90 days: K3 only
    assert carried.loc["h1", "_gross_prev"] == Decimal("9300000000000")
