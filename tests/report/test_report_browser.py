"""The demo report in Debian's Chromium at 1280 px (Playwright): the first screen carries the
headline movements and the actions, nothing is wider than the window, no two chart labels
overlap (from the rendered SVG text boxes), chart text is at least 10 px, Sankey nodes keep
the segment order. Screenshots go to $SEGFLOW_ARTEFACTS (default: the test's temp folder)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH, HEIGHT = 1280, 800

_TEXT_BOXES = r"""
() => Array.from(document.querySelectorAll('.js-plotly-plot')).map((plot) => {
  const boxes = [];
  plot.querySelectorAll('svg text').forEach((t) => {
    const s = (t.textContent || '').trim();
    const st = getComputedStyle(t);
    if (!s || st.display === 'none' || st.visibility === 'hidden') return;
    const r = t.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) return;
    boxes.push({s, x0: r.left, y0: r.top, x1: r.right, y1: r.bottom, px: parseFloat(st.fontSize)});
  });
  return boxes;
})
"""


def _overlaps(boxes: list[dict]) -> list[tuple[str, str]]:
    out = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            w = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])
            h = min(a["y1"], b["y1"]) - max(a["y0"], b["y0"])
            if w > 1 and h > 1:
                out.append((a["s"], b["s"]))
    return out


@pytest.fixture(scope="module")
def page(demo_report, tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    artefacts = Path(os.environ.get("SEGFLOW_ARTEFACTS") or tmp_path_factory.mktemp("artefacts"))
    artefacts.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        pg = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        errors: list[str] = []
        requests: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.on("request", lambda r: requests.append(r.url))
        pg.goto(Path(demo_report).as_uri())
        # the first screen has no charts: it is complete as soon as the page has loaded
        pg.wait_for_selector("#headlines li", timeout=30_000)
        pg.screenshot(path=str(artefacts / "report-first-screen.png"))
        first_drawn = pg.evaluate("document.querySelectorAll('.js-plotly-plot').length")
        total = pg.evaluate("document.querySelectorAll('.plotly-lazy').length")
        assert first_drawn < total  # charts further down wait until they come near the window
        pg.evaluate("window.segflowRenderAll()")
        pg.wait_for_function(
            "Array.from(document.querySelectorAll('.plotly-lazy')).every(p => p._fullLayout)",
            timeout=120_000,
        )
        pg.wait_for_timeout(500)
        pg.screenshot(path=str(artefacts / "report-full.png"), full_page=True)
        yield pg, errors, requests
        browser.close()


def test_first_screen_has_headlines_and_actions(page, demo_project):
    from segflow.project import Project
    from segflow.report._context import ReportContext
    from segflow.report._summary import executive_summary

    pg, errors, requests = page
    assert errors == []
    assert all(u.startswith(("file:", "data:", "about:", "blob:")) for u in requests), requests  # blob: plotly.js from the page's own text
    for sel in ("#headlines", "#actions"):
        box = pg.locator(sel).bounding_box()
        assert box is not None and box["y"] + 60 < HEIGHT, (sel, box)
    headlines = pg.locator("#headlines li")
    assert 3 <= headlines.count() <= 5
    assert headlines.nth(0).bounding_box()["y"] + headlines.nth(0).bounding_box()["height"] <= HEIGHT
    with Project.open(demo_project, read_only=True) as project:
        summary = executive_summary(ReportContext(project))
    shown = [headlines.nth(i).inner_text() for i in range(headlines.count())]
    assert shown == summary.headlines
    actions = pg.locator("#actions li.action")
    assert actions.count() == len(summary.actions) > 0
    first = actions.nth(0).bounding_box()
    assert first["y"] + first["height"] <= HEIGHT
    assert f"{summary.actions.iloc[0].customers:,} customers" in actions.nth(0).inner_text()


def test_nothing_is_wider_than_the_window(page):
    pg, _, _ = page
    assert pg.evaluate("document.documentElement.scrollWidth") <= WIDTH
    wide = pg.evaluate(
        # plotly's off-screen text-measuring helper (#js-plotly-tester) is not page content
        "() => Array.from(document.querySelectorAll('body *')).filter(e => e.id !== 'js-plotly-tester'"
        " && !e.closest('#js-plotly-tester') && e.getBoundingClientRect().width > window.innerWidth + 0.5)"
        ".map(e => e.tagName + '#' + e.id)"
    )
    assert wide == []


def test_chart_labels_do_not_overlap_and_are_readable(page):
    pg, _, _ = page
    plots = pg.evaluate(_TEXT_BOXES)
    assert len(plots) >= 10
    overlapping = {i: _overlaps(boxes) for i, boxes in enumerate(plots)}
    print(overlapping)
    assert {i: o for i, o in overlapping.items() if o} == {}
    small = [b["s"] for boxes in plots for b in boxes if b["px"] < 10]
    assert small == []


_CATEGORY_LABELS = r"""
() => Array.from(document.querySelectorAll('.js-plotly-plot')).flatMap((plot) =>
  Object.keys(plot._fullLayout).filter((k) => /^[xy]axis\d*$/.test(k)).map((k) => {
    const ax = plot._fullLayout[k];
    if (ax.type !== 'category' || !ax.visible || !ax.showticklabels) return null;
    const shown = Array.from(plot.querySelectorAll('g.' + ax._id + 'tick text'))
      .map((t) => (t.textContent || '').trim()).filter((s) => s);
    const title = (plot._fullLayout.title && plot._fullLayout.title.text) || '';
    return {title, axis: k, categories: ax._categories.map(String), shown};
  }).filter((a) => a))
