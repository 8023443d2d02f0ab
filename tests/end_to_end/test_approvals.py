"""Asking IT to approve an app, end to end: the real form on a real X display (opened by the tray's own
code), the real service loop with its inbox and outbox, and a real server process.

An app the software check finds unapproved is asked for while the server is down (the request
waits, the form says so), sent when the server is back, approved by IT with `homeroom-server
approvals approve` (the group's requirements are published again) and, at the next heartbeat, the
software check passes and the tray tells the user. A declined request's message reaches the state
the tray reads; requests that skip the form (a blocked app, one already approved, control
characters) are refused by the service with the same words.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from agent.approval_status import read_statuses
from agent.checks import CHECKS_BY_ID, software_inventory
from agent.checks.context import CheckContext
from agent.checks.runner import run_checks
from agent.config import AgentConfig
from agent.desktop.approval_request import choices_from_results
from agent.desktop.handoff import INBOX_DIR, write_entry
from agent.desktop.panels import status_blocks
from agent.desktop.tray import Tray
from agent.probes import LiveProbes
from agent.probes.facts import detect
from agent.service import AgentService
from agent.state import BASELINE_FILE, STATUS_FILE, BaselineFile
from contract.requirements import requirements_from_text
from tests.helpers.agent_process import agent
from tests.helpers.agent_service import Clock
from tests.helpers.paths import ROOT
from tests.helpers.servers import ServerProcess
from tests.helpers.xdisplay import XDisplay

ARTIFACTS = ROOT / "test-artifacts" / "approvals"
GROUP = "Lincoln High"
POLICY = ROOT / "config" / "policies" / "secondary.md"
# Only the software check runs: the others are not what this test is about, and each costs time.
ENABLED_LINE = re.compile(r"^enabled = \[.*\]$", re.MULTILINE)
REQUIREMENTS = ENABLED_LINE.sub(
    'enabled = ["software"]', (ROOT / "config" / "requirements.toml").read_text(encoding="utf-8"), count=1
)
assert 'enabled = ["software"]' in REQUIREMENTS
ACCOUNT = os.environ.get("USER") or "root"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only here: tests/server/test_approvals.py runs the server's part on PostgreSQL too."""
    return f"sqlite:///{tmp_path / 'var' / 'homeroom.db'}"


def inventory_now() -> frozenset[str]:
    requirements = requirements_from_text("test", REQUIREMENTS)
    ctx = CheckContext(LiveProbes(), detect(), requirements, datetime.now(timezone.utc), None)
    return frozenset(item.identity for item in software_inventory(ctx).items)


def baseline_without(state_dir: Path, target: str) -> frozenset[str]:
    """The baseline is everything installed now but the target: so the target is what is unapproved.

    Other engineers' tests install and remove packages on this machine at the same time; taking the
    baseline again just before each check keeps their packages out of this test's verdicts.
    """
    installed = inventory_now()
    (state_dir / BASELINE_FILE).write_text(
        json.dumps({"items": sorted(installed - {target.casefold()})}), encoding="utf-8"
    )
    return installed


def unapproved_target() -> tuple[str, frozenset[str]]:
    """An installed app the check judges, and a baseline of everything else: exactly it is unapproved."""
    requirements = requirements_from_text("test", REQUIREMENTS)
    platform = detect()
    ctx = CheckContext(LiveProbes(), platform, requirements, datetime.now(timezone.utc), None)
    inventory = inventory_now()
    (result,) = run_checks([CHECKS_BY_ID["software"]], ctx, 60)  # no baseline: every app it judges
    judged = [
        item["name"]
        for item in result.evidence.get("unapproved", [])
        if item["reason"] == "not approved" and not set(item["name"]) & set("*?[")
    ]
    assert judged, result
    target = judged[0]
    return target, inventory - {target.casefold()}


def enrolled(server: ServerProcess, state_dir: Path) -> tuple[AgentService, Clock, str]:
    assert server.cli("policy", "publish", str(POLICY)).returncode == 0
    published = Path(server.data_dir) / "requirements.toml"
    published.write_text(REQUIREMENTS, encoding="utf-8")
    assert server.cli("requirements", "publish", str(published), "--group", GROUP).returncode == 0
    done = agent(
        "enroll", "--server", server.url, "--token", server.token(GROUP), "--state-dir", str(state_dir)
    )
    assert done.returncode == 0, done.stderr
    target, baseline = unapproved_target()
    (state_dir / BASELINE_FILE).write_text(json.dumps({"items": sorted(baseline)}), encoding="utf-8")
    clock = Clock()
    requirements = requirements_from_text("test", REQUIREMENTS)
    loop = AgentService(state_dir, AgentConfig(), detect(), (requirements, REQUIREMENTS), clock=clock)
    assert BaselineFile(state_dir).load() == baseline
    return loop, clock, target


