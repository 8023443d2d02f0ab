"""The overview's roll-up (server/fleet/counted.py, counts.py) stays equal to a full recount through
every real path that changes what it counts: reports (newer, older, repeated, with an audience),
enrolment, a claim that moves a laptop to another school, lost cases opened by a user's report or by
IT, drills, recoveries. Driven at random against a real server on SQLite and PostgreSQL; the
`homeroom-server counts` command does the recount. On PostgreSQL, two server processes change the
same counts at once: no deadlock, no lost update."""

from __future__ import annotations

import copy
import random
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select, update

from contract.requirements import CHECK_IDS
from server.config_file import ServerConfig
from server.db.engine import make_engine
from server.db.lost_models import LOST_CASES
from server.db.tables import DEVICES
from server.fleet import counts
from server.lost import cases
from server.trail import approve_claim
from tests.helpers.console import ConsoleUser, create_user, reporting_device
from tests.helpers.servers import ServerProcess
from tests.helpers.signed_device import IDENTITY, Device
from tests.server.console.test_roles import figure
from tests.server.test_lost_cases import lost_report

SCHOOLS = ("Lincoln High", "Adams Middle")
PASSWORD = "a long enough password"
SYSTEMS = ("linux", "windows", "macos")


def new_device(server: ServerProcess, token: str, rng: random.Random, os_name: str = "") -> Device:
    unique = uuid.UUID(int=rng.getrandbits(128)).hex
    identity = {
        **IDENTITY,
        "serial": f"SN{unique[:10]}",
        "hardware_uuid": unique,
        "machine_id": unique,
        "hostname": f"lt-{unique[:8]}",
        "os": os_name or rng.choice(SYSTEMS),
    }
    device = Device(server, identity)
    assert device.enrol(token).status_code == 200
    return device


def report_body(device: Device, rng: random.Random, at: datetime) -> dict[str, Any]:
    return {
        "report_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "reported_at": at.isoformat(),
        "agent_version": "0.1.0",
        "identity": device.identity,
        "audience": rng.choice((None, None, "staff", "student")),
        "results": [
            {
                "id": check,
                "title": check,
                "status": rng.choices(("pass", "fail", "unknown"), (0.6, 0.3, 0.1))[0],
                "summary": f"{check} as seen",
                "evidence": {},
                "remediation": None,
                "duration_ms": 1,
            }
            for check in CHECK_IDS
            if rng.random() < 0.95  # now and then one is left out: the server counts it unknown
        ],
        "software": [],
        "dropped": {},
    }


def send_report(device: Device, body: dict[str, Any]) -> None:
    answer = device.post("/reports", body)
    assert answer.status_code == 200, answer.text


def kept_and_counted(url: str) -> tuple[dict[Any, int], dict[Any, int]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return dict(+counts.ledger_totals(connection)), dict(counts.recount(connection))
    finally:
        engine.dispose()


def case_of(url: str, case_id: int) -> Any:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                select(LOST_CASES.c.drill, LOST_CASES.c.status).where(LOST_CASES.c.id == case_id)
            ).one()
    finally:
        engine.dispose()


class Fleet:
    """The devices a test drives, each with its school, last report and open lost case."""

    def __init__(self, server: ServerProcess, rng: random.Random) -> None:
        self.server, self.rng = server, rng
        self.tokens = {school: server.token(school) for school in SCHOOLS}
        self.devices: list[Device] = []
        self.school: dict[str, str] = {}
        self.last_body: dict[str, dict[str, Any]] = {}
        self.open_case: dict[str, int] = {}

    def enrol(self) -> Device:
        school = self.rng.choice(SCHOOLS)
        device = new_device(self.server, self.tokens[school], self.rng)
        self.devices.append(device)
        self.school[device.device_id] = school
        return device


