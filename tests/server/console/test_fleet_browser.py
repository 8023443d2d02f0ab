"""The Devices, Device, Software and Enrolment tokens pages in a real browser (Debian's Chromium via
Playwright) against a real server with laptops enrolled over the agent API: a hostname that is a
script is shown as text and never runs, every page passes axe-core with no serious or critical
violation, and every control on every page is reached and used by keyboard alone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.console import create_user, module_server, reporting_device
from tests.helpers.servers import ServerProcess
from tests.server.console.test_console_browser import Watched, browser, press_and_load, screenshots

__all__ = ["browser", "screenshots"]  # the fixtures, shared with the console's other browser tests

SCRIPT_HOST = '<script>window.owned = 1; alert("owned")</script><img src=x onerror="alert(2)">xss-lt01'
EMAIL, PASSWORD = "it@district.example", "a long enough password"
TECH = "tech@lincoln.example"
FOCUSABLE = "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex='0']"


@pytest.fixture(scope="module", params=["sqlite"])
def fleet_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    for server in module_server(request, tmp_path_factory):
        token = server.token("Lincoln High")
        laptop = reporting_device(server, token, "lincoln-lt01", "LIN001", "fail")
        reporting_device(server, token, SCRIPT_HOST, "XSS001", "fail")
        asked = laptop.post(
            "/approvals",
            {
                "record_id": uuid.uuid4().hex,
                "user": "ada",
                "full_name": "Ada Lovelace",
                "app": "Krita",
                "publisher": "KDE e.V.",
                "reason": "Art class.",
                "requested_at": datetime.now(timezone.utc).isoformat(),
            },
        )
        assert asked.status_code == 200, asked.text
        create_user(server, EMAIL, PASSWORD, "district_admin")
        create_user(server, TECH, PASSWORD, "technician", ("Lincoln High",))
        yield server


def signed_in_page(browser: Any, server: ServerProcess, email: str = EMAIL) -> Watched:
    watched = Watched(browser, server)
    page = watched.page
    page.goto(watched.base + "/sign-in")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(watched.base + "/")
    return watched


def device_href(page: Any, hostname: str) -> str:
    href = page.locator("#devices tbody a", has_text=hostname).get_attribute("href")
    assert href
    return str(href)


def test_a_script_in_a_hostname_is_shown_as_text(
    browser: Any, fleet_server: ServerProcess, screenshots: Path
) -> None:
    watched = signed_in_page(browser, fleet_server)
    page = watched.page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(watched.base + "/devices")
    assert page.locator("#devices tbody a", has_text="xss-lt01").inner_text() == SCRIPT_HOST
    assert page.get_by_text(SCRIPT_HOST).first.is_visible()
    assert page.locator("#devices script, #devices img").count() == 0
    page.screenshot(path=str(screenshots / "devices-escaped.png"), full_page=True)
    page.goto(watched.base + device_href(page, "xss-lt01"))
    assert page.inner_text("#hostname") == SCRIPT_HOST and page.locator("#hostname").is_visible()
    assert page.locator("main script, main img").count() == 0
    assert page.title().startswith(SCRIPT_HOST)
    page.screenshot(path=str(screenshots / "device.png"), full_page=True)
    assert dialogs == [] and page.evaluate("window.owned === undefined")
    assert watched.outside == []
    watched.context.close()


def test_the_fleet_pages_pass_axe(browser: Any, fleet_server: ServerProcess, screenshots: Path) -> None:
    axe = pytest.importorskip("axe_playwright_python.sync_playwright").Axe()
    watched = signed_in_page(browser, fleet_server)
    page = watched.page
    page.goto(watched.base + "/devices")
    device = device_href(page, "lincoln-lt01")
    results = {}
    for path in (
        "/devices",
        "/devices?failing=firewall&signoff=missing&not_seen_since=2999-01-01&sort=last_seen&dir=desc",
        device,
        "/software",
        "/tokens",
    ):
        page.goto(watched.base + path)
        results[path] = axe.run(page)
    page.screenshot(path=str(screenshots / "tokens.png"), full_page=True)
    page.fill("#token-school", "Axe Academy")
    page.click("text=Make token")
    page.wait_for_selector("#new-token-text")
    results["/tokens (a new token shown)"] = axe.run(page)
    page.goto(watched.base + "/software")
    page.screenshot(path=str(screenshots / "software.png"), full_page=True)
    serious = {
        path: [
            (v["id"], v["impact"], v["help"])
            for v in result.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        for path, result in results.items()
    }
    assert serious == {path: [] for path in results}
    watched.context.close()


def tab_through(page: Any) -> tuple[int, int]:
    """Tabs from the top of the page to its end; (controls reached, controls on the page)."""
    total = page.evaluate(
        f"""() => {{ let n = 0; for (const el of document.querySelectorAll("{FOCUSABLE}")) {{
            if (el.offsetParent !== null || el.tagName === "SUMMARY") {{ el.dataset.kb = String(n++); }} }}
            return n; }}"""
    )
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    reached: set[str] = set()
    for _ in range(total + 5):
        page.keyboard.press("Tab")
        found = page.evaluate(
            "() => document.activeElement ? document.activeElement.dataset.kb || null : null"
        )
        if found is not None:
            reached.add(found)
    return len(reached), total


def test_every_control_is_reached_and_used_by_keyboard(browser: Any, fleet_server: ServerProcess) -> None:
    watched = signed_in_page(browser, fleet_server, TECH)
    page = watched.page
    base = watched.base
    page.goto(base + "/devices")
    device = device_href(page, "lincoln-lt01")
    for path in ("/devices", device, "/software"):
        page.goto(base + path)
        reached, total = tab_through(page)
        assert total > 5 and reached == total, (path, reached, total)

    # Search and sort by keyboard: type in the search box, Enter; a sort link, Enter.
    page.goto(base + "/devices")
    page.focus("#q")
    page.keyboard.type("xss")
    press_and_load(page, "Enter", "**/devices?q=xss**")
    assert page.inner_text("#count") == "1 device"
    # The search form keeps sort=hostname, so the sort link's own address is what is waited for.
    hostname = page.locator("#devices thead a:text('Hostname')")
    sorted_by_hostname = hostname.get_attribute("href")
    assert sorted_by_hostname and "dir=desc" in sorted_by_hostname
    hostname.focus()
    press_and_load(page, "Enter", base + sorted_by_hostname)
    assert page.get_attribute("#devices thead th[aria-sort]", "aria-sort") == "descending"
    # Evidence opens by keyboard on the device page.
    page.goto(base + device)
    page.focus("#results summary")
    page.keyboard.press("Enter")
    assert page.locator("#results details").first.get_attribute("open") is not None
    # Approve a request by keyboard alone.
    page.goto(base + "/software")
    page.focus("#requests button:text('Approve')")
    press_and_load(page, "Enter")
    assert "Approved Krita for group Lincoln High" in page.inner_text("#message")
    watched.context.close()

    admin = signed_in_page(browser, fleet_server)
    page = admin.page
    page.goto(base + "/tokens")
    reached, total = tab_through(page)
    assert reached == total
    page.focus("#token-school")
    page.keyboard.type("Keyboard School")
    page.keyboard.press("Tab")  # the expiry
    page.keyboard.press("ArrowDown")  # 90 days
    page.keyboard.press("Tab")  # Make token
    press_and_load(page, "Enter")
    assert "Keyboard School" in page.inner_text("#new-token-heading")
    page.focus("#tokens button[aria-label*='Keyboard School']")
    press_and_load(page, "Enter")
    assert "enrols no more laptops" in page.inner_text("#message")
    admin.context.close()