"""


def test_every_category_of_a_chart_axis_is_labelled(page):
    """Plotly drops category tick labels it cannot fit: a segment bar without its name. Every
    category axis of every chart must show one label per category."""
    pg, _, _ = page
    axes = pg.evaluate(_CATEGORY_LABELS)
    assert len(axes) >= 20
    def flat(texts: list[str]) -> set[str]:  # a wrapped label: lines in tspans, <br> in the category
        return {"".join(t.replace("<br>", " ").split()) for t in texts}

    missing = [(a["title"], a["axis"], sorted(flat(a["categories"]) - flat(a["shown"])))
               for a in axes if flat(a["categories"]) - flat(a["shown"])]
    assert missing == []


_WORDS = r"""
() => Array.from(document.querySelectorAll('th, h2, h3, summary, .kpi .kl, .js-plotly-plot .gtitle, '
  + '.js-plotly-plot .g-xtitle, .js-plotly-plot .g-ytitle, .js-plotly-plot .legendtext'))
  .map((e) => (e.textContent || '').trim()).filter((s) => s)
"""


def test_headers_titles_and_legends_are_words_not_column_names(page):
    """No snake_case or ``mean__`` column name in a table header, a heading, a card label or a
    chart's title, axis title or legend (ids in upper case, e.g. a campaign's, are data)."""
    import re

    pg, _, _ = page
    texts = pg.evaluate(_WORDS)
    assert len(texts) > 200
    assert [t for t in texts if re.search(r"\b[a-z0-9]+_[a-z0-9_]*\b|__", t)] == []
    assert any(t.startswith("Value tiers") for t in texts)  # a scheme in words, not value_tiers


def test_sankey_nodes_keep_the_segment_order(page):
    pg, _, _ = page
    # the first Sankey (headline scheme, two snapshots): left and right columns top to bottom
    columns = pg.evaluate(
        """() => {
          const plot = Array.from(document.querySelectorAll('.js-plotly-plot')).find(p => p.querySelector('g.sankey'));
          const nodes = Array.from(plot.querySelectorAll('g.sankey-node')).map(g => {
            const r = g.querySelector('rect').getBoundingClientRect();
            return {x: Math.round(r.left), y: r.top, label: (g.querySelector('text') || {}).textContent || ''};
          });
          const cols = {};
          nodes.forEach(n => { (cols[n.x] = cols[n.x] || []).push(n); });
          return Object.keys(cols).sort((a, b) => a - b).map(k => cols[k].sort((a, b) => a.y - b.y).map(n => n.label));
        }"""
    )
    assert len(columns) == 2
    order = [s for s in columns[0] if s != "(new)"]
    right = [s for s in columns[1] if s != "(gone)"]
    common = [s for s in order if s in right]
    assert [s for s in right if s in common] == common


def test_report_is_one_offline_file_with_plotly_once(demo_report):
    text = Path(demo_report).read_text(encoding="utf-8")
    assert text.count("plotly.js v") == 1  # the library's banner: inlined once
    assert "<script src=" not in text  # nothing loaded from elsewhere (the page test checks requests)
    assert "@media print" in text and "toImageButtonOptions" in text  # PNG download per chart


_PROFILE_TICKS = r"""
() => Array.from(document.querySelectorAll('.js-plotly-plot')).filter((plot) =>
  ((plot._fullLayout.title || {}).text || '').includes('what sets each segment apart')).map((plot) => {
  const ticks = (cls) => Array.from(plot.querySelectorAll('g.' + cls + ' text')).map((t) => {
    const m = /rotate\((-?[\d.]+)/.exec((t.getAttribute('transform') || '') + ' ' + (t.parentNode.getAttribute('transform') || ''));
    return {s: (t.textContent || '').trim(), angle: m ? Math.abs(parseFloat(m[1])) : 0};
  });
  return {title: plot._fullLayout.title.text, y: ticks('ytick'), x: ticks('xtick')};
})
"""


def test_profile_heatmaps_name_features_in_words_with_units_and_angle_at_most_45(page, demo_project):
    """The profile heat-maps name the features by their human labels with units (the
    registry's :func:`feature_label`, the project's currency: no de-snaked column names such as
    "ipt cv"), across the top-8 columns; no tick label is turned by more than 45 degrees."""
    from segflow.features._registry import FEATURE_LABELS, feature_label
    from segflow.project import Project

    pg, _, _ = page
    with Project.open(demo_project, read_only=True) as project:
        currency = project.settings.project.currency
    heatmaps = pg.evaluate(_PROFILE_TICKS)
    assert len(heatmaps) >= 3
    # a wrapped label's lines are separate tspans: compare without white space
    words = {"".join(feature_label(name, currency).split()) for name in FEATURE_LABELS}
    for plot in heatmaps:
        shown = ["".join(t["s"].split()) for t in plot["x"]]
        assert len(shown) == 8, plot["title"]
        assert set(shown) <= words, (plot["title"], sorted(set(shown) - words))
        assert [t for t in plot["y"] + plot["x"] if t["angle"] > 45] == []
    labels = {t["s"] for plot in heatmaps for t in plot["x"]}
    assert any(f"({currency})" in s for s in labels)  # money features carry the currency


_QUALITY_CELLS = r"""
() => Array.from(document.querySelectorAll('#quality table')).map((table) => {
  const heads = Array.from(table.querySelectorAll('thead th')).map((th) => th.textContent.trim());
  const col = heads.findIndex((h) => h === 'Rule' || h === 'Check');
  if (col < 0) return {head: null};
  return {head: heads[col], cells: Array.from(table.querySelectorAll('tbody tr')).map((tr) => {
    const td = tr.children[col];
    return {text: td.innerText.trim(), id: td.getAttribute('title')};
  })};
}).filter((t) => t.head)
"""


def test_quality_rules_and_checks_are_described_in_words_with_the_id_on_hover(page, demo_project):
    """The data-quality tables describe each quarantine rule and audit check in words (from
    the rules' and checks' descriptions), never as an id such as ``unknown_customer`` or
    ``completeness:email``; the id is the cell's tooltip. Every quarantined rule and every
    failed check in the store is listed."""
    import re

    from segflow.project import Project
    from segflow.quality import audit
    from segflow.quality._audit import check_title
    from segflow.sources._rules import RULES

    pg, _, _ = page
    tables = {t["head"]: t["cells"] for t in pg.evaluate(_QUALITY_CELLS)}
    assert set(tables) == {"Rule", "Check"}
    with Project.open(demo_project, read_only=True) as project:
        rules = {r for (r,) in project.store.raw.execute("SELECT DISTINCT rule FROM quarantine").fetchall()}
        checks = audit(project.store).to_pandas()
    failed = set(checks.loc[checks.severity != "ok", "check"])
    assert {c["id"] for c in tables["Rule"]} == rules and "unknown_customer" in rules
    assert {c["id"] for c in tables["Check"]} == failed and "completeness:email" in failed
    for cell in tables["Rule"]:
        assert cell["text"].lower() == RULES[cell["id"]].lower()
    described = {c["id"]: c["text"] for c in tables["Check"]}
    assert described["completeness:email"] == "Missing email"
    for check, text in described.items():
        assert text == check_title(check)
    assert [c["text"] for t in tables.values() for c in t if re.fullmatch(r"[a-z0-9_:]+", c["text"])] == []
