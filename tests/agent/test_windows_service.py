"""The Windows service's body, run here for real: it enrols from what the MSI staged, runs the agent's
loop against a real server, and stops when SCM asks. Only pywin32's hosting cannot run here."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
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


class NoWindows:
    def set_failure_actions(self, service: str, actions: dict[str, object]) -> None:
        self.asked = (service, actions)

    def host(self, service_class: type) -> None:
        raise AssertionError("not here")


def devices(server: ServerProcess) -> list[dict[str, object]]:
    listed = server.cli("devices", "--json")
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout)["devices"])


def test_the_service_enrols_from_the_staged_token_reports_forgets_the_token_and_stops(
    sqlite_server: ServerProcess, state_dir: Path
) -> None:
    after_install(NoWindows(), state_dir, sqlite_server.url, sqlite_server.token("Windows laptops"))
    assert (state_dir / deployment.TOKEN_FILE).exists()
    body = body_for(str(state_dir))
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
