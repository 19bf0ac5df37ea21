"""docs/notebook.ipynb runs from top to bottom and shows the report's first screen (slow:
it generates demo data and runs the pipeline inside a Jupyter kernel)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_notebook_executes_and_matches_the_committed_one(tmp_path):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    import nbformat

    spec = importlib.util.spec_from_file_location("gen_notebook", REPO / "scripts" / "gen_notebook.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    os.environ.setdefault("PYTHONPATH", str(REPO / "src"))
    nb = gen.execute(gen.build(), tmp_path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    html = "".join(o.get("data", {}).get("text/html", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "What changed" in html and "What to do" in html
    committed = nbformat.read(REPO / "docs" / "notebook.ipynb", as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in nb.cells]  # regenerate with the script
    assert all(c.outputs for c in committed.cells if c.cell_type == "code")  # committed executed
    # GitHub runs no JavaScript: every Plotly figure carries a picture next to its live JSON
    figures = [o["data"] for c in committed.cells if c.cell_type == "code" for o in c.outputs
               if gen.PLOTLY in o.get("data", {})]
    assert len(figures) >= 2 and all(d.get("image/png", "").startswith("iVBOR") for d in figures)
    # no local paths of the machine that executed it
    text = (REPO / "docs" / "notebook.ipynb").read_text(encoding="utf-8")
    assert "/work/" not in text and "site-packages" not in text
