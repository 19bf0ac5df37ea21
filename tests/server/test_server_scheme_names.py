"""Scheme names are any text: spaces, "/", "#", "?", "%", "&", quotes, "<script>", other
scripts and 300 characters. Before, the pages linked them unencoded (a name with "/" or "#"
led to a 404 or to another scheme), the routes stopped at "/", and charts drew "<b>" in a
segment name as markup. Now every link of every page answers, every API route and download
of each scheme answers with the scheme's exact name, and chart text is drawn as written."""

from __future__ import annotations

import io
import json
import re
import shutil
from collections import Counter, deque
from html.parser import HTMLParser
from urllib.parse import quote, unquote, urlsplit

import pytest
from tests.pipeline._fixture import fixture_tables

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

NAMES = ["Clients fidèles", "顧客", "a/b", "x#y?z=1&w", "100% sure", 'it\'s "quoted"',
         "<script>alert(1)</script>", "L" * 300]
#: Segment names Plotly would read as markup ("<b>" bold, "<i>" italic, "&amp;" an entity).
BIG = "≥ 150 <b>VIP</b>"
REST = "< 150 & the rest &amp;"


def _toml() -> str:
    blocks = ['[project]\nname = "names"\n\n[periods]\ngranularity = "month"\n']
    for name in NAMES:
        blocks.append(
            f"[[schemes]]\nname = {json.dumps(name, ensure_ascii=False)}\nkind = \"rules\"\n"
            f"default = {json.dumps(REST, ensure_ascii=False)}\n"
            f"rules = [{{ segment = {json.dumps(BIG, ensure_ascii=False)}, when = \"monetary >= 150\" }}]\n"
        )
    return "\n".join(blocks)


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    from segflow.project import Project
    from segflow.server._tokens import create_token

    directory = tmp_path_factory.mktemp("names") / "proj"
    project = Project.init(directory, toml_text=_toml())
    for table, rows in fixture_tables().items():
        project.store.append(table, rows)
    project.run()
    raw = project.store.raw
    latest = raw.execute("SELECT max(snapshot_date) FROM segment_assignments").fetchone()[0]
    # independent of the server: customers per scheme and segment at the latest snapshot
    sizes = {(s, g): n for s, g, n in raw.execute(
        "SELECT scheme, segment, count(*) FROM segment_assignments WHERE snapshot_date = ? "
        "GROUP BY ALL", [latest]).fetchall()}
    with project.store.transaction() as con:
        token = create_token(con, "analyst", name="names analyst")[0]
    raw.execute("CHECKPOINT")
    project.close()
    return directory, token, latest, sizes


@pytest.fixture(scope="module")
def client(named):
    from fastapi.testclient import TestClient

    from segflow.server import ServerSettings, create_app

    directory, token, _, _ = named
    app = create_app(ServerSettings(project_dir=directory, allowed_hosts=["testserver"], poll_seconds=0))
    with TestClient(app, base_url="https://testserver", headers={"authorization": f"Bearer {token}"}) as c:
        yield c


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "form" and a.get("action"):
            self.links.append(a["action"])


def test_every_link_of_every_page_answers(client):
    """Crawl from the overview: every link of every page (pages, their JSON and CSV twins,
    the cells' customers) answers 200, and the pages of every scheme are among them."""
    seen: set[str] = set()
    queue = deque(["/"])
    per_page: Counter[str] = Counter()
    failed = []
    while queue:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        parts = urlsplit(url)
        kind = parts.path.split("/")[1]
        per_page[(kind, parts.path)] += 1
        if per_page[(kind, parts.path)] > 3 or url.startswith(("/docs", "/customers/")):
            continue  # a few query variants of each path; customers are checked elsewhere
        r = client.get(url)
        if r.status_code != 200:
            failed.append((url, r.status_code, r.text[:120]))
            continue
        if r.headers["content-type"].startswith("text/html"):
            parser = _Links()
            parser.feed(r.text)
            for href in parser.links:
                if href.startswith("#"):  # the skip link
                    continue
                assert href.startswith("/"), href  # no link leaves the server
                queue.append(href)
    assert failed == []
    paths = {unquote(urlsplit(u).path) for u in seen}
    for name in NAMES:
        for page in (f"/segments/{name}", f"/migration/{name}", f"/forecasts/{name}",
                     f"/api/v1/segments/{name}", f"/api/v1/migration/{name}", f"/api/v1/profiles/{name}",
                     f"/migration/{name}/customers"):
            assert page in paths, page


