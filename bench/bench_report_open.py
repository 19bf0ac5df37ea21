"""How fast the HTML report opens in a browser: Debian's Chromium through Playwright.

Issue 15's target: the report of a 1M-customer store opens in under 2 s. The report is
rendered from the store's aggregates (``segflow run`` stores them, ``segflow report`` reads
them), so the file's size does not grow with the customers; this bench measures both the
rendering (optional) and the opening.

    python bench/bench_report_open.py --project /tmp/me/proj-1m --render --tag after
        render PROJECT/report.html (``segflow report`` in its own process: wall time, peak
        memory), then open it --repeat times (default 5)
    python bench/bench_report_open.py --report out/report.html
        open an existing report only
    python bench/bench_report_open.py --render-docs
        the table of bench/results/report_open.jsonl into docs/benchmarks.md (markers
        <!-- bench:report-open -->)

Each opening is a fresh browser context (no cache) at 1280x800 and records, in milliseconds
from the navigation start (the browser's own clocks, ``performance``):

- ``first_paint`` / ``first_contentful_paint``: the paint timing entries;
- ``dom_content_loaded`` / ``load``: the navigation timing (before session 22 ``load``
  included compiling the inlined plotly.js; now the report holds plotly.js as text and
  compiles it after the load event, off the main thread);
- ``plotly_ready``: plotly.js compiled and run, ready to draw (the report marks
  ``segflow-plotly-ready``; None for reports that inline it as a script);
- ``first_screen``: the executive summary (every headline and the data-health line, marked
  ``elementtiming`` in the report) has been painted: the Element Timing API's render time;
- ``largest_contentful_paint``: the browser's LCP entry;
- ``visible_charts``: the charts drawn on opening (those near the window) are drawn (the
  report marks ``segflow-chart-drawn`` when each is); with none near the window, the first
  screen's time;
- ``all_charts``: after ``segflowRenderAll()`` (what printing does), every chart is drawn;
  ``all_charts_after_request``: the same from the call.

Results: one JSON line per run in ``bench/results/report_open.jsonl`` (median and max of the
openings, file size, chart count, the machine's load averages, the commit).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import git_head, measure, record  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "report_open.jsonl"
DOCS = HERE.parent / "docs" / "benchmarks.md"
MARK = ("<!-- bench:report-open -->", "<!-- /bench:report-open -->")
KEYS = ("first_paint", "first_contentful_paint", "first_screen", "largest_contentful_paint",
        "dom_content_loaded", "load", "plotly_ready", "visible_charts", "all_charts", "all_charts_after_request")

_TIMINGS = r"""
async () => {
  const buffered = (type) => new Promise((resolve) => {
    const seen = [];
    const obs = new PerformanceObserver((list) => seen.push(...list.getEntries()));
    obs.observe({type, buffered: true});
    setTimeout(() => { obs.disconnect(); resolve(seen); }, 300);
  });
  const nav = performance.getEntriesByType('navigation')[0];
  const paint = Object.fromEntries(performance.getEntriesByType('paint').map(p => [p.name, p.startTime]));
  const elements = await buffered('element');
  const lcp = await buffered('largest-contentful-paint');
  const painted = elements.map(e => e.renderTime || e.loadTime || e.startTime);
  return {first_paint: paint['first-paint'], first_contentful_paint: paint['first-contentful-paint'],
          first_screen: painted.length ? Math.max(...painted) : null, first_screen_elements: painted.length,
          largest_contentful_paint: lcp.length ? lcp[lcp.length - 1].startTime : null,
          dom_content_loaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd};
}
"""
_DRAWN = "() => Array.from(document.querySelectorAll('.plotly-lazy[data-drawn]')).every(p => p._fullLayout)"
_ALL_DRAWN = "() => Array.from(document.querySelectorAll('.plotly-lazy')).every(p => p._fullLayout)"
# the report marks "segflow-chart-drawn" when a chart's Plotly.newPlot has finished
_PLOTLY_READY = "() => (performance.getEntriesByName('segflow-plotly-ready')[0] || {}).startTime"
_LAST_DRAWN = "() => Math.max(...performance.getEntriesByName('segflow-chart-drawn').map(m => m.startTime))"


def open_once(browser, url: str) -> dict:  # noqa: ANN001
    """One opening in a fresh context: the timings above, in ms from the navigation start."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url, wait_until="load", timeout=120_000)
    page.wait_for_selector("#headlines li", timeout=60_000)
    out = page.evaluate(_TIMINGS)
    page.wait_for_timeout(500)  # charts near the window would have started drawing by now
    page.wait_for_function(_DRAWN, timeout=120_000, polling=10)
    if page.evaluate("!!document.getElementById('plotly-js')"):  # plotly.js compiled after the load event
        page.wait_for_function("() => !!window.Plotly", timeout=120_000, polling=10)
        page.wait_for_timeout(50)
        out["plotly_ready"] = page.evaluate(_PLOTLY_READY)
    out["charts_on_opening"] = page.evaluate("document.querySelectorAll('.plotly-lazy[data-drawn]').length")
    out["visible_charts"] = page.evaluate(_LAST_DRAWN) if out["charts_on_opening"] else out["first_screen"]
    page.evaluate("performance.mark('segflow-render-all'); window.segflowRenderAll()")
    page.wait_for_function(_ALL_DRAWN, timeout=300_000, polling=20)
    page.wait_for_timeout(100)
    out["all_charts"] = page.evaluate(_LAST_DRAWN)
    out["all_charts_after_request"] = out["all_charts"] - page.evaluate(
        "performance.getEntriesByName('segflow-render-all')[0].startTime")
    out["charts"] = page.evaluate("document.querySelectorAll('.plotly-lazy').length")
    out["errors"] = errors
    context.close()
    return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in out.items()}


