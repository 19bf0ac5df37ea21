"""The Python example of docs/churn.md runs as written."""

from __future__ import annotations

from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "churn.md"


@pytest.mark.slow  # five snapshots of the feature library
def test_churn_doc_example_runs(capsys):
    import segflow.models

    missing = [n for n in ("score_churn", "train_churn", "write_churn_scores")
               if not hasattr(segflow.models, n)]
    if missing:
        pytest.skip(f"segflow.models does not export {', '.join(missing)} yet")
    block = DOC.read_text(encoding="utf-8").split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(block, str(DOC), "exec"), namespace)
    out = capsys.readouterr().out
    assert "ChurnEvaluation(" in out and "'high':" in out
    assert namespace["training"].evaluation.auc > 0.75
