"""The whole sign-off on a real display: a policy published on the server reaches the laptop, the user
reads it to the end and signs in the real dialog (driven with xdotool), and IT sees it in
`homeroom-server signoffs`; a new version asks again, and "I do not agree" is recorded too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from contract.policy import load_policy
from tests.helpers.agent_process import agent
from tests.helpers.agent_service import enrolled_service
from tests.helpers.paths import ROOT
from tests.helpers.servers import ServerProcess
from tests.helpers.xdisplay import XDisplay

ARTIFACTS = ROOT / "test-artifacts" / "signoff-e2e"
POLICY = ROOT / "config" / "policies" / "secondary.md"


class Consent:
    """`homeroom-agent consent --at-login` as the user runs it at login (or `--show`), and its window."""

    def __init__(
        self, display: XDisplay, state_dir: Path, home: Path, workdir: Path, how: str = "--at-login"
    ) -> None:
        self.state_file = workdir / "dialog-state.json"
        self.state_file.unlink(missing_ok=True)
        self.env = {
            **display.env(),
            "HOME": str(home),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "HOMEROOM_DIALOG_STATE": str(self.state_file),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "consent", how, "--state-dir", str(state_dir)],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

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
            assert self.process.poll() is None or condition(self.state()), self.process.communicate()
            time.sleep(0.05)
        pytest.fail(f"the dialog never reached the expected state: {self.state()}")

    def xdotool(self, *args: str) -> None:
        subprocess.run(["xdotool", *args], env=self.env, check=True, timeout=20, capture_output=True)

    def click(self, widget: str, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Clicks until the dialog shows the click landed: a window that has just mapped can miss one."""
        for _ in range(5):
            box = self.state()["widgets"][widget]
            x, y = box["x"] + box["width"] // 2, box["y"] + box["height"] // 2
            self.xdotool("mousemove", str(x), str(y), "click", "1")
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                state = self.state()
                if (state and until(state)) or self.process.poll() is not None:
                    return state
                time.sleep(0.05)
        pytest.fail(f"clicking {widget} had no effect: {self.state()}")

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["import", "-window", "root", str(ARTIFACTS / f"{name}.png")],
            env=self.env,
            check=True,
            timeout=30,
        )

    def finish(self) -> tuple[int, str]:
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, out + err


def rows(server: ServerProcess) -> dict[str, dict[str, Any]]:
    return {row["user"]: row for row in json.loads(server.cli("signoffs", "--json").stdout)["signoffs"]}


def test_sign_decline_and_sign_again_after_a_new_version(
    display: XDisplay, server: ServerProcess, tmp_path: Path
) -> None:
    state_dir, home = tmp_path / "state", tmp_path / "home"
    home.mkdir()
    assert server.cli("policy", "publish", str(POLICY)).returncode == 0
    loop, clock = enrolled_service(server, state_dir)
    loop.cycle()
    clock.advance(16 * 60)
    loop.cycle()  # the heartbeat brings the policy
    user = os.environ.get("USER") or "root"

    # First login: the dialog opens; I agree stays disabled until the policy is read to the end.
    first = Consent(display, state_dir, home, tmp_path)
    opened = first.wait(lambda s: s.get("focus") == "policy_text" and s["widgets"]["agree"]["mapped"])
    assert opened["agree_enabled"] is False and opened["how_to_text"].startswith("Welcome!")
    # A student's header: the document's own title, no version hash (the record keeps the version).
    title = load_policy(POLICY).title
    assert opened["window_title"] == f"Homeroom — {title}" and f"“{title}”" in opened["how_to_text"]
    assert opened["signed_in_text"] == f"Signed in as {os.environ.get('USER') or 'root'}"
    first.screenshot("01-first-login-agree-disabled")
    first.click("full_name", lambda s: s["focus"] == "full_name")
    first.xdotool("type", "--delay", "20", "Ada Lovelace")
    named = first.wait(lambda s: s["name_ok"])
    assert named["agree_enabled"] is False, "a name is not enough: the policy must be read to the end"
    first.click("text", lambda s: s["focus"] == "policy_text")
    first.xdotool("key", "End")
    first.wait(lambda s: s["agree_enabled"])
    first.screenshot("02-read-and-named")
    time.sleep(1.5)  # the reader takes a while: the record's time is the click's, not the opening's
    clicked_from = datetime.now(timezone.utc)
    first.click("agree", lambda s: s.get("result", {}).get("decision") == "agree")
    code, output = first.finish()
    assert code == 0 and "agree: recorded" in output, output

    clock.advance(1)
    loop.cycle()  # the service takes the sign-off from its inbox and sends it
    signed = rows(server)[user]
    assert (signed["status"], signed["full_name"]) == ("signed", "Ada Lovelace")
    assert signed["policy_version"] == load_policy(POLICY).version
    assert datetime.fromisoformat(signed["decided_at"]) >= clicked_from

    # The next login: nothing to sign, no window.
    again = agent(
        "consent",
        "--at-login",
        "--state-dir",
        str(state_dir),
        env={"HOME": str(home), "XDG_STATE_HOME": str(home / ".local" / "state"), **display.env()},
    )
    assert again.returncode == 0 and "the current policy is signed" in again.stdout
    status = agent(
        "consent",
        "--status",
        "--state-dir",
        str(state_dir),
        env={"HOME": str(home), "XDG_STATE_HOME": str(home / ".local" / "state")},
    )
    assert (
        "Status: signed and current." in status.stdout
        and "Ada Lovelace agreed to aup-secondary" in status.stdout
    )

    # IT publishes a new version: the user is asked again, and this time declines.
    changed = tmp_path / "secondary.md"
    changed.write_text(POLICY.read_text(encoding="utf-8") + "\nI will ask before I record anyone.\n")
    assert server.cli("policy", "publish", str(changed)).returncode == 0
    time.sleep(5.5)  # the server caches published policies for 5 s
    clock.advance(16 * 60)
    loop.cycle()
    second = Consent(display, state_dir, home, tmp_path)
    shown = second.wait(lambda s: s.get("focus") == "policy_text" and s["widgets"]["decline"]["mapped"])
    assert "has changed" in shown["how_to_text"]
    declined = second.click("decline", lambda s: s["view"] == "declined")
    assert "school office" in declined["contact_text"] or "teacher" in declined["contact_text"]
    second.screenshot("03-declined-whom-to-contact")
    second.click("close", lambda s: s.get("result", {}).get("decision") == "decline")
    code, output = second.finish()
    assert code == 1 and "decline: recorded" in output, output
    clock.advance(1)
    loop.cycle()
    assert rows(server)[user]["status"] == "declined"
