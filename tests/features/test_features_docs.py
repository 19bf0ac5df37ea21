"""Docs that cannot drift: every feature is documented, and the examples run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from segflow.features import FEATURES, REQUIRED_TABLES, customer_features
from segflow.store import Store

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_feature_is_registered_and_documented():
    store = Store(":memory:")
    columns = customer_features({n: store.table(n) for n in REQUIRED_TABLES},
                                __import__("datetime").date(2025, 1, 1)).columns
    assert set(columns) == set(FEATURES)
    text = (DOCS / "features.md").read_text(encoding="utf-8")
    for name, feature in FEATURES.items():
        row = re.search(rf"^\| `{name}` \| ([^|]+) \| (.+) \|$", text, flags=re.M)
        assert row, f"{name} has no row in docs/features.md"
        assert row.group(1).strip() == feature.unit, name
        assert row.group(2).strip() == feature.definition, name
        assert feature.unit and feature.definition.endswith(".")


def test_every_feature_has_a_human_label_with_its_unit():
    """One label per registered feature (the report's heat-maps and tables read them); money
    features name the project's currency, shares are labelled as percentages."""
    from segflow.features._registry import FEATURE_LABELS, SHARE_UNITS, feature_label

    assert set(FEATURE_LABELS) == set(FEATURES)
    for name, feature in FEATURES.items():
        text = feature_label(name, "EUR")
        assert "_" not in text and text[:1].isupper(), name
        if feature.unit == "currency":
            assert text.endswith("(EUR)"), name
        if feature.unit in SHARE_UNITS:
            assert text.endswith("(%)"), name
    assert feature_label("monetary_12m", "EUR") == "Revenue, last 12 months (EUR)"
    assert feature_label("ipt_cv") == "Inter-purchase time, CV"
    assert feature_label("nps_score") == "Nps score"  # a survey question: de-snake-cased


def _python_blocks(name: str) -> list[str]:
    text = (DOCS / name).read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("doc", ["features.md", "segments.md"])
def test_doc_examples_run(doc):
    blocks = _python_blocks(doc)
    assert blocks, f"{doc} has no python examples"
    namespace: dict[str, object] = {}
    for block in blocks:  # blocks of one page share a namespace, like a notebook
        exec(compile(block, doc, "exec"), namespace)  # noqa: S102


def test_survey_features_follow_their_documented_row():
    """Survey columns are made per question; their unit and definition follow the one
    documented `<question>` row of docs/features.md."""
    import datetime as dt

    import pandas as pd
    import pyarrow as pa

    from segflow.features import feature_registry

    store = Store(":memory:")
    frame = pd.DataFrame({"customer_id": ["a", "a", "b"], "ts": pd.to_datetime(["2024-01-01"] * 3),
                          "question": ["Lifestyle", "NPS score", "nps score"],
                          "answer": ["family", "7", "10"]})
    store.append("survey_responses", pa.Table.from_pandas(frame, preserve_index=False))
    store.raw.execute("INSERT INTO customers (customer_id, created_at) VALUES "
                      "('a', '2023-01-01'), ('b', '2023-01-01')")  # the base: known customers
    tables = {n: store.table(n) for n in REQUIRED_TABLES}
    survey = {n: f for n, f in feature_registry(tables).items() if n not in FEATURES}
    assert {n: (f.unit, f.kind) for n, f in survey.items()} == {
        "lifestyle": ("answer", "categorical"), "nps_score": ("number", "numeric")}
    text = (DOCS / "features.md").read_text(encoding="utf-8")
    row = re.search(r"^\| `<question>` \| ([^|]+) \| (.+) \|$", text, flags=re.M)
    assert row and row.group(1).strip() == "answer or number"
    stem = row.group(2).split(";")[0]  # "Latest answer before s to the survey question"
    for feature in survey.values():
        assert feature.definition.startswith(stem) and feature.group == "survey"
    got = customer_features(tables, dt.date(2024, 2, 1)).to_pandas().set_index("customer_id")
    assert got.loc["a", "nps_score"] == 7.0 and got.loc["b", "nps_score"] == 10.0
    assert got.loc["a", "lifestyle"] == "family"
