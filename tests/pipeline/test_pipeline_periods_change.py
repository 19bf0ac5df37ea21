"""A changed [periods] setting: the next run stores what a run from scratch would."""

from __future__ import annotations

import datetime as dt
import tomllib

import pandas as pd
from tests.pipeline._fixture import PROJECT_TOML, fixture_tables

from segflow.config import Settings
from segflow.project import Project

_RESULTS = {
    "segment_assignments": "scheme, scheme_version, snapshot_date, customer_id, segment, segment_rank",
    "segment_snapshots": "scheme, snapshot_date",
    "segment_spells": "scheme, scheme_version, customer_id, segment, segment_rank, valid_from, valid_to",
    "summary_segments": None,
    "summary_transitions": None,
}


def _results(project: Project) -> dict[str, pd.DataFrame]:
    out = {}
    for table, columns in _RESULTS.items():
        if columns is None:
            names = [r[0] for r in project.store.raw.execute(f"DESCRIBE {table}").fetchall()]
            columns = ", ".join(n for n in names if n not in ("run_id", "computed_at"))
        out[table] = project.store.raw.execute(
            f"SELECT {columns} FROM {table} ORDER BY ALL").df()
    return out


def _fresh(path, toml: str) -> Project:
    project = Project.init(path, toml_text=toml)
    for name, table in fixture_tables().items():
        project.store.append(name, table)
    return project


#: Settings changed one after the other on one store (each from the previous, not only from
#: months: weeks -> months from April -> two dates), then back to months. (Quarters are
#: dates of the same kind: tests/core/test_core_settings.py; each change here is two runs.)
_CHANGES = [
    '[periods]\ngranularity = "week"',
    '[periods]\ngranularity = "month"\nstart = 2024-04-01',
    '[periods]\ngranularity = "dates"\ndates = [2024-03-15, 2024-06-15]',
]


def test_a_changed_periods_setting_replaces_the_stored_snapshots(ran_project, tmp_path):
    """Month -> quarter used to compute nothing ("the others were up to date") and keep
    every monthly snapshot: `migrate` and the report compared 2024-06-01 with 2024-07-01.
    After each change the store holds what a run from scratch with that setting stores."""
    project, _ = ran_project  # after a monthly run
    monthly = _results(project)
    for k, periods in enumerate(_CHANGES):
        toml = PROJECT_TOML.replace('[periods]\ngranularity = "month"', periods)
        project.settings = Settings.model_validate(tomllib.loads(toml))
        summary = project.run()
        fresh = _fresh(tmp_path / f"fresh{k}", toml)
        try:
            expected = fresh.run()
            assert summary.snapshot_dates == expected.snapshot_dates, periods
            assert project.snapshot_dates("rfm") == expected.snapshot_dates, periods
            got, want = _results(project), _results(fresh)
            for table in _RESULTS:
                pd.testing.assert_frame_equal(got[table], want[table], check_dtype=False,
                                              obj=f"{table} after {periods!r}")
        finally:
            fresh.close()
    # back to months: the monthly snapshots again, and nothing of the other settings
    project.settings = Settings.model_validate(tomllib.loads(PROJECT_TOML))
    project.run()
    assert project.snapshot_dates("rfm") == [dt.date(2024, m, 1) for m in range(2, 8)]
    got = _results(project)
    for table in _RESULTS:
        pd.testing.assert_frame_equal(got[table], monthly[table], check_dtype=False, obj=table)
