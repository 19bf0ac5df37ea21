"""btyd_summary and compress against an independent pandas computation."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pytest

from segflow.errors import InputError
from segflow.models import btyd_summary, compress

CAL_END = dt.date(2024, 4, 1)
OBS_END = dt.date(2024, 7, 1)


def _log(seed: int = 3, n_customers: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    start = pd.Timestamp("2024-01-01")
    for cid in range(n_customers):
        n = rng.integers(1, 12)
        offsets = np.sort(rng.integers(0, 180, size=n))
        for off in offsets:
            ts = start + pd.Timedelta(days=int(off), hours=int(rng.integers(0, 23)))
            rows.append((f"c{cid}", ts, float(rng.integers(1, 100))))
            if rng.random() < 0.15:  # a second line the same day
                rows.append((f"c{cid}", ts + pd.Timedelta(minutes=5), float(rng.integers(1, 50))))
            if rng.random() < 0.05:  # a return the same day
                rows.append((f"c{cid}", ts + pd.Timedelta(minutes=9), -5.0))
    # a return-only day and a customer with returns only
    rows.append(("c0", pd.Timestamp("2024-03-30 10:00"), -20.0))
    rows.append(("ret", pd.Timestamp("2024-02-01 10:00"), -10.0))
    return pd.DataFrame(rows, columns=["customer_id", "ts", "amount"])


def _pandas_summary(log: pd.DataFrame, unit: float) -> pd.DataFrame:
    """Independent computation: loops over customers on purpose."""
    out = []
    log = log.assign(day=log.ts.dt.normalize())
    for cid, g in log.groupby("customer_id"):
        # spend of a day: its purchase lines (amount >= 0); returns are not netted
        g = g.assign(buy=g.amount.where(g.amount >= 0))
        days = g.groupby("day").agg(amount=("buy", "sum"), top=("amount", "max"))
        days = days[days.top >= 0]
        cal = days[days.index < pd.Timestamp(CAL_END)]
        if cal.empty:
            continue
        first, last = cal.index.min(), cal.index.max()
        x = len(cal) - 1
        hold = days[(days.index >= pd.Timestamp(CAL_END)) & (days.index < pd.Timestamp(OBS_END))]
        window = cal[cal.index >= pd.Timestamp(CAL_END) - (pd.Timestamp(OBS_END) - pd.Timestamp(CAL_END))]
        out.append(
            {
                "x_last_period": len(window),
                "last_period_spend": window.amount.sum(),
                "customer_id": cid,
                "x": x,
                "t_x": (last - first).days / unit,
                "T": (pd.Timestamp(CAL_END) - pd.Timedelta(days=1) - first).days / unit,
                "monetary_value": cal.amount.iloc[1:].mean() if x > 0 else np.nan,
                "x_holdout": len(hold),
                "holdout_spend": hold.amount.sum(),
            }
        )
    return pd.DataFrame(out).sort_values("customer_id", ignore_index=True)


@pytest.mark.parametrize(("unit", "days"), [("W", 7.0), ("day", 1.0), ("month", 365.25 / 12)])
def test_summary_matches_pandas(unit: str, days: float) -> None:
    log = _log()
    table = ibis.memtable(log)
    with pytest.warns(UserWarning) as record:
        got = btyd_summary(
            table, calibration_end=CAL_END, observation_end=OBS_END, time_unit=unit
        ).execute()
    got = got.sort_values("customer_id", ignore_index=True)
    want = _pandas_summary(log, days)
    assert list(got.customer_id) == list(want.customer_id)
    cols = ("x", "t_x", "T", "monetary_value", "x_holdout", "holdout_spend", "x_last_period",
            "last_period_spend")
    for col in cols:
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float), err_msg=col)
    assert set(got.duration_holdout) == {(OBS_END - CAL_END).days / days}
    messages = " ".join(str(w.message) for w in record)
    born_after = log.groupby("customer_id").ts.min().dt.date.ge(CAL_END).sum()
    assert born_after > 0
    assert f"excluded {born_after} of" in messages
    assert "1 of" in messages and "have no purchase" in messages


def test_no_data_after_calibration_end_used() -> None:
    log = _log()
    table = ibis.memtable(log)
    cut = btyd_summary(
        ibis.memtable(log[log.ts < pd.Timestamp(CAL_END)]), calibration_end=CAL_END, warn=False
    ).execute()
    full = btyd_summary(table, calibration_end=CAL_END, warn=False).execute()
    pd.testing.assert_frame_equal(
        cut.sort_values("customer_id", ignore_index=True),
        full.sort_values("customer_id", ignore_index=True),
    )


def test_compress_counts() -> None:
    summary = btyd_summary(ibis.memtable(_log()), calibration_end=CAL_END, warn=False)
    triples = compress(summary)
    per = summary.execute()
    assert triples["count"].sum() == len(per)
    want = per.groupby(["x", "t_x", "T"]).size().reset_index(name="count")
    pd.testing.assert_frame_equal(
        triples.reset_index(drop=True), want, check_dtype=False
    )
    assert compress(per)["count"].tolist() == triples["count"].tolist()


def test_bad_inputs() -> None:
    table = ibis.memtable(_log())
    with pytest.raises(InputError, match="lack the column 'when'"):
        btyd_summary(table, calibration_end=CAL_END, ts_col="when")
    with pytest.raises(InputError, match="unknown time unit"):
        btyd_summary(table, calibration_end=CAL_END, time_unit="fortnight")
    with pytest.raises(InputError, match="must be after"):
        btyd_summary(table, calibration_end=CAL_END, observation_end=CAL_END)
    with pytest.raises(InputError, match="expected a date"):
        btyd_summary(table, calibration_end="April")


def test_discrete_summary_calendar_months() -> None:
    from segflow.models import discrete_summary

    log = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "c", "c", "d"],
            "ts": pd.to_datetime(
                ["2020-01-05", "2020-03-01", "2020-03-09", "2020-02-01", "2020-01-01",
                 "2020-06-30", "2020-07-02"]
            ),
            "amount": [1.0, 2, 3, 4, 5, 6, 7],
        }
    )
    got = discrete_summary(ibis.memtable(log), calibration_end="2020-07-01").execute()
    got = got.sort_values("customer_id", ignore_index=True)
    # a: acquired in January (period 0), buys again in March (period 2; two days, one period);
    # n counts the periods Feb..Jun after acquisition. d is acquired after the end.
    want = pd.DataFrame(
        {"customer_id": ["a", "b", "c"], "x": [1, 0, 1], "t_x": [2, 0, 5], "n": [5, 4, 5]}
    )
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)


def test_not_yet_acquired_warning_names_the_first_day_after_calibration() -> None:
    # calibration_end is exclusive: a customer first buying on it is not yet acquired. The
    # warning called that day "the calibration end", which `clv fit --calibration-end`
    # (inclusive: the day before) printed beside its own, different calibration end.
    table = ibis.memtable(pd.DataFrame({
        "customer_id": ["a", "a", "b"],
        "ts": pd.to_datetime(["2025-06-01 10:00", "2025-06-30 23:00", "2025-07-01 00:00"]),
        "amount": [10.0, 20.0, 5.0],
    }))
    with pytest.warns(UserWarning) as record:
        got = btyd_summary(table, calibration_end=dt.date(2025, 7, 1), time_unit="D").execute()
    assert list(got.customer_id) == ["a"]  # b's first purchase is on 2025-07-01: excluded
    assert list(got["T"]) == [29.0]  # 2025-06-01 to 2025-06-30, the last calibration day
    messages = " ".join(str(w.message) for w in record)
    assert ("excluded 1 of 2 customers whose first purchase is on or after 2025-07-01, "
            "the first day after the calibration period") in messages
