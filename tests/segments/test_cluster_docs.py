"""The Python examples of docs/clustering.md run and print what the text says."""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "clustering.md"


def test_clustering_doc_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - our own docs
    assert namespace["seg"].k_ == 3
    assert out.getvalue().splitlines()[0] == "3"
    counts = namespace["assigned"].group_by("segment").count().to_pandas()
    assert counts.iloc[:, 1].sum() == 900
