"""The macOS launchd jobs and package scripts: read with plistlib, their commands parsed by the agent's
own CLI, and the postinstall run with launchd's tools (macOS-only) replaced by recorders."""

from __future__ import annotations

import os
import plistlib
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from agent import deployment
from agent.cli import build_parser
from agent.probes.facts import PlatformFacts
from agent.state import default_state_dir, resolve_state_dir
from tests.helpers.paths import ROOT

MACOS = ROOT / "installer" / "macos"
PROGRAM = "/Library/Homeroom/homeroom-agent/homeroom-agent"
DAEMONS = ("org.homeroom.agent", "org.homeroom.enrol")
AGENTS = ("org.homeroom.tray",)
MAC = PlatformFacts("macos", "14.5", "23.5.0", "arm64", "lab-mac-07", "root", True, home="/var/root")


def job(label: str) -> dict[str, Any]:
    with (MACOS / f"{label}.plist").open("rb") as handle:
        loaded: dict[str, Any] = plistlib.load(handle)
    return loaded


@pytest.mark.parametrize("label", DAEMONS + AGENTS)
def test_each_job_is_a_valid_plist_named_by_its_label_running_a_command_the_agent_has(label: str) -> None:
    loaded = job(label)
    assert loaded["Label"] == label
    program, *args = loaded["ProgramArguments"]
    assert program == PROGRAM, "the path build-pkg installs the folder build to"
    parsed = build_parser().parse_args(args)
    assert parsed.command in {"run", "tray", "enroll"}
    assert loaded["RunAtLoad"] is True


def test_the_service_runs_as_root_and_comes_back_after_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    daemon = job("org.homeroom.agent")
    assert build_parser().parse_args(daemon["ProgramArguments"][1:]).command == "run"
    assert daemon["KeepAlive"] == {"SuccessfulExit": False}, "restarted after a crash or an error exit"
    assert "UserName" not in daemon, "a LaunchDaemon without UserName runs as root"
    assert daemon["ThrottleInterval"] >= 10
    # The service and the tray agree on the state directory: the tray finds it by the same rule.
    state = daemon["EnvironmentVariables"]["HOMEROOM_STATE_DIR"]
    assert Path(state) == default_state_dir(MAC)
    student = PlatformFacts("macos", "14.5", "23.5.0", "arm64", "lab-mac-07", "ada", False, home="/Users/ada")
    monkeypatch.delenv("HOMEROOM_STATE_DIR", raising=False)
    assert resolve_state_dir(None, "", student, service_side=True) == Path(state)


def test_the_enrolment_watcher_runs_when_the_mdm_profile_arrives_and_never_re_enrols() -> None:
    watcher = job("org.homeroom.enrol")
    parsed = build_parser().parse_args(watcher["ProgramArguments"][1:])
    assert parsed.command == "enroll" and parsed.if_not_enrolled
    assert parsed.server is None and parsed.token is None, "no token on a command line"
    assert watcher["WatchPaths"] == [str(deployment.MANAGED_PREFERENCES)]
    assert "KeepAlive" not in watcher, "it runs once per change, not in a loop"


def test_the_tray_runs_in_each_users_graphical_session_and_is_given_nothing_secret() -> None:
    tray = job("org.homeroom.tray")
    assert build_parser().parse_args(tray["ProgramArguments"][1:]).command == "tray"
    assert tray["LimitLoadToSessionType"] == ["Aqua"]
    assert tray["KeepAlive"] == {"SuccessfulExit": False}, "back after a crash, not after Quit"
    assert "EnvironmentVariables" not in tray and "UserName" not in tray


def test_the_example_profile_is_a_device_profile_with_valid_uuids() -> None:
    profile = plistlib.loads((MACOS / "homeroom.mobileconfig").read_bytes())
    uuids = [profile["PayloadUUID"], *(payload["PayloadUUID"] for payload in profile["PayloadContent"])]
    assert len({str(uuid.UUID(value)) for value in uuids}) == len(uuids)
    assert profile["PayloadContent"][0]["PayloadType"] == deployment.PREFERENCE_DOMAIN


