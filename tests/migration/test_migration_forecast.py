"""The segment-size forecast (segflow.migration.segment_forecast) against a hand computation:
pair counts written down from customer paths, then numpy matrix powers."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pytest

from segflow.errors import SegflowError
from segflow.migration import pooled_transition_matrix, segment_forecast

DATES = [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1), dt.date(2024, 4, 1)]
RANKS = {"A": 1, "B": 2, "C": 3}
#: Customer paths over the four snapshots ("-" = not assigned) and how many customers follow
#: each: stays, moves, two leavers, entries at d1 and d2, and C, which only exists at d3 (its
#: exits are never observed).
PATHS = {
    "AAAA": 10,
    "ABBA": 4,
    "BBAA": 3,
    "B---": 2,
    "-AAA": 5,
    "--BB": 3,
    "AAB-": 2,
    "---C": 2,
    "BABB": 1,
    "-BA-": 2,
}
STATES = ["A", "B", "C", "(gone)"]


def _assignments(dates: list[dt.date], paths: dict[str, int]) -> ibis.Table:
    rows, n = [], 0
    for path, customers in paths.items():
        for _ in range(customers):
            n += 1
            rows += [(f"c{n}", d, s) for d, s in zip(dates, path, strict=True) if s != "-"]
    frame = pd.DataFrame(rows, columns=["customer_id", "snapshot_date", "segment"])
    frame["scheme"] = "toy"
    frame["segment_rank"] = frame["segment"].map(RANKS)
    return ibis.memtable(frame)


def _pair_counts(paths: dict[str, int]) -> list[dict[tuple[str, str], int]]:
    """Counts of each pair, from the paths by hand: (from, to) with (new) and (gone)."""
    length = len(next(iter(paths)))
    out: list[dict[tuple[str, str], int]] = [{} for _ in range(length - 1)]
    for path, customers in paths.items():
        for k in range(length - 1):
            a, b = path[k], path[k + 1]
            if a == "-" and b == "-":
                continue
            key = ("(new)" if a == "-" else a, "(gone)" if b == "-" else b)
            out[k][key] = out[k].get(key, 0) + customers
    return out


def _by_hand(paths: dict[str, int], pairs: range, periods: int, *, weights: np.ndarray | None = None,
             arrivals: float | str = "mean") -> np.ndarray:
    """x_h = x0 P^h + a e (I + P + ... + P^(h-1)) over STATES, rows h = 0..periods, from the
    counts of ``pairs`` (weighted by ``weights``)."""
    counts = _pair_counts(paths)
    weights = np.ones(len(pairs)) if weights is None else weights
    n = np.zeros((4, 4))
    new = np.zeros(4)
    new_total = []
    for w, k in zip(weights, pairs, strict=True):
        for (f, t), c in counts[k].items():
            if f == "(new)":
                new[STATES.index(t)] += w * c
            else:
                n[STATES.index(f), STATES.index(t)] += w * c
        new_total.append(sum(c for (f, _), c in counts[k].items() if f == "(new)"))
    p = np.zeros((4, 4))
    for i in range(4):  # (gone), and a segment never seen at a pair's start, stay put
        p[i] = n[i] / n[i].sum() if n[i].sum() > 0 and STATES[i] != "(gone)" else np.eye(4)[i]
    e = new / new.sum() if new.sum() > 0 else new  # nobody entered: nothing to place
    a = {"mean": float(np.dot(weights, new_total) / weights.sum()), "none": 0.0}.get(arrivals, arrivals)
    last = counts[pairs[-1]]
    x0 = np.array([sum(c for (_, t), c in last.items() if t == s) for s in STATES[:3]] + [0.0])
    rows = []
    for h in range(periods + 1):
        inflow = sum((np.linalg.matrix_power(p, j) for j in range(h)), np.zeros((4, 4)))
        rows.append(x0 @ np.linalg.matrix_power(p, h) + a * e @ inflow)
    return np.array(rows)[:, :3]


def _got(fc, segments: tuple[str, ...] = ("A", "B", "C")) -> np.ndarray:  # noqa: ANN001
    wide = fc.to_pandas().pivot(index="period", columns="segment", values="expected_customers")
    return wide[list(segments)].to_numpy()


@pytest.fixture(scope="module")
def pooled():
    return pooled_transition_matrix(_assignments(DATES, PATHS), scheme="toy")


def test_default_forecast_equals_matrix_powers_of_the_pooled_counts(pooled):
    fc = segment_forecast(pooled, periods=4)  # less than a year of history: every pair
    # the counts written down: 3 pairs; (new) totals 5+2, 3, 2 -> 4 a period
    assert sum(c for (f, _), c in _pair_counts(PATHS)[0].items() if f == "(new)") == 7
    np.testing.assert_allclose(_got(fc), _by_hand(PATHS, range(3), 4), rtol=1e-12)
    m = fc.meta
    assert (m["pairs_pooled"], m["new_customers_per_period"], m["options"]) == (3, 4.0, {})
    assert m["first_snapshot"] == "2024-01-01" and m["from_snapshot"] == "2024-04-01"
    # C has no observed exits: kept in place and said so
    assert m["held_segments"] == ["C"] and "kept in place: C" in m["definition"]
    assert fc.chain.transition_matrix_.loc["C", "C"] == 1.0
    # period 0 is the sizes at the last snapshot (AAAA, ABBA, BBAA, -AAA end in A); dates
    # step by whole months; segments by rank
    assert _got(fc)[0].tolist() == [22.0, 4.0, 2.0]
    days = fc.to_pandas().drop_duplicates("period")["snapshot_estimate"].tolist()
    assert days == [dt.date(2024, m, 1) for m in range(4, 9)]
    assert list(dict.fromkeys(fc.to_pandas()["segment"])) == ["A", "B", "C"]


def test_half_life_window_and_arrival_options(pooled):
    w = 0.5 ** (np.array([2.0, 1.0, 0.0]) / 2.0)
    fc = segment_forecast(pooled, periods=3, half_life=2)
    np.testing.assert_allclose(_got(fc), _by_hand(PATHS, range(3), 3, weights=w), rtol=1e-12)
    assert fc.meta["options"] == {"half_life": 2.0} and "half-life of 2 periods" in fc.meta["definition"]
    # the last two pairs only, no arrivals: today's customers
    fc = segment_forecast(pooled, periods=3, start="2024-02-01", arrivals="none")
    np.testing.assert_allclose(_got(fc), _by_hand(PATHS, range(1, 3), 3, arrivals="none"), rtol=1e-12)
    assert fc.meta["options"] == {"start": "2024-02-01", "arrivals": "none"}
    assert "no new customers" in fc.meta["definition"]
    # ending earlier: starts from the sizes at the end, a given number of arrivals
    fc = segment_forecast(pooled, periods=2, end="2024-03-01", arrivals=7)
    assert set(fc.to_pandas()["segment"]) == {"A", "B"}  # C does not exist yet
    np.testing.assert_allclose(_got(fc, ("A", "B")), _by_hand(PATHS, range(2), 2, arrivals=7.0)[:, :2],
                               rtol=1e-12)
    assert fc.meta["from_snapshot"] == "2024-03-01" and fc.meta["new_customers_per_period"] == 7.0


def test_default_pools_the_last_year():
    # 16 monthly snapshots; the first three pairs behave differently (everybody leaves A
    # for B), so pooling them or not changes the answer
    dates = [dt.date(2023 + (m // 12), m % 12 + 1, 1) for m in range(16)]
    paths = {"A" * 16: 6, "AB" * 8: 3, "ABBB" + "A" * 12: 4, "-" * 5 + "B" * 11: 2, "-" * 9 + "AB" * 3 + "B": 1}
    pooled = pooled_transition_matrix(_assignments(dates, paths), scheme="toy")
    fc = segment_forecast(pooled, periods=3)
    assert fc.meta["pairs_pooled"] == 12 and fc.meta["first_snapshot"] == "2023-04-01"
    np.testing.assert_allclose(_got(fc, ("A", "B")), _by_hand(paths, range(3, 15), 3)[:, :2], rtol=1e-12)
    everything = segment_forecast(pooled, periods=3, start="first")
    np.testing.assert_allclose(_got(everything, ("A", "B")), _by_hand(paths, range(15), 3)[:, :2], rtol=1e-12)
    assert everything.meta["options"] == {"start": "first"} and "every pair" in everything.meta["definition"]
    assert not np.allclose(_got(fc, ("A", "B")), _got(everything, ("A", "B")))
    # an end between snapshots: s_m is the snapshot before it, and the year is counted back
    # from s_m (12 pairs from 2023-03-01), not from the end (11 pairs from 2023-04-01)
    mid = segment_forecast(pooled, periods=3, end="2024-03-15")
    assert (mid.meta["pairs_pooled"], mid.meta["first_snapshot"], mid.meta["from_snapshot"]) == (
        12, "2023-03-01", "2024-03-01")
    np.testing.assert_allclose(_got(mid, ("A", "B")), _by_hand(paths, range(2, 14), 3)[:, :2], rtol=1e-12)
    assert not np.allclose(_got(mid, ("A", "B")), _by_hand(paths, range(3, 14), 3)[:, :2])
    on_snapshot = segment_forecast(pooled, periods=3, end="2024-03-01")
    np.testing.assert_array_equal(_got(mid, ("A", "B")), _got(on_snapshot, ("A", "B")))


def test_snapshots_more_than_a_year_apart_pool_at_least_the_last_pair():
    dates = [dt.date(2020, 1, 1), dt.date(2021, 6, 1), dt.date(2023, 1, 1)]
    paths = {"AAB": 3, "ABB": 2, "-AA": 4, "BA-": 1}
    fc = segment_forecast(pooled_transition_matrix(_assignments(dates, paths), scheme="toy"), periods=2)
    assert fc.meta["pairs_pooled"] == 1 and fc.meta["first_snapshot"] == "2021-06-01"
    np.testing.assert_allclose(_got(fc, ("A", "B")), _by_hand(paths, range(1, 2), 2)[:, :2], rtol=1e-12)


def test_bad_options_are_one_line_errors(pooled):
    with pytest.raises(SegflowError, match="arrivals must be 'mean', 'none' or a number"):
        segment_forecast(pooled, arrivals="lots")
    # 1e308 overflowed the forecast to inf and NaN; 10^12 per period is the bound (parse_arrivals)
    for value in (1e308, "1e308", 1e12 + 1):
        with pytest.raises(SegflowError, match=r"arrivals must be at most 1,000,000,000,000 new customers"):
            segment_forecast(pooled, arrivals=value)
    assert np.isfinite(_got(segment_forecast(pooled, periods=36, arrivals=1e12))).all()
    with pytest.raises(SegflowError, match="no pair of snapshots of 'toy' lies within"):
        segment_forecast(pooled, start="2024-04-01")
    with pytest.raises(SegflowError, match="half-life must be positive"):
        segment_forecast(pooled, half_life=0)
    with pytest.raises(SegflowError, match="half-life must be positive, got nan"):
        segment_forecast(pooled, half_life=float("nan"))  # was "fitted without a (new) row"
    with pytest.raises(SegflowError, match="is not a date"):
        segment_forecast(pooled, start="last spring")
