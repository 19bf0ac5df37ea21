"""The dashboard in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

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
    app.state.project_handle.project.close()


def test_migration_page_draws_a_sankey(live_server, tmp_path):
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{live_server}/migration/rfm")
        page.wait_for_selector("g.sankey", timeout=20_000)
        links = page.locator("g.sankey path.sankey-link").count()
        assert links > 0
        # clicking the header link navigates to the segments page, which draws bars
        page.click("text=lifecycle >> nth=0")
        page.wait_for_selector("g.barlayer", timeout=20_000)
        assert "Segments: lifecycle" in page.inner_text("#title")
        page.screenshot(path=str(tmp_path / "dashboard.png"))
        browser.close()
    assert errors == []
