"""The data-quality audit is stored by ingest and read, not recomputed, by the run (issue 10,
"ingest stores its audit"): every load makes the stored audit stale, and a run recomputes a
stale or missing one; the stored audit always equals a fresh ``segflow.quality.audit``."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest


def _audit_rows(store) -> pd.DataFrame:
    return store.raw.execute(
        'SELECT "check", "table", severity, count, total, examples, created_at, run_id '
        'FROM summary_audit ORDER BY "check", "table"').df()


def _fresh(store) -> pd.DataFrame:
    from segflow.quality import audit

    out = audit(store).to_pandas()[["check", "table", "severity", "count", "total"]]
    return out.sort_values(["check", "table"]).reset_index(drop=True)


def _same_checks(stored: pd.DataFrame, fresh: pd.DataFrame) -> None:
    got = stored[["check", "table", "severity", "count", "total"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, fresh, check_dtype=False)


@pytest.fixture()
def project(tmp_path):
    from segflow.datasets import demo_project_toml, generate_demo
    from segflow.project import Project

    ds = generate_demo(tmp_path / "data", customers=80, months=4, seed=11, formats=("parquet",))
    toml = demo_project_toml(tmp_path / "data", file_format="parquet", max_date=ds.end)
    with Project.init(tmp_path / "proj", toml_text=toml) as p:
        yield p


def test_ingest_stores_the_audit_and_the_run_reuses_it_until_the_next_load(project):
    from segflow.sources import ingest
    from segflow.summaries import audit_is_current

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the demo data carries injected defects on purpose
        project.ingest()
    store = project.store
    stored = _audit_rows(store)
    assert len(stored) > 10 and audit_is_current(store)
    assert stored["run_id"].isna().all()
    _same_checks(stored, _fresh(store))
    # the run keeps it (same rows, same creation time) and marks it as its own
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = project.run()
    kept = _audit_rows(store)
    assert list(kept["created_at"]) == list(stored["created_at"])
    assert set(kept["run_id"]) == {run.run_id}
    # a load (here a forced re-read: every row a duplicate) makes it stale in its transaction
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest(store, project.settings, project.directory, force=True)
    assert _audit_rows(store).empty and not audit_is_current(store)
    # so the next run audits the data again: the duplicates are in the new audit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        project.run(full=True)
    again = _audit_rows(store)
    assert len(again) == len(stored) and again["created_at"].min() > stored["created_at"].max()
    _same_checks(again, _fresh(store))
