"""The Windows service's body, run here for real: it enrols from what the MSI staged, runs the agent's
loop against a real server, and stops when SCM asks. Only pywin32's hosting cannot run here."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agent import deployment, windows_service
from agent.windows_service import ServiceBody, after_install, body_for
from tests.helpers.servers import InitialisedDatabases, ServerProcess


@pytest.fixture
def sqlite_server(tmp_path: Path, initialised_databases: InitialisedDatabases) -> Iterator[ServerProcess]:
    url = f"sqlite:///{tmp_path / 'server' / 'var' / 'homeroom.db'}"
    initialised_databases.copy_into(url)
    process = ServerProcess(url, tmp_path / "server")
    process.start()
    try:
        yield process
    finally:
        process.stop()


SYSTEM_SID = "S-1-5-18"
STUDENT_SID = "S-1-5-21-1004336348-1177238915-682003330-1013"


class NoWindows:
    """What the service asks of Windows, recorded; `owner` is the SID Windows would report for the
    state folder as it was before the service started (one a student made, or SYSTEM's)."""

    def __init__(self, owner: str = SYSTEM_SID) -> None:
        self.owner = owner
        self.locked: list[Path] = []

    def set_failure_actions(self, service: str, actions: dict[str, object]) -> None:
        self.asked = (service, actions)

    def host(self, service_class: type) -> None:
        raise AssertionError("not here")

    def owner_sid(self, path: Path) -> str:
        assert path.is_dir()
        return SYSTEM_SID if path in self.locked else self.owner  # a folder the service made is SYSTEM's

    def lock_down(self, path: Path) -> None:
        assert path.is_dir(), "the ACL is set on the real folder"
        self.locked.append(path)


@pytest.fixture
def no_posix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The POSIX functions Windows' os module lacks, removed (tmp_path first: pytest needs getuid)."""
    for name in ("fchmod", "getuid", "geteuid", "fchown", "chown", "lchown", "getpwnam"):
        monkeypatch.delattr(os, name, raising=False)
    monkeypatch.setenv("USERNAME", "SYSTEM")  # what getpass reads on Windows


def devices(server: ServerProcess) -> list[dict[str, object]]:
    listed = server.cli("devices", "--json")
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout)["devices"])


def test_the_service_enrols_from_the_staged_token_reports_forgets_the_token_and_stops(
    sqlite_server: ServerProcess, state_dir: Path
) -> None:
    windows = NoWindows()
    after_install(windows, state_dir, sqlite_server.url, sqlite_server.token("Windows laptops"))
    assert (state_dir / deployment.TOKEN_FILE).exists()
    body = body_for(str(state_dir), windows)
    thread = threading.Thread(target=body.run)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(d["checks"] for d in devices(sqlite_server)):
            time.sleep(0.5)
        (device,) = devices(sqlite_server)
        assert device["group"] == "Windows laptops" and device["checks"], "enrolled and reported"
        assert not (state_dir / deployment.TOKEN_FILE).exists(), "the token is gone once it has done its work"
        assert json.loads((state_dir / "enrolment.json").read_text())["device_id"] == device["device_id"]
    finally:
        stopped_at = time.monotonic()
        body.request_stop()  # what SvcStop does
        thread.join(30)
    assert not thread.is_alive(), "SCM's stop ends the loop"
    assert time.monotonic() - stopped_at < 20, "soon, not at the next scheduled check"


def test_until_enrolment_works_it_retries_and_a_stop_during_the_wait_ends_it_at_once() -> None:
    attempts: list[float] = []
    made: list[bool] = []

    def enrol() -> bool:
        attempts.append(time.monotonic())
        return False

    body = ServiceBody(lambda: False, enrol, lambda: made.append(True), retry_seconds=0.05)  # type: ignore[arg-type,return-value]
    thread = threading.Thread(target=body.run)
    thread.start()
    while len(attempts) < 3:
        time.sleep(0.01)
    body.retry_seconds = 3600.0
    time.sleep(0.1)
    body.request_stop()
    thread.join(5)
    assert not thread.is_alive() and not made, "never started the loop without an enrolment"
    assert len(attempts) >= 3


def test_an_enrolled_laptop_starts_the_loop_without_enrolling_again() -> None:
    started: list[threading.Event] = []

    class Loop:
        wake = threading.Event()

        def run_forever(self, stop: threading.Event) -> None:
            started.append(stop)

    def never() -> bool:
        raise AssertionError("an enrolled laptop is not enrolled again")

    body = ServiceBody(lambda: True, never, Loop)  # type: ignore[arg-type]
    body.run()
    assert started == [body.stop]


