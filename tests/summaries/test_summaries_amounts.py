"""The stored period amounts (segflow.summaries._amounts): extended by a new month (with a
period split by the new "365 days before"), they equal the amounts of all transactions, and
the revenue and bucket amounts read from them equal a direct pandas computation."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

# monthly snapshots across a leap day: 2024-03-01 - 365 days = 2023-03-02, a new boundary
# that splits the stored period ending 2023-04-01
OLD = [dt.date(2023, m, 1) for m in range(1, 13)] + [dt.date(2024, 1, 1), dt.date(2024, 2, 1)]
NEW = [*OLD, dt.date(2024, 3, 1)]


def _lines(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 600
    start = dt.datetime(2021, 11, 20)
    ts = [start + dt.timedelta(minutes=int(m)) for m in rng.integers(0, 60 * 24 * 860, n)]
    cust = [f"c{i}" for i in rng.integers(0, 40, n)]
    amount = np.round(rng.normal(30, 40, n), 2)  # negative: returns
    frame = pd.DataFrame({"customer_id": cust, "ts": ts, "amount": amount})
    frame.loc[frame.index[:15], "customer_id"] = None  # anonymous lines: in no customer's revenue
    # lines on the split day and on boundaries themselves
    edge = pd.DataFrame({"customer_id": ["c1", "c1", "c2", "c3"],
                         "ts": [dt.datetime(2023, 3, 1, 23), dt.datetime(2023, 3, 2), dt.datetime(2023, 3, 2, 5),
                                dt.datetime(2024, 2, 1)],
                         "amount": [5.0, 7.0, -2.5, 11.0]})
    return pd.concat([frame, edge], ignore_index=True)


def _insert(store, frame: pd.DataFrame) -> None:
    store.raw.register("_lines", frame)
    store.raw.execute("INSERT INTO transactions (customer_id, ts, amount) SELECT customer_id, ts, amount FROM _lines")
    store.raw.unregister("_lines")


def _revenue(lines: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """Independent: per customer with a line before ``day``, all-time and 365-day revenue."""
    t = lines[lines.customer_id.notna() & (lines.ts < pd.Timestamp(day))]
    year = t[t.ts >= pd.Timestamp(day - dt.timedelta(days=365))]
    out = t.groupby("customer_id")["amount"].sum().rename("revenue_all_time").to_frame()
    out["revenue_12m"] = year.groupby("customer_id")["amount"].sum().reindex(out.index).fillna(0.0)
    return out.sort_index()


@pytest.fixture()
def store(tmp_path):
    from segflow.store import Store

    s = Store(tmp_path / "s.duckdb")
    yield s
    s.close()


def test_a_new_month_extends_the_stored_amounts_to_those_of_all_lines(store):
    from segflow.summaries import _amounts, _cells
    from segflow.summaries._revenue import boundaries, period_amounts, revenue_at_snapshots

    lines = _lines()
    before, after = lines[lines.ts < pd.Timestamp(OLD[-1])], lines[lines.ts >= pd.Timestamp(OLD[-1])]
    _insert(store, before)
    first = _amounts.prepare(store, OLD, None)
    assert first.full
    with store.transaction() as con:
        first.write(store, con)
    first.release()
    _insert(store, after)  # the new month (and lines after it): nothing before OLD[-1] changed

    # stored boundaries not covered by ``unchanged_before``: everything computed again
    again = _amounts.prepare(store, NEW, dt.datetime(2024, 1, 1))
    assert again.full
    again.release()
    inc = _amounts.prepare(store, NEW, dt.datetime.combine(OLD[-1], dt.time()))
    assert not inc.full and inc.replaced == [dt.date(2023, 4, 1)]
    cols = ["customer_id", "period_end"]
    full = period_amounts(store.table("transactions"), boundaries(NEW)).to_pandas().sort_values(cols)
    got = inc.table.to_pandas().sort_values(cols)
    assert len(got) == len(full) > 100
    assert (got[cols].to_numpy() == full[cols].to_numpy()).all()
    np.testing.assert_allclose(got["amount"], full["amount"], rtol=1e-12, atol=1e-9)

    # revenue at the new snapshot: from the amounts = from the lines = pandas
    want = _revenue(lines, NEW[-1])
    for rev in (_amounts.revenue_at(inc.table, NEW[-1]), revenue_at_snapshots(store.table("transactions"), [NEW[-1]]),
                revenue_at_snapshots(store.table("transactions"), NEW, amounts=inc.table)):
        r = rev.to_pandas()
        r = r[pd.to_datetime(r.snapshot_date) == pd.Timestamp(NEW[-1])].set_index("customer_id").sort_index()
        assert list(r.index) == list(want.index)
        for c in ("revenue_all_time", "revenue_12m"):
            np.testing.assert_allclose(r[c], want[c], rtol=1e-9, atol=1e-9)
    # the revenue at every snapshot from the amounts (the full aggregates' path)
    every = revenue_at_snapshots(store.table("transactions"), NEW, amounts=inc.table).to_pandas()
    for day in (OLD[0], dt.date(2023, 3, 1), OLD[-1]):
        r = every[pd.to_datetime(every.snapshot_date) == pd.Timestamp(day)].set_index("customer_id").sort_index()
        w = _revenue(lines, day)
        assert list(r.index) == list(w.index)
        np.testing.assert_allclose(r[["revenue_all_time", "revenue_12m"]], w, rtol=1e-9, atol=1e-9)

    # the transitions' bucket amounts: from the period amounts = from the lines
    keyed = store.table("transactions").filter(lambda t: t.customer_id.notnull()).select("customer_id").distinct()
    keyed = _cells.keys(keyed).cache()
    days = [dt.date(2023, 6, 1), dt.date(2023, 12, 1), NEW[-1]]
    a = _amounts.bucket_amounts(inc.table, keyed, days).to_pandas().sort_values(["k", "be"], ignore_index=True)
    b = _cells.bucket_amounts(store.table("transactions"), keyed, days).to_pandas().sort_values(
        ["k", "be"], ignore_index=True)
    assert len(a) == len(b) > 40 and (a[["k", "be"]].to_numpy() == b[["k", "be"]].to_numpy()).all()
    np.testing.assert_allclose(a["amount"], b["amount"], rtol=1e-12, atol=1e-9)

    # written: the stored table is the extended one, at the new boundaries
    with store.transaction() as con:
        inc.write(store, con)
    inc.release()
    stored = store.table("summary_amounts").to_pandas().sort_values(cols)
    assert (stored[cols].to_numpy() == full[cols].to_numpy()).all()
    np.testing.assert_allclose(stored["amount"], full["amount"], rtol=1e-12, atol=1e-9)
    periods = [r[0] for r in store.raw.execute("SELECT period_end FROM summary_amount_periods ORDER BY 1").fetchall()]
    assert periods == boundaries(NEW) and dt.date(2023, 3, 2) in periods
