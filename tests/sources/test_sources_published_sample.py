"""The CDNOW 1/10 sample (whitespace-aligned, no header) through a project: ``segflow
ingest`` stores what :func:`segflow.datasets.load_cdnow` reads, reconciled with the file's
lines, and BG/NBD fitted on the store lands on the published estimates (Fader, Hardie & Lee
2005; the golden test's calibration, tests/models/test_models_btyd_golden.py). The project
file is the one docs/demo-data.md shows ("CDNOW through a project")."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import warnings
from pathlib import Path

import pytest

from segflow.config import Settings
from segflow.datasets import load_cdnow
from segflow.models import BetaGeoModel, btyd_summary, compress
from segflow.sources import check_source, ingest
from segflow.store import Store

DOCS = Path(__file__).resolve().parents[2] / "docs"


def doc_toml() -> str:
    """The segflow.toml of docs/demo-data.md, "CDNOW through a project", as written."""
    text = (DOCS / "demo-data.md").read_text(encoding="utf-8")
    return re.search(r"### CDNOW through a project.*?```toml\n(.*?)```", text, re.S).group(1)


BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # FHL (2005)


def test_cdnow_ingested_equals_the_loader_and_fits_the_published_bgnbd(tmp_path, cdnow_dir):
    shutil.copy(cdnow_dir / "CDNOW_sample.txt", tmp_path)
    (tmp_path / "segflow.toml").write_text(doc_toml())
    settings = Settings.load(tmp_path)
    store = Store(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest(store, settings, tmp_path, now=dt.datetime(2026, 1, 1))
    lines = (tmp_path / "CDNOW_sample.txt").read_bytes().count(b"\n")  # wc -l
    read, accepted, quarantined = store.raw.execute(
        "SELECT rows_read, rows_accepted, rows_quarantined FROM loads").fetchone()
    assert (lines, read, accepted, quarantined) == (6_919, 6_919, 6_919, 0)
    assert store.raw.execute("SELECT count(*) FROM quarantine").fetchone()[0] == quarantined
    # lines without ids: no block of the published file repeats (no repeated_lines flag)
    assert store.raw.execute("SELECT count(*) FROM ingest_flags").fetchone()[0] == 0
    check = check_source(settings.sources[0], tmp_path, n=10_000, now=dt.datetime(2026, 1, 1))
    assert (check.counts["rows_read"], check.counts["rows_accepted"]) == (lines, accepted)

    # the stored rows, row by row (source_row = line), against the loader's pandas reading
    stored = store.raw.execute(
        "SELECT source_row, customer_id, ts, amount, quantity FROM transactions "
        "ORDER BY source_row").df()
    expected = load_cdnow(cdnow_dir)
    assert list(stored.source_row) == list(range(1, lines + 1))
    assert list(stored.customer_id) == list(expected.customer_id)  # '00004', as written
    assert (stored.ts.to_numpy() == expected.date.to_numpy()).all()
    assert list(stored.quantity) == list(expected.cds)
    per_customer = stored.groupby("customer_id").amount.sum()
    assert per_customer.round(2).to_dict() == expected.groupby(
        "customer_id").amount.sum().round(2).to_dict()
    assert len(per_customer) == 2_357

    # BG/NBD on the store: weekly, calibration 1997-01-01 .. 1997-09-30, holdout 39 weeks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = btyd_summary(store.table("transactions"), calibration_end="1997-10-01",
                               observation_end="1998-07-01", time_unit="W")
        model = BetaGeoModel().fit(compress(summary))
    for name, value in BGNBD.items():
        assert model.params_[name] == pytest.approx(value, abs=5e-4), name
    assert model.n_customers_ == 2_357
    store.close()
