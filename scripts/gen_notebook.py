"""Write and execute docs/notebook.ipynb: segflow in a notebook, on generated demo data.

Run from the repository root: ``python scripts/gen_notebook.py`` (about a minute). The
executed notebook, outputs included, is committed; tests/report/test_report_notebook.py runs
it again (slow test)."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

DOCS = Path(__file__).resolve().parents[1] / "docs"

CELLS = [
    ("md", "# segflow in a notebook\n\nA demo shop generated on the fly (1,500 customers, 18 months), "
           "ingested and segmented; then every stage's results as DataFrames and Plotly figures. "
           "Result objects show as HTML tables; `.to_pandas()` is always there."),
    ("code", "import tempfile\nimport warnings\nfrom pathlib import Path\n\nimport segflow\nfrom segflow.datasets import demo_project_toml, generate_demo\n\n"
             "folder = Path(tempfile.mkdtemp()) / \"demo\"\n"
             "data = generate_demo(folder / \"data\", customers=1500, months=18, seed=3)\n"
             "project = segflow.Project.init(folder, toml_text=demo_project_toml(\"data\", max_date=data.end))\n"
             "with warnings.catch_warnings(record=True) as caught:  # the ingest's counts, as one line\n"
             "    warnings.simplefilter(\"always\")\n    project.ingest()\n"
             "print(*{str(w.message) for w in caught}, sep=\"\\n\")\nrun = project.run()\nproject.schemes()"),
    ("md", "## The first screen of the report: what changed and what to do"),
    ("code", "summary = project.summary()\nsummary"),
    ("code", "summary.actions[[\"action\", \"customers\", \"revenue_12m\", \"clv\"]]"),
    ("md", "## Segments and migration"),
    ("code", "project.segment_sizes(\"rfm\")"),
    ("code", "matrix = project.transitions(\"rfm\")\nmatrix"),
    ("code", "matrix.flows(top=5)"),
    ("code", "matrix.sankey()"),
    ("md", "## Predicted value (CLV) and how far to trust it"),
    ("code", "project.clv(\"rfm\")"),
    ("code", "diagnostics = project.clv_diagnostics()\nfor caveat in diagnostics.caveats():\n    print(\"-\", caveat)"),
    ("code", "diagnostics.figures()[\"tracking\"]"),
    ("md", "## Churn scores and campaigns"),
    ("code", "project.churn_scores().head()"),
    ("code", "campaigns = project.campaigns()\n[c.campaign_id for c in campaigns]"),
    ("md", "## The report file"),
    ("code", "path = project.report(folder / \"report.html\")\npath.name, round(path.stat().st_size / 1e6, 1)"),
]


def build() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, text in CELLS:
        nb.cells.append(nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text))
    return nb


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 900) -> nbformat.NotebookNode:
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


if __name__ == "__main__":
    out = DOCS / "notebook.ipynb"
    notebook = execute(build(), DOCS)
    nbformat.write(notebook, out)
    print(f"wrote {out}", file=sys.stderr)
