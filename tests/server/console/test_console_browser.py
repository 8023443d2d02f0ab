"""The console in a real browser: Debian's Chromium, driven by Playwright, against a real server
on loopback (SQLite: what differs between the databases is covered over plain HTTP). One browser
for the module. Requests to anywhere but this server are refused and counted, so the pages and
/docs are shown to work without internet; a script the CSP blocks shows up as a console error."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.helpers.artifacts import ARTIFACTS
from tests.helpers.console import create_user, module_server, reporting_device
from tests.helpers.need import need
from tests.helpers.servers import ServerProcess

MODULE_LOADED = time.time()
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EMAIL, PASSWORD = "it@district.example", "a long enough password"


@pytest.fixture(scope="module", params=["sqlite"])
def console_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    for server in module_server(request, tmp_path_factory):
        reporting_device(server, server.token("Lincoln High"), "lincoln-lt01", "LIN001", "fail")
        create_user(server, EMAIL, PASSWORD, "district_admin")
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need(Path(CHROMIUM).exists(), "apt-get install chromium (./scripts/test installs it as root)")
    import playwright.sync_api as playwright_api

    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    """test-artifacts/console/: the run's summary names it (tests/conftest.py)."""
    folder = ARTIFACTS / "console"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Watched:
    """A page whose console errors and off-server requests are kept."""

    def __init__(self, browser: Any, server: ServerProcess) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

        def route(request_route: Any) -> None:
            if urlparse(request_route.request.url).hostname == "127.0.0.1":
                request_route.continue_()
            else:
                self.outside.append(request_route.request.url)
                request_route.abort()

        self.context.route("**/*", route)
        self.base = server.url


def press_and_load(page: Any, key: str, url: str | None = None) -> None:
    """Presses `key` and returns once the navigation it starts has loaded (at `url`, when given).
    Waiting afterwards for a URL pattern is not enough: when the page's URL already matches, the
    wait returns at once and the keystroke's navigation, still in flight, interrupts the next goto."""
    with page.expect_navigation(url=url):
        page.keyboard.press(key)


def test_sign_in_overview_and_sign_out(
    browser: Any, console_server: ServerProcess, screenshots: Path
) -> None:
    watched = Watched(browser, console_server)
    page = watched.page
    page.goto(watched.base + "/devices")
    assert page.url.endswith("/sign-in?next=%2Fdevices")
    page.screenshot(path=str(screenshots / "sign-in.png"))

    page.fill("#email", EMAIL)
    page.fill("#password", "wrong password entirely")
    page.click("button[type=submit]")
    assert "not accepted" in page.inner_text("[role=alert]")

    # By keyboard: the e-mail is kept, Tab to the password, Enter submits.
    page.fill("#password", "")
    page.focus("#password")
    page.keyboard.type(PASSWORD)
    press_and_load(page, "Enter", watched.base + "/devices")
    assert "lincoln-lt01" in page.inner_text("#devices")
    cookie = next(c for c in watched.context.cookies() if c["name"] == "homeroom_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie") == ""  # no script can read the session
    page.screenshot(path=str(screenshots / "devices.png"), full_page=True)

    page.goto(watched.base + "/")
    assert page.inner_text("#total") == "1"
    assert page.inner_text("[data-check=firewall]") == "1"
    page.screenshot(path=str(screenshots / "overview.png"), full_page=True)
    page.goto(watched.base + "/audit")
    assert "console.signed_in" in page.inner_text("#audit")
    page.screenshot(path=str(screenshots / "audit.png"), full_page=True)

    page.click("text=Sign out")
    page.wait_for_url(watched.base + "/sign-in")
    page.goto(watched.base + "/")
    assert page.url.startswith(watched.base + "/sign-in")
    # The one error is the wrong password's 401, which Chromium logs as a failed load.
    assert watched.errors == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]
    assert watched.outside == []
    watched.context.close()


def test_docs_work_offline(browser: Any, console_server: ServerProcess, screenshots: Path) -> None:
    watched = Watched(browser, console_server)
    page = watched.page
    page.goto(watched.base + "/docs")
    page.wait_for_selector(".opblock", timeout=30_000)  # Swagger UI drew the operations
    assert "/api/v1/enrol" in page.inner_text("#swagger-ui")
    page.screenshot(path=str(screenshots / "docs.png"))
    assert watched.outside == [], "the docs reached out of this server"
    assert [e for e in watched.errors if "Content Security Policy" in e] == []
    watched.context.close()


def test_no_inline_script_runs(browser: Any, console_server: ServerProcess) -> None:
    """The CSP is enforced by the browser: a script injected into a page does not run."""
    watched = Watched(browser, console_server)
    page = watched.page
    page.goto(watched.base + "/sign-in")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.ran = true';"
        " document.body.appendChild(s); }"
    )
    assert page.evaluate("window.ran === undefined")
    assert any("Content Security Policy" in e for e in watched.errors)
    watched.context.close()


def test_pages_pass_axe(browser: Any, console_server: ServerProcess) -> None:
    """No serious or critical axe-core violations on any console page (axe-core from the
    axe-playwright-python package, run in the page through Playwright: no CDN)."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    watched = Watched(browser, console_server)
    page = watched.page
    page.goto(watched.base + "/sign-in")
    pages = {"/sign-in": axe.run(page)}
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(watched.base + "/")
    page.goto(watched.base + "/devices")
    device_link = page.get_attribute("#devices tbody a", "href")
    for path in (
        "/",
        "/devices",
        device_link,
        "/audit",
        "/users",
        "/devices/nothing",
        "/software",
        "/tokens",
    ):
        page.goto(watched.base + str(path))
        pages[str(path)] = axe.run(page)
    serious = {
        path: [
            (v["id"], v["impact"], v["help"])
            for v in result.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        for path, result in pages.items()
    }
    assert serious == {path: [] for path in pages}
    watched.context.close()


def test_screenshots_kept(screenshots: Path) -> None:
    # Written by this run's tests above: the folder outlives a run, so an old file does not count.
    kept = sorted(p.name for p in screenshots.iterdir() if p.stat().st_mtime >= MODULE_LOADED)
    assert {"sign-in.png", "overview.png", "devices.png", "audit.png", "docs.png"} <= set(kept)
    assert shutil.disk_usage(screenshots).free > 0
