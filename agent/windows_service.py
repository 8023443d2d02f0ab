"""The agent as a Windows service (`homeroom-service.exe`), hosted by pywin32's service framework.

The Service Control Manager starts the executable with no arguments; it then hands the process
to SCM (`servicemanager.StartServiceCtrlDispatcher`), which calls `SvcDoRun` on a thread of its
own and `SvcStop` when Windows or an administrator stops it. What the service *does* is
`ServiceBody`, plain Python: enrol from what the installer staged (agent.deployment) until that
works, then the same loop `homeroom-agent run` runs, stopped through an event rather than a
signal (signals reach only a main thread, and SCM's thread is not one).

The MSI runs the same executable once more, as SYSTEM, with `after-install` (a deferred custom
action after InstallServices, before StartServices): it sets the service to restart on failure
(wixl compiles no ServiceConfig element, so the failure actions are set here with
ChangeServiceConfig2) and stages the HOMEROOM_SERVER_URL and HOMEROOM_TOKEN the MSI was given.

Every call into Windows is in `Win32`, which imports pywin32 inside its methods: the module loads
and `ServiceBody`, `after_install` and the argument handling are tested on Linux, with the POSIX
functions Windows lacks removed, against a `Win32` that records what it is asked.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agent.deployment import stage_token_file
from agent.messages import server_url_problem

if TYPE_CHECKING:
    from agent.service import AgentService

log = logging.getLogger("homeroom.agent")

SERVICE_NAME = "HomeroomAgent"
DISPLAY_NAME = "Homeroom agent"
DESCRIPTION = "Checks this laptop against the district's Acceptable Use Policy and reports to its server."
# winsvc.h
SC_ACTION_NONE = 0
SC_ACTION_RESTART = 1
SERVICE_CONFIG_FAILURE_ACTIONS = 2
SERVICE_CONFIG_FAILURE_ACTIONS_FLAG = 4
# Restart a minute after each of the first three failures in a day, then every further failure too.
RESTART_DELAY_MS = 60_000
FAILURE_RESET_SECONDS = 24 * 3600
# Until the first enrolment works (the server unreachable at install time), try again this often.
ENROL_RETRY_SECONDS = 300.0


def failure_actions() -> dict[str, Any]:
    """SERVICE_FAILURE_ACTIONS as pywin32's ChangeServiceConfig2 takes it."""
    return {
        "ResetPeriod": FAILURE_RESET_SECONDS,
        "RebootMsg": None,
        "Command": None,
        "Actions": [(SC_ACTION_RESTART, RESTART_DELAY_MS)] * 3,
    }


class Win32(Protocol):
    def set_failure_actions(self, service: str, actions: dict[str, Any]) -> None: ...

    def host(self, service_class: type) -> None: ...

    def owner_sid(self, path: Path) -> str: ...

    def lock_down(self, path: Path) -> None: ...


def claim_state_dir(win32: Win32, state_dir: Path, now: datetime) -> list[str]:
    """Makes the state folder the service's own before anything is written into it.

    Any user may create folders in ProgramData, so a student could make `Homeroom` before the
    first install and own it: an owner can always change a folder's ACL back, and could swap the
    staged token for one that enrols the laptop to their own server. A folder owned by anyone but
    SYSTEM or the administrators is therefore set aside (renamed, kept for IT to look at) and a
    new one made; ours gets its protected ACL again at every start. If the folder cannot be set
    aside (its owner holds it open), this raises and the service does not run on it.
    """
    from agent.windows_acl import TRUSTED_OWNER_SIDS

    said: list[str] = []
    if state_dir.exists():
        owner = win32.owner_sid(state_dir)
        if owner not in TRUSTED_OWNER_SIDS:
            aside = state_dir.with_name(f"{state_dir.name}.untrusted-{now:%Y%m%dT%H%M%SZ}")
            state_dir.rename(aside)
            said.append(
                f"{state_dir} was made by {owner}, not SYSTEM or the administrators: set aside as {aside}"
            )
    state_dir.mkdir(parents=True, exist_ok=True)
    win32.lock_down(state_dir)
    return said


class PyWin32:
    """The only code here that needs Windows (pywin32's win32service and servicemanager)."""

    def set_failure_actions(self, service: str, actions: dict[str, Any]) -> None:
        import win32service  # type: ignore[import-untyped,import-not-found,unused-ignore]

        manager = win32service.OpenSCManager(None, None, win32service.SC_MANAGER_CONNECT)
        try:
            handle = win32service.OpenService(manager, service, win32service.SERVICE_CHANGE_CONFIG)
            try:
                win32service.ChangeServiceConfig2(handle, SERVICE_CONFIG_FAILURE_ACTIONS, actions)
                # A crash is a failure, and so is exiting with an error while "running".
                win32service.ChangeServiceConfig2(handle, SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, True)
            finally:
                win32service.CloseServiceHandle(handle)
        finally:
            win32service.CloseServiceHandle(manager)

    def host(self, service_class: type) -> None:
        import servicemanager  # type: ignore[import-untyped,import-not-found,unused-ignore]

        servicemanager.Initialize()
        servicemanager.PrepareToHostSingle(service_class)
        servicemanager.StartServiceCtrlDispatcher()

    def owner_sid(self, path: Path) -> str:
        from agent.windows_acl import owner_of_path

        return owner_of_path(path).sid

    def lock_down(self, path: Path) -> None:
        from agent.windows_acl import STATE_DIR_ACL, apply

        apply(path, STATE_DIR_ACL)