def software_result(state_dir: Path) -> dict[str, Any]:
    status = json.loads((state_dir / STATUS_FILE).read_text(encoding="utf-8"))
    return next(r for r in status["results"] if r["id"] == "software")


def heartbeat_now(loop: AgentService, clock: Clock) -> None:
    clock.advance(16 * 60)  # the heartbeat is due (and any backoff of a failed send has passed)
    loop.cycle()


def unapproved_names(state_dir: Path) -> set[str]:
    return {item["name"] for item in software_result(state_dir)["evidence"].get("unapproved", [])}


class Form:
    """The approval form process the tray opened, seen through its test hook and driven with xdotool."""

    def __init__(self, display: XDisplay, state_file: Path, process: subprocess.Popen[bytes]) -> None:
        self.env = display.env()
        self.state_file = state_file
        self.process = process
        self.wait(lambda s: s["widgets"]["send"]["mapped"] and s["widgets"]["send"]["width"] > 1)

    def state(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return data

    def wait(self, condition: Callable[[dict[str, Any]], bool], timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            if state and condition(state):
                return state
            assert self.process.poll() is None, "the form exited early"
            time.sleep(0.05)
        pytest.fail(f"the form never reached the expected state: {self.state()}")

    def xdotool(self, *args: str) -> None:
        subprocess.run(["xdotool", *args], env=self.env, check=True, timeout=20, capture_output=True)

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["import", "-window", "root", str(ARTIFACTS / f"{name}.png")],
            env=self.env,
            check=True,
            timeout=30,
        )

    def click(self, widget: str) -> None:
        box = self.state()["widgets"][widget]
        self.xdotool("mousemove", str(box["x"] + box["width"] // 2), str(box["y"] + box["height"] // 2))
        self.xdotool("click", "1")

    def pick(self, app: str) -> None:
        """Chooses the app as a person would with the keyboard: select what is there, type over it."""
        self.focus("app")
        self.xdotool("key", "ctrl+slash")
        self.xdotool("type", "--delay", "10", app)
        self.wait(lambda s: s["app"] == app)

    def focus(self, widget: str) -> None:
        for _ in range(5):  # a window that has just mapped can miss the first click
            self.click(widget)
            try:
                self.wait(lambda s: s["focus"] == widget, timeout=2)
                return
            except pytest.fail.Exception:
                continue
        pytest.fail(f"{widget} never took the focus: {self.state()}")

    def type_into(self, widget: str, text: str) -> None:
        self.focus(widget)
        self.xdotool("type", "--delay", "10", text)
        self.wait(lambda s: s[widget].endswith(text))


@pytest.fixture
def tray(tmp_path: Path, state_dir: Path) -> Iterator[tuple[Tray, list[tuple[str, str]]]]:
    told: list[tuple[str, str]] = []
    user_dir = tmp_path / "user"
    user_dir.mkdir()
    shown = Tray(state_dir, user_dir, ACCOUNT, lambda title, message: told.append((title, message)))
    yield shown, told
    for process in shown.windows.values():
        process.terminate()
        process.wait(10)


def test_asked_offline_sent_later_approved_and_the_laptop_passes(
    server: ServerProcess,
    state_dir: Path,
    display: XDisplay,
    tmp_path: Path,
    tray: tuple[Tray, list[tuple[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop, clock, target = enrolled(server, state_dir)
    baseline_without(state_dir, target)
    loop.cycle()
    found = software_result(state_dir)
    assert found["status"] == "fail" and target in [c.name for c in choices_from_results([found])]

    server.stop()  # the laptop is offline from here until the server starts again
    form_state = tmp_path / "form-state.json"
    monkeypatch.setenv("DISPLAY", display.name)
    monkeypatch.setenv("HOMEROOM_DIALOG_STATE", str(form_state))
    shown, told = tray
    shown.ask_for_approval()  # the tray's "Ask IT to approve an app…"
    form = Form(display, form_state, shown.windows["approval"])
    assert target in form.state()["choices"]  # the unapproved apps the check found
    form.pick(target)

    # Bad input: no reason, no name. Each field says what to fix; nothing is handed over.
    form.click("send")
    refused = form.wait(lambda s: bool(s["errors"]["reason"]))
    assert refused["errors"] == {
        "app": "",
        "reason": "Please say why you need this app for your school work.",
        "full_name": "Please type your name (at least two letters).",
    }
    assert refused["record_id"] is None and not list((state_dir / INBOX_DIR).glob("approval_request-*"))
    form.screenshot("01-what-to-fix")

    form.type_into("reason", "Our robotics class programs the robots with it.")
    form.type_into("full_name", "Ada Lovelace")
    form.click("send")
    handed = form.wait(lambda s: s["record_id"] is not None)
    assert handed["errors"] == {"app": "", "reason": "", "full_name": ""}
    record_id = handed["record_id"]

    loop.cycle()  # the service takes it from the inbox; the server is down, so it waits in the outbox
    waiting = form.wait(lambda s: s["result"].startswith("Saved. It is waiting to be sent"))
    assert "nothing is lost" in waiting["result"].lower()
    form.screenshot("02-waiting-to-be-sent")
    assert [(s.record_id, s.state) for s in read_statuses(state_dir)] == [(record_id, "waiting")]

    server.start()
    heartbeat_now(loop, clock)  # back online: the request is sent
    form.wait(lambda s: s["result"].startswith("Sent to IT."))
    (row,) = json.loads(server.cli("approvals", "--json").stdout)["approvals"]
    assert (row["app"], row["user"], row["full_name"], row["state"]) == (
        target,
        ACCOUNT,
        "Ada Lovelace",
        "waiting",
    )
    assert row["reason"] == "Our robotics class programs the robots with it." and row["group"] == GROUP

    approved = server.cli("approvals", "approve", str(row["id"]))
    assert approved.returncode == 0, approved.stderr
    heartbeat_now(loop, clock)  # IT's answer and the new requirements arrive together
    assert [(s.record_id, s.state) for s in read_statuses(state_dir)] == [(record_id, "approved")]
    installed = baseline_without(state_dir, target)
    loop.cycle()  # the new requirements are applied: the software check runs again
    # It passes: the approved app is no longer listed. (Anything else listed can only be a package
    # another test installed on this machine in the last moment, after the baseline was taken.)
    left = unapproved_names(state_dir)
    assert target not in left and not {name.casefold() for name in left} & installed, left
    if not left:
        assert software_result(state_dir)["status"] == "pass"

    shown.refresh()
    assert (f"IT approved {target}", f"“{target}” is approved for this laptop.") in told
    told.clear()
    shown.refresh()
    assert not [t for t in told if t[0].startswith("IT ")]  # told once


def test_declined_with_a_message_and_requests_that_skip_the_form(
    server: ServerProcess, state_dir: Path, tray: tuple[Tray, list[tuple[str, str]]]
) -> None:
    loop, clock, target = enrolled(server, state_dir)
    loop.cycle()  # the first check and report
    heartbeat_now(loop, clock)  # the policy arrives: it names whom to talk to
    inbox = state_dir / INBOX_DIR

    def hand_over(app: str, **changes: str) -> str:
        record_id = uuid.uuid4().hex
        body = {
            "record_id": record_id,
            "user": ACCOUNT,
            "app": app,
            "publisher": "",
            "reason": "For my music class.",
            "full_name": "Grace Hopper",
            "requested_at": datetime.now(timezone.utc).isoformat(),
            **changes,
        }
        write_entry(inbox, "approval_request", record_id, body)
        return record_id

    asked = hand_over(target)
    blocked = hand_over("qBittorrent")
    approved_already = hand_over("LibreOffice Calc")
    controls = hand_over("Krita", reason="For art\x1b[2J")
    loop.cycle()
    states = {s.record_id: s for s in read_statuses(state_dir)}
    assert states[asked].state == "sent"
    assert states[blocked].state == "refused" and states[blocked].message == (
        "“qBittorrent” is blocked by the district, so IT cannot approve it through Homeroom. "
        "Please talk to your teacher or the school office about it."
    )
    assert states[approved_already].state == "refused"
    assert "already approved" in states[approved_already].message
    assert controls not in states  # malformed: set aside for IT, never queued
    assert [p.name for p in (state_dir / "inbox-refused").iterdir() if controls in p.name]
    assert not list(inbox.glob("approval_request-*"))
    (row,) = json.loads(server.cli("approvals", "--json").stdout)["approvals"]  # only the good one reached IT

    message = "Please use the school's licensed copy in the music room instead."
    assert server.cli("approvals", "decline", str(row["id"]), "--message", message).returncode == 0
    heartbeat_now(loop, clock)
    answered = next(s for s in read_statuses(state_dir) if s.record_id == asked)
    assert (answered.state, answered.message) == ("declined", message)

    shown, told = tray
    mine = next(r for r in shown.my_requests() if r["app"] == target)
    assert (mine["state"], mine["message"]) == ("declined", message)
    shown.refresh()
    assert (f"IT declined {target}", message) in told
    # And "My laptop's status" lists it with IT's words.
    blocks = status_blocks({"results": [], "approvals": shown.my_requests()})
    assert ("bullet", f"{target}: declined by IT — {message}") in blocks