def open_report(report: Path, repeat: int) -> dict:
    """Open ``report`` ``repeat`` times in Chromium; median and max of every timing."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Debian's chromium is not installed (apt-get install chromium)")
    runs = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        open_once(browser, report.resolve().as_uri())  # warm-up: browser start, disk cache of the file
        for _ in range(repeat):
            runs.append(open_once(browser, report.resolve().as_uri()))
        browser.close()
    html = report.read_text(encoding="utf-8")
    result = {
        "report": str(report), "mib": round(report.stat().st_size / 2**20, 2),
        "plotly_js_copies": len(re.findall(r"\*\s*plotly\.js v\d", html)),
        "charts": runs[0]["charts"], "charts_on_opening": runs[0]["charts_on_opening"],
        "repeat": repeat, "errors": sorted({e for r in runs for e in r["errors"]}),
        "runs": runs,
    }
    for key in KEYS:
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            result[f"{key}_ms_median"] = round(statistics.median(values), 1)
            result[f"{key}_ms_max"] = round(max(values), 1)
    return result


def customers_of(project: Path) -> int | None:
    """Customers in the project's latest snapshot of its first scheme (from the aggregates)."""
    from segflow.project import Project

    with Project.open(project, read_only=True) as p:
        row = p.store.raw.execute(
            "SELECT sum(customers) FROM summary_segments WHERE scheme = (SELECT min(scheme) FROM "
            "summary_segments) AND snapshot_date = (SELECT max(snapshot_date) FROM summary_segments)"
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def render_docs() -> None:
    """The latest result per (label, tag, commit) as a table between the markers in
    docs/benchmarks.md, smallest store first."""
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    latest: dict[tuple, dict] = {}
    for r in rows:
        latest[(r.get("label"), r.get("tag"), r.get("commit"))] = r
    lines = [
        "| store | tag | report render (s, peak MiB) | file (MiB) | charts (drawn on opening) "
        "| first paint | first screen painted | page loaded | plotly.js ready | visible charts "
        "| all charts (from the request) | load avg (1 min) | commit |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in sorted(latest.values(), key=lambda r: (r.get("customers") or 0, r.get("started_utc") or "")):
        render = r.get("render") or {}
        rendered = f"{render['seconds']:.1f}, {render['peak_rss_mib']:,}" if render else "–"
        customers = f"{r['customers']:,} customers" if r.get("customers") else r.get("label", "")
        ready = f"{r['plotly_ready_ms_median'] / 1000:.2f} s" if r.get("plotly_ready_ms_median") else "(at load)"
        lines.append(
            f"| {customers} | {r.get('tag') or ''} | {rendered} | {r['mib']:.1f} | "
            f"{r['charts']} ({r['charts_on_opening']}) | {r['first_contentful_paint_ms_median'] / 1000:.2f} s | "
            f"{r['first_screen_ms_median'] / 1000:.2f} s | {r['load_ms_median'] / 1000:.2f} s | "
            f"{ready} | "
            f"{r['visible_charts_ms_median'] / 1000:.2f} s | "
            f"{r['all_charts_after_request_ms_median'] / 1000:.2f} s | {r['load_before'][0]:.1f} | {r['commit']} |"
        )
    text = DOCS.read_text(encoding="utf-8")
    start, end = text.index(MARK[0]) + len(MARK[0]), text.index(MARK[1])
    DOCS.write_text(text[:start] + "\n" + "\n".join(lines) + "\n" + text[end:], encoding="utf-8")
    print(f"wrote {DOCS}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--project", type=Path, help="A project after `segflow run` (its aggregates stored).")
    ap.add_argument("--report", type=Path, help="Open this report (default: PROJECT/report.html).")
    ap.add_argument("--render", action="store_true", help="Render the report first (timed).")
    ap.add_argument("--repeat", type=int, default=5, help="Openings measured (after one warm-up).")
    ap.add_argument("--tag", default="", help="A label for the record (before, after ...).")
    ap.add_argument("--label", default="", help="Name of the store (default: the project folder).")
    ap.add_argument("--render-docs", action="store_true", help="Only rewrite the docs table.")
    args = ap.parse_args()
    if args.render_docs:
        render_docs()
        return
    if args.project is None and args.report is None:
        ap.error("give --project or --report")
    report = args.report or args.project / "report.html"
    meta: dict = {"label": args.label or (args.project or report).name, "tag": args.tag,
                  "commit": git_head(), "load_before": [round(x, 2) for x in os.getloadavg()]}
    if args.render:
        code = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from segflow.project import Project
from segflow.report._context import ReportContext
from segflow.report._report import SECTIONS, render_report
p = Project.open(sys.argv[1], read_only=True)
ctx = ReportContext(p)
sections, seconds = [], {}
for build in SECTIONS:
    t = time.perf_counter()
    sections.append(build(ctx))
    seconds[build.__name__.removesuffix("_section")] = round(time.perf_counter() - t, 2)
Path(sys.argv[2]).write_text(render_report(p, sections), encoding="utf-8")
stored = ctx.stored
p.close()
print(json.dumps({"inner_seconds": round(time.perf_counter() - t0, 2), "from_aggregates": stored,
                  "sections_s": seconds}))
"""
        rendered = measure([sys.executable, "-c", code, str(args.project), str(report)], nice=0, label="render")
        if rendered["exit_code"] != 0:
            raise SystemExit(f"render failed: {rendered.get('error')}")
        meta["render"] = {k: rendered[k] for k in ("seconds", "inner_seconds", "peak_rss_mib", "from_aggregates",
                                                   "sections_s", "load_before", "load_after") if k in rendered}
    if args.project is not None:
        meta["customers"] = customers_of(args.project)
    result = {**meta, **open_report(report, args.repeat),
              "load_after": [round(x, 2) for x in os.getloadavg()]}
    record(RESULTS, result)


if __name__ == "__main__":
    main()