@dataclass
class ServiceBody:
    """From SCM's start to its stop: enrol if need be, then the agent's loop until `stop`."""

    is_enrolled: Callable[[], bool]
    enrol: Callable[[], bool]
    make_service: Callable[[], AgentService]
    retry_seconds: float = ENROL_RETRY_SECONDS
    stop: threading.Event = field(default_factory=threading.Event)
    service: AgentService | None = None
    # Before anything else: the state folder made the service's own (claim_state_dir).
    prepare: Callable[[], None] = lambda: None

    def run(self) -> None:
        self.prepare()
        while not self.is_enrolled():
            if self.enrol():
                break
            log.warning("not enrolled yet; trying again in %.0f s", self.retry_seconds)
            if self.stop.wait(self.retry_seconds):
                return
        if self.stop.is_set():
            return
        self.service = self.make_service()
        self.service.run_forever(self.stop)

    def request_stop(self) -> None:
        self.stop.set()
        if self.service is not None:
            self.service.wake.set()  # out of its wait at once, not at the next tick


def body_for(state_dir: str | None = None, win32: Win32 | None = None) -> ServiceBody:
    """The body as the installed service runs it: the CLI's own enrolment and service setup."""
    from agent import cli
    from agent.errors import NotEnrolled
    from agent.service import read_enrolment

    extra = ["--state-dir", state_dir] if state_dir else []
    args = cli.build_parser().parse_args(["run", *extra])

    def state() -> Path:
        return cli._state_and_config(args)[0]

    def is_enrolled() -> bool:
        try:
            return read_enrolment(state()) is not None
        except NotEnrolled:
            return False

    def enrol() -> bool:
        # The enrolment `homeroom-agent enroll` does, from the staged token (agent.deployment).
        return cli.main(["enroll", "--if-not-enrolled", *extra]) == 0

    def prepare() -> None:
        for line in claim_state_dir(win32 or PyWin32(), state(), datetime.now(timezone.utc)):
            log.warning("%s", line)

    return ServiceBody(is_enrolled, enrol, lambda: cli._service(args), prepare=prepare)


def service_class(make_body: Callable[[], ServiceBody]) -> type:
    """The win32serviceutil.ServiceFramework subclass SCM drives. Windows only (pywin32)."""
    import win32service  # type: ignore[import-untyped,import-not-found,unused-ignore]
    import win32serviceutil  # type: ignore[import-untyped,import-not-found,unused-ignore]

    class HomeroomService(win32serviceutil.ServiceFramework):  # type: ignore[misc,unused-ignore]
        _svc_name_ = SERVICE_NAME
        _svc_display_name_ = DISPLAY_NAME
        _svc_description_ = DESCRIPTION

        def __init__(self, args: Any) -> None:
            super().__init__(args)
            self.body = make_body()

        def SvcDoRun(self) -> None:  # pywin32's name
            self.ReportServiceStatus(win32service.SERVICE_RUNNING)
            self.body.run()

        def SvcStop(self) -> None:  # pywin32's name
            self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING)
            self.body.request_stop()

    return HomeroomService


def after_install(win32: Win32, state_dir: Path, server_url: str, token: str) -> list[str]:
    """What the MSI's custom action does, as SYSTEM: restart on failure, then stage the enrolment.

    Raises ValueError for a server address the agent would refuse, so the install fails with the
    reason in its log instead of installing a laptop that can never enrol.
    """
    said = claim_state_dir(win32, state_dir, datetime.now(timezone.utc))
    win32.set_failure_actions(SERVICE_NAME, failure_actions())
    said.append(f"{SERVICE_NAME} restarts {RESTART_DELAY_MS // 1000} s after a failure")
    server_url, token = server_url.strip(), token.strip()
    if not server_url and not token:
        said.append("no HOMEROOM_SERVER_URL or HOMEROOM_TOKEN given: enrol with `homeroom-agent enroll`")
        return said
    if not server_url or not token:
        raise ValueError("give both HOMEROOM_SERVER_URL and HOMEROOM_TOKEN, or neither")
    if problem := server_url_problem(server_url):
        raise ValueError(f"HOMEROOM_SERVER_URL: {problem}")
    path = stage_token_file(state_dir, server_url, token)
    said.append(f"the enrolment for {server_url} is staged in {path} (SYSTEM only) until the service enrols")
    return said


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="homeroom-service", description="The Homeroom agent's Windows service."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    after = commands.add_parser(
        "after-install", help="(run by the MSI as SYSTEM) restart on failure, stage the enrolment"
    )
    after.add_argument("--server", default="", metavar="URL")
    after.add_argument("--token", default="")
    after.add_argument("--state-dir", metavar="DIR", help="default: the service's state folder")
    return parser


def default_state_dir() -> Path:
    from agent import cli

    args = cli.build_parser().parse_args(["run"])
    return cli._state_and_config(args)[0]


def main(argv: Sequence[str] | None = None, win32: Win32 | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    win32 = win32 or PyWin32()
    if not arguments:  # started by the Service Control Manager
        from agent.service_log import configure_service_logging

        # A service has no console: its lines go to the Application event log (agent/service_log.py).
        configure_service_logging(sys.stderr, os_name="windows")
        win32.host(service_class(body_for))
        return 0
    args = build_parser().parse_args(arguments)
    state_dir = Path(args.state_dir) if args.state_dir else default_state_dir()
    try:
        for line in after_install(win32, state_dir, args.server, args.token):
            print(line)
    except (ValueError, OSError) as exc:
        print(f"homeroom-service: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
