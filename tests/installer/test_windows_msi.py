"""The Windows installer: a real .msi compiled by wixl (scripts/build-msi), its tables read by msiinfo.

The payload is placeholders (PyInstaller cannot build Windows programs here), but every table
Windows Installer acts on is the real one: the service it registers, how it is started and
stopped, the tray's Run entry, the upgrade code, the custom action that stages the enrolment.
The custom action's command line, as msiexec would format it, is then run through the service
executable's own code with the POSIX functions Windows lacks removed.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import deployment, windows_acl, windows_service
from contract import __version__
from tests.helpers.need import need
from tests.helpers.paths import ROOT

WINDOWS = ROOT / "installer" / "windows"
UPGRADE_CODE = "{C72B33A2-B665-4B7B-9EE6-697649E97630}"
# msidbServiceControlEvent*
START_ON_INSTALL, STOP_ON_INSTALL, STOP_ON_UNINSTALL, DELETE_ON_UNINSTALL = 0x1, 0x2, 0x20, 0x80
# msidbCustomActionType*: an installed file run as an exe, deferred, not impersonating (SYSTEM)
EXE_FILE, IN_SCRIPT, NO_IMPERSONATE = 18, 0x400, 0x800
HKLM = "2"


@pytest.fixture(scope="module")
def msi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need(shutil.which("wixl") is not None and shutil.which("msiinfo") is not None, "apt-get install msitools")
    out = tmp_path_factory.mktemp("msi")
    built = subprocess.run(
        [str(ROOT / "scripts" / "build-msi"), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    path = Path(built.stdout.strip().splitlines()[-1])
    assert path.name == f"homeroom-{__version__}-x64.msi" and path.is_file()
    return path


def table(msi: Path, name: str) -> list[dict[str, str]]:
    """`msiinfo export`: a header of column names, one of types, one naming the table, then rows."""
    exported = subprocess.run(
        ["msiinfo", "export", str(msi), name], capture_output=True, text=True, timeout=60, check=True
    )
    lines = exported.stdout.splitlines()
    columns = lines[0].split("\t")
    return [dict(zip(columns, line.split("\t"), strict=False)) for line in lines[3:] if line]


def test_the_msi_has_the_tables_windows_installer_acts_on(msi: Path) -> None:
    listed = subprocess.run(["msiinfo", "tables", str(msi)], capture_output=True, text=True, check=True)
    tables = set(listed.stdout.split())
    assert {"Property", "File", "Component", "ServiceInstall", "ServiceControl", "Registry"} <= tables
    assert {"CustomAction", "InstallExecuteSequence", "Upgrade"} <= tables


def test_properties_the_upgrade_code_and_the_hidden_token(msi: Path) -> None:
    properties = {row["Property"]: row["Value"] for row in table(msi, "Property")}
    assert properties["UpgradeCode"] == UPGRADE_CODE
    assert properties["ProductVersion"] == __version__
    assert properties["ALLUSERS"] == "1", "per machine: every user's laptop, installed by SYSTEM"
    assert properties["MsiHiddenProperties"] == "HOMEROOM_TOKEN", "the token never reaches the log"
    # No default server or token is baked in: they come from the command line (or nothing).
    assert "HOMEROOM_SERVER_URL" not in properties and "HOMEROOM_TOKEN" not in properties
    upgrades = table(msi, "Upgrade")
    assert {row["UpgradeCode"] for row in upgrades} == {UPGRADE_CODE}
    assert any(row["ActionProperty"] == "WIX_UPGRADE_DETECTED" for row in upgrades), "older versions replaced"
    assert any(row["ActionProperty"] == "WIX_DOWNGRADE_DETECTED" for row in upgrades)
    # The old version goes first (its service stopped and deleted), then this one is installed.
    sequence = {row["Action"]: int(row["Sequence"]) for row in table(msi, "InstallExecuteSequence")}
    assert sequence["InstallValidate"] < sequence["RemoveExistingProducts"] < sequence["InstallInitialize"]


def test_the_service_is_registered_as_localsystem_started_and_removed(msi: Path) -> None:
    (service,) = table(msi, "ServiceInstall")
    assert service["Name"] == windows_service.SERVICE_NAME == "HomeroomAgent"
    assert service["StartName"] == "LocalSystem"
    assert service["StartType"] == "2", "automatic: at boot, with nobody logged in"
    assert int(service["ServiceType"]) == 0x10, "its own process"
    files = {row["File"]: row for row in table(msi, "File")}
    components = {row["Component"]: row for row in table(msi, "Component")}
    key_file = files[components[service["Component_"]]["KeyPath"]]
    assert key_file["FileName"].split("|")[-1] == "homeroom-service.exe"

    (control,) = table(msi, "ServiceControl")
    assert control["Name"] == "HomeroomAgent"
    events = int(control["Event"])
    assert events == START_ON_INSTALL | STOP_ON_INSTALL | STOP_ON_UNINSTALL | DELETE_ON_UNINSTALL
    assert control["Wait"] == "1"


def test_the_tray_starts_at_every_users_login(msi: Path) -> None:
    runs = [
        row
        for row in table(msi, "Registry")
        if row["Key"] == r"Software\Microsoft\Windows\CurrentVersion\Run"
    ]
    (run,) = runs
    assert run["Root"] == HKLM, "HKLM: every user, not only the one who installed"
    assert run["Name"] == "Homeroom"
    assert run["Value"] == '"[INSTALLDIR]homeroom-tray.exe"'
    names = {row["FileName"].split("|")[-1] for row in table(msi, "File")}
    assert {"homeroom-tray.exe", "homeroom-agent.exe", "homeroom-service.exe"} <= names
    assert "python311.dll" in names and "agent.toml" in names, "the rest of the folder build"


def after_install_action(msi: Path) -> tuple[dict[str, str], dict[str, str]]:
    (action,) = [row for row in table(msi, "CustomAction") if row["Action"] == "HomeroomAfterInstall"]
    sequence = {row["Action"]: row for row in table(msi, "InstallExecuteSequence")}
    return action, sequence


def test_the_custom_action_runs_as_system_between_registering_and_starting_the_service(msi: Path) -> None:
    action, sequence = after_install_action(msi)
    kind = int(action["Type"])
    assert kind & 0x3F == EXE_FILE and kind & IN_SCRIPT and kind & NO_IMPERSONATE, kind
    files = {row["File"]: row["FileName"].split("|")[-1] for row in table(msi, "File")}
    assert files[action["Source"]] == "homeroom-service.exe"
    assert '--server "[HOMEROOM_SERVER_URL]"' in action["Target"]
    assert '--token "[HOMEROOM_TOKEN]"' in action["Target"]
    ours = int(sequence["HomeroomAfterInstall"]["Sequence"])
    assert int(sequence["InstallServices"]["Sequence"]) < ours < int(sequence["StartServices"]["Sequence"])
    assert sequence["HomeroomAfterInstall"]["Condition"] == 'NOT REMOVE~="ALL"', "not on uninstall"


def msiexec_formats(target: str, properties: dict[str, str]) -> list[str]:
    """What msiexec runs: [PROPERTY] replaced by its value ("" when unset), split as Windows does
    for these plain quoted arguments."""
    formatted = re.sub(r"\[([A-Z_]+)\]", lambda found: properties.get(found.group(1), ""), target)
    return [part.strip('"') for part in re.findall(r'"[^"]*"|\S+', formatted)]


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[tuple[Path, int, str]]]:
    """The Windows path: no fchmod, getuid, pwd; every ACL asked for is recorded with the file's size."""
    for name in ("fchmod", "pread", "pwrite", "getuid", "geteuid", "fchown", "chown", "getpwnam"):
        monkeypatch.delattr(os, name, raising=False)
    monkeypatch.setitem(sys.modules, "pwd", None)
    monkeypatch.setattr(deployment, "ON_WINDOWS", True)
    asked: list[tuple[Path, int, str]] = []
    monkeypatch.setattr(
        windows_acl,
        "apply",
        lambda path, aces: asked.append((path, path.stat().st_size, windows_acl.to_sddl(aces))),
    )
    yield asked