@pytest.mark.parametrize("name", NAMES)
def test_each_route_of_a_scheme_answers_with_its_exact_name(client, named, name):
    _, _, latest, sizes = named
    path = quote(name, safe="")
    expected = {BIG: sizes.get((name, BIG), 0), REST: sizes.get((name, REST), 0)}
    assert sum(expected.values()) > 0
    segments = client.get(f"/api/v1/segments/{path}").json()
    assert segments["meta"]["scheme"] == name
    assert {r["segment"]: r["customers"] for r in segments["data"]} == {k: v for k, v in expected.items() if v}
    for route in ("snapshots", "migration", "forecasts", "profiles"):
        r = client.get(f"/api/v1/{route}/{path}")
        assert r.status_code == 200, (route, r.text[:200])
        assert r.json()["meta"].get("scheme", name) == name
    value = client.get(f"/api/v1/migration/{path}/value")
    assert value.status_code == 200 and value.json()["meta"]["scheme"] == name
    matrix = client.get(f"/api/v1/migration/{path}").json()
    cell = max(matrix["data"], key=lambda c: c["customers"])
    query = {"from_date": matrix["meta"]["from_date"], "to_date": matrix["meta"]["to_date"],
             "from_segment": cell["from_segment"], "to_segment": cell["to_segment"]}
    customers = client.get(f"/api/v1/migration/{path}/customers", params=query).json()
    assert customers["total"] == cell["customers"] > 0
    # downloads: named after the scheme, "/" as "_", at most 180 bytes
    csv = client.get(f"/api/v1/segments/{path}", params={"format": "csv"})
    exact = re.search(r"filename\*=UTF-8''(\S+)", csv.headers["content-disposition"]).group(1)
    wanted = f"segments-{name.replace('/', '_')}-{latest}.csv"
    if len(wanted.encode()) <= 180:
        assert unquote(exact) == wanted
    else:
        assert len(unquote(exact).encode()) <= 180 and unquote(exact).endswith(f"-{latest}.csv")
    assert csv.text.splitlines()[0].startswith('"segment"')
    audience = client.get("/api/v1/audiences", params={"scheme": name, "segment": BIG, "format": "parquet",
                                                        "holdout": 0})
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(audience.content))
    assert table.num_rows == expected[BIG] and set(table["scheme"].to_pylist()) <= {name}


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", 'it\'s "quoted"', "x#y?z=1&w"])
def test_names_are_escaped_and_percent_encoded_on_the_pages(client, name):
    from html import escape, unescape

    for page in ("segments", "migration", "forecasts"):
        body = client.get(f"/{page}/{quote(name, safe='')}").text
        assert "<script>alert(1)" not in body and "<b>VIP" not in body
        heading = re.search(r'<h1 id="title">(.*?)</h1>', body).group(1)
        assert name not in heading and name in unescape(heading)
        assert f'href="/segments/{escape(quote(name, safe=""))}"' in body  # the header's link


