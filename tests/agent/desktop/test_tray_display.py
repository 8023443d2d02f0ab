"""The tray on a real (virtual) display: pystray's GTK backend in trayer, on its own Xvfb and D-Bus session.

One tray process runs for the module; the tests follow one another like a person's
afternoon: all well (green), a requirement fails (red, one notification), something
unknown (amber), the menu, "Check now", the status window, and Quit. Screenshots
go to test-artifacts/tray/.
"""

from __future__ import annotations

import getpass
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from contract.policy import load_policy
from tests.helpers.desktop import TRAY_HEIGHT, Desktop, colour_pixels, desktop, missing_tools, stop, wait_for
from tests.helpers.need import need
from tests.helpers.paths import ROOT

ARTIFACTS = ROOT / "test-artifacts" / "tray"
TRAY_TOP = TRAY_HEIGHT  # below the tray: the windows' area
GREEN, AMBER, RED = (0x2E, 0x7D, 0x32), (0xF9, 0xA8, 0x25), (0xC6, 0x28, 0x28)
IDS = ("disk_encryption", "firewall", "power_on_password", "antivirus", "software")
# Anchored: the icon's own title (the tooltip) can mention the Acceptable Use Policy too.
# The policy window is named after the document it shows (here config/policies/staff.md).
POLICY_WINDOW = "^Homeroom .+ Laptop Acceptable Use Policy for Staff$"  # the dash is several bytes to xdotool
FIX = "Turn on the firewall: Settings → Network → Firewall."


@dataclass
class RunningTray:
    session: Desktop
    process: subprocess.Popen[bytes]
    state_dir: Path
    user_dir: Path
    log: Path
    notices: Path
    notifier: subprocess.Popen[str]

    def write_status(self, results: list[dict[str, Any]]) -> None:
        write_status(self.state_dir, results)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def notifications(self) -> list[dict[str, str]]:
        if not self.notices.exists():
            return []
        return [json.loads(line) for line in self.notices.read_text(encoding="utf-8").splitlines()]


def write_status(state_dir: Path, results: list[dict[str, Any]], policy: Path | None = None) -> None:
    """As the service does: the whole file at once (by default no policy published: nothing to sign)."""
    status: dict[str, Any] = {
        "updated_at": datetime.now(timezone.utc).isoformat(),  # a running service
        "results": results,
        "device_id": "dev-42",
    }
    status["audience"] = "staff"
    status["policies"] = {}
    if policy is not None:
        document = load_policy(policy)
        relative = str(policy.relative_to(state_dir))
        status["policies"] = {
            "staff": {"file": relative, "policy_id": document.id, "version": document.version}
        }
    temporary = state_dir / ".status.json.tmp"
    temporary.write_text(json.dumps(status), encoding="utf-8")
    os.replace(temporary, state_dir / "status.json")


def result(
    check_id: str, status: str = "pass", summary: str = "fine", fix: str | None = None
) -> dict[str, Any]:
    title = check_id.replace("_", " ").capitalize()
    return {"id": check_id, "title": title, "status": status, "summary": summary, "remediation": fix}


def results_with(check_id: str, status: str, summary: str, fix: str | None = None) -> list[dict[str, Any]]:
    return [result(i, status, summary, fix) if i == check_id else result(i) for i in IDS]


def wait_for_colour(tray: RunningTray, rgb: tuple[int, int, int], name: str) -> list[tuple[int, int]]:
    """Screenshots until the icon shows `rgb` (and neither other state colour); the last one is kept."""
    others = [c for c in (GREEN, AMBER, RED) if c != rgb]
    shot = ARTIFACTS / f"icon-{name}.png"

    def shows() -> list[tuple[int, int]] | None:
        image = tray.session.screenshot(shot)
        hits = colour_pixels(image, rgb)
        stray = sum(len(colour_pixels(image, other)) for other in others)
        return hits if len(hits) >= 40 and stray == 0 else None

    found = wait_for(shows, 15, f"the tray icon to turn {name}; tray log:\n{tray.log_text()}", step=0.5)
    assert isinstance(found, list)
    return found


def centre(points: list[tuple[int, int]]) -> tuple[int, int]:
    return sum(x for x, _ in points) // len(points), sum(y for _, y in points) // len(points)