class RecordedWin32:
    def __init__(self) -> None:
        self.failure_actions: list[tuple[str, dict[str, object]]] = []

    def set_failure_actions(self, service: str, actions: dict[str, object]) -> None:
        self.failure_actions.append((service, actions))

    def host(self, service_class: type) -> None:
        raise AssertionError("after-install never hosts the service")

    def owner_sid(self, path: Path) -> str:
        return "S-1-5-18"  # SYSTEM: the folder the service made (test_windows_service covers others)

    def lock_down(self, path: Path) -> None:
        assert path.is_dir()


def test_the_msi_command_line_stages_the_token_for_system_alone_and_sets_restart_on_failure(
    msi: Path, windows: list[tuple[Path, int, str]], tmp_path: Path
) -> None:
    action, _ = after_install_action(msi)
    url, token = "https://homeroom.example.org", "tok_" + "x" * 39
    argv = msiexec_formats(action["Target"], {"HOMEROOM_SERVER_URL": url, "HOMEROOM_TOKEN": token})
    state = tmp_path / "ProgramData" / "Homeroom"
    win32 = RecordedWin32()
    assert windows_service.main([*argv, "--state-dir", str(state)], win32) == 0

    ((service, actions),) = win32.failure_actions
    assert service == "HomeroomAgent"
    assert actions["Actions"] == [(windows_service.SC_ACTION_RESTART, 60_000)] * 3
    ((path, size_when_locked, sddl),) = windows
    assert path == state / deployment.TOKEN_FILE
    assert size_when_locked == 0, "the ACL is set before the token is written"
    assert sddl == "D:P(A;;0x1f01ff;;;SY)", "SYSTEM only: no Users, no Everyone, nothing inherited"
    staged = deployment.read_token_file(state)
    assert staged is not None and (staged.server_url, staged.token) == (url, token)


