"""The sign-off dialog on a real X display, driven like a person would: keys, clicks, typing.

Each test runs `python -m agent.desktop.consent.dialog` as its own process on a private Xvfb, finds the
window with xdotool, and acts on it with xdotool. The dialog reports its widget states and screen
positions to the file named by HOMEROOM_DIALOG_STATE (its test hook); screenshots go to
test-artifacts/consent/ and one pixel check proves "I agree" looks different when it can be used.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.paths import ROOT
from tests.helpers.xdisplay import XDisplay, map_keysyms

ARTIFACTS = ROOT / "test-artifacts" / "consent"
CONTACT = "the Lincoln High help desk (help@lincoln.example, room 114)"

# A stand-in for policies/staff.md: the real parser (contract/policy.py) is written elsewhere.
POLICY_MD = """\
# Staff Acceptable Use Policy

I will use district laptops and accounts to support teaching, learning and the work of the school.

## Keeping devices safe

- I will lock my screen when I step away from my laptop.
- I will keep the firewall, antivirus and disk encryption switched on.
- I will install only software the district has approved.

## Respecting people and privacy

{filler}

## Questions

I will ask the help desk when I am unsure what this policy means for me.
"""
FILLER = (
    "I will treat students, families and colleagues with respect online, and I will keep the "
    "personal information I can see through my work private and safe."
)
SHORT_MD = """\
# Short Policy

- I will be kind online.
"""


def parse_blocks(markdown: str) -> list[list[str]]:
    """Just enough Markdown for the fixture: #, ##, '- ' bullets, and paragraphs."""
    blocks: list[list[str]] = []
    for line in markdown.splitlines():
        if line.startswith("## "):
            blocks.append(["heading2", line[3:]])
        elif line.startswith("# "):
            blocks.append(["heading1", line[2:]])
        elif line.startswith("- "):
            blocks.append(["bullet", line[2:]])
        elif line.strip():
            blocks.append(["paragraph", line.strip()])
    return blocks


def long_policy() -> str:
    return POLICY_MD.format(filler="\n\n".join(f"{FILLER} ({n})" for n in range(1, 25)))