def open_menu(tray: RunningTray) -> tuple[int, int, int, int]:
    """Right-clicks the icon and returns the new menu window's geometry (width, height, x, y)."""

    def icon() -> list[tuple[int, int]]:
        # Until it shows: on a loaded machine the last test's window may still be closing over it.
        image = tray.session.screenshot(ARTIFACTS / "before-menu.png")
        return [p for rgb in (GREEN, AMBER, RED) for p in colour_pixels(image, rgb)]

    hits = wait_for(icon, 15, "the tray icon before opening its menu", step=0.5)
    assert isinstance(hits, list)
    x, y = centre(hits)
    before = tray.session.windows()
    tray.session.run("xdotool", "mousemove", str(x), str(y), "click", "3")

    def menu() -> tuple[int, int, int, int] | None:
        new = [g for wid, g in tray.session.windows().items() if wid not in before or before[wid] != g]
        return next((g for g in new if g[0] >= 100 and g[1] >= 100), None)

    found = wait_for(menu, 10, "the tray menu to open")
    assert isinstance(found, tuple)
    return found


def close_with_escape(tray: RunningTray, name: str) -> None:
    """Focuses the window and presses Escape until it is gone (a Tk window binds keys just after it maps)."""

    def closed() -> bool:
        for window in tray.session.run("xdotool", "search", "--onlyvisible", "--name", name).split():
            tray.session.run("xdotool", "windowfocus", "--sync", window, "key", "Escape")
        return not tray.session.find_window(name)

    wait_for(closed, 10, f"Escape to close {name!r}", step=0.5)


def choose(tray: RunningTray, *keys: str) -> None:
    tray.session.run("xdotool", "key", "--delay", "150", *keys)


@pytest.fixture(scope="module")
def tray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTray]:
    missing = missing_tools()
    packages = "xvfb trayer xdotool imagemagick x11-utils dbus"
    need(not missing, f"display tests need {', '.join(missing)}: apt-get install {packages}")
    need(
        importlib.util.find_spec("gi") is not None,
        'pystray\'s gtk backend needs PyGObject: pip install "PyGObject<3.51"',
    )
    folder = tmp_path_factory.mktemp("tray-display")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with desktop(folder / "desktop") as session:
        state_dir, home = folder / "state", folder / "home"
        (state_dir / "inbox").mkdir(parents=True)
        os.chmod(state_dir / "inbox", 0o1733)  # noqa: S103 - the service's inbox, open to all like /tmp
        # screen_lock reads a real desktop's settings, which a bare Xvfb lacks: leave it to the pure tests.
        (state_dir / "server-requirements.toml").write_text(
            f"[checks]\nenabled = {list(IDS)!r}\n".replace("'", '"')
        )
        notices = folder / "notifications.jsonl"
        notifier = subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.notification_daemon", str(notices)],
            cwd=ROOT, env=session.env, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert notifier.stdout is not None and notifier.stdout.readline().strip() == "ready"
        log = folder / "tray.log"
        env = {
            **session.env,
            "PYSTRAY_BACKEND": "gtk",
            "HOME": str(home),
            "XDG_STATE_HOME": str(home / "state"),
            # The windows' test hook: the status window and the approval form say where their buttons are.
            "HOMEROOM_DIALOG_STATE": str(folder / "window-state.json"),
        }
        write_status(state_dir, results_with("firewall", "pass", "fine"))
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "agent.desktop.tray", "--state-dir", str(state_dir),
                 "--poll-seconds", "0.5"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        running = RunningTray(
            session, process, state_dir, home / "state" / "homeroom", log, notices, notifier
        )
        try:
            yield running
        finally:
            stop(running.process)
            stop(notifier)


def test_all_met_and_nothing_to_sign_shows_green(tray: RunningTray) -> None:
    wait_for_colour(tray, GREEN, "green")
    assert "backend: pystray._gtk" in tray.log_text()
    assert "icon: green — All 5 requirements met and the policy is signed" in tray.log_text()


def test_a_failing_requirement_turns_red_and_notifies_once(tray: RunningTray) -> None:
    tray.write_status(results_with("firewall", "fail", "no firewall is filtering incoming connections", FIX))
    wait_for_colour(tray, RED, "red")
    wait_for(tray.notifications, 10, "a notification")
    assert tray.notifications() == [
        {"title": "Firewall needs fixing", "message": f"No firewall is filtering incoming connections. {FIX}"}
    ]
    assert "icon: red — 1 thing to fix: Firewall" in tray.log_text()
    tray.session.run("sleep", "2")  # several polls later: still one notification
    assert len(tray.notifications()) == 1