def act(fleet: Fleet, action: str, engine: Any, config: ServerConfig) -> str:
    """One real operation; returns what was done (the test's message says which, on a drift)."""
    rng, server = fleet.rng, fleet.server
    device = rng.choice(fleet.devices)
    now = datetime.now(timezone.utc)
    if action == "report":
        body = report_body(device, rng, now)
        send_report(device, body)
        fleet.last_body[device.device_id] = body
    elif action == "older":  # delayed by an outage: stored, but the newer status stays
        send_report(device, report_body(device, rng, now - timedelta(days=2)))
    elif action == "again" and device.device_id in fleet.last_body:  # resent: stored once
        again = device.post("/reports", fleet.last_body[device.device_id])
        assert again.status_code == 200 and again.json()["duplicate"] is True, again.text
    elif action == "lost" and device.device_id not in fleet.open_case:
        how = rng.choice(("user", "it", "drill"))
        if how == "user":
            filed = device.post("/lost-reports", lost_report("this", kind="lost")).json()
            assert filed["outcome"] == "recorded", filed
        else:
            cases.mark_lost(engine, device.device_id, "stolen", config, drill=how == "drill", by=BY)
        with engine.connect() as connection:
            opened = cases.open_case_of(connection, device.device_id, drill=how == "drill")
        fleet.open_case[device.device_id] = int(opened.id)
        action = f"lost by {how}"
    elif action == "close" and device.device_id in fleet.open_case:
        case_id = fleet.open_case[device.device_id]
        status = rng.choice(("recovered", "written_off", "confirmed_lost"))
        case = case_of(server.database_url, case_id)
        if case.drill or status == case.status:
            status = "recovered"  # the only way a drill ends; a case is never set to what it is
        cases.change_status(engine, case_id, status, config, by=BY)
        if status in cases.CLOSED:
            del fleet.open_case[device.device_id]
        action = f"case {status}"
    elif action == "move":  # re-installed with another school's token: a claim IT approves
        other = next(school for school in SCHOOLS if school != fleet.school[device.device_id])
        claimant = Device(server, dict(device.identity, os=rng.choice(SYSTEMS)))
        waiting = claimant.enrol(fleet.tokens[other])
        assert waiting.status_code == 202, waiting.text
        approve_claim(engine, int(waiting.json()["claim_id"]))
        fleet.devices[fleet.devices.index(device)] = claimant  # the record now answers to its key
        fleet.school[device.device_id] = other
    else:
        return "nothing"
    return action


BY = ("it@district.example", "it@district.example", None)
ACTIONS = ("enrol", "report", "report", "report", "older", "again", "lost", "close", "move")


def test_every_path_keeps_the_roll_up_equal_to_a_full_recount(server: ServerProcess) -> None:
    seed = random.randrange(2**32)
    fleet = Fleet(server, random.Random(seed))
    engine = make_engine(server.database_url)
    config = ServerConfig()
    done: list[str] = []
    try:
        for _ in range(60):
            action = fleet.rng.choice(ACTIONS)
            if action == "enrol" or len(fleet.devices) < 3:
                fleet.enrol()
                done.append("enrol")
            else:
                done.append(act(fleet, action, engine, config))
        kept, counted = kept_and_counted(server.database_url)
        assert kept == counted, f"random seed {seed}; the actions: {done}"
        assert kept, "something was counted"
        checked = server.cli("counts")
        assert checked.returncode == 0 and "no drift" in checked.stdout, checked.stdout + checked.stderr
    finally:
        engine.dispose()


def test_the_counts_command_finds_a_drift_and_corrects_it(server: ServerProcess) -> None:
    """A device written past the roll-up (as a path that forgot it would): the recount says so."""
    rng = random.Random(7)
    fleet = Fleet(server, rng)
    device = fleet.enrol()
    engine = make_engine(server.database_url)
    try:
        with engine.begin() as connection:
            connection.execute(update(DEVICES).where(DEVICES.c.id == device.device_id).values(os="plan9"))
    finally:
        engine.dispose()
    found = server.cli("counts")
    assert found.returncode == 1, found.stdout + found.stderr
    assert "plan9, student, devices: 0 → 1" in found.stdout, found.stdout
    assert server.cli("counts", "--fix").returncode == 0
    again = server.cli("counts")
    assert again.returncode == 0 and "no drift" in again.stdout, again.stdout


