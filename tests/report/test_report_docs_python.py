"""The Python examples of the docs pages no other test runs, as written.

features.md, segments.md (tests/features/test_features_docs.py), migration.md
(tests/migration/test_migration_datasets.py), clustering.md, churn.md and the README have
their own tests. These pages name the reader's files: a project ``shop/`` or ``my_project/``
(here: the session's demo project, copied), and for models.md a ``transactions.parquet`` of
``customer_id, ts, amount`` over the CDNOW dates (here: the CDNOW sample of ../shared/data).
The blocks of one page run in order in one namespace and one folder, as in a notebook.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
DOCS = Path(__file__).resolve().parents[2] / "docs"


def _blocks(doc: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / doc).read_text(encoding="utf-8"), flags=re.S)


def _run(doc: str) -> dict:
    namespace: dict = {}
    for block in _blocks(doc):
        exec(compile(block, doc, "exec"), namespace)  # noqa: S102 - the docs' own code
    return namespace


@pytest.fixture()
def folder(tmp_path, monkeypatch, demo_project):
    import plotly.io as pio

    for name in ("shop", "my_project"):
        shutil.copytree(demo_project, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pio.renderers, "default", "json")  # .show() prints, opens no browser
    return tmp_path


def test_campaigns(folder):
    ns = _run("campaigns.md")
    assert len(ns["report"].to_pandas()) and ns["rep"].effect.to_pandas()["segment"].nunique() > 1
    assert set(ns["rep"].figures()) == {"lift_purchased", "lift_revenue", "migration", "transitions"}


def test_data(folder):
    ns = _run("data.md")
    # the demo's files were loaded already: this ingest finds them unchanged, one row each
    assert len(ns["report"].to_pandas()) == len(ns["settings"].sources) == 5
    assert len(ns["audit"](ns["store"]).to_pandas()) > 0
    ns["store"].close()


def test_demo_data(folder, cdnow_dir):
    from tests.sources.test_sources_published_sample import doc_toml

    (folder / "cdnow").mkdir()  # "CDNOW through a project": the file and the page's toml
    shutil.copy(cdnow_dir / "CDNOW_sample.txt", folder / "cdnow")
    (folder / "cdnow" / "segflow.toml").write_text(doc_toml())
    ns = _run("demo-data.md")
    assert ns["ds"].rows["customers"] >= 10_000 and (folder / "segflow.toml").is_file()  # + duplicates
    assert len(ns["cd"]) == 6_919 and len(ns["donors"]) > 0
    assert ns["loaded"].totals()["rows_accepted"] == 6_919
    assert round(ns["model"].params_["r"], 3) == 0.243  # Fader, Hardie & Lee (2005)


def test_models(folder):
    import pandas as pd

    from segflow.datasets import load_cdnow

    raw = load_cdnow()
    pd.DataFrame({"customer_id": raw["customer_id"], "ts": raw["date"], "amount": raw["amount"]}
                 ).to_parquet(folder / "transactions.parquet")
    ns = _run("models.md")
    assert round(ns["model"].params_["r"], 3) == 0.243  # Fader, Hardie & Lee (2005)
    assert len(ns["scores"].to_pandas()) == 2_357


def test_operations(folder):
    ns = _run("operations.md")
    assert list(ns["alerts"].columns)[:1] and ns["p"].store.closed