def test_an_unknown_requirement_turns_amber(tray: RunningTray) -> None:
    tray.write_status(results_with("antivirus", "unknown", "the process list could not be read"))
    wait_for_colour(tray, AMBER, "amber")


def test_the_menu_opens_and_check_now_asks_the_service(tray: RunningTray) -> None:
    geometry = open_menu(tray)
    image = tray.session.screenshot(ARTIFACTS / "menu.png")
    width, height, x, y = geometry
    menu_pixels = image.crop((x, y, x + width, y + height)).convert("L")
    assert menu_pixels.getextrema()[0] < 100, "the menu shows dark text on a light background"
    menu_line = next(line for line in tray.log_text().splitlines() if "; menu: " in line)
    assert menu_line.split("; menu: ")[1] == (
        "My laptop's status | Check now | Acceptable Use Policy | What Homeroom collects | "
        "Ask IT to approve an app… | Report lost or stolen… | About | Quit"
    )

    choose(tray, "Down", "Down", "Return")  # the first item, then "Check now"
    inbox = tray.state_dir / "inbox"
    found = wait_for(lambda: sorted(inbox.glob("check_now-*.json")), 10, "a check_now request in the inbox")
    assert isinstance(found, list) and len(found) == 1
    assert json.loads(found[0].read_text()) == {"kind": "check_now", "user": getpass.getuser()}
    assert oct(found[0].stat().st_mode & 0o777) == "0o644"
    assert not [p for p in inbox.iterdir() if p.name.startswith(".")], "no temporary file left in the inbox"


def test_my_laptops_status_opens_a_window_listing_what_to_fix(tray: RunningTray) -> None:
    tray.write_status(results_with("firewall", "fail", "no firewall is filtering incoming connections", FIX))
    wait_for_colour(tray, RED, "red-again")
    open_menu(tray)
    choose(tray, "Down", "Return")
    windows = wait_for(lambda: tray.session.find_window("My laptop's status"), 15, "the status window")
    assert isinstance(windows, list)
    image = tray.session.screenshot(ARTIFACTS / "status-window.png")
    assert len(colour_pixels(image, RED, box=(0, 0, 640, 540), tolerance=30)) > 20, "the failing line is red"
    shown = json.loads((tray.user_dir / "tray-status.json").read_text())
    assert [r["status"] for r in shown["results"] if r["id"] == "firewall"] == ["fail"]
    close_with_escape(tray, "My laptop's status")


APPROVAL_WINDOW = "^Homeroom .+ Ask IT to approve an app$"


def test_ask_it_to_approve_an_app_from_the_menu_and_from_the_status_window(tray: RunningTray) -> None:
    software = result("software", "fail", "1 item(s) the district has not approved: Krita", "Remove Krita.")
    software["evidence"] = {"unapproved": [{"name": "Krita", "publisher": "KDE", "reason": "not approved"}]}
    tray.write_status(
        [software if r["id"] == "software" else r for r in results_with("software", "fail", "")]
    )
    wait_for_colour(tray, RED, "red-software")
    hook = tray.state_dir.parent / "window-state.json"

    open_menu(tray)
    choose(tray, "Down", "Down", "Down", "Down", "Down", "Return")  # "Ask IT to approve an app…"
    assert wait_for(lambda: tray.session.find_window(APPROVAL_WINDOW), 15, "the approval form")
    # The form offers the app the software check found, with its publisher.
    form = wait_for(lambda: json.loads(hook.read_text()) if hook.exists() else None, 10, "the form's state")
    assert isinstance(form, dict) and form["choices"] == ["Krita"] and form["app"] == "Krita"
    handed = json.loads((tray.user_dir / "tray-approval.json").read_text())
    assert handed["software"][0]["evidence"]["unapproved"][0]["publisher"] == "KDE"
    tray.session.screenshot(ARTIFACTS / "approval-form.png")
    close_with_escape(tray, APPROVAL_WINDOW)

    # "My laptop's status" with the software check failing: its button opens the same form.
    hook.unlink()
    open_menu(tray)
    choose(tray, "Down", "Return")
    assert wait_for(lambda: tray.session.find_window("My laptop's status"), 15, "the status window")
    shown = wait_for(lambda: json.loads(hook.read_text()) if hook.exists() else None, 10, "its buttons")
    assert isinstance(shown, dict)
    button = shown["buttons"]["action0"]
    assert button["text"] == "Ask IT to approve an app…"
    hook.unlink()
    x, y = button["x"] + button["width"] // 2, button["y"] + button["height"] // 2
    tray.session.run("xdotool", "mousemove", str(x), str(y), "click", "1")
    assert wait_for(lambda: tray.session.find_window(APPROVAL_WINDOW), 15, "the form from the status window")
    close_with_escape(tray, APPROVAL_WINDOW)
    close_with_escape(tray, "My laptop's status")