def test_charts_draw_names_as_written():
    """Plotly's text is a small HTML dialect: the figure JSON carries names escaped, the
    figure's own markup (<br>, <sup> in titles, <extra> in hover templates) kept."""
    import plotly.graph_objects as go

    from segflow.viz._core import literal_figure, plotly_text

    assert plotly_text("<25k & more<br>x") == "&lt;25k &amp; more<br>x"
    fig = go.Figure(go.Heatmap(z=[[1, 2]], x=[BIG, REST], y=["a/b"], text=[["5%<br>n=1", "x"]],
                               hovertemplate="from %{y}<br>%{x}<extra></extra>"))
    fig.add_bar(x=[1], y=[BIG], name=REST, orientation="h")
    fig.update_layout(title="L" * 300 + ": <i>title</i><br><sup>note</sup>", xaxis_title="x < y")
    out = literal_figure(fig)
    heat, bar = out["data"]
    assert heat["x"] == ["≥ 150 &lt;b&gt;VIP&lt;/b&gt;", "&lt; 150 &amp; the rest &amp;amp;"]
    assert heat["text"] == [["5%<br>n=1", "x"]] and heat["hovertemplate"] == "from %{y}<br>%{x}<extra></extra>"
    assert bar["name"] == "&lt; 150 &amp; the rest &amp;amp;" and bar["y"] == ["≥ 150 &lt;b&gt;VIP&lt;/b&gt;"]
    assert out["layout"]["title"]["text"] == "L" * 39 + "…: &lt;i&gt;title&lt;/i&gt;<br><sup>note</sup>"
    assert out["layout"]["xaxis"]["title"]["text"] == "x &lt; y"
    assert fig.data[0].x == (BIG, REST)  # the figure itself unchanged


def test_a_scheme_name_the_server_cannot_link_is_refused_at_load(tmp_path):
    from segflow.config import Settings
    from segflow.errors import ConfigError

    for name, why in [("a/customers", "ends with '/customers'"), ("x/value", "ends with '/value'"),
                      ("..", "path step"), ("  ", "empty"), ("tab\\there", "control characters (U+0009)")]:
        (tmp_path / "segflow.toml").write_text(f'[[schemes]]\nname = "{name}"\nkind = "rfm"\n')
        with pytest.raises(ConfigError) as info:
            Settings.load(tmp_path)
        message = str(info.value)
        assert "\n" not in message and str(tmp_path / "segflow.toml") in message and why in message, message
    (tmp_path / "segflow.toml").write_text('[[schemes]]\nname = "x"\nkind = "rfm"\n'
                                           '[[schemes]]\nname = "x"\nkind = "lifecycle"\n')
    with pytest.raises(ConfigError, match="two schemes are named 'x'"):
        Settings.load(tmp_path)
    # an audience has one column per scheme (segflow.campaigns.column_name)
    (tmp_path / "segflow.toml").write_text('[[schemes]]\nname = "a/b"\nkind = "rfm"\n'
                                           '[[schemes]]\nname = "A b"\nkind = "lifecycle"\n')
    with pytest.raises(ConfigError, match="schemes 'a/b' and 'A b' would share the audience column 'a_b'"):
        Settings.load(tmp_path)
    (tmp_path / "segflow.toml").write_text('[[schemes]]\nname = "%%%"\nkind = "rfm"\n')
    with pytest.raises(ConfigError, match="'%%%' has no letter or digit"):
        Settings.load(tmp_path)
    (tmp_path / "segflow.toml").write_text(_toml())
    assert [s.name for s in Settings.load(tmp_path).schemes] == NAMES


@pytest.mark.parametrize("command", ["export", "campaign"])
def test_an_audience_of_a_scheme_whose_name_holds_an_equals_sign(named, tmp_path, command):
    """``--segment SCHEME=SEGMENT`` split at the first "=": the scheme "x#y?z=1&w" was read
    as "x#y?z" and its audiences could not be built."""
    from typer.testing import CliRunner

    from segflow.cli import app

    directory, _, _, sizes = named
    out = tmp_path / "audience.csv"
    args = (["export", "audience", "--to", str(out)] if command == "export"
            else ["campaign", "audience", "--out", str(out)])
    result = CliRunner().invoke(app, [*args, "-p", str(directory), "--segment", f"x#y?z=1&w={BIG}",
                                      "--holdout", "0"])
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) - 1 == sizes[("x#y?z=1&w", BIG)] > 0