class RunningDialog:
    """One dialog process and the means to act on it and observe it."""

    def __init__(self, display: XDisplay, workdir: Path, markdown: str, **extra: object) -> None:
        self.display = display
        self.state_file = workdir / "dialog-state.json"
        request = workdir / "policy.json"
        request.write_text(
            json.dumps(
                {
                    "title": "Staff Acceptable Use Policy",
                    "blocks": parse_blocks(markdown),
                    "contact": CONTACT,
                    "user": "ada",
                    "version": "3f2a9c1d",
                    **extra,
                }
            )
        )
        self.env = {**display.env(), "HOMEROOM_DIALOG_STATE": str(self.state_file)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agent.desktop.consent.dialog", "--policy-json", str(request)],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.title = str(extra.get("title", "Staff Acceptable Use Policy"))
        self.window = self._find_window()
        self.wait(lambda s: s["focus"] == "policy_text" and s["widgets"]["agree"]["mapped"])

    def _find_window(self) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the dialog exited early: {self.process.communicate()}")
            # The em dash: xdotool matches the Latin-1 WM_NAME Tk also sets, so ".+" stands for it.
            found = self.xdotool("search", "--name", f"^Homeroom .+ {re.escape(self.title)}$", check=False)
            if found.returncode == 0 and found.stdout.strip():
                return found.stdout.split()[0]
            time.sleep(0.1)
        pytest.fail("the dialog window never appeared")

    def xdotool(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=20, check=check
        )

    def state(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return data

    def wait(self, condition: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            state = self.state()
            if state and condition(state):
                return state
            time.sleep(0.05)
        pytest.fail(f"the dialog never reached the expected state; last state: {json.dumps(state, indent=1)}")

    def key(self, *keys: str) -> None:
        for key in keys:
            self.xdotool("key", key)
            time.sleep(0.05)

    def type(self, text: str) -> None:
        self.xdotool("type", "--delay", "20", text)

    def click(self, widget: str) -> None:
        box = self.state()["widgets"][widget]
        x, y = box["x"] + box["width"] // 2, box["y"] + box["height"] // 2
        self.xdotool("mousemove", str(x), str(y), "click", "1")

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        subprocess.run(["import", "-window", "root", str(path)], env=self.env, check=True, timeout=30)
        return path

    def result(self, timeout: float = 10) -> dict[str, Any]:
        out, err = self.process.communicate(timeout=timeout)
        assert self.process.returncode == 0, err
        data: dict[str, Any] = json.loads(out)
        return data

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=10)


@pytest.fixture
def open_dialog(display: XDisplay, tmp_path: Path) -> Iterator[Callable[..., RunningDialog]]:
    started: list[RunningDialog] = []

    def start(markdown: str | None = None, **extra: object) -> RunningDialog:
        workdir = tmp_path / f"dialog{len(started)}"
        workdir.mkdir()
        dialog = RunningDialog(display, workdir, long_policy() if markdown is None else markdown, **extra)
        started.append(dialog)
        return dialog

    yield start
    for dialog in started:
        dialog.stop()


def decision(result: dict[str, Any]) -> dict[str, Any]:
    """The result without its time: tests of when a decision was made look at decided_at apart."""
    return {key: value for key, value in result.items() if key != "decided_at"}


def mean_colour(screenshot: Path, box: dict[str, int]) -> tuple[float, float, float]:
    """The average colour inside a widget's box, a few pixels in from its focus ring."""
    from PIL import Image, ImageStat

    with Image.open(screenshot) as image:
        region = image.convert("RGB").crop(
            (box["x"] + 3, box["y"] + 3, box["x"] + box["width"] - 3, box["y"] + box["height"] - 3)
        )
        red, green, blue = ImageStat.Stat(region).mean
    return red, green, blue


def test_agree_needs_reading_to_the_end_and_a_full_name(open_dialog: Callable[..., RunningDialog]) -> None:
    dialog = open_dialog()
    start = dialog.state()
    assert start["font_points"] >= 12
    assert start["agree_enabled"] is False and start["read_to_end"] is False
    assert start["widgets"]["agree"]["state"] == "disabled"
    assert start["yview"][1] < 0.999, "the fixture policy must need scrolling"
    disabled_shot = dialog.screenshot("01-start-agree-disabled")
    disabled_colour = mean_colour(disabled_shot, start["widgets"]["agree"])

    dialog.click("full_name")
    dialog.wait(lambda s: s["focus"] == "full_name")
    dialog.type("Ada Lovelace")
    named = dialog.wait(lambda s: s["name_ok"])
    assert named["agree_enabled"] is False, "a name alone must not unlock I agree"
    assert "read all the way to the end" in named["hint"]
    dialog.click("agree")  # disabled: nothing happens
    time.sleep(0.3)
    assert dialog.process.poll() is None

    dialog.click("text")
    dialog.wait(lambda s: s["focus"] == "policy_text")
    dialog.key("End")
    ready = dialog.wait(lambda s: s["agree_enabled"])
    assert ready["read_to_end"] and ready["widgets"]["agree"]["state"] == "normal"
    assert ready["yview"][1] >= 0.999
    enabled_shot = dialog.screenshot("02-read-and-named-agree-enabled")
    enabled_colour = mean_colour(enabled_shot, ready["widgets"]["agree"])

    # Disabled is light grey; enabled is a strong blue: the difference is plain to see.
    assert abs(disabled_colour[0] - disabled_colour[2]) < 10
    assert enabled_colour[2] - enabled_colour[0] > 60
    assert sum(disabled_colour) - sum(enabled_colour) > 150

    dialog.click("agree")
    assert decision(dialog.result()) == {"decision": "agree", "full_name": "Ada Lovelace"}


def test_keyboard_only_tab_order_page_down_and_enter(open_dialog: Callable[..., RunningDialog]) -> None:
    dialog = open_dialog()
    # While I agree is disabled, Tab passes over it.
    dialog.key("Tab")
    dialog.wait(lambda s: s["focus"] == "full_name")
    dialog.key("Tab")
    dialog.wait(lambda s: s["focus"] == "decline")
    dialog.key("Tab")
    dialog.wait(lambda s: s["focus"] == "larger_text")
    dialog.key("Tab")
    dialog.wait(lambda s: s["focus"] == "policy_text")

    pages = 0
    while not dialog.state()["read_to_end"]:
        pages += 1
        assert pages < 40, "Page Down never reached the end"
        dialog.key("Next")
        time.sleep(0.05)
    assert pages > 1

    dialog.key("Tab")
    dialog.wait(lambda s: s["focus"] == "full_name")
    dialog.type("Grace Brewster Hopper")
    dialog.wait(lambda s: s["agree_enabled"])
    order = []
    for _ in range(4):
        dialog.key("Tab")
        time.sleep(0.1)
        order.append(dialog.wait(lambda s: s["focus"] != (order[-1] if order else "full_name"))["focus"])
    assert order == ["agree", "decline", "larger_text", "policy_text"]
    dialog.key("shift+Tab", "shift+Tab", "shift+Tab")
    dialog.wait(lambda s: s["focus"] == "agree")
    dialog.key("Return")
    assert decision(dialog.result()) == {"decision": "agree", "full_name": "Grace Brewster Hopper"}


def test_a_short_policy_that_fits_counts_as_read(
    open_dialog: Callable[..., RunningDialog], display: XDisplay
) -> None:
    # Accented letters get keys of their own before the dialog starts, so xdotool types them as
    # ordinary keys (its on-the-fly remapping raced Tk's keymap refresh and dropped them once).
    map_keysyms(display.name, "José Núñez")
    dialog = open_dialog(SHORT_MD)
    assert dialog.wait(lambda s: s["read_to_end"])["agree_enabled"] is False
    dialog.key("alt+n")
    dialog.wait(lambda s: s["focus"] == "full_name")
    dialog.type("José Núñez")
    dialog.wait(lambda s: s["agree_enabled"])
    dialog.key("alt+a")
    assert decision(dialog.result()) == {"decision": "agree", "full_name": "José Núñez"}


def test_one_letter_is_not_a_name_but_one_name_is(open_dialog: Callable[..., RunningDialog]) -> None:
    dialog = open_dialog(SHORT_MD)
    dialog.key("Tab")
    dialog.type("S")
    state = dialog.wait(lambda s: s["read_to_end"] and s["focus"] == "full_name")
    time.sleep(0.3)
    state = dialog.state()
    assert not state["name_ok"] and not state["agree_enabled"]
    assert state["hint"] == "To agree, type your name in the box (at least two letters)."
    dialog.key("alt+a")  # the mnemonic of a disabled button does nothing
    time.sleep(0.3)
    assert dialog.process.poll() is None
    dialog.type("ukarno")  # one name, as many people have
    dialog.wait(lambda s: s["agree_enabled"])
    dialog.key("alt+a")
    assert decision(dialog.result()) == {"decision": "agree", "full_name": "Sukarno"}


def test_the_decision_is_timed_at_the_click_not_at_opening(open_dialog: Callable[..., RunningDialog]) -> None:
    opened = datetime.now(timezone.utc)
    dialog = open_dialog(SHORT_MD)
    dialog.key("alt+n")
    dialog.type("Ada Lovelace")
    dialog.wait(lambda s: s["agree_enabled"])
    time.sleep(2)  # the person reads a while
    before = datetime.now(timezone.utc)
    dialog.key("alt+a")
    result = dialog.result()
    after = datetime.now(timezone.utc)
    decided = datetime.fromisoformat(result["decided_at"])
    assert decided.utcoffset() == timedelta(0)
    assert before <= decided <= after, (opened, before, decided, after)
    assert decided - opened >= timedelta(seconds=2)


def test_a_students_header_speaks_their_language(open_dialog: Callable[..., RunningDialog]) -> None:
    """The document's own title in the window and header; no version hash (it stays in the record)."""
    dialog = open_dialog(
        "# My School Laptop Promise\n\n- I will be kind.\n",
        title="My School Laptop Promise",
        version="",
        message="Welcome! Before you start, please read “My School Laptop Promise”.",
    )
    state = dialog.state()
    assert state["window_title"] == "Homeroom — My School Laptop Promise"
    assert state["title_text"] == "My School Laptop Promise"
    assert state["signed_in_text"] == "Signed in as ada"
    assert "Acceptable Use Policy" not in json.dumps(state, ensure_ascii=False)
    assert not re.search(r"[0-9a-f]{8}", state["signed_in_text"] + state["how_to_text"])
    assert dialog.xdotool("search", "--name", "My School Laptop Promise", check=False).stdout.strip()
    dialog.key("Escape")
    assert decision(dialog.result())["decision"] == "closed"


LONG_TITLE = "Laptop Acceptable Use Policy for Secondary Students and Their Families"


def test_larger_text_keeps_the_whole_header_and_a_full_decline_screen(
    open_dialog: Callable[..., RunningDialog],
) -> None:
    dialog = open_dialog(title=LONG_TITLE, larger_text=True)

    def whole_title_inside(s: dict[str, Any]) -> bool:
        """Tk lays out in steps (the label first, then the window, then the rewrap), writing the
        state after each: the laid-out dialog is the one to judge, within the wait's time."""
        window, title = s["window"], s["widgets"]["policy_title"]
        return bool(
            s["title_fits"]
            and title["x"] + title["width"] <= window["x"] + window["width"]
            and title["y"] >= window["y"]
        )

    state = dialog.wait(whole_title_inside)
    window = state["window"]
    dialog.screenshot("05-larger-text-long-title")
    dialog.key("alt+d")
    declined = dialog.wait(
        lambda s: s["view"] == "declined" and s["window"]["height"] < window["height"], timeout=10
    )
    box, close = declined["window"], declined["widgets"]["close"]
    empty_below = box["y"] + box["height"] - (close["y"] + close["height"])
    assert empty_below < box["height"] / 3, declined
    assert close["y"] + close["height"] <= box["y"] + box["height"], "the Close button is cut off"
    contact = declined["widgets"]["contact"]
    assert contact["mapped"] and contact["y"] >= box["y"]
    dialog.screenshot("06-larger-text-declined")
    dialog.key("Return")
    assert decision(dialog.result())["decision"] == "decline"


def test_decline_says_whom_to_contact_and_that_it_will_ask_again(
    open_dialog: Callable[..., RunningDialog],
) -> None:
    welcome = "Welcome! Before you start, please read our policy."
    dialog = open_dialog(message=welcome)
    assert dialog.state()["how_to_text"].startswith(welcome)
    dialog.key("alt+d")
    state = dialog.wait(lambda s: s["view"] == "declined" and s["focus"] == "close")
    assert CONTACT in state["contact_text"]
    assert "ask you again the next time you sign in" in state["contact_text"]
    assert not state["widgets"]["agree"]["mapped"] and state["widgets"]["close"]["mapped"]
    dialog.screenshot("03-declined-contact")
    dialog.key("Return")
    assert decision(dialog.result()) == {"decision": "decline", "full_name": ""}


def test_decline_by_mouse_keeps_the_typed_name(open_dialog: Callable[..., RunningDialog]) -> None:
    dialog = open_dialog(ask_again="Homeroom will ask you again in 4 hours.")
    dialog.click("full_name")
    dialog.wait(lambda s: s["focus"] == "full_name")
    dialog.type("Ada Lovelace")
    dialog.wait(lambda s: s["name_ok"])
    dialog.click("decline")
    state = dialog.wait(lambda s: s["view"] == "declined")
    assert state["contact_text"].endswith("Homeroom will ask you again in 4 hours.")
    dialog.key("Escape")  # after declining, closing keeps the decision
    assert decision(dialog.result()) == {"decision": "decline", "full_name": "Ada Lovelace"}


def test_escape_closes_without_deciding(open_dialog: Callable[..., RunningDialog]) -> None:
    dialog = open_dialog()
    dialog.key("End", "Escape")
    assert decision(dialog.result()) == {"decision": "closed", "full_name": ""}


def test_larger_text_enlarges_everything(open_dialog: Callable[..., RunningDialog]) -> None:
    dialog = open_dialog()
    before = dialog.state()
    assert before["font_points"] == 12 and before["larger_text"] is False
    dialog.click("larger_text")

    def everything_larger(s: dict[str, Any]) -> bool:
        """Judged once Tk has laid the bigger type out (the state is written after each step)."""
        return bool(
            s["larger_text"]
            and s["font_points"] == 16
            and all(
                s["widgets"][widget]["height"] > before["widgets"][widget]["height"]
                for widget in ("agree", "decline", "larger_text", "full_name")
            )
            # bigger type shows less of the policy at once
            and s["yview"][1] < before["yview"][1]
        )

    dialog.wait(everything_larger)
    dialog.screenshot("04-larger-text")
    dialog.key("alt+l")
    dialog.wait(lambda s: not s["larger_text"] and s["font_points"] == 12)
    dialog.key("Escape")
    assert dialog.result()["decision"] == "closed"


def test_larger_text_can_be_the_starting_size(open_dialog: Callable[..., RunningDialog]) -> None:
    dialog = open_dialog(larger_text=True)
    state = dialog.state()
    assert state["larger_text"] and state["font_points"] == 16
    dialog.key("Escape")
    assert dialog.result()["decision"] == "closed"


# --- the command line, without a display ----------------------------------------------------


def run_main(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.desktop.consent.dialog", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_main_without_a_display_says_so(tmp_path: Path) -> None:
    request = tmp_path / "policy.json"
    request.write_text(
        json.dumps(
            {"title": "T", "blocks": [["paragraph", "I will."]], "contact": "IT", "user": "a", "version": "v"}
        )
    )
    env = {key: value for key, value in os.environ.items() if key != "DISPLAY"}
    done = run_main(["--policy-json", str(request)], env)
    assert done.returncode == 2 and "cannot open a window" in done.stderr and done.stdout == ""


@pytest.mark.parametrize(
    "body",
    [
        "{torn",
        "[]",
        json.dumps({"title": "T"}),
        json.dumps({"title": "T", "blocks": [["p"]], "contact": "c", "user": "u", "version": "v"}),
    ],
)
def test_main_refuses_a_bad_request_file(tmp_path: Path, body: str) -> None:
    request = tmp_path / "policy.json"
    request.write_text(body)
    done = run_main(["--policy-json", str(request)], dict(os.environ))
    assert done.returncode == 2 and "cannot read" in done.stderr
