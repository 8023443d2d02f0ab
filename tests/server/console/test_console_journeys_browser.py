"""Issue 11 §4's journeys in a real browser (Debian's Chromium via Playwright) against a real server
whose Lincoln High laptop was enrolled and reported by a real `homeroom-agent` process (this
machine, checked for real): filter the device list, open the device, export the CSV through the
browser's own download, a POST without its CSRF token refused, a technician kept to their school by
page, URL, search, filter and export, and an account locked after repeated failures."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.agent_process import agent
from tests.helpers.console import create_user, module_server, reporting_device
from tests.helpers.servers import ServerProcess
from tests.server.console.test_console_browser import Watched, browser, screenshots

__all__ = ["browser", "screenshots"]  # the fixtures, shared with the console's other browser tests

ADMIN, TECH, LOCKED = "it@district.example", "tech@lincoln.example", "locked@district.example"
PASSWORD = "a long enough password"
LINCOLN, WASHINGTON = "Lincoln High", "Washington High"


@pytest.fixture(scope="module", params=["sqlite"])
def journey_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    for server in module_server(request, tmp_path_factory):
        state = tmp_path_factory.mktemp("agent-state")
        enrolled = agent(
            "enroll", "--server", server.url, "--token", server.token(LINCOLN), "--state-dir", str(state)
        )
        assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
        ran = agent("run", "--once", "--state-dir", str(state))
        assert ran.returncode == 0 and "sent: 1" in ran.stdout, ran.stdout + ran.stderr
        reporting_device(server, server.token(WASHINGTON), "wash-lt01", "WASH001", "fail")
        create_user(server, ADMIN, PASSWORD, "district_admin")
        create_user(server, TECH, PASSWORD, "technician", (LINCOLN,))
        create_user(server, LOCKED, PASSWORD, "viewer", district_wide=True)
        yield server


def devices_by_school(server: ServerProcess) -> dict[str, dict[str, Any]]:
    listed = json.loads(server.cli("devices", "--json").stdout)["devices"]
    return {device["group"]: device for device in listed}


def signed_in(browser: Any, server: ServerProcess, email: str) -> Watched:
    watched = Watched(browser, server)
    page = watched.page
    page.goto(watched.base + "/sign-in")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(watched.base + "/")
    return watched


def downloaded_csv(page: Any) -> list[list[str]]:
    """The device list's CSV as the browser saves it when the export link is clicked."""
    with page.expect_download() as download:
        page.click("#export")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_an_administrator_filters_opens_and_exports_the_agents_laptop(
    browser: Any, journey_server: ServerProcess, screenshots: Path
) -> None:
    laptop = devices_by_school(journey_server)[LINCOLN]
    watched = signed_in(browser, journey_server, ADMIN)
    page = watched.page
    page.goto(watched.base + "/devices")
    assert page.inner_text("#count") == "2 devices"
    page.select_option("#school", LINCOLN)
    with page.expect_navigation():
        page.click("button:text('Search')")
    assert page.inner_text("#count") == "1 device"
    rows = page.inner_text("#devices tbody")
    assert laptop["hostname"] in rows and "wash-lt01" not in rows
    page.screenshot(path=str(screenshots / "devices-filtered.png"), full_page=True)

    exported = downloaded_csv(page)
    hostnames = [row[0] for row in exported[1:]]
    assert exported[0][0].lower() == "hostname" and hostnames == [laptop["hostname"]]

    with page.expect_navigation():
        page.click(f"#devices tbody a:text('{laptop['hostname']}')")
    assert page.inner_text("#hostname") == laptop["hostname"]
    results = page.inner_text("#results")
    for check, status in laptop["checks"].items():  # what the agent found on this machine, shown
        assert status in results.lower(), (check, status, results)
    page.screenshot(path=str(screenshots / "device-reported-by-agent.png"), full_page=True)
    assert watched.outside == []
    watched.context.close()


def test_a_post_without_its_csrf_token_is_refused_and_the_form_with_it_works(
    browser: Any, journey_server: ServerProcess
) -> None:
    laptop = devices_by_school(journey_server)[LINCOLN]
    watched = signed_in(browser, journey_server, ADMIN)
    page = watched.page
    page.goto(f"{watched.base}/devices/{laptop['device_id']}")
    refused = page.evaluate(
        """async (path) => {
            const answer = await fetch(path, {method: "POST", credentials: "same-origin",
                headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "csrf_token=forged"});
            return answer.status;
        }""",
        f"/devices/{laptop['device_id']}/check-now",
    )
    assert refused == 403
    commands = json.loads(journey_server.cli("audit", "--json").stdout)["audit"]
    assert not [entry for entry in commands if entry["action"] == "device.command"]

    with page.expect_navigation():
        page.click("button:text('Check now')")
    assert "will check and report at its next heartbeat" in page.inner_text("main")
    commands = json.loads(journey_server.cli("audit", "--json").stdout)["audit"]
    assert len([entry for entry in commands if entry["action"] == "device.command"]) == 1
    watched.context.close()


def test_a_technician_sees_only_their_school_by_every_path(
    browser: Any, journey_server: ServerProcess
) -> None:
    devices = devices_by_school(journey_server)
    watched = signed_in(browser, journey_server, TECH)
    page = watched.page
    base = watched.base
    page.goto(base + "/devices")
    assert page.inner_text("#count") == "1 device"
    assert "wash-lt01" not in page.inner_text("main")
    assert WASHINGTON not in page.inner_text("#school")  # not even offered as a filter

    page.fill("#q", "wash")
    with page.expect_navigation():
        page.click("button:text('Search')")
    assert page.inner_text("#count") == "0 devices"
    page.goto(base + "/devices")
    assert [row[0] for row in downloaded_csv(page)[1:]] == [devices[LINCOLN]["hostname"]]

    other = page.goto(f"{base}/devices/{devices[WASHINGTON]['device_id']}")
    missing = page.goto(f"{base}/devices/no-such-device")
    assert other.status == missing.status == 404
    assert page.goto(f"{base}/devices?school={WASHINGTON}").status == 403
    assert page.goto(f"{base}/devices.csv?school={WASHINGTON}").status == 403
    own = page.goto(f"{base}/devices/{devices[LINCOLN]['device_id']}")
    assert own.status == 200
    watched.context.close()


def test_an_account_is_locked_after_repeated_failures_even_for_the_right_password(
    browser: Any, journey_server: ServerProcess
) -> None:
    watched = Watched(browser, journey_server)
    page = watched.page
    page.goto(watched.base + "/sign-in")
    for _ in range(5):
        page.fill("#email", LOCKED)
        page.fill("#password", "not the password")
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert "not accepted" in page.inner_text("[role=alert]")
    page.fill("#email", LOCKED)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "Too many failed sign-ins" in page.inner_text("[role=alert]")
    assert page.url.startswith(watched.base + "/sign-in")
    assert page.goto(watched.base + "/").url.startswith(watched.base + "/sign-in")  # not signed in
    watched.context.close()
