"""The Sign-offs, Policies and Requirements pages in a real browser (Debian's Chromium through
Playwright) against a real server: each used by keyboard, each passing axe-core, the policy
preview showing what the laptop's dialog is given, and publishing from the browser."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.desktop.consent import dialog
from agent.desktop.consent.decide import prompt_for
from agent.desktop.consent.flow import dialog_request
from contract.policy import parse_policy
from tests.helpers.artifacts import ARTIFACTS
from tests.helpers.console import create_user, module_server, reporting_device
from tests.helpers.paths import CONFIG
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import report
from tests.server.console.test_console_browser import Watched, browser, press_and_load

EMAIL, PASSWORD = "records@district.example", "a long enough password"
LINCOLN = "Lincoln High"
POLICY = (CONFIG / "policies" / "elementary.md").read_text(encoding="utf-8")
__all__ = ["browser"]  # the module's browser fixture, shared with the other browser tests


@pytest.fixture(scope="module", params=["sqlite"])
def records_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    for server in module_server(request, tmp_path_factory):
        assert server.cli("policy", "publish", str(CONFIG / "policies" / "secondary.md")).returncode == 0
        laptop = reporting_device(server, server.token(LINCOLN), "lincoln-lt01", "LIN001")
        body = {**report(), "identity": laptop.identity, "users": ["ada", "alan"], "audience": "student"}
        assert laptop.post("/reports", body).status_code == 200
        create_user(server, EMAIL, PASSWORD, "district_admin")
        yield server


@pytest.fixture(scope="module")
def screenshots() -> Path:
    """test-artifacts/console-records/: the run's summary names it (tests/conftest.py)."""
    folder = ARTIFACTS / "console-records"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def serious(axe: Any, page: Any) -> list[tuple[str, str, str]]:
    return [
        (v["id"], v["impact"], v["help"])
        for v in axe.run(page).response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def signed_in_page(browser: Any, server: ServerProcess) -> Watched:
    watched = Watched(browser, server)
    page = watched.page
    page.goto(watched.base + "/sign-in")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    press_and_load(page, "Enter", watched.base + "/")
    return watched


def test_pages_work_by_keyboard_and_pass_axe(
    browser: Any, records_server: ServerProcess, screenshots: Path
) -> None:
    axe = pytest.importorskip("axe_playwright_python.sync_playwright").Axe()
    watched = signed_in_page(browser, records_server)
    page, base = watched.page, watched.base
    violations: dict[str, list[tuple[str, str, str]]] = {}

    # Sign-offs: the search box, then Enter.
    page.goto(base + "/signoffs")
    violations["/signoffs"] = serious(axe, page)
    page.screenshot(path=str(screenshots / "signoffs.png"), full_page=True)
    page.focus("#q")
    page.keyboard.type("alan")
    press_and_load(page, "Enter", "**/signoffs?*q=alan*")
    users = page.eval_on_selector_all("#signoffs tbody td:nth-child(4)", "ns => ns.map(n => n.textContent)")
    assert users == ["alan"] and "never signed" in page.inner_text("#signoffs tbody")

    # Policies: the text typed in, Tab to Preview, Enter; the preview's text is reachable by Tab.
    page.goto(base + "/policies")
    violations["/policies"] = serious(axe, page)
    page.screenshot(path=str(screenshots / "policies.png"), full_page=True)
    changed = POLICY + f"\nI will look after the laptop. ({uuid.uuid4().hex[:6]})\n"
    page.fill("#content", changed)
    page.focus("#content")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Preview"
    press_and_load(page, "Enter", base + "/policies/preview")
    violations["/policies/preview"] = serious(axe, page)
    page.screenshot(path=str(screenshots / "policy-preview.png"), full_page=True)
    document = parse_policy(changed, "typed")
    expected = dialog_request(document, "the user's account", prompt_for("first", document.title))
    shown = page.eval_on_selector_all(
        "#policy-text p, #policy-text li",
        "ns => ns.map(n => [n.tagName === 'LI' ? 'bullet' : n.className || 'paragraph', n.textContent])",
    )
    assert shown == expected["blocks"]
    assert page.inner_text("#dialog-title") == expected["title"]
    assert page.inner_text("#how-to") == f"{expected['message']}\n{dialog.HOW_TO}"
    assert "Reading grade" in page.inner_text("#grade")
    page.focus("#policy-text")  # a scrolling region a keyboard can reach and scroll
    assert page.evaluate("document.activeElement.id") == "policy-text"
    page.focus("#publish")
    press_and_load(page, "Enter", "**/policies?published=*")
    assert document.version[:12] in page.inner_text("#published")

    # Requirements: change a threshold, Enter submits; review the diff; save by keyboard.
    page.goto(base + "/requirements?school=Lincoln+High")
    violations["/requirements"] = serious(axe, page)
    page.screenshot(path=str(screenshots / "requirements.png"), full_page=True)
    page.focus("#max_idle_minutes")
    page.keyboard.press("Control+A")
    page.keyboard.type("10")
    press_and_load(page, "Enter", base + "/requirements/review")
    violations["/requirements/review"] = serious(axe, page)
    page.screenshot(path=str(screenshots / "requirements-review.png"), full_page=True)
    diff = page.inner_text("#diff")
    assert "-max_idle_minutes = 15" in diff and "+max_idle_minutes = 10" in diff
    page.focus("#save")
    press_and_load(page, "Enter", "**/requirements?school=Lincoln+High&published=*")
    assert "Saved" in page.inner_text("#published")
    assert "max_idle_minutes = 10" in (page.text_content("#versions") or "")  # the new version, listed

    assert violations == {path: [] for path in violations}
    assert watched.errors == [] and watched.outside == []
    watched.context.close()