def flipping_report(device: Device, fails: bool) -> dict[str, Any]:
    """Every requirement passes, or the firewall fails: each report moves the same counts."""
    return {
        "report_id": uuid.uuid4().hex,
        "reported_at": datetime.now(timezone.utc).isoformat(),
        "agent_version": "0.1.0",
        "identity": device.identity,
        "results": [
            {
                "id": check,
                "title": check,
                "status": "fail" if fails and check == "firewall" else "pass",
                "summary": "as seen",
                "evidence": {},
                "remediation": None,
                "duration_ms": 1,
            }
            for check in CHECK_IDS
        ],
        "software": [],
        "dropped": {},
    }


# PostgreSQL only: SQLite has one writer, so a district on SQLite runs one server process.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_server_processes_change_the_same_counts_at_once(server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "second").mkdir()
    second = ServerProcess(server.database_url, tmp_path / "second")
    second.start()
    try:
        rng = random.Random(11)
        token = server.token("Lincoln High")
        # One (school, os, audience): every report moves the same counts.
        fleet = [new_device(server, token, rng, "linux") for _ in range(13)]
        processes = (server, second)
        failures: list[str] = []

        def send(device: Device, through: ServerProcess, fails: bool) -> None:
            courier = copy.copy(device)
            courier.server = through
            try:
                answer = courier.post("/reports", flipping_report(device, fails))
            except requests.RequestException as exc:
                failures.append(repr(exc))
                return
            if answer.status_code != 200:
                failures.append(f"{answer.status_code} {answer.text[:200]}")

        def own(devices: list[Device], start: int) -> None:
            for turn in range(8):  # each report alternately through either process
                for device in devices:
                    send(device, processes[(start + turn) % 2], fails=turn % 2 == 0)

        def shared(device: Device, through: ServerProcess) -> None:
            for _turn in range(8):  # the same laptop through both processes at the same moment
                send(device, through, fails=rng.random() < 0.5)

        threads = [threading.Thread(target=own, args=(fleet[i : i + 2], i)) for i in range(0, 12, 2)]
        threads += [threading.Thread(target=shared, args=(fleet[12], p)) for p in processes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not failures, failures[:5]
        kept, counted = kept_and_counted(server.database_url)
        assert kept == counted
        assert kept[("Lincoln High", "linux", "student", "devices")] == 13
    finally:
        second.stop()


def test_the_overview_follows_a_device_that_is_fixed_and_one_that_is_lost(server: ServerProcess) -> None:
    """A second report that fixes the firewall is counted at once (the stored per-requirement status
    used to keep the first report's), and a laptop marked lost is counted as lost (a drill is not)."""
    token = server.token("Lincoln High")
    fixed = reporting_device(server, token, "fixed-lt", "F1", "fail")
    lost = reporting_device(server, token, "lost-lt", "F2", "pass")
    drilled = reporting_device(server, token, "drill-lt", "F3", "pass")
    create_user(server, "counts@district.example", PASSWORD, "district_admin")
    person = ConsoleUser(server)
    assert person.sign_in("counts@district.example", PASSWORD).status_code == 303
    page = person.get("/").text
    assert 'data-check="firewall">1<' in page and figure(page, "compliant") == "67 %"
    assert figure(page, "lost-devices") == "0"

    body = flipping_report(fixed, fails=False)
    send_report(fixed, body)
    assert server.cli("devices", "mark-lost", lost.identity["hostname"], "--kind", "stolen").returncode == 0
    assert (
        server.cli(
            "devices", "mark-lost", drilled.identity["hostname"], "--kind", "lost", "--drill"
        ).returncode
        == 0
    )
    page = person.get("/").text
    assert 'data-check="firewall">0<' in page and figure(page, "compliant") == "100 %"
    assert figure(page, "lost-devices") == "1"
    assert figure(person.get("/?school=Adams+Middle").text, "lost-devices") == "0"
    today = datetime.now(timezone.utc).date().isoformat()
    assert f"no figures before {today}" in page  # the roll-up began today: earlier days are not 0 %