def test_an_install_without_properties_stages_nothing_and_a_bad_address_fails_the_install(
    msi: Path, windows: list[tuple[Path, int, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    action, _ = after_install_action(msi)
    state = tmp_path / "state"
    plain = msiexec_formats(action["Target"], {})
    assert windows_service.main([*plain, "--state-dir", str(state)], RecordedWin32()) == 0
    assert not (state / deployment.TOKEN_FILE).exists() and not windows
    assert "enrol with `homeroom-agent enroll`" in capsys.readouterr().out

    for properties in (
        {"HOMEROOM_SERVER_URL": "homeroom.example.org", "HOMEROOM_TOKEN": "t"},  # no scheme
        {"HOMEROOM_TOKEN": "t"},
    ):
        argv = msiexec_formats(action["Target"], properties)
        assert windows_service.main([*argv, "--state-dir", str(state)], RecordedWin32()) == 2
        assert "homeroom-service:" in capsys.readouterr().err
        assert not (state / deployment.TOKEN_FILE).exists()


def spec_names() -> tuple[set[str], set[str]]:
    """The programs the PyInstaller spec builds and the entry scripts it reads."""
    tree = ast.parse((WINDOWS / "homeroom.spec").read_text())
    programs, scripts = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "program":
            programs.add(f"{node.args[1].value}.exe")  # type: ignore[attr-defined]
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "analysis":
            scripts.add(node.args[0].value)  # type: ignore[attr-defined]
    return programs, scripts


def test_the_spec_builds_the_programs_the_msi_installs_from_entry_scripts_that_exist(msi: Path) -> None:
    programs, scripts = spec_names()
    installed = {
        row["FileName"].split("|")[-1] for row in table(msi, "File") if row["FileName"].endswith(".exe")
    }
    assert programs == installed == {"homeroom-service.exe", "homeroom-agent.exe", "homeroom-tray.exe"}
    for script in scripts:
        source = (WINDOWS / script).read_text()
        compile(source, script, "exec")
    hidden = ast.literal_eval(
        next(
            node.value
            for node in ast.walk(ast.parse((WINDOWS / "homeroom.spec").read_text()))
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "HIDDEN"
        )
    )
    import importlib.util

    for module in hidden:
        if module.startswith("agent."):
            assert importlib.util.find_spec(module) is not None, (
                f"the spec names {module}, which does not exist"
            )
