"""The dashboard in a real browser: Debian's Chromium driven by Playwright.

Logs in with an analyst token, picks a snapshot, opens the Sankey, clicks a heat-map cell,
opens a customer, downloads a CSV, builds an audience and downloads it; screenshots at
1280 px and at phone size are saved as test artefacts (``tmp_path``) after checking the
elements a person sees. With ``SEGFLOW_SCREENSHOTS=DIR`` the 1280 px dashboard screenshot
is also written to ``DIR/dashboard.png`` (the README's picture: ``docs/img``).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_server(served_project):
    uvicorn = pytest.importorskip("uvicorn")
    from segflow.server import ServerSettings, create_app

    app = create_app(ServerSettings(project_dir=served_project))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_dashboard_in_a_browser(live_server, tokens, tmp_path):
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        # not logged in: the page sends us to the login form
        page.goto(f"{live_server}/migration/rfm")
        assert "/login" in page.url
        page.fill("#token", tokens["analyst"])
        page.click("#login")
        page.wait_for_selector("g.sankey", timeout=30_000)
        assert page.locator("g.sankey path.sankey-link").count() > 0
        assert "analyst" in page.inner_text("header")
        # pick the snapshots of the migration, then click a heat-map cell
        page.select_option("#from_date", "2024-05-01")
        page.click("#show")
        page.wait_for_selector("g.sankey", timeout=30_000)
        assert "2024-05-01" in page.inner_text("#title")
        page.screenshot(path=str(tmp_path / "migration-1280.png"), full_page=True)
        if os.environ.get("SEGFLOW_SCREENSHOTS"):
            page.screenshot(path=os.path.join(os.environ["SEGFLOW_SCREENSHOTS"], "dashboard.png"))
        assert _no_horizontal_scroll(page)
        page.locator("g.heatmaplayer").first.scroll_into_view_if_needed()
        box = page.locator("g.heatmaplayer").first.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.1)
        page.wait_for_url("**/migration/rfm/customers?**", timeout=20_000)
        assert "customers)" in page.inner_text("#title")
        # download the cell's customers as CSV
        with page.expect_download() as info:
            page.click("#csv")
        csv_path = tmp_path / "cell.csv"
        info.value.save_as(csv_path)
        assert csv_path.read_text().startswith("\"customer_id\"")
        # open a customer: timeline figure and masked personal data
        links = page.locator("table a[href^='/customers/']")
        if links.count():
            links.first.click()
        else:
            page.goto(f"{live_server}/customers/C001")
        page.wait_for_selector("g.barlayer", timeout=20_000)
        assert "Segment history" in page.inner_text("main")
        page.goto(f"{live_server}/customers/C001")
        page.wait_for_selector("g.barlayer", timeout=20_000)
        assert "jane.doe@example.com" not in page.content() and "j***@example.com" in page.content()
        page.screenshot(path=str(tmp_path / "customer-1280.png"), full_page=True)
        # build an audience from a segment and download it with its hold-out flags
        page.goto(f"{live_server}/audiences")
        page.select_option("#scheme", "lifecycle")
        page.click("#build")  # reload the segment list of the chosen scheme
        page.select_option("#segment", "one-time")
        page.fill("#holdout", "0.2")
        page.click("#build")
        page.wait_for_selector("#audience-size", timeout=20_000)
        size = int(page.inner_text("#audience-size").split()[0].replace(",", ""))
        assert size > 0
        with page.expect_download() as info:
            page.click("#audience-csv")
        audience_path = tmp_path / "audience.csv"
        info.value.save_as(audience_path)
        lines = audience_path.read_text().splitlines()
        assert lines[0] == '"customer_id","scheme","segment","snapshot","revenue_12m","clv","holdout"'
        assert len(lines) == size + 1 and all(line.endswith((",true", ",false")) for line in lines[1:])
        assert _no_horizontal_scroll(page)
        page.screenshot(path=str(tmp_path / "audience-1280.png"), full_page=True)
        # a segments page with the snapshot picker, on a phone-sized window
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{live_server}/segments/rfm")
        page.select_option("#snapshot", "2024-06-01")
        page.click("#show")
        page.wait_for_selector("g.barlayer", timeout=20_000)
        assert "2024-06-01" in page.url
        assert _no_horizontal_scroll(page)
        page.screenshot(path=str(tmp_path / "segments-phone.png"), full_page=True)
        # the API docs render offline
        page.goto(f"{live_server}/docs")
        page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
        assert page.locator(".opblock").count() > 10
        browser.close()
    assert errors == []