def _live(app):
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def test_scheme_pages_in_a_browser(named, tmp_path):
    """Chromium at 1280x800: each scheme's pages open from the header's links, chart labels
    read the segment names as written, nothing runs from a name (no dialog), nothing is
    wider than the window (the 300-character name wraps), and a click on a heat-map cell
    of a segment named with "<", ">" and "&" lists that cell's customers."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    from segflow.server import ServerSettings, create_app

    directory, token, _, sizes = named
    server, thread, base = _live(create_app(ServerSettings(project_dir=directory)))
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("dialog", lambda d: (problems.append("dialog " + d.message), d.dismiss()))
            page.goto(f"{base}/login")
            page.fill("#token", token)
            page.click("#login")
            page.wait_for_load_state()
            for name in NAMES:
                page.click(f"header a[href='/segments/{quote(name, safe='')}']")
                page.wait_for_selector("g.barlayer", timeout=20_000)
                assert page.inner_text("#title") == f"Segments: {name}"
                ticks = page.eval_on_selector_all(".ytick text", "ts => ts.map(t => t.textContent)")
                assert BIG in ticks and REST in ticks, ticks
                assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
            page.goto(f"{base}/migration/{quote('a/b', safe='')}")
            page.wait_for_selector("g.heatmaplayer", timeout=20_000)
            labels = page.eval_on_selector_all(".sankey-node text", "ts => ts.map(t => t.textContent)")
            assert BIG in labels
            layer = page.locator("g.heatmaplayer").first
            layer.scroll_into_view_if_needed()
            box = layer.bounding_box()
            rows, cols = page.evaluate(
                "(() => { const l = document.querySelector('g.heatmaplayer').closest('.js-plotly-plot')"
                "._fullLayout; return [l.yaxis._categories, l.xaxis._categories]; })()")
            drawn = "≥ 150 &lt;b&gt;VIP&lt;/b&gt;"  # the category as Plotly holds it (escaped)
            i, j = rows.index(drawn), cols.index(drawn)  # rows top to bottom (reversed axis)
            page.mouse.click(box["x"] + box["width"] * (j + 0.5) / len(cols),
                             box["y"] + box["height"] * (i + 0.5) / len(rows))
            page.wait_for_url("**/customers?**", timeout=20_000)
            title = page.inner_text("#title")
            assert title.startswith(f"a/b: {BIG} → {BIG} (")
            page.screenshot(path=str(tmp_path / "cell.png"))
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert problems == []
    assert sizes[("a/b", BIG)] > 0


def test_the_report_draws_and_wraps_the_names(named, tmp_path):
    """The HTML report of the same project in Chromium at 1280x800: the segment names are
    drawn as written on the charts' axes (Plotly read "<b>VIP</b>" as bold markup and
    dropped it), scheme names keep their own spelling ("a/b", not "A/b"), and the
    300-character scheme name wraps inside its section instead of running past it."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    from segflow.project import Project

    directory, _, _, _ = named
    path = tmp_path / "report.html"
    with Project.open(directory, read_only=True) as project:
        project.report(path)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("dialog", lambda d: (problems.append("dialog " + d.message), d.dismiss()))
        page.goto(path.as_uri())
        page.evaluate("window.segflowRenderAll()")
        page.wait_for_function(
            "Array.from(document.querySelectorAll('.plotly-lazy')).every(p => p._fullLayout)", timeout=120_000)
        ticks = set(page.eval_on_selector_all(".ytick text, .xtick text", "ts => ts.map(t => t.textContent)"))
        assert {BIG, REST} <= ticks
        overflowing = page.evaluate(
            "Array.from(document.querySelectorAll('section p, section h3, section li'))"
            ".filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.slice(0, 40))")
        assert overflowing == []
        lead = page.inner_text("#overview p.lead")
        assert "a/b," in lead and "A/b" not in lead and "(a/b)" not in lead
        browser.close()
    assert problems == []