def test_a_published_policy_awaits_sign_off_and_opens_read_only(tray: RunningTray) -> None:
    policies = tray.state_dir / "policies"
    policies.mkdir()
    shutil.copy(ROOT / "config" / "policies" / "staff.md", policies / "staff.md")
    write_status(tray.state_dir, results_with("firewall", "pass", "fine"), policies / "staff.md")
    wait_for_colour(tray, AMBER, "amber-unsigned")
    assert "the Acceptable Use Policy is waiting for your sign-off" in tray.log_text()
    open_menu(tray)
    choose(tray, "Down", "Down", "Down", "Return")
    windows = wait_for(lambda: tray.session.find_window(POLICY_WINDOW), 15, "the policy window")
    assert isinstance(windows, list)
    tray.session.screenshot(ARTIFACTS / "policy-window.png")
    close_with_escape(tray, POLICY_WINDOW)


def test_the_tray_asks_for_the_signoff_at_login(tray: RunningTray, tmp_path: Path) -> None:
    """A second user's session starts with a published, unsigned policy: the tray opens the dialog."""
    state_dir, home = tmp_path / "state", tmp_path / "home"
    (state_dir / "policies").mkdir(parents=True)
    (state_dir / "inbox").mkdir()
    os.chmod(state_dir / "inbox", 0o1733)  # noqa: S103 - the service's inbox, open to all like /tmp
    shutil.copy(ROOT / "config" / "policies" / "elementary.md", state_dir / "policies" / "student.md")
    (state_dir / "server-requirements.toml").write_text(
        f"[checks]\nenabled = {list(IDS)!r}\n".replace("'", '"')
    )
    write_status(state_dir, results_with("firewall", "pass", "fine"), state_dir / "policies" / "student.md")
    status = json.loads((state_dir / "status.json").read_text())
    status["audience"] = "student"
    status["policies"] = {"student": status["policies"]["staff"]}
    (state_dir / "status.json").write_text(json.dumps(status))
    dialog_state = tmp_path / "dialog-state.json"
    env = {
        **tray.session.env,
        "PYSTRAY_BACKEND": "gtk",
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / "state"),
        "HOMEROOM_DIALOG_STATE": str(dialog_state),
    }
    log = tmp_path / "tray.log"
    with log.open("wb") as out:
        second = subprocess.Popen(
            [sys.executable, "-m", "agent.desktop.tray", "--state-dir", str(state_dir),
                 "--poll-seconds", "0.5"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:

        def dialog(condition: Any) -> dict[str, Any] | None:
            try:
                state: dict[str, Any] = json.loads(dialog_state.read_text())
            except (FileNotFoundError, ValueError):
                return None
            return state if condition(state) else None

        opened = wait_for(
            lambda: dialog(lambda s: s["widgets"]["agree"]["mapped"]), 30, "the sign-off dialog"
        )
        assert isinstance(opened, dict) and opened["agree_enabled"] is False
        assert opened["how_to_text"].startswith("Welcome!")

        def click(widget: str, until: Any) -> None:
            """Clicks until it lands: a window that has just mapped can miss a click."""
            for _ in range(5):
                box = dialog(lambda s: True)["widgets"][widget]  # type: ignore[index]
                x, y = box["x"] + box["width"] // 2, box["y"] + box["height"] // 2
                tray.session.run("xdotool", "mousemove", str(x), str(y), "click", "1")
                try:
                    wait_for(lambda: dialog(until), 2, f"the click on {widget}")
                    return
                except AssertionError:
                    continue
            pytest.fail(f"clicking {widget} had no effect")

        wait_for(lambda: dialog(lambda s: s["focus"] == "policy_text"), 10, "the dialog to be ready")
        click("full_name", lambda s: s["focus"] == "full_name")
        tray.session.run("xdotool", "type", "--delay", "20", "Sam Rivera")
        click("text", lambda s: s["focus"] == "policy_text")
        tray.session.run("xdotool", "key", "End")
        wait_for(lambda: dialog(lambda s: s["agree_enabled"]), 10, "I agree to be enabled")
        tray.session.screenshot(ARTIFACTS / "login-signoff-dialog.png")
        for _ in range(5):  # a click can miss a window that has just changed; the dialog then stays open
            box = dialog(lambda s: True)["widgets"]["agree"]  # type: ignore[index]
            x, y = box["x"] + box["width"] // 2, box["y"] + box["height"] // 2
            tray.session.run("xdotool", "mousemove", str(x), str(y), "click", "1")
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and "sign-off: agree" not in log.read_text(errors="replace"):
                time.sleep(0.1)
            if "sign-off: agree" in log.read_text(errors="replace"):
                break
        wait_for(
            lambda: "sign-off: agree (recorded)" in log.read_text(errors="replace"),
            20,
            "the tray to record it",
        )
        (handed,) = list((state_dir / "inbox").glob("signoff-*.json"))
        record = json.loads(handed.read_text())
        assert (record["full_name"], record["decision"], record["policy_id"]) == (
            "Sam Rivera",
            "agree",
            "aup-elementary",
        )
        assert "icon: green" in log.read_text(errors="replace") or wait_for(
            lambda: "icon: green" in log.read_text(errors="replace"), 10, "the icon to turn green once signed"
        )
    finally:
        second.terminate()
        second.wait(15)


LOST_FORM_WINDOW = "^Homeroom .+ Report a lost or stolen laptop$"
NOTICE_WINDOW = "^Homeroom .+ This laptop has been reported lost$"
LOST = (0x4A, 0x14, 0x8C)
NOTICE = "This laptop belongs to Lincoln High School. Please return it to the front office, 12 Elm St."


def hook_state(tray: RunningTray) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = json.loads((tray.state_dir.parent / "window-state.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return found


def click_box(tray: RunningTray, box: dict[str, Any]) -> None:
    x, y = box["x"] + box["width"] // 2, box["y"] + box["height"] // 2
    tray.session.run("xdotool", "mousemove", str(x), str(y), "click", "1")


def test_report_lost_or_stolen_opens_the_form_and_an_empty_form_says_so(tray: RunningTray) -> None:
    from agent.desktop.lost_report import EMPTY_FORM, STAFF_POLICE_NOTE

    (tray.state_dir.parent / "window-state.json").unlink(missing_ok=True)
    open_menu(tray)
    choose(tray, "Down", "Down", "Down", "Down", "Down", "Down", "Return")  # "Report lost or stolen…"
    assert wait_for(lambda: tray.session.find_window(LOST_FORM_WINDOW), 15, "the lost-device form")
    form = wait_for(lambda: (s := hook_state(tray)) and "police_note" in s and s, 10, "the form's state")
    assert isinstance(form, dict)
    assert form["police_note"] == STAFF_POLICE_NOTE, "staff are told the policy asks for a police report"
    for _ in range(5):  # a window that has just mapped can miss a click, or still be moving
        # Where the button is now, not where it first was.
        widgets = (hook_state(tray) or {}).get("widgets", form["widgets"])
        click_box(tray, widgets["send"])
        try:
            wait_for(
                lambda: (hook_state(tray) or {}).get("result") == EMPTY_FORM, 5, "the empty-form message"
            )
            break
        except AssertionError:
            continue
    assert (hook_state(tray) or {}).get("result") == EMPTY_FORM
    assert not list((tray.state_dir / "inbox").glob("lost_report-*")), "nothing handed over"
    tray.session.screenshot(ARTIFACTS / "lost-form-empty.png")

    # Filled in as a teacher would, for a student's laptop, and sent: into the service's inbox.
    form = hook_state(tray) or form
    typed = [
        ("device_value", "5CG1234XYZ"),
        ("last_seen_at", "2026-12-01 11:30"),
        ("last_seen_where", "Room 12"),
        ("what_happened", "Left on the desk at lunch; gone after."),
        ("reporter_name", "Ada Lovelace"),
        ("contact", "ada@lincoln.example"),
    ]
    for widget, text in typed:
        click_box(tray, form["widgets"][widget])
        tray.session.run("xdotool", "type", "--delay", "15", text)
    click_box(tray, form["widgets"]["stolen"])
    wait_for(lambda: (hook_state(tray) or {}).get("kind") == "stolen", 5, "Stolen to be chosen")
    click_box(tray, form["widgets"]["send"])
    found = wait_for(lambda: list((tray.state_dir / "inbox").glob("lost_report-*.json")), 10, "the report")
    assert isinstance(found, list) and len(found) == 1
    handed = json.loads(found[0].read_text())
    assert (handed["device_by"], handed["device_value"], handed["loss"]) == ("serial", "5CG1234XYZ", "stolen")
    assert handed["last_seen_at"].startswith("2026-12-01T11:30:00")
    assert handed["reporter_name"] == "Ada Lovelace" and handed["police_report"] is None
    assert handed["user"] == getpass.getuser()

    from agent.desktop.lost_form import WAITING
    from agent.lost.reports import ReportStatus, write_report_statuses

    # What the service writes while the laptop is offline, then once the server has it.
    record_id = handed["record_id"]
    write_report_statuses(tray.state_dir, [ReportStatus(record_id, handed["user"], "waiting")])
    wait_for(lambda: (hook_state(tray) or {}).get("result") == WAITING, 10, "waiting to be sent")
    sent = ReportStatus(record_id, handed["user"], "sent", "recorded", "The risk office has been told.")
    write_report_statuses(tray.state_dir, [sent])
    wait_for(
        lambda: (hook_state(tray) or {}).get("result", "").startswith("Sent to the district."), 10, "sent"
    )
    tray.session.screenshot(ARTIFACTS / "lost-form-sent.png")
    copy = json.loads((tray.user_dir / "lost-reports.json").read_text())
    assert [(r["record_id"], r["outcome"]) for r in copy["reports"]] == [(record_id, "recorded")]
    assert oct((tray.user_dir / "lost-reports.json").stat().st_mode & 0o777) == "0o600"
    close_with_escape(tray, LOST_FORM_WINDOW)


def test_lost_mode_shows_its_own_icon_and_a_notice_that_comes_back_when_closed(tray: RunningTray) -> None:
    tray.write_status(results_with("firewall", "pass", "fine"))
    wait_for_colour(tray, GREEN, "green-before-lost")
    notice_file = tray.state_dir / "lost-notice.json"
    notice_file.write_text(json.dumps({"notice": NOTICE, "lock_screen": False, "interval_seconds": 120}))
    first = wait_for(lambda: tray.session.find_window(NOTICE_WINDOW), 15, "the lost-mode notice")
    assert isinstance(first, list)
    wait_for_colour(tray, LOST, "lost")
    image = tray.session.screenshot(ARTIFACTS / "lost-notice.png")
    assert len(colour_pixels(image, LOST, box=(0, TRAY_TOP, 1024, 768), tolerance=20)) > 50, (
        "the heading shows"
    )
    assert "icon: lost — This laptop has been reported lost" in tray.log_text()

    def opened() -> int:
        return tray.log_text().count("window: lost-notice")

    assert opened() == 1
    for _ in range(5):  # a window that has just mapped can miss a click
        shown = wait_for(
            lambda: (s := hook_state(tray)) and "close" in s and s, 10, "the notice's Close button"
        )
        assert isinstance(shown, dict)
        click_box(tray, shown["close"])
        try:
            wait_for(lambda: opened() == 2, 5, "the notice to be opened again")
            break
        except AssertionError:
            continue
    assert opened() == 2, "closed, the notice is opened again"
    assert wait_for(lambda: tray.session.find_window(NOTICE_WINDOW), 15, "the notice back on screen")
    tray.session.screenshot(ARTIFACTS / "lost-notice-again.png")

    notice_file.unlink()  # lost mode ended: the window goes and the usual colour comes back
    wait_for(lambda: not tray.session.find_window(NOTICE_WINDOW), 15, "the notice to close")
    wait_for_colour(tray, GREEN, "green-after-lost")


def test_quit_ends_the_tray_cleanly_even_without_a_notification_daemon(tray: RunningTray) -> None:
    stop(tray.notifier)
    open_menu(tray)
    choose(tray, "Up", "Return")  # the last item
    assert tray.process.wait(15) == 0
    assert "Traceback" not in tray.log_text()
    Image.open(ARTIFACTS / "menu.png")  # the evidence stays for a person to look at