def recorder(folder: Path, name: str, log: Path, output: str = "") -> None:
    """A stand-in for a macOS-only tool: it appends its arguments (and the state dir it was given) to log."""
    script = folder / name
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s %s|%s\\n" "{name}" "$*" "${{HOMEROOM_STATE_DIR:-}}" >> "{log}"\n'
        + (f'echo "{output}"\n' if output else "")
    )
    script.chmod(0o755)


def test_postinstall_enrols_then_bootstraps_the_jobs_and_the_logged_in_users_tray(tmp_path: Path) -> None:
    target, tools, log = tmp_path / "volume", tmp_path / "bin", tmp_path / "calls.log"
    tools.mkdir()
    for folder in ("Library/LaunchDaemons", "Library/LaunchAgents", "Library/Homeroom/homeroom-agent"):
        (target / folder).mkdir(parents=True)
    for label in DAEMONS:
        (target / "Library/LaunchDaemons" / f"{label}.plist").write_bytes(
            (MACOS / f"{label}.plist").read_bytes()
        )
    (target / "Library/LaunchAgents/org.homeroom.tray.plist").write_bytes(
        (MACOS / "org.homeroom.tray.plist").read_bytes()
    )
    recorder(target / "Library/Homeroom/homeroom-agent", "homeroom-agent", log)
    recorder(tools, "launchctl", log)
    recorder(tools, "chown", log)
    recorder(tools, "stat", log, output="501")  # the user at the console
    done = subprocess.run(
        ["/bin/sh", str(MACOS / "scripts" / "postinstall"), "pkg", "/", str(target), "/"],
        env={**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    calls = [line.split("|")[0] for line in log.read_text().splitlines()]
    state = f"{target}/Library/Application Support/Homeroom"
    assert f"homeroom-agent enroll --if-not-enrolled|{state}" in log.read_text()
    launchctl = [call for call in calls if call.startswith("launchctl")]
    assert launchctl == [
        "launchctl bootout system/org.homeroom.enrol",
        f"launchctl bootstrap system {target}/Library/LaunchDaemons/org.homeroom.enrol.plist",
        "launchctl bootout system/org.homeroom.agent",
        f"launchctl bootstrap system {target}/Library/LaunchDaemons/org.homeroom.agent.plist",
        "launchctl bootout gui/501/org.homeroom.tray",
        f"launchctl bootstrap gui/501 {target}/Library/LaunchAgents/org.homeroom.tray.plist",
    ]
    assert calls.index("homeroom-agent enroll --if-not-enrolled") < calls.index(launchctl[1]), (
        "enrolled first"
    )
    assert f"chown root:wheel {target}/Library/LaunchDaemons/org.homeroom.agent.plist" in calls
    for plist in (target / "Library").glob("Launch*/*.plist"):
        assert plist.stat().st_mode & 0o777 == 0o644, f"launchd refuses {plist.name} if others may write it"


def test_nobody_at_the_console_means_no_tray_is_bootstrapped_now(tmp_path: Path) -> None:
    tools, log = tmp_path / "bin", tmp_path / "calls.log"
    tools.mkdir()
    target = tmp_path / "volume"
    for folder in ("Library/LaunchDaemons", "Library/LaunchAgents", "Library/Homeroom/homeroom-agent"):
        (target / folder).mkdir(parents=True)
    for name in (
        "LaunchDaemons/org.homeroom.agent.plist",
        "LaunchDaemons/org.homeroom.enrol.plist",
        "LaunchAgents/org.homeroom.tray.plist",
    ):
        (target / "Library" / name).write_text("")
    recorder(target / "Library/Homeroom/homeroom-agent", "homeroom-agent", log)
    for name, output in (("launchctl", ""), ("chown", ""), ("stat", "0")):
        recorder(tools, name, log, output)
    done = subprocess.run(
        ["/bin/sh", str(MACOS / "scripts" / "postinstall"), "pkg", "/", str(target), "/"],
        env={**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "gui/" not in log.read_text()