def test_failure_actions_restart_three_times_and_reset_daily() -> None:
    actions = windows_service.failure_actions()
    assert actions["ResetPeriod"] == 86400
    assert actions["Actions"] == [(windows_service.SC_ACTION_RESTART, 60_000)] * 3


def test_pywin32_is_needed_only_to_host_the_service() -> None:
    """Here the hosting fails loudly (no pywin32), rather than pretending to be a service."""
    with pytest.raises(ImportError):
        windows_service.service_class(lambda: body_for())
    with pytest.raises(ImportError):
        windows_service.PyWin32().set_failure_actions("HomeroomAgent", windows_service.failure_actions())


def test_a_state_folder_a_student_made_before_the_install_is_set_aside_and_a_new_one_locked(
    tmp_path: Path, no_posix: None
) -> None:
    """ProgramData lets any user create folders: a student who made `Homeroom` first owns it, could
    change its ACL back and swap the staged token for one enrolling the laptop to their server. The
    install sets that folder aside (kept, for IT) and stages the token in a new, locked one."""
    state = tmp_path / "ProgramData" / "Homeroom"
    state.mkdir(parents=True)
    planted = {"server_url": "https://evil.example", "token": "theirs"}
    (state / deployment.TOKEN_FILE).write_text(json.dumps(planted))
    (state / "enrolment.json").write_text("{}")
    windows = NoWindows(owner=STUDENT_SID)
    said = after_install(windows, state, "https://homeroom.example.org", "the-districts-token")
    (aside,) = [p for p in state.parent.iterdir() if p.name.startswith("Homeroom.untrusted-")]
    assert json.loads((aside / deployment.TOKEN_FILE).read_text()) == planted, "kept for IT to look at"
    assert sorted(p.name for p in state.iterdir()) == [deployment.TOKEN_FILE]
    staged = deployment.read_token_file(state)
    assert staged is not None and staged.server_url == "https://homeroom.example.org"
    assert windows.locked == [state]
    assert any(STUDENT_SID in line and str(aside) in line for line in said), said


def test_the_services_own_folder_is_kept_and_its_acl_set_again_at_every_start(
    tmp_path: Path, no_posix: None
) -> None:
    state = tmp_path / "ProgramData" / "Homeroom"
    state.mkdir(parents=True)
    (state / "enrolment.json").write_text("{}")
    windows = NoWindows(owner=SYSTEM_SID)
    assert windows_service.claim_state_dir(windows, state, datetime.now(timezone.utc)) == []
    assert (state / "enrolment.json").exists() and windows.locked == [state]
    assert [p.name for p in state.parent.iterdir()] == ["Homeroom"]


def test_the_service_claims_its_folder_before_it_looks_for_an_enrolment(tmp_path: Path) -> None:
    state = tmp_path / "ProgramData" / "Homeroom"
    state.mkdir(parents=True)
    (state / "enrolment.json").write_text("{}")
    seen: list[bool] = []

    class Loop:
        wake = threading.Event()

        def run_forever(self, stop: threading.Event) -> None:
            seen.append((state / "enrolment.json").exists())

    body = body_for(str(state), NoWindows(owner=STUDENT_SID))
    body.is_enrolled, body.make_service = (lambda: True), Loop  # type: ignore[assignment]
    body.run()
    assert seen == [False], "the loop starts on a new folder: a student's is never used"


def test_the_state_folders_acl_gives_users_read_and_nothing_more() -> None:
    from agent import windows_acl

    sddl = windows_acl.to_sddl(windows_acl.STATE_DIR_ACL)
    assert sddl.startswith("D:P"), "protected: nothing inherited from ProgramData's own ACL"
    (users,) = [ace for ace in windows_acl.STATE_DIR_ACL if ace.trustee == windows_acl.USERS]
    write_bits = 0x2 | 0x4 | 0x10 | 0x40 | 0x100 | 0x10000 | 0x40000 | 0x80000  # add file/folder, write EA,
    # delete child, write attributes, DELETE, WRITE_DAC, WRITE_OWNER (winnt.h)
    assert users.rights & write_bits == 0 and users.rights & 0x1 and users.rights & 0x20
