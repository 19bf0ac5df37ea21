"""The carried BTYD state (models/_btyd_state) against the summaries from all history."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pandas as pd
import pytest

from segflow.models import btyd_summary, purchase_days, tracking_curves
from segflow.models._btyd_state import (
    COLUMNS,
    advanced_states,
    full_states,
    state_dates,
    stored_states,
    write_states,
)
from segflow.store import Store

L0 = dt.date(2024, 12, 1)  # the stored state's date
L = dt.date(2025, 1, 1)  # the new month's snapshot


def _lines() -> pd.DataFrame:
    """Two years of lines: random customers plus the edge cases named below."""
    rng = np.random.default_rng(7)
    rows = []
    start = pd.Timestamp("2023-06-01")
    for cid in range(250):
        for off in np.sort(rng.integers(0, 600, size=rng.integers(1, 9))):
            ts = start + pd.Timedelta(days=int(off), hours=int(rng.integers(0, 23)))
            rows.append((f"c{cid}", ts, float(rng.integers(1, 10_000)) / 100, False))
            if rng.random() < 0.2:  # a second purchase the same day
                rows.append((f"c{cid}", ts + pd.Timedelta(minutes=3), 0.01 * rng.integers(1, 999), False))
            if rng.random() < 0.1:  # a refund the same day
                rows.append((f"c{cid}", ts + pd.Timedelta(minutes=7), -3.5, True))
    day = pd.Timestamp
    rows += [
        ("last_day", day("2024-12-31 22:00"), 12.25, False),  # first seen on L's last day
        ("new_in_month", day("2024-12-03 09:00"), 5.0, False),  # first seen in the new month
        ("new_in_month", day("2024-12-20 09:00"), 7.0, False),  # ... and returns in it
        ("returns", day("2024-03-01 10:00"), 40.0, False),  # back after a long gap
        ("returns", day("2024-12-15 10:00"), 41.5, False),
        ("returns", day("2024-12-15 18:00"), 0.0, False),  # a zero-value line: a purchase
        ("zero_day", day("2024-11-02 10:00"), 0.0, False),  # a zero-value purchase day
        ("zero_day", day("2024-12-02 10:00"), 3.0, False),
        ("refund_only", day("2024-12-05 10:00"), -20.0, True),  # a return-only customer
        ("net_negative", day("2024-10-10 10:00"), 5.0, False),  # more returned than bought
        ("net_negative", day("2024-10-10 11:00"), -50.0, True),
        ("net_negative", day("2024-12-10 11:00"), 9.0, False),
        ("net_negative", day("2024-12-11 11:00"), -4.0, True),  # return-only day in the month
        ("after", day("2025-01-03 10:00"), 8.0, False),  # first purchase after L
        ("c1", day("2025-01-05 10:00"), 8.0, False),  # a purchase after L
        ("early", day("2024-07-03 10:00"), 1.0, False),  # around L - 182 d and L0 - 182 d
        ("early", day("2024-06-04 10:00"), 2.0, False),
        ("early", day("2024-01-03 10:00"), 3.0, False),  # around L - 364 d
        ("infinite", day("2024-05-05 10:00"), 10.0, False),  # a spend no decimal holds
        ("infinite", day("2024-08-08 10:00"), float("inf"), False),
        ("infinite", day("2024-12-12 10:00"), 5.0, False),
    ]
    return pd.DataFrame(rows, columns=["customer_id", "ts", "amount", "is_return"])


def _counts(lines: pd.DataFrame) -> dict[str, int]:
    """What the warnings count, in pandas: a day is a purchase day when it has a line that
    is not a return and not negative."""
    lines = lines.assign(day=lines.ts.dt.normalize(),
                         buy=~lines.is_return & (lines.amount >= 0))
    days = lines.groupby(["customer_id", "day"]).agg(
        purchase=("buy", "any"), net=("amount", "sum")).reset_index()
    first = days[days.purchase].groupby("customer_id").day.min()
    return {"customers": lines.customer_id.nunique(),
            "born_after": int((first >= pd.Timestamp(L)).sum()),
            "only_returns": lines.customer_id.nunique() - len(first),
            "nonpositive_days": int((~days.purchase).sum()),
            "net_negative_days": int((days.purchase & (days.net < 0)).sum())}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with Store(tmp_path_factory.mktemp("btyd_state") / "segflow.duckdb") as s:
        s.raw.register("lines", _lines())
        s.raw.execute("CREATE TABLE tx AS SELECT * FROM lines")
        yield s


def _frame(table) -> pd.DataFrame:
    frame = table.execute()
    return frame.sort_values(list(frame.columns[:2]), ignore_index=True)


def _same(a, b, **kw) -> None:
    pd.testing.assert_frame_equal(_frame(a), _frame(b), check_dtype=False, **kw)


def test_a_state_carried_one_month_equals_the_state_from_all_history(store):
    tx = store.table("tx")
    days = purchase_days(tx, end=None).cache()
    prior = full_states(days, L0)
    write_states(store, prior)
    stored = stored_states(store, tx, L0)
    assert stored is not None and stored_states(store, tx, L) is None
    carried = advanced_states(stored, tx, L)
    full = full_states(days, L)
    for d in state_dates(L):
        _same(carried.states[d].select("customer_id", *COLUMNS), full.states[d])
    _same(carried.repeat_days, full.repeat_days)
    assert carried.exclusion_counts(L) == full.exclusion_counts(L) == _counts(_lines())
    # the summaries from the state equal btyd_summary of every line
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = btyd_summary(tx, calibration_end=L, time_unit="W", warn=False)
        held = btyd_summary(tx, calibration_end=state_dates(L)[1], observation_end=L,
                            time_unit="W", warn=False)
    summary = carried.summary(L, time_unit="W")
    _same(summary, expected, check_exact=True)
    assert summary.filter(summary.customer_id == "last_day").execute()["T"].tolist() == [0.0]
    assert summary.filter(summary.customer_id == "infinite").execute().monetary_value.tolist() == [np.inf]
    _same(carried.holdout_summary(state_dates(L)[1], L, time_unit="W"), held, check_exact=True)
    # the tracking curves from the repeat days equal those from the purchase days
    from segflow.models import BetaGeoModel, compress

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence on 260 customers: not what is tested
        model = BetaGeoModel().fit(compress(held.filter(held["T"] > 0)))
    pd.testing.assert_frame_equal(
        tracking_curves(tx, held, model, repeat_days=carried.repeat_days),
        tracking_curves(tx, held, model, days=days), check_dtype=False)
    for s in (carried, full):
        s.release()
    days.release()


def test_the_clv_stage_carries_the_stored_state_and_drops_it_when_it_fails(tmp_path, monkeypatch):
    import segflow.models._btyd_state as btyd_state
    from segflow.errors import InputError
    from segflow.models._run_scores import score_clv

    with Store(tmp_path / "segflow.duckdb") as store:
        store.raw.register("lines", _lines())
        store.raw.execute("INSERT INTO transactions BY NAME SELECT * FROM lines")
        tx = store.table("transactions")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kept: dict = {}
            assert score_clv(store, tx, L0, "r0", keep=kept) > 0  # no stored state: all history
            kept["btyd_states"].release()
            stored = "SELECT DISTINCT as_of FROM btyd_state ORDER BY 1"
            assert store.raw.execute(stored).fetchall() == [(d,) for d in state_dates(L0)]
            carries = []
            advance = btyd_state.advanced_states
            monkeypatch.setattr(btyd_state, "advanced_states",
                                lambda prior, *a, **k: carries.append(prior.as_of) or advance(prior, *a, **k))
            kept = {}
            notes: list[str] = []
            n = score_clv(store, tx, L, "r1", keep=kept, carried_from=L0, notes=notes)
            assert carries == [L0] and n == store.raw.execute(
                "SELECT count(*) FROM customer_scores WHERE snapshot_date = ?", [L]).fetchone()[0] > 0
            counts = _counts(_lines())
            assert any(f"excluded {counts['born_after']} of {counts['customers']} customers whose "
                       in note for note in notes), notes
            kept["btyd_states"].release()
            assert store.raw.execute(stored).fetchall() == [(d,) for d in state_dates(L)]

            def fail(*a, **k):
                raise InputError("disk full")

            monkeypatch.setattr(btyd_state, "write_states", fail)
            notes = []
            assert score_clv(store, tx, L, "r2", keep={}, carried_from=L0, notes=notes) == 0
            assert "disk full" in notes[-1]
        # a failed state is not left behind for the next run to carry
        assert not {"btyd_state", "btyd_repeat_days"} & set(store.tables())
