"""Assignments as change rows (issue 10): spells merged in the store equal the per-snapshot
rows they stand for, old stores migrate, re-runs do not grow the store, and an incremental
run (one new month) equals a full run."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import warnings

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from tests.pipeline._spells_fixture import COLS, _random_history, _write

from segflow.store import Store
from segflow.store._schema import MIGRATIONS, SCHEMA_VERSION
from segflow.store._spells import MASK_SNAPSHOTS as MASK_SNAPSHOTS_IN_TESTS


def _view(store: Store) -> pd.DataFrame:
    out = store.raw.execute(
        f"SELECT {', '.join(COLS)} FROM segment_assignments ORDER BY snapshot_date, customer_id"
    ).df()
    out["snapshot_date"] = pd.to_datetime(out["snapshot_date"]).dt.date
    out["segment_rank"] = out["segment_rank"].astype("int64")
    return out


def _expected(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["snapshot_date", "customer_id"]).reset_index(drop=True)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_spells_merged_in_steps_expand_to_the_per_snapshot_rows(seed):
    frame = _random_history(seed)
    days = sorted(frame["snapshot_date"].unique())
    store = Store(":memory:")
    # month by month (each run extends or closes the open spells) ...
    for i, d in enumerate(days):
        _write(store, frame, [d], f"r{i}")
    assert _view(store).equals(_expected(frame))
    stepwise = store.raw.execute(
        "SELECT * EXCLUDE (run_id) FROM segment_spells ORDER BY ALL").fetchall()
    # a spell's run is the one that opened it (run r{i} wrote snapshot i): a run that only
    # carried it on did not rewrite it
    openers = store.raw.execute("SELECT valid_from, run_id FROM segment_spells").fetchall()
    assert all(run == f"r{days.index(start)}" for start, run in openers)
    assert {run for _, run in openers} > {"r0", f"r{len(days) - 1}"}
    # ... equals all at once, and spells are fewer than rows, none of them adjacent and equal
    once = Store(":memory:")
    _write(once, frame, days, "all")
    assert once.raw.execute(
        "SELECT * EXCLUDE (run_id) FROM segment_spells ORDER BY ALL").fetchall() == stepwise
    assert len(stepwise) < len(frame)
    # recomputing a stretch in the middle with changed segments
    changed = frame.copy()
    middle = days[3:6]
    hit = changed["snapshot_date"].isin(middle) & (changed["customer_id"] < "c10")
    changed.loc[hit, "segment"] = "moved"
    changed.loc[hit, "segment_rank"] = 9
    _write(store, changed, middle, "fix")
    assert _view(store).equals(_expected(changed))
    # spells opened before the stretch keep their run; those opened inside it are the fix's
    openers = store.raw.execute("SELECT valid_from, run_id FROM segment_spells").fetchall()
    assert all(run == ("fix" if start in middle else f"r{days.index(start)}")
               for start, run in openers)
    # and the suffix from there on, with a customer absent at every new snapshot
    tail = days[5:]
    later = changed[~(changed["snapshot_date"].isin(tail) & (changed["customer_id"] == "c11"))]
    _write(store, later, tail, "tail")
    assert _view(store).equals(_expected(later))
    # every spell's run is the one that computed its first snapshot
    assert store.raw.execute(
        "SELECT count(*) FROM segment_spells AS sp JOIN segment_snapshots AS s ON s.scheme = "
        "sp.scheme AND s.snapshot_date = sp.valid_from WHERE s.run_id = sp.run_id").fetchone()[0] \
        == store.raw.execute("SELECT count(*) FROM segment_spells").fetchone()[0]
    # spells are maximal: no spell ends where an equal one of the same customer starts
    adjacent = store.raw.execute(
        "SELECT count(*) FROM segment_spells a JOIN segment_spells b ON a.customer_id = "
        "b.customer_id AND a.valid_to = b.valid_from AND a.segment = b.segment").fetchone()[0]
    assert adjacent == 0


@pytest.mark.parametrize("seed", [4, 5])
def test_a_merge_too_large_for_the_lists_takes_the_window_with_the_same_spells(seed):
    # the lists' state cannot spill: a 10M-customer scheme (120M rows) ran out of an 8.3 GiB
    # limit; above LIST_BYTES_PER_ROW per row of the limit the merge takes the window query
    from segflow.store._memory import memory_limit_bytes
    from segflow.store._spells import LIST_BYTES_PER_ROW, lists_fit

    frame = _random_history(seed, n_customers=60)
    days = sorted(frame["snapshot_date"].unique())
    stores = {}
    for name, rows in (("lists", len(frame)), ("window", 10**12)):
        store = Store(":memory:")
        store.raw.execute("SET memory_limit = '1GB'")
        assert abs(memory_limit_bytes(store.raw) - 10**9) < 10**6  # shown as "953.6 MiB"
        assert lists_fit(store.raw, rows) is (name == "lists")
        _write(store, frame, days[:5], "a", expected_rows=rows)  # every snapshot new
        _write(store, frame, days[3:], "b", expected_rows=rows)  # a stretch merged with stored
        assert _view(store).equals(_expected(frame))
        stores[name] = store.raw.execute("SELECT * FROM segment_spells ORDER BY ALL").fetchall()
    assert stores["lists"] == stores["window"] and len(stores["lists"]) > 60
    # unknown size: the lists; under a 9GB limit the 1M run's 24M rows per scheme take the
    # lists, the 10M run's 120M the window
    store.raw.execute("SET memory_limit = '9GB'")
    assert lists_fit(store.raw, None) and lists_fit(store.raw, 24_000_000)
    assert not lists_fit(store.raw, 120_000_000) and 120_000_000 * LIST_BYTES_PER_ROW > 9 * 10**9


def _rows_store(rows: pd.DataFrame, snaps: pd.DataFrame) -> Store:
    """A store holding ``rows`` (per-snapshot assignments) as table ``r`` and ``snaps``
    (scheme, snapshot_date) as table ``s``."""
    store = Store(":memory:")
    con = store.raw
    con.register("_r", pa.Table.from_pandas(rows, preserve_index=False))
    con.register("_s", pa.Table.from_pandas(snaps, preserve_index=False))
    con.execute("CREATE TABLE r AS SELECT scheme, scheme_version, CAST(snapshot_date AS DATE) AS "
                "snapshot_date, customer_id, segment, CAST(segment_rank AS INTEGER) AS "
                "segment_rank, run_id FROM _r")
    con.execute("CREATE TABLE s AS SELECT scheme, CAST(snapshot_date AS DATE) AS snapshot_date FROM _s")
    return store


@pytest.mark.parametrize("seed", [6, 7])
def test_the_spells_sql_equals_the_ibis_spells(seed):
    """The DuckDB SQL the merge runs (lists of snapshot numbers, no window) gives exactly
    the rows of the Ibis expression (gaps and islands by a window), run ids included: two
    schemes with their own snapshots (one with a snapshot where nobody has a row), version
    and rank changes within a segment, null ranks, null and varied run ids."""
    from segflow.store._spells import spells, spells_sql

    rng = np.random.default_rng(seed)
    parts = []
    for scheme, n_snaps in (("a", 9), ("b", 6)):
        f = _random_history(seed + 10 * n_snaps, n_customers=60, n_snaps=n_snaps)
        f["scheme"] = scheme
        f["scheme_version"] = np.where(f["snapshot_date"] >= dt.date(2024, 5, 1), "2", "1")
        f["segment_rank"] = f["segment_rank"].astype("Int32")
        f.loc[rng.random(len(f)) < 0.1, "segment_rank"] = pd.NA
        f["run_id"] = rng.choice(["r1", "r2", "r3", None], len(f))
        parts.append(f)
    rows = pd.concat(parts, ignore_index=True)
    snaps = rows[["scheme", "snapshot_date"]].drop_duplicates()
    snaps = pd.concat([snaps, pd.DataFrame({"scheme": ["b"], "snapshot_date": [dt.date(2024, 12, 1)]})])
    store = _rows_store(rows, snaps)
    con = store.raw
    got = con.execute(f"SELECT * FROM ({spells_sql('r', 's')}) ORDER BY ALL").fetchall()
    expr = spells(store.con.table("r"), store.con.table("s"))
    want = con.execute(f"SELECT * FROM ({store.con.compile(expr)}) ORDER BY ALL").fetchall()
    assert got == want
    assert len(want) > 150 and any(r[4] is None for r in want) and any(r[7] is None for r in want)
    ends = {r[6] for r in want if r[0] == "b"}  # nobody at b's last snapshot: all closed
    assert dt.date(2024, 12, 1) in ends and None not in ends
    # the run ids from a relation holding them (and more), rows read once
    con.execute("CREATE TABLE some_runs AS SELECT 'r9' AS run_id UNION ALL SELECT DISTINCT run_id FROM r")
    again = con.execute(f"SELECT * FROM ({spells_sql('r', 's', 'some_runs')}) ORDER BY ALL").fetchall()
    assert again == want
    store.close()


@pytest.mark.parametrize("seed", [8, 9])
def test_the_mask_spells_equal_the_ibis_spells(seed):
    """The bit masks of a run of every snapshot (one run id) give exactly the rows of the
    Ibis expression: schemes of 9, 61 and 62 snapshots (the highest bit a mask takes), one
    with a snapshot where nobody has a row, version changes (a null version), null ranks."""
    from segflow.store._spells import MASK_SNAPSHOTS, mask_spells_sql, spells

    rng = np.random.default_rng(seed)
    parts = []
    for scheme, n_snaps in (("a", 9), ("b", MASK_SNAPSHOTS - 1), ("c", MASK_SNAPSHOTS)):
        f = _random_history(seed + n_snaps, n_customers=50, n_snaps=n_snaps)
        f["scheme"] = scheme
        f["scheme_version"] = np.where(f["snapshot_date"] >= dt.date(2024, 5, 1), "2", None)
        f["segment_rank"] = f["segment_rank"].astype("Int32")
        f.loc[rng.random(len(f)) < 0.1, "segment_rank"] = pd.NA
        f["run_id"] = "r7"
        parts.append(f)
    rows = pd.concat(parts, ignore_index=True)
    # customers in the same segment at every one of c's snapshots: a spell over all 62 bits
    c_days = sorted(rows.loc[rows["scheme"] == "c", "snapshot_date"].unique())
    full = pd.DataFrame({"scheme": "c", "scheme_version": "9", "snapshot_date": c_days,
                         "customer_id": "all", "segment": "g1", "segment_rank": 1, "run_id": "r7"})
    last = full.iloc[-1:].assign(customer_id="last")  # and one at the last snapshot only
    rows = pd.concat([rows, full, last], ignore_index=True)
    rows["segment_rank"] = rows["segment_rank"].astype("Int32")
    snaps = rows[["scheme", "snapshot_date"]].drop_duplicates()
    snaps = pd.concat([snaps, pd.DataFrame({"scheme": ["a"], "snapshot_date": [dt.date(2024, 12, 1)]})])
    store = _rows_store(rows, snaps)
    con = store.raw
    got = con.execute(f"SELECT * FROM ({mask_spells_sql('r', 's', '$run')}) ORDER BY ALL",
                      {"run": "r7"}).fetchall()
    expr = spells(store.con.table("r"), store.con.table("s"))
    want = con.execute(f"SELECT * FROM ({store.con.compile(expr)}) ORDER BY ALL").fetchall()
    assert got == want
    assert len(want) > 1000 and any(r[4] is None for r in want) and any(r[1] is None for r in want)
    assert ("c", "9", "all", "g1", 1, c_days[0], None, "r7") in want
    assert ("c", "9", "last", "g1", 1, c_days[-1], None, "r7") in want
    ends = {r[6] for r in want if r[0] == "a"}  # nobody at a's last snapshot: all closed
    assert dt.date(2024, 12, 1) in ends and None not in ends
    store.close()


@pytest.mark.parametrize("n_snaps", [MASK_SNAPSHOTS_IN_TESTS, MASK_SNAPSHOTS_IN_TESTS + 1])
def test_a_run_of_every_snapshot_writes_the_spells_of_its_rows(n_snaps):
    """Every snapshot written at once (the masks up to 62 snapshots, the lists above) and
    snapshot by snapshot give the same spells, which expand to the rows."""
    frame = _random_history(11, n_customers=30, n_snaps=n_snaps)
    days = sorted(frame["snapshot_date"].unique())
    once, stepwise = Store(":memory:"), Store(":memory:")
    _write(once, frame, days, "r")
    for d in days:
        _write(stepwise, frame, [d], "r")
    assert _view(once).equals(_expected(frame))
    query = "SELECT * FROM segment_spells ORDER BY ALL"
    assert once.raw.execute(query).fetchall() == stepwise.raw.execute(query).fetchall()


def test_a_repeated_appended_row_is_one_assignment():
    """``Store.append`` of assignments with a row given twice stores it once: the spells
    expand to the distinct rows (a repeat would otherwise open an overlapping spell)."""
    frame = _random_history(12, n_customers=8, n_snaps=4)
    first = frame["snapshot_date"] == frame["snapshot_date"].min()
    store = Store(":memory:")
    for part in (frame[first], frame[~first]):  # all new, then merged with a stored snapshot
        twice = pd.concat([part, part.iloc[[0, 3, 3]]], ignore_index=True)
        store.append("segment_assignments", pa.Table.from_pandas(twice, preserve_index=False))
    assert _view(store).equals(_expected(frame))
    overlapping = store.raw.execute(
        "SELECT count(*) FROM segment_spells a JOIN segment_spells b ON a.customer_id = "
        "b.customer_id AND a.valid_from < b.valid_from "
        "AND b.valid_from < coalesce(a.valid_to, DATE '9999-12-31')").fetchone()[0]
    assert overlapping == 0


def test_one_new_snapshot_at_a_time_gives_the_general_merge_s_spells(monkeypatch):
    """The fast path of a snapshot after every stored one (close, extend or open spells in
    place) writes the same spells, run ids included, as the general merge of the stretch."""
    import segflow.store._spells as spells_module

    def stepwise(frame: pd.DataFrame) -> list[tuple]:
        store = Store(":memory:")
        for i, d in enumerate(sorted(frame["snapshot_date"].unique())):
            _write(store, frame, [d], f"r{i}")
        return store.raw.execute("SELECT * FROM segment_spells ORDER BY ALL").fetchall()

    frames = [_random_history(seed) for seed in (4, 5)]
    used = []
    real = spells_module._append_snapshot
    monkeypatch.setattr(spells_module, "_append_snapshot",
                        lambda *a, **k: used.append(real(*a, **k)) or used[-1])
    fast = [stepwise(f) for f in frames]
    assert sum(n is not None for n in used) == 2 * (9 - 1)  # every snapshot but the first
    monkeypatch.setattr(spells_module, "_append_snapshot", lambda *a, **k: None)
    assert fast == [stepwise(f) for f in frames]
    assert {r[-1] for r in fast[0]} > {"r0", "r8"}  # extended spells carry the last run


def test_a_version_4_store_migrates_its_assignments_into_spells(tmp_path):
    path = tmp_path / "old.duckdb"
    frame = _random_history(5)
    frame.loc[frame["snapshot_date"] >= dt.date(2024, 7, 1), "scheme_version"] = "2"
    con = duckdb.connect(str(path))
    for version, statements in enumerate(MIGRATIONS[:4], start=1):
        for statement in statements:
            con.execute(statement)
        con.execute("INSERT INTO schema_info VALUES (?, now())", [version])
    rows = frame.assign(run_id="old")
    con.register("_rows", rows)
    con.execute("INSERT INTO segment_assignments SELECT * FROM _rows")
    con.close()
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION
    got = _view(store)
    assert got.equals(_expected(frame))
    kind = store.raw.execute("SELECT table_type FROM information_schema.tables "
                             "WHERE table_name = 'segment_assignments'").fetchone()[0]
    assert kind == "VIEW"
    n_spells = store.raw.execute("SELECT count(*) FROM segment_spells").fetchone()[0]
    assert 0 < n_spells < len(frame)
    store.close()


# -- runs on the demo data -------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    from segflow.datasets import generate_demo

    folder = tmp_path_factory.mktemp("demo_spells")
    ds = generate_demo(folder / "data", customers=600, months=24, seed=4, formats=("parquet",))
    return folder, ds


def _project(folder, ds, name: str, *, max_date: dt.date, end: dt.date | None = None):
    from segflow.datasets import demo_project_toml
    from segflow.project import Project

    toml = demo_project_toml(folder / "data", file_format="parquet", max_date=max_date)
    # snapshots up to ``end`` (default the data's end), whatever has been ingested so far
    toml = toml.replace("[periods]", f"[periods]\nend = {(end or ds.end).isoformat()}", 1)
    return Project.init(folder / name, toml_text=toml)


def _ingest(project, *, force: bool = False) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the demo data carries injected defects on purpose
        project.ingest(force=force)


def _state(project) -> dict[str, object]:
    con = project.store.raw
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("segment_spells", "segment_snapshots", "segment_assignments",
                      "customer_features", "customer_scores")}


def _spells(project) -> list[tuple]:
    return project.store.raw.execute(
        "SELECT * EXCLUDE (run_id) FROM segment_spells ORDER BY ALL").fetchall()


def _assignments(project) -> pd.DataFrame:
    return project.store.raw.execute(
        "SELECT scheme, scheme_version, snapshot_date, customer_id, segment, segment_rank "
        "FROM segment_assignments ORDER BY ALL").df()


@pytest.mark.slow
def test_incremental_month_equals_a_full_run_and_reruns_do_not_grow(demo_data, tmp_path, monkeypatch):
    folder, ds = demo_data
    last_month = dt.date(ds.end.year - (ds.end.month == 1), (ds.end.month - 2) % 12 + 1, 1)
    # full: all 24 months at once
    full = _project(folder, ds, "full", max_date=ds.end)
    _ingest(full)
    first = full.run()
    # incremental: the first 23 months (later rows are future-dated at that export date), run
    # (snapshots up to the last month); then the files again with the last month accepted
    # (rows seen before are duplicates) and one snapshot more, run: a new month
    inc = _project(folder, ds, "inc", max_date=last_month, end=last_month)
    _ingest(inc)
    early = inc.run()
    # the full run scores its latest snapshot only: without the early run's scores at the last
    # month both stores hold the same results (the aggregates there are summarised again)
    for table in ("customer_scores", "model_params"):
        inc.store.raw.execute(f"DELETE FROM {table} WHERE snapshot_date = ?", [last_month])
    inc.close()
    inc = _reopen(folder / "inc", folder, ds, max_date=ds.end)
    _ingest(inc, force=True)
    for table in ("customers", "transactions", "events", "campaign_exposures"):
        count = f"SELECT count(*) FROM {table}"
        assert (inc.store.raw.execute(count).fetchone() == full.store.raw.execute(count).fetchone()), table
    state_at = "SELECT DISTINCT snapshot_date FROM feature_state"
    assert inc.store.raw.execute(state_at).fetchall() == [(early.snapshot_dates[-1],)] == [(last_month,)]
    btyd_at = "SELECT max(as_of) FROM btyd_state"
    assert inc.store.raw.execute(btyd_at).fetchall() == [(last_month,)]
    import segflow.campaigns

    read_outs = []  # the campaigns read out again (the others keep their stored read-out)
    report = segflow.campaigns.campaign_report
    monkeypatch.setattr(segflow.campaigns, "campaign_report",
                        lambda store, cid, *a, **k: read_outs.append(cid) or report(store, cid, *a, **k))
    import segflow.models._btyd_state as btyd_state

    carries = []  # the BTYD states carried from the stored ones (not from all history)
    advance = btyd_state.advanced_states
    monkeypatch.setattr(btyd_state, "advanced_states",
                        lambda prior, *a, **k: carries.append(prior.as_of) or advance(prior, *a, **k))
    late = inc.run()
    monkeypatch.undo()
    assert carries == [last_month]
    stored = json.loads(inc.store.raw.execute(
        "SELECT document FROM summary_results WHERE name = 'campaigns'").fetchone()[0])["reports"]
    assert len(read_outs) < len(stored), (read_outs, len(stored))  # read-outs kept (equal: below)
    assert late.snapshot_dates == first.snapshot_dates
    # the new month carried the stored feature state forward (features._state): the state
    # and the latest features equal those computed from all history
    state = "SELECT * EXCLUDE (state_key) FROM feature_state ORDER BY customer_id"
    assert inc.store.raw.execute(state).fetchall() == full.store.raw.execute(state).fetchall()
    # and the stored BTYD state (models._btyd_state) too: carried, equal to the full run's
    for btyd in ("SELECT * FROM btyd_state ORDER BY as_of, customer_id",
                 "SELECT * FROM btyd_repeat_days ORDER BY ALL"):
        carried = inc.store.raw.execute(btyd).fetchall()
        assert carried == full.store.raw.execute(btyd).fetchall() and len(carried) > 100
    # both derived from equal states (the full run's from its one pass): equal exactly
    latest = "SELECT * FROM customer_features ORDER BY customer_id"
    pd.testing.assert_frame_equal(inc.store.raw.execute(latest).df(),
                                  full.store.raw.execute(latest).df(), check_exact=True)
    # the new month touches the snapshot after it only (data before ts < snapshot)
    assert late.snapshots_computed == [first.snapshot_dates[-1]], late.snapshots_computed
    assert early.snapshots_computed == first.snapshot_dates[:-1]
    a, b = _assignments(full), _assignments(inc)
    pd.testing.assert_frame_equal(a, b)
    assert _spells(full) == _spells(inc)
    _check_incremental_summaries(full, inc, late.run_id)
    # per-snapshot rows vs spells: change rows are several times fewer
    rows, spells = len(a), _state(full)["segment_spells"]
    assert spells * 2 < rows, (rows, spells)

    # re-runs: nothing new computes nothing; the store does not grow, spells stay identical
    full.close()
    full = _reopen(folder / "full", folder, ds, max_date=ds.end)
    path = folder / "full" / "segflow.duckdb"
    before, spells_before = _state(full), _spells(full)
    sizes = []
    for _ in range(4):
        again = full.run()
        assert again.snapshots_computed == [] and again.assignments_written == 0
        full.store.raw.execute("CHECKPOINT")
        sizes.append(os.path.getsize(path))
    assert _state(full) == before and _spells(full) == spells_before
    # only the run log changes: DuckDB alternates between two block layouts for it (measured
    # 5,517,312 and 5,779,456 bytes), it does not grow. (A forced full re-run rewrites
    # everything with identical results: test_pipeline_run.py's rerun test.)
    assert max(sizes[2:]) <= max(sizes[:2]), sizes
    full.close()
    inc.close()


_SUMMARIES = ("summary_segments", "summary_transitions", "summary_profiles",
              "summary_profile_segments", "summary_amounts", "summary_amount_periods")


def _summaries(project) -> dict[str, pd.DataFrame]:
    """The stored aggregates without run ids, rows sorted (audit: timestamps of its own)."""
    con = project.store.raw
    out = {}
    for table in _SUMMARIES:
        cols = "*" if table.startswith("summary_amount") else "* EXCLUDE (run_id)"  # none there
        frame = con.execute(f"SELECT {cols} FROM {table}").df()
        keys = [c for c in frame.columns if frame[c].dtype.kind not in "fc"]
        out[table] = frame.sort_values(keys, ignore_index=True, na_position="first")
    return out


def _same_summaries(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    for table in _SUMMARIES:
        # revenue and CLV are double sums (their last bits depend on the summation order)
        pd.testing.assert_frame_equal(a[table], b[table], check_exact=False, rtol=1e-9,
                                      atol=1e-6, obj=table)


def _check_incremental_summaries(full, inc, run_id: str) -> None:
    """The incremental run summarised the new snapshot (and the pairs ending there) and kept
    the rest: its aggregates equal the full run's and a full rewrite of its own; with
    nothing changed, nothing is computed again."""
    from segflow.pipeline import resolve_schemes
    from segflow.summaries import write_aggregates

    kept = _summaries(inc)
    assert len(kept["summary_transitions"]) > 0 and kept["summary_segments"].snapshot_date.nunique() == 24
    _same_summaries(kept, _summaries(full))
    kinds = {s.name: s.kind for s in resolve_schemes(inc.settings)}
    nothing = write_aggregates(inc.store, run_id, kinds=kinds, changed={k: set() for k in kinds},
                               audit=False)
    assert nothing["summary_segments"] == nothing["summary_transitions"] == 0, nothing
    _same_summaries(kept, _summaries(inc))
    rewritten = write_aggregates(inc.store, run_id, kinds=kinds, changed=None)
    assert rewritten["summary_segments"] == len(kept["summary_segments"])
    _same_summaries(kept, _summaries(inc))
    assert inc.store.raw.execute("SELECT count(DISTINCT run_id) FROM summary_transitions").fetchone() == (1,)
    # the model results too (CLV diagnostics from the shared purchase days, campaign read-outs
    # kept or computed again, overview, forecasts) and the CLV scores at the new snapshot
    docs = [dict(p.store.raw.execute("SELECT name, document FROM summary_results").fetchall())
            for p in (full, inc)]
    assert sorted(docs[0]) == sorted(docs[1]) == ["campaigns", "clv_diagnostics", "forecasts", "overview"]
    for name, text in docs[0].items():
        assert _close(json.loads(text), json.loads(docs[1][name])), name
    scores = ("SELECT customer_id, score, value FROM customer_scores WHERE snapshot_date = "
              "(SELECT max(snapshot_date) FROM customer_scores) ORDER BY ALL")
    a, b = (p.store.raw.execute(scores).df() for p in (full, inc))
    assert len(a) > 1000
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-9)


def _close(x: object, y: object) -> bool:
    """Equal documents up to the last bits of floats (double sums of different orders)."""
    if isinstance(x, float) and isinstance(y, float):
        return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_close(x[k], y[k]) for k in x)
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(_close(p, q) for p, q in zip(x, y, strict=True))
    return x == y


def _reopen(directory, folder, ds, *, max_date):
    """The project at ``directory`` with its sources' export date moved to ``max_date``."""
    from segflow.datasets import demo_project_toml
    from segflow.project import Project

    toml = demo_project_toml(folder / "data", file_format="parquet", max_date=max_date)
    toml = toml.replace("[periods]", f"[periods]\nend = {ds.end.isoformat()}", 1)
    (directory / "segflow.toml").write_text(toml)
    return Project.open(directory)
