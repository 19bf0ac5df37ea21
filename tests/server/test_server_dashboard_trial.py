"""What an analyst sees on the dashboard: numbers in their units, charts titled in words,
empty states that say what is missing, large values, keyboard navigation.

Defects these tests pin (each failed before its fix):
- tables showed raw column names and bare numbers ("revenue_12m 845099.04", "share 0.18");
- a customer worth 10^12 read "1,000,000.0 M" in the report;
- the forecast chart's axes were "snapshot_estimate" / "expected_customers", its legend
  alphabetical, and the 11th and 12th segments repeated the 1st and 2nd colours;
- a customer's timeline drew a one-snapshot spell one day wide, its name squeezed to an
  unreadable size, and one segment in a different colour in each bar;
- a segment that emptied since the previous snapshot vanished from the segments table (and
  its API twin) instead of showing 0 customers and its fall;
- with one snapshot the header's "migration" and "forecasts" links led to error pages;
- the report and an audience read "0" predicted value when the run stored P(alive) but no
  CLV (its spend model not identified);
- 15 header links stood between a keyboard user and each page's content;
- with no web events stored, the browsing scheme put every customer in "no recent visits"
  without a word that the data, not the visits, was missing.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from html import unescape

import pyarrow as pa
import pytest
from tests.pipeline._fixture import fixture_tables

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BIG = 1e12
YOUNG = "new (under 45 days)"

TOML = """
[project]
name = "trial"
currency = "GBP"

[periods]
granularity = "month"

[[schemes]]
name = "rfm"
kind = "rfm"

[[schemes]]
name = "tenure"
kind = "rules"
default = "settled"
rules = [{ segment = "new (under 45 days)", when = "tenure_days < 45" }]

