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
