"""Paths, time in segment, drill-down, stability, backtest and the CRM export."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from tests.migration._migration_fixtures import (
    DATES,
    count_by_hand,
    make_store,
    random_assignments,
    tiny_assignments,
)

from segflow.errors import SegflowError
from segflow.exports import neutralise_formulas, segment_list, write_segment_list
from segflow.migration import (
    GONE,
    NEW,
    MarkovChain,
    backtest,
    customer_paths,
    movers,
    pooled_transition_matrix,
    stability,
)


@pytest.fixture(scope="module")
def tiny():
    store = make_store(tiny_assignments())
    yield store.table("segment_assignments")
    store.close()


@pytest.fixture(scope="module")
def rand_store():
    frame = random_assignments()
    store = make_store(frame)
    yield store, frame
    store.close()


@pytest.fixture(scope="module")
def rand(rand_store):
    store, frame = rand_store
    return store.table("segment_assignments"), frame


def _hand_paths(frame: pd.DataFrame) -> pd.Series:
    """Paths with plain Python per customer (independent of the engine's window logic)."""
    dates = sorted(frame["snapshot_date"].unique())
    pos = {d: i for i, d in enumerate(dates)}
    out = {}
    for cid, part in frame.groupby("customer_id"):
        seq = sorted(
            (pos[d], s) for d, s in zip(part["snapshot_date"], part["segment"], strict=True)
        )
        tokens = [NEW] if seq[0][0] > 0 else []
        for k, (i, s) in enumerate(seq):
            if k == 0:
                tokens.append(s)
                continue
            prev_i, prev_s = seq[k - 1]
            if i != prev_i + 1:
                tokens += [GONE, s]
            elif s != prev_s:
                tokens.append(s)
        if seq[-1][0] < len(dates) - 1:
            tokens.append(GONE)
        out[cid] = " → ".join(tokens)
    return pd.Series(out).value_counts()


def test_paths_tiny(tiny):
    paths = customer_paths(tiny, "tier").to_pandas().set_index("path")["customers"]
    assert paths.to_dict() == {
        "Gold": 1,
        "Bronze → Silver → Gold": 1,
        "Silver → (gone)": 1,
        "(new) → Bronze": 1,
        "Silver → (gone) → Silver": 1,
        "Gold → (gone) → Silver": 1,
        "Gold → Silver → Bronze": 1,
    }


def test_paths_random_match_python(rand):
    table, frame = rand
    result = customer_paths(table, "tier", top=10_000)
    got = result.to_pandas().set_index("path")["customers"]
    expected = _hand_paths(frame[frame["scheme"] == "tier"])
    assert got.sort_index().to_dict() == expected.sort_index().to_dict()
    assert result.customers == frame["customer_id"].nunique()
    assert result.to_pandas()["customers"].is_monotonic_decreasing


def test_time_in_segment_random(rand):
    table, frame = rand
    tis = customer_paths(table, "tier").time_in_segment.set_index("segment")
    # independent: run lengths with pandas shifts on the full customer x date grid
    grid = frame.pivot(index="customer_id", columns="snapshot_date", values="segment").sort_index(
        axis=1
    )
    lengths: dict[str, list[tuple[int, bool]]] = {}
    n = grid.shape[1]
    for _cid, row in grid.iterrows():
        vals = row.tolist()
        i = 0
        while i < n:
            if pd.isna(vals[i]):
                i += 1
                continue
            j = i
            while j + 1 < n and vals[j + 1] == vals[i]:
                j += 1
            lengths.setdefault(vals[i], []).append((j - i + 1, i > 0 and j < n - 1))
            i = j + 1
    for seg, runs in lengths.items():
        assert tis.loc[seg, "runs"] == len(runs)
        done = [length for length, completed in runs if completed]
        assert tis.loc[seg, "completed_runs"] == len(done)
        assert tis.loc[seg, "mean_periods_completed"] == pytest.approx(np.mean(done))
        assert tis.loc[seg, "mean_periods_all"] == pytest.approx(
            np.mean([length for length, _ in runs])
        )


def test_movers_are_the_cell(rand):
    table, frame = rand
    for f, t in [("Gold", "Silver"), (NEW, "Bronze"), ("Silver", GONE)]:
        ids = set(movers(table, "tier", DATES[1], DATES[2], f, t).execute()["customer_id"])
        a1 = frame[frame["snapshot_date"] == DATES[1]].set_index("customer_id")["segment"]
        a2 = frame[frame["snapshot_date"] == DATES[2]].set_index("customer_id")["segment"]
        both = pd.concat([a1.rename("f"), a2.rename("t")], axis=1).fillna({"f": NEW, "t": GONE})
        expected = set(both.index[(both["f"] == f) & (both["t"] == t)])
        assert ids == expected and len(ids) == count_by_hand(frame, DATES[1], DATES[2])[(f, t)]


def test_movers_refuse_an_unknown_segment(rand):
    # 'gold' for 'Gold' (or (gone) on the from side) selected nobody: "0 customers moved"
    table, frame = rand
    known = set(frame["segment"])
    assert "gold" not in known and "Gold" in known
    with pytest.raises(SegflowError, match="did you mean 'Gold'"):
        movers(table, "tier", DATES[1], DATES[2], "gold", "Silver")
    with pytest.raises(SegflowError, match="not a segment of scheme 'tier'"):
        movers(table, "tier", DATES[1], DATES[2], GONE, "Silver")
    with pytest.raises(SegflowError, match="to segment 'Platinum'"):
        movers(table, "tier", DATES[1], DATES[2], "Gold", "Platinum")
    # reversed or equal dates are no cell of any matrix (they listed customers read backwards)
    for f, t in ((DATES[2], DATES[1]), (DATES[1], DATES[1])):
        with pytest.raises(SegflowError, match=r"from_date \(.*\) must be before to_date"):
            movers(table, "tier", f, t, "Gold", "Silver")


@pytest.mark.parametrize("source", ["view", "store"])
def test_stability_numbers(rand_store, source):
    store, frame = rand_store
    # the per-snapshot view, or the store (its change rows read directly)
    table = store.table("segment_assignments") if source == "view" else store
    st = stability(table, scheme="tier", min_history=2)
    t = st.to_pandas().set_index(["to_date", "segment"])
    for d1, d2 in zip(DATES[:-1], DATES[1:], strict=True):
        hand = count_by_hand(frame, d1, d2)
        for seg in ("Gold", "Silver", "Bronze"):
            size_from = sum(n for (f, _), n in hand.items() if f == seg)
            stay = hand.get((seg, seg), 0)
            inflow = sum(n for (f, to), n in hand.items() if to == seg and f != seg)
            row = t.loc[(d2, seg)]
            assert (row["stay"], row["inflow"], row["size_from"]) == (stay, inflow, size_from)
            assert row["stay_rate"] == pytest.approx(stay / size_from)
            assert row["churn_rate"] == pytest.approx(1 - stay / size_from)
    # random, stationary data: no alarm expected at k = 3
    assert len(st.alarms()) == 0


def test_drift_alarm_fires_on_a_jump():
    frame = random_assignments(n=400, presence=1.0, seed=5)
    extra_dates = [dt.date(2024, m, 1) for m in range(6, 10)]
    rng = np.random.default_rng(1)
    more = []
    for d in extra_dates:
        more.append(
            frame[frame["snapshot_date"] == DATES[0]].assign(
                snapshot_date=d,
                segment=rng.choice(["Gold", "Silver", "Bronze"], 400, p=[0.2, 0.3, 0.5]),
            )
        )
    last = more[-1]
    last["segment"] = np.where(
        rng.random(400) < 0.6, "Gold", last["segment"]
    )  # Gold jumps 20% -> ~70%
    full = pd.concat([frame, *more], ignore_index=True)
    full["segment_rank"] = (
        full["segment"].map({"Gold": 1, "Silver": 2, "Bronze": 3}).astype("int32")
    )
    store = make_store(full)
    alarms = stability(store.table("segment_assignments"), scheme="tier").alarms()
    assert set(zip(alarms["to_date"], alarms["segment"], strict=True)) >= {
        (dt.date(2024, 9, 1), "Gold")
    }
    assert (alarms["to_date"] == dt.date(2024, 9, 1)).all()
    store.close()


@pytest.mark.parametrize("source", ["view", "store"])
def test_backtest_one_step_by_hand(rand_store, source):
    store, frame = rand_store
    table = store.table("segment_assignments") if source == "view" else store
    bt = backtest(table, scheme="tier", train_end=DATES[2], horizon=2)
    # independent: P from pairs 0-1 counted by hand, entries from their (new) row
    states = ["Gold", "Silver", "Bronze", GONE]
    counts = pd.DataFrame(0.0, index=[NEW, *states[:-1]], columns=states)
    for d1, d2 in zip(DATES[:2], DATES[1:3], strict=True):
        for (f, t), n in count_by_hand(frame, d1, d2).items():
            counts.loc[f, t] += n
    p = counts.loc[states[:-1]].div(counts.loc[states[:-1]].sum(axis=1), axis=0)
    entry = counts.loc[NEW] / counts.loc[NEW].sum()
    x0 = frame[frame["snapshot_date"] == DATES[2]]["segment"].value_counts().reindex(states[:-1])
    arrivals = sum(n for (f, _), n in count_by_hand(frame, DATES[2], DATES[3]).items() if f == NEW)
    x1 = x0.to_numpy() @ p[states[:-1]].to_numpy() + arrivals * entry[states[:-1]].to_numpy()
    got = bt.to_pandas()
    h1 = got[got["horizon"] == 1].set_index("segment").loc[states[:-1]]
    np.testing.assert_allclose(h1["forecast"].to_numpy(), x1)
    actual = (
        frame[frame["snapshot_date"] == DATES[3]]["segment"].value_counts().reindex(states[:-1])
    )
    np.testing.assert_allclose(h1["actual"].to_numpy(), actual.to_numpy())
    assert set(got["horizon"]) == {1, 2}
    assert bt.errors()["mape"].notna().all()
    assert bt.figure().data


def test_pooled_chain_forecast_consistency(rand):
    table, _ = rand
    chain = MarkovChain().fit(pooled_transition_matrix(table, scheme="tier"))
    p = chain.transition_matrix_
    np.testing.assert_allclose(p.sum(axis=1).to_numpy(), 1.0)
    assert p.loc[GONE, GONE] == 1.0


def test_segment_list_tiny(tiny):
    got = segment_list(tiny, "tier").execute().set_index("customer_id").sort_index()
    # at DATES[2]: c1 Gold since DATES[0] (3 periods), c2 Gold from Silver, c4 Bronze since
    # DATES[1] (entered then), c5 back in Silver after an absence, c6 back as Silver (was Gold),
    # c7 Bronze from Silver; c3 is absent and not listed
    assert list(got.index) == ["c1", "c2", "c4", "c5", "c6", "c7"]
    assert got["segment"].tolist() == ["Gold", "Gold", "Bronze", "Silver", "Silver", "Bronze"]
    prev = [None if pd.isna(v) else v for v in got["previous_segment"]]
    assert prev == [None, "Silver", None, "Silver", "Gold", "Silver"]
    changed = [pd.Timestamp(d).date() for d in got["last_change_date"]]
    assert changed == [DATES[0], DATES[2], DATES[1], DATES[2], DATES[2], DATES[2]]
    assert got["periods_in_segment"].tolist() == [3, 1, 2, 1, 1, 1]
    older = segment_list(tiny, "tier", as_of=DATES[1]).execute().set_index("customer_id")
    assert older.loc["c1", "periods_in_segment"] == 2 and "c3" not in older.index
    with pytest.raises(SegflowError, match="no snapshot"):
        segment_list(tiny, "tier", as_of=dt.date(2020, 1, 1))


def test_export_writers_and_formula_neutralising(tmp_path, tiny):
    import pyarrow as pa

    table = pa.table(
        {"customer_id": ["=HYPERLINK(1)", "+1", "ok", "@x", "-2+3"], "n": [1, 2, 3, 4, 5]}
    )
    safe = neutralise_formulas(table)
    assert safe["customer_id"].to_pylist() == ["'=HYPERLINK(1)", "+1", "ok", "'@x", "'-2+3"]
    assert write_segment_list(table, tmp_path / "a.csv") == 5
    back = pacsv.read_csv(tmp_path / "a.csv")
    assert back["customer_id"].to_pylist()[0] == "'=HYPERLINK(1)"
    write_segment_list(table, tmp_path / "a.parquet")
    assert pq.read_table(tmp_path / "a.parquet")["customer_id"].to_pylist()[0] == "=HYPERLINK(1)"
    with pytest.raises(SegflowError, match="export format"):
        write_segment_list(table, tmp_path / "a.xlsx")
    listing = segment_list(tiny, "tier")
    assert write_segment_list(listing, tmp_path / "list.csv") == 6


def test_export_to_store_table():
    store = make_store(tiny_assignments())
    listing = segment_list(store.table("segment_assignments"), "tier")
    assert write_segment_list(listing, "crm_segment_list", format="table", store=store) == 6
    back = store.table("crm_segment_list").execute().set_index("customer_id")
    assert (
        back.loc["c1", "periods_in_segment"] == 3 and back.loc["c6", "previous_segment"] == "Gold"
    )
    with pytest.raises(SegflowError, match="needs store"):
        write_segment_list(listing, "x", format="table")
    # a second export replaces its own table; the store's own tables are refused, whatever
    # the case, and a name that is not an identifier never reaches SQL
    assert write_segment_list(listing, "crm_segment_list", format="table", store=store) == 6
    rows = store.raw.execute("SELECT count(*) FROM customers").fetchone()[0]
    for name in ("customers", "Segment_Spells", "runs"):
        with pytest.raises(SegflowError, match="store's own tables"):
            write_segment_list(listing, name, format="table", store=store)
    assert store.raw.execute("SELECT count(*) FROM customers").fetchone()[0] == rows
    with pytest.raises(SegflowError, match="letters, digits and underscores"):
        write_segment_list(listing, 'x" AS SELECT 1; DROP TABLE transactions; --',
                           format="table", store=store)
    assert "transactions" in store.tables()
    store.close()


def test_export_table_name_checks_come_first(tmp_path):
    """`--table ''` was a traceback (an empty name fell through to the file writer)."""
    from typer.testing import CliRunner

    from segflow.cli import app

    for name in ("", "1abc", "x" * 64):
        res = CliRunner().invoke(app, ["export", "--scheme", "rfm", "--table", name,
                                       "-p", str(tmp_path)])
        assert res.exit_code == 1 and "1 to 63 letters, digits and underscores" in res.output
        assert "Traceback" not in res.output


def test_segment_list_rows_come_in_customer_order(tmp_path, rand):
    """The list (and the file written from it) is ordered by customer id: the DuckDB export
    and the Spark project's export of the same assignments wrote the same rows in another
    order, so two exports of one list were different files."""
    table, _ = rand
    listing = segment_list(table, "tier")
    ids = listing.execute()["customer_id"].tolist()
    assert len(ids) > 200 and ids == sorted(ids)
    write_segment_list(listing, tmp_path / "list.csv")
    assert pacsv.read_csv(tmp_path / "list.csv")["customer_id"].to_pylist() == sorted(ids)


def test_drift_alarm_floor_from_an_empty_history():
    """The spread is floored at sqrt(max(median, 1)): a segment empty in its history alarms
    only on more than 3 customers (k = 3), not on the first one who enters."""
    from segflow.migration._dynamics import _alarms

    sizes = [0, 0, 0, 0, 0, 3, 0, 4]  # pairs 0-7 of one segment; history median 0 throughout
    t = pd.DataFrame({"pair": range(len(sizes)), "segment": "inactive", "size_to": sizes})
    flags = _alarms(t, "size_to", 3.0, 4)
    assert flags.tolist() == [False] * 7 + [True]


def test_stability_counts_are_whole_numbers_with_an_empty_segment():
    """A segment nobody holds at some snapshot (a lifecycle stage that cannot exist yet) left
    every count of the scheme a float (0.0 in --json); counts are integers."""
    frame = random_assignments(n=200, presence=1.0, seed=3)
    frame.loc[(frame["snapshot_date"] == DATES[0]) & (frame["segment"] == "Gold"), "segment"] = "Silver"
    frame["segment_rank"] = frame["segment"].map({"Gold": 1, "Silver": 2, "Bronze": 3}).astype("int32")
    store = make_store(frame)
    t = stability(store.table("segment_assignments"), scheme="tier").to_pandas()
    store.close()
    first = t[(t["to_date"] == DATES[1]) & (t["segment"] == "Gold")].iloc[0]
    assert first["size_from"] == 0 and first["size_to"] > 0
    for col in ("size_from", "size_to", "stay", "inflow", "outflow"):
        assert t[col].dtype == "int64", col