[[schemes]]
name = "browsing"
kind = "browse_no_buy"
"""


def _project(directory, toml: str, *, big: bool = True, months: int | None = None):
    from segflow.project import Project
    from segflow.server._tokens import create_token

    project = Project.init(directory, toml_text=toml)
    tables = fixture_tables()
    tx = tables["transactions"]
    if big:  # one customer worth 10^12 GBP, bought on 2024-06-15
        extra = pa.table({
            "transaction_id": ["TBIG"], "customer_id": ["C005"],
            "ts": pa.array([dt.datetime(2024, 6, 15, 10)], pa.timestamp("us")), "amount": [BIG],
            "quantity": [1.0], "category": ["books"], "channel": ["web"], "is_return": [False],
        }).cast(tx.schema)
        tx = pa.concat_tables([tx, extra])
    if months is not None:  # only the transactions of the first month: one snapshot
        tx = tx.filter(pa.compute.less(tx["ts"], pa.scalar(dt.datetime(2024, 2, 1), pa.timestamp("us"))))
    project.store.append("customers", tables["customers"])
    project.store.append("transactions", tx)
    project.run()
    with project.store.transaction() as con:
        token = create_token(con, "analyst", name="trial analyst")[0]
    project.store.raw.execute("CHECKPOINT")
    project.close()
    return token


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    directory = tmp_path_factory.mktemp("trial") / "proj"
    return directory, _project(directory, TOML)


def _client(directory, token):
    from fastapi.testclient import TestClient

    from segflow.server import ServerSettings, create_app

    app = create_app(ServerSettings(project_dir=directory, allowed_hosts=["testserver"], poll_seconds=0))
    return TestClient(app, base_url="https://testserver", headers={"authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def client(trial):
    with _client(*trial) as c:
        yield c


@pytest.fixture(scope="module")
def demo_shop(tmp_path_factory):
    """A small generated demo project (scores, campaigns, web events, survey answers).
    Not named ``demo``: that name makes an xdist group of its own (tests/conftest.py
    SHARED_FIXTURES), and this module's tests, split in two groups, built this project and
    ``trial`` twice."""
    from segflow.datasets import demo_project_toml, generate_demo
    from segflow.project import Project
    from segflow.server._tokens import create_token

    out = tmp_path_factory.mktemp("trial-demo") / "demo"
    dataset = generate_demo(out / "data", customers=400, months=12, seed=3)
    project = Project.init(out, toml_text=demo_project_toml("data", max_date=dataset.end), overwrite=True)
    with project:
        project.ingest()
        project.run()
        with project.store.transaction() as con:
            token = create_token(con, "analyst", name="demo analyst")[0]
        project.store.raw.execute("CHECKPOINT")
        # the scored customer with the most segment changes (short spells on the timeline)
        customer = project.store.raw.execute(
            "SELECT s.customer_id FROM segment_spells s JOIN customer_scores c ON c.customer_id = s.customer_id "
            "AND c.score = 'clv' GROUP BY 1 ORDER BY count(DISTINCT (s.scheme, s.valid_from)) DESC, 1 "
            "LIMIT 1").fetchone()[0]
    return out, token, customer


def _cells(body: str, table_after: str) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the first table after the text ``table_after``."""
    part = body[body.index(table_after):]
    table = part[part.index("<table"): part.index("</table>")]
    heads = [unescape(re.sub("<[^>]+>", "", h)) for h in re.findall(r"<th[^>]*>(.*?)</th>", table)]
    rows = [[unescape(re.sub("<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)[1:]]
    return heads, rows


def test_money_reads_in_millions_billions_and_trillions():
    from segflow.report._format import money

    assert money(845_099.04, "GBP") == "845,099 GBP"
    assert money(2.5e6, "GBP") == "2.5 M GBP"
    assert money(3.4e9, "GBP") == "3.4 bn GBP"
    assert money(BIG + 72_484, "GBP") == "1.0 tn GBP"
    assert money(-2e12, "GBP", signed=True) == "-2.0 tn GBP"


def test_segment_table_in_words_and_units_with_the_trillion_customer(client):
    api = client.get("/api/v1/segments/rfm").json()["data"]
    body = client.get("/segments/rfm").text
    heads, rows = _cells(body, 'id="title"')
    assert heads[:4] == ["Segment", "Rank", "Customers", "Share"]
    assert "Revenue, last 12 months" in heads and "Change in customers" in heads
    col = {h: i for i, h in enumerate(heads)}
    assert len(rows) == len(api)
    for row, r in zip(rows, api, strict=True):
        assert row[0] == r["segment"]
        assert row[col["Share"]] == f"{r['share'] * 100:.1f} %"
        revenue = r["revenue_12m"]
        expected = (f"{revenue / 1e12:,.1f} tn GBP" if revenue >= 1e12 else f"{revenue / 1e6:,.1f} M GBP"
                    if revenue >= 1e6 else f"{round(revenue):,} GBP")
        assert row[col["Revenue, last 12 months"]] == expected
        change = r["change_customers"]
        assert row[col["Change in customers"]] == f"{change:+,}"
    assert any(row[col["Revenue, last 12 months"]].endswith(" tn GBP") for row in rows)


def test_a_segment_that_emptied_is_listed_with_its_fall(client, trial):
    """tenure_days < 45: customers were created until 2024-04-29, so the segment has
    customers at the early snapshots and none at the latest."""
    import duckdb

    directory, _ = trial
    con = duckdb.connect(str(directory / "segflow.duckdb"), read_only=True)
    counts = dict(con.execute(
        "SELECT snapshot_date, count(*) FILTER (WHERE segment = ?) FROM segment_assignments "
        "WHERE scheme = 'tenure' GROUP BY 1 ORDER BY 1", [YOUNG]).fetchall())
    con.close()
    dates = sorted(counts)
    last_with = max(d for d in dates if counts[d])
    after = dates[dates.index(last_with) + 1]
    assert counts[after] == 0 and counts[last_with] > 0
    data = client.get("/api/v1/segments/tenure", params={"snapshot": str(after)}).json()["data"]
    row = next(r for r in data if r["segment"] == YOUNG)
    assert (row["customers"], row["share"], row["revenue_12m"]) == (0, 0, 0)
    assert row["change_customers"] == -counts[last_with]
    body = client.get("/segments/tenure", params={"snapshot": str(after)}).text
    heads, rows = _cells(body, 'id="title"')
    shown = next(r for r in rows if r[0] == YOUNG)
    assert shown[heads.index("Customers")] == "0"
    assert shown[heads.index("Change in customers")] == f"{-counts[last_with]:+,}"


def test_customer_scores_and_features_in_their_units(demo_shop):
    directory, token, customer = demo_shop
    with _client(directory, token) as c:
        body = c.get(f"/customers/{customer}").text
        api = c.get(f"/api/v1/customers/{customer}").json()["meta"]["scores"]
    heads, rows = _cells(body, "<h2>Scores</h2>")
    value = {r[heads.index("Score")]: r[heads.index("Value")] for r in rows}
    raw = {s["score"]: s["value"] for s in api}
    assert value["clv"] == f"{round(raw['clv']):,} GBP" and value["expected_spend"].endswith(" GBP")
    assert value["p_alive"] == f"{raw['p_alive'] * 100:.1f} %"
    heads, rows = _cells(body, "Features at the latest snapshot")
    features = {r[0]: r[1] for r in rows}
    assert "Revenue, last 12 months (GBP)" in features  # the registry's label, with the unit
    assert not [f for f in features if re.fullmatch(r"[a-z0-9_]+", f)]


def test_the_forecast_chart_names_its_axes_and_gives_each_segment_its_colour():
    import pandas as pd

    from segflow.server.routes.insights import forecast_figure

    order = [f"segment {i:02d}" for i in range(12)]
    frame = pd.DataFrame([{"snapshot_estimate": dt.date(2025, m, 1), "segment": s, "expected_customers": 10.0 * i}
                          for i, s in enumerate(sorted(order, reverse=True)) for m in (7, 8)])
    fig = forecast_figure(frame, order, "rfm: expected customers per segment")
    assert [t.name for t in fig.data] == order  # the scheme's order, not the frame's
    assert len({t.line.color for t in fig.data}) == 12
    assert fig.layout.xaxis.title.text == "snapshot (estimated)"
    assert fig.layout.yaxis.title.text == "customers (expected)"


def test_a_timeline_spell_of_one_snapshot_spans_its_period():
    import pandas as pd

    from segflow.server.routes.pages import timeline_figure

    dates = [dt.date(2024, m, 1) for m in (2, 3, 4, 5)]
    spells = pd.DataFrame({"scheme": ["rfm", "rfm", "rfm"], "segment": ["New", "Lost", "New"],
                           "from_snapshot": [dates[0], dates[1], dates[2]],
                           "to_snapshot": [dates[0], dates[1], dates[3]]})
    fig = timeline_figure(spells, {"rfm": dates}, {"rfm": ["Champions", "New", "Lost"]})
    widths = [bar.x[0] / 86_400_000 for bar in fig.data]
    assert widths == [29, 31, 30 + 30]  # Feb, March, then April and one median step (30 days) after May
    assert fig.data[0].marker.color == fig.data[2].marker.color != fig.data[1].marker.color
    assert fig.layout.uniformtext.mode == "hide" and fig.layout.uniformtext.minsize >= 11


def test_one_snapshot_pages_say_what_is_missing(tmp_path):
    directory = tmp_path / "one"
    token = _project(directory, TOML, big=False, months=1)
    with _client(directory, token) as c:
        dates = c.get("/api/v1/snapshots/rfm").json()["data"]
        assert len(dates) == 1
        for page, what in (("migration", "a migration"), ("forecasts", "a forecast")):
            r = c.get(f"/{page}/rfm")
            assert r.status_code == 200, r.text[:200]
            note = re.search(r'<p id="empty">(.*?)</p>', r.text).group(1)
            assert dates[0]["snapshot_date"] in note and f"{what} needs two" in note
        api = c.get("/api/v1/migration/rfm")
        assert api.status_code == 404 and api.json() == {"detail": "scheme 'rfm' has fewer than two snapshots; nothing to compare"}


def test_no_clv_reads_as_no_predicted_value_not_zero(demo_shop, tmp_path):
    """A run that stored P(alive) but no CLV (the spend model not identified): the report's
    action cards and the audience's total say nothing rather than "0 GBP"."""
    import duckdb

    from segflow.project import Project
    from segflow.report._context import ReportContext
    from segflow.report._summary import action_table

    directory = tmp_path / "copy"
    shutil.copytree(demo_shop[0], directory, ignore=shutil.ignore_patterns("*.serve", "data"))
    con = duckdb.connect(str(directory / "segflow.duckdb"))
    con.execute("DELETE FROM customer_scores WHERE score = 'clv'")
    assert con.execute("SELECT count(*) FROM customer_scores WHERE score = 'p_alive'").fetchone()[0] > 0
    con.close()
    with Project.open(directory, read_only=True) as project:
        ctx = ReportContext(project)
        assert ctx.value("rfm", ctx.dates("rfm")[-1]) is None
        assert action_table(ctx, "rfm")["clv"].isna().all()
    with _client(directory, demo_shop[1]) as c:
        segment = c.get("/api/v1/segments/rfm").json()["data"][0]["segment"]
        meta = c.get("/api/v1/audiences", params={"scheme": "rfm", "segment": segment}).json()["meta"]
        assert meta["clv_total"] is None and meta["clv_mean"] is None


_TEXT_BOXES = r"""
() => Array.from(document.querySelectorAll('.js-plotly-plot')).map((plot) => {
  const boxes = [];
  plot.querySelectorAll('svg text').forEach((t) => {
    const s = (t.textContent || '').trim();
    const st = getComputedStyle(t);
    if (!s || st.display === 'none' || st.visibility === 'hidden' || t.closest('[style*="opacity: 0"]')) return;
    const r = t.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) return;
    boxes.push({s, x0: r.left, y0: r.top, x1: r.right, y1: r.bottom,
                px: parseFloat(st.fontSize) * (t.getCTM() ? Math.abs(t.getCTM().a) || 1 : 1)});
  });
  const L = plot._fullLayout;
  const untitled = Object.keys(L).filter(k => /^[xy]axis\d*$/.test(k)).map(k => L[k])
    .filter(a => a.visible !== false && a.type !== 'category' && !(a.title && a.title.text)).map(a => a._id);
  const words = Array.from(plot.querySelectorAll('.g-xtitle, .g-ytitle, .legendtext'))
    .map(t => (t.textContent || '').trim()).filter(t => t);
  return {title: (L.title && L.title.text) || '', boxes, untitled, words};
})
"""


def _overlaps(boxes: list[dict]) -> list[tuple[str, str]]:
    out = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            w = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])
            h = min(a["y1"], b["y1"]) - max(a["y0"], b["y0"])
            if w > 1 and h > 1:
                out.append((a["s"], b["s"]))
    return out


@pytest.mark.parametrize("which", ["trial", "demo"])
def test_every_page_in_a_browser(request, which, tmp_path):
    """Chromium at 1280x800, each page of the dashboard: its <title> is its heading, no
    console error, nothing wider than the window, chart text at least 10 px and never on
    top of other chart text, every numeric or date axis titled; the first Tab offers to
    skip the header, and Enter lands in the page's content; axis titles and legends are
    words, not column names; a customer's timeline shows each name at 11 px or not at all."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.server.test_server_scheme_names import _live

    from segflow.server import ServerSettings, create_app

    if which == "trial":  # the customer worth 10^12 GBP, a segment that empties
        directory, token = request.getfixturevalue("trial")
        customer = "C005"
        pages = ["/", "/segments/rfm", "/segments/tenure", "/migration/tenure", "/forecasts/rfm", "/campaigns"]
    else:  # scores, campaigns, web events
        directory, token, customer = request.getfixturevalue("demo_shop")
        pages = ["/", "/segments/rfm", "/segments/lifecycle", "/migration/rfm", "/forecasts/rfm",
                 "/forecasts/browse_no_buy", "/campaigns", "/campaigns/CMP_WINBACK", "/customers?q=C00",
                 "/audiences?scheme=rfm&segment=Champions", "/migration/value_tiers"]
    pages.append(f"/customers/{customer}")
    server, thread, base = _live(create_app(ServerSettings(project_dir=directory)))
    problems: list[str] = []
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(f"{base}/login")
            assert page.evaluate("document.activeElement.id") == "token"  # autofocus
            page.keyboard.type(token)
            with page.expect_navigation():
                page.keyboard.press("Enter")
            for i, path in enumerate(pages):
                page.goto(base + path)
                page.wait_for_load_state("networkidle")
                heading = page.inner_text("#title")
                assert page.title() == f"{heading} · segflow", path
                assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), path
                for plot in page.evaluate(_TEXT_BOXES):
                    assert _overlaps(plot["boxes"]) == [], (path, plot["title"])
                    assert [b["s"] for b in plot["boxes"] if b["px"] < 10] == [], (path, plot["title"])
                    assert plot["untitled"] == [], (path, plot["title"])
                    # axis titles and legends in words, not column names ("expected_customers")
                    assert [w for w in plot["words"] if re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", w)] == [], path
                page.screenshot(path=str(tmp_path / f"page-{i}.png"), full_page=True)
            # the customer's timeline: its bars show their names at a readable size or nothing
            page.goto(f"{base}/customers/{customer}")
            page.wait_for_selector("g.barlayer")
            # Plotly shrinks a label that does not fit by a transform: measure the drawn height
            sizes = page.eval_on_selector_all(
                "g.barlayer text", "ts => ts.filter(t => t.textContent && getComputedStyle(t).display !== 'none'"
                " && t.getBoundingClientRect().width > 0).map(t => t.getBoundingClientRect().height)")
            assert sizes and min(sizes) >= 11, sizes
            # keyboard: the skip link first, then the content
            page.goto(f"{base}/migration/rfm")
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.id") == "skip"
            assert page.locator("#skip").bounding_box()["x"] >= 0  # shown when focused
            page.keyboard.press("Enter")
            page.keyboard.press("Tab")
            assert page.evaluate("!!document.activeElement.closest('main')")
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert problems == []


def test_a_browsing_scheme_without_web_events_says_so(client, trial, demo_shop, tmp_path):
    from segflow.project import Project

    note = "No web events are stored"
    page = client.get("/segments/browsing").text
    assert re.search(r'<p class="error" id="note">No web events are stored', page)
    data = client.get("/api/v1/segments/browsing").json()["data"]
    assert len(data) == 1 and data[0]["share"] == 1.0  # everyone in one segment: the reason to say it
    with Project.open(trial[0], read_only=True) as project:
        report = project.report(tmp_path / "report.html").read_text()
    assert report.count(note) == 1
    with _client(demo_shop[0], demo_shop[1]) as c:  # the demo has web events: no note
        assert note not in c.get("/segments/browse_no_buy").text


def test_an_audience_of_an_unknown_segment_is_refused_an_emptied_one_is_empty(client):
    """A typo in the segment gave an empty audience (200, 0 customers) without a word."""
    wrong = client.get("/api/v1/audiences", params={"scheme": "tenure", "segment": "setled"})
    assert wrong.status_code == 404
    assert wrong.json()["detail"] == ("scheme 'tenure' has no segment 'setled'; its segments: "
                                      "new (under 45 days), settled")
    emptied = client.get("/api/v1/audiences", params={"scheme": "tenure", "segment": YOUNG})
    assert emptied.status_code == 200 and emptied.json()["meta"]["customers"] == 0


def test_no_scores_after_a_run_says_the_run_stored_none(demo_shop, tmp_path):
    """After a run that stored no CLV scores, Project.clv and clv_diagnostics say so (and
    that the run's notes say why) instead of asking for the run that was done."""
    import duckdb

    from segflow.errors import SegflowError
    from segflow.project import Project

    directory = tmp_path / "copy"
    shutil.copytree(demo_shop[0], directory, ignore=shutil.ignore_patterns("*.serve", "data"))
    con = duckdb.connect(str(directory / "segflow.duckdb"))
    con.execute("DELETE FROM customer_scores")  # as a run whose CLV stage stored nothing
    con.execute("DELETE FROM summary_results WHERE name = 'clv_diagnostics'")
    con.execute("UPDATE runs SET message = 'CLV: the BG/NBD fit did not converge' WHERE command = 'run'")
    con.close()
    with Project.open(directory, read_only=True) as project:
        for call in (project.clv, project.clv_diagnostics):
            with pytest.raises(SegflowError, match=r"the latest `segflow run` stored none \(CLV: the "
                               r"BG/NBD fit did not converge\); the report's notes"):
                call()
