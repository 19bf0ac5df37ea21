"""Write and execute docs/notebook.ipynb: segflow in a notebook, on generated demo data.

Run from the repository root: ``python scripts/gen_notebook.py`` (about a minute). The
executed notebook, outputs included, is committed; each Plotly figure carries a PNG drawn in
Chromium next to its live JSON, since GitHub runs no JavaScript; tests/report/test_report_notebook.py runs
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
           "Result objects show as HTML tables; the tabular ones (transition matrices, campaign "
           "read-outs, churn scores) also give `.to_pandas()`, and the summary and the CLV "
           "diagnostics keep their tables as attributes (`summary.actions`, `diagnostics.deciles`)."),
    ("code", "import tempfile\nimport warnings\nfrom pathlib import Path\n\nimport segflow\nfrom segflow.datasets import demo_project_toml, generate_demo\n\n"
             "folder = Path(tempfile.mkdtemp()) / \"demo\"\n"
             "data = generate_demo(folder / \"data\", customers=1500, months=18, seed=3)\n"
             "project = segflow.Project.init(folder, toml_text=demo_project_toml(\"data\", max_date=data.end))\n"
             "with warnings.catch_warnings(record=True) as caught:  # the ingest's counts and the run's checks\n"
             "    warnings.simplefilter(\"always\", UserWarning)  # segflow's notes are UserWarnings\n"
             "    project.ingest()\n    run = project.run()\n"
             "notes = [w for w in caught if issubclass(w.category, UserWarning)]  # not libraries' deprecations\n"
             "print(*dict.fromkeys(str(w.message) for w in notes), sep=\"\\n\")  # one line each\nproject.schemes()"),
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
    ("code", "diagnostics = project.clv_diagnostics()\ndiagnostics  # the caveats in words and the calibration by decile"),
    ("code", "diagnostics.figures()[\"tracking\"]"),
    ("md", "## Churn scores and campaigns\n\n`segflow run` trains no churn model: `train_churn` does, "
           "as `segflow churn train` (and saves it for `segflow churn score`); `score_churn` stores "
           "the scores that `churn_scores()` reads."),
    ("code", "training = project.train_churn(threads=1)\ntraining.evaluation  # AUC, lift and calibration on a later snapshot"),
    ("code", "scores = project.score_churn(threads=1)\nscores.band_counts()"),
    ("code", "project.churn_scores().head()"),
    ("code", "campaigns = project.campaigns()\ncampaigns[-1]  # lift vs control by segment; campaigns[-1].figures() has the charts"),
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


PLOTLY = "application/vnd.plotly.v1+json"
_PAGE = """<!doctype html><html><head><meta charset="utf-8"><script>{js}</script></head>
<body style="margin:0;background:#fff"><div id="fig" style="width:{width}px;height:{height}px"></div>
<script>var f = {fig}; Plotly.newPlot("fig", f.data, f.layout, {{staticPlot: true}});</script></body></html>"""


def add_png_fallbacks(nb: nbformat.NotebookNode, width: int = 960) -> int:
    """Give every Plotly output a static ``image/png`` next to its Plotly JSON: GitHub (and any
    viewer that runs no JavaScript) shows the picture, Jupyter still draws the live chart.

    The picture is the figure drawn by plotly.js in Debian's Chromium (through Playwright),
    so no image-export package (kaleido) is needed. Returns the number of figures drawn."""
    import base64
    import json
    import shutil
    import tempfile

    from playwright.sync_api import sync_playwright
    from plotly.offline import get_plotlyjs

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if PLOTLY in o.get("data", {})]
    if not outputs:
        return 0
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    js = get_plotlyjs()
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": width, "height": 800})
        for i, output in enumerate(outputs):
            fig = output["data"][PLOTLY]
            height = int((fig.get("layout") or {}).get("height") or 450)
            html = _PAGE.format(js=js, width=width, height=height, fig=json.dumps(fig).replace("</", "<\\/"))
            path = Path(tmp) / f"fig{i}.html"
            path.write_text(html, encoding="utf-8")
            page.goto(path.as_uri())
            page.wait_for_function("document.getElementById('fig')._fullLayout !== undefined", timeout=60_000)
            page.wait_for_timeout(200)
            png = page.locator("#fig").screenshot(type="png")
            output["data"]["image/png"] = base64.b64encode(png).decode("ascii")
            output["data"].setdefault("text/plain", "<plotly figure: the live chart in Jupyter, a picture elsewhere>")
        browser.close()
    return len(outputs)


if __name__ == "__main__":
    out = DOCS / "notebook.ipynb"
    notebook = execute(build(), DOCS)
    add_png_fallbacks(notebook)
    nbformat.write(notebook, out)
    print(f"wrote {out}", file=sys.stderr)
