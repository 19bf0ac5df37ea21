"""Time leakage: nothing a run stores at a snapshot ``s`` may change when every input row
dated on or after ``s`` is removed (truncation invariance, docs/concepts.md "Snapshot")."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
from tests.pipeline._fixture import fixture_tables

from segflow.project import Project

S = dt.date(2024, 4, 1)

# three monthly snapshots (2024-02-01 to S) in both runs, S the latest even with data after
# it (so its full features, CLV scores, profiles and model results are stored too), and few
# schemes: the test runs twice (a cluster scheme is fitted on the earliest snapshot a run
# computes, the same in both, and costs seconds to fit)
TOML = """
[project]
name = "truncation"

[periods]
granularity = "month"
end = 2024-04-01

[rfm]
window_days = 60  # the window features' amounts leave the window: a path of its own

[[schemes]]
name = "rfm"
kind = "rfm"

[[schemes]]
name = "lifecycle"
kind = "lifecycle"

[[schemes]]
name = "rfm_frozen"
kind = "rfm"
cutoffs = "reference"
reference_snapshot = 2024-02-01

[[schemes]]
name = "context"
kind = "rules"
default = "other"
rules = [
  { segment = "fan", when = "taste = 'high'" },
  { segment = "north opener", when = "region = 'North' and campaign_open_rate_12m > 0" },
  { segment = "visitor", when = "visits_90d >= 2" },
  { segment = "north", when = "region = 'North'" },
]
"""


def _inputs() -> dict[str, pa.Table]:
    """The pipeline fixture plus web events, campaign exposures, survey answers (before, at
    and after ``S``) and an attribute history whose changes straddle ``S``."""
    tables = fixture_tables()
    ids = tables["customers"]["customer_id"].to_pylist()
    rng = np.random.default_rng(11)
    start = pd.Timestamp("2024-01-01")

    def times(n: int) -> pd.Series:
        """``n`` times in the fixture's half year, every tenth exactly ``S`` (00:00: the
        next snapshot's)."""
        out = pd.Series(start + pd.to_timedelta(rng.integers(0, 181 * 86400, n), unit="s"))
        out[::10] = pd.Timestamp(S)
        return out

    lines = tables["transactions"].to_pandas()
    lines.loc[::25, "ts"] = pd.Timestamp(S)
    tables["transactions"] = pa.Table.from_pandas(lines, preserve_index=False)

    n = 300
    tables["events"] = pa.Table.from_pandas(pd.DataFrame({
        "customer_id": rng.choice(ids, n), "ts": times(n),
        "event_type": rng.choice(["visit", "product_view", "cart_add"], n),
        "session_id": [f"S{i // 3}" for i in range(n)],
    }), preserve_index=False)
    n = 120
    tables["campaign_exposures"] = pa.Table.from_pandas(pd.DataFrame({
        "campaign_id": rng.choice(["A", "B", "C"], n), "customer_id": rng.choice(ids, n),
        "ts": times(n), "arm": "treatment", "exposure_type": rng.choice(["send", "open"], n),
    }), preserve_index=False)
    n = 80
    tables["survey_responses"] = pa.Table.from_pandas(pd.DataFrame({
        "customer_id": rng.choice(ids, n), "ts": times(n), "question": "taste",
        "answer": rng.choice(["high", "low"], n),
    }), preserve_index=False)
    # every customer moves region after signing up, on days before and after S: the old
    # record ends there
    c = tables["customers"].to_pandas()
    moved = np.maximum(times(len(c)), c["created_at"] + pd.Timedelta(days=1))
    old = c.assign(valid_from=c["created_at"], valid_to=moved)
    new = c.assign(region=np.where(c["region"] == "North", "South", "North"),
                   valid_from=moved, valid_to=pd.NaT)
    tables["customers"] = pa.Table.from_pandas(pd.concat([old, new]), preserve_index=False)
    return tables


def _truncated(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """The input as exported at ``S``: rows dated on or after it removed; a record's end
    after ``S`` not known yet."""
    cut = pd.Timestamp(S)
    out = {}
    for name, table in tables.items():
        frame = table.to_pandas()
        if name == "customers":
            frame = frame[(frame["created_at"] < cut) & ~(frame["valid_from"] >= cut)]
            frame = frame.assign(valid_to=frame["valid_to"].where(frame["valid_to"] < cut))
        else:
            frame = frame[frame["ts"] < cut]
        out[name] = pa.Table.from_pandas(frame, preserve_index=False)
    return out


def _run(directory, tables: dict[str, pa.Table]) -> dict[str, pd.DataFrame]:  # noqa: ANN001
    project = Project.init(directory, toml_text=TOML)
    with project:
        for name, table in tables.items():
            project.store.append(name, table)
        project.run()
        con = project.store.raw
        read = {
            "assignments": "SELECT * EXCLUDE (run_id) FROM segment_assignments",
            "segments": "SELECT * EXCLUDE (run_id) FROM summary_segments",
            "transitions": "SELECT * EXCLUDE (run_id) FROM summary_transitions",
            "features": "SELECT * FROM customer_features",
            "scores": "SELECT * EXCLUDE (run_id) FROM customer_scores",
            "profiles": "SELECT * EXCLUDE (run_id) FROM summary_profiles",
            # the overview totals the whole transactions table (revenue_totals: the data
            # in the store, not a snapshot's), so it is not compared
            "results": "SELECT name, snapshot_date, document FROM summary_results "
                       "WHERE name <> 'overview'",
        }
        return {k: con.execute(sql).df() for k, sql in read.items()}


def _same(full: pd.DataFrame, cut: pd.DataFrame, keys: list[str]) -> None:
    full = full.sort_values(keys).reset_index(drop=True)
    cut = cut.sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(full, cut, check_dtype=False)


def test_what_a_run_stores_at_a_snapshot_does_not_depend_on_later_data(tmp_path):
    tables = _inputs()
    full = _run(tmp_path / "full", tables)
    cut = _run(tmp_path / "cut", _truncated(tables))
    assert set(cut["assignments"]["scheme"]) == {
        "rfm", "lifecycle", "rfm_frozen", "context"}
    assert S in set(cut["assignments"]["snapshot_date"].dt.date)
    _same(full["assignments"], cut["assignments"], ["scheme", "snapshot_date", "customer_id"])
    _same(full["segments"], cut["segments"], ["scheme", "snapshot_date", "segment"])
    _same(full["transitions"], cut["transitions"], ["scheme", "from_date", "to_date",
                                                    "from_segment", "to_segment"])
    _same(full["features"], cut["features"], ["customer_id"])
    assert set(cut["scores"]["snapshot_date"].dt.date) == {S}
    _same(full["scores"], cut["scores"], ["customer_id", "model", "score"])
    _same(full["profiles"], cut["profiles"], ["scheme", "segment", "feature"])
    _same(full["results"], cut["results"], ["name"])
