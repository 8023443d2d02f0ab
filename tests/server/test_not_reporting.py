"""Laptops that stopped reporting: `homeroom-server devices` marks them, `digest` e-mails IT through a real
SMTP server (aiosmtpd on loopback). Both databases; silence made by moving a device's last request back
in time in the real database, as ten days without a request would leave it."""

from __future__ import annotations

import email
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import update

from server.db.engine import make_engine
from server.db.tables import DEVICES
from server.fleet.silence import not_reporting, silent_days
from tests.helpers.servers import ServerProcess, free_port
from tests.helpers.signed_device import IDENTITY, Device, heartbeat

DIGEST = ("--to", "it@district.example", "--from", "homeroom@district.example", "--smtp-security", "none")


class Mailbox:
    """aiosmtpd's handler: every message the server accepted, parsed."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(
            (envelope.mail_from, list(envelope.rcpt_tos), email.message_from_bytes(envelope.content))
        )
        return "250 Message accepted"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def enrol(server: ServerProcess, token: str, hostname: str) -> Device:
    identity = {
        **IDENTITY,
        "hostname": hostname,
        "serial": uuid.uuid4().hex[:10],
        "hardware_uuid": str(uuid.uuid4()),
    }
    identity["machine_id"], identity["macs"] = uuid.uuid4().hex, []
    device = Device(server, identity)
    assert device.enrol(token).status_code == 200
    return device


def silence(server: ServerProcess, device: Device, days: float, never_seen: bool = False) -> None:
    then = datetime.now(timezone.utc) - timedelta(days=days)
    engine = make_engine(server.database_url)
    with engine.begin() as connection:
        values = {"last_seen_at": None, "enrolled_at": then} if never_seen else {"last_seen_at": then}
        connection.execute(update(DEVICES).where(DEVICES.c.id == device.device_id).values(**values))
    engine.dispose()


@pytest.fixture
def fleet(server: ServerProcess) -> dict[str, Device]:
    token = server.token("Lincoln High")
    devices = {
        name: enrol(server, token, name) for name in ("lt-fresh", "lt-silent", "lt-never", "lt-\nforged")
    }
    assert devices["lt-fresh"].post("/heartbeat", heartbeat()).status_code == 200
    silence(server, devices["lt-silent"], 10)
    silence(server, devices["lt-never"], 8.5, never_seen=True)
    silence(server, devices["lt-\nforged"], 8)
    return devices


def test_devices_marks_those_silent_for_more_than_the_configured_days(
    server: ServerProcess, fleet: dict[str, Device], monkeypatch: pytest.MonkeyPatch
) -> None:
    def marked(*args: str) -> dict[str, bool]:
        done = server.cli("devices", "--json", *args)
        assert done.returncode == 0, done.stderr
        return {d["hostname"]: d["not_reporting"] for d in json.loads(done.stdout)["devices"]}

    assert marked() == {"lt-fresh": False, "lt-silent": True, "lt-never": True, "lt-\nforged": True}
    assert marked("--silent-days", "9") == {
        "lt-fresh": False,
        "lt-silent": True,
        "lt-never": False,
        "lt-\nforged": False,
    }
    monkeypatch.setenv("HOMEROOM_NOT_REPORTING_DAYS", "30")
    assert set(marked().values()) == {False}
    table = server.cli("devices", "--silent-days", "7").stdout
    (silent_row,) = [line for line in table.splitlines() if line.startswith("lt-silent")]
    assert silent_row.endswith("not reporting")
    (fresh_row,) = [line for line in table.splitlines() if line.startswith("lt-fresh")]
    assert "not reporting" not in fresh_row
    monkeypatch.setenv("HOMEROOM_NOT_REPORTING_DAYS", "a week")
    done = server.cli("devices")
    assert (
        done.returncode == 2 and "HOMEROOM_NOT_REPORTING_DAYS must be a whole number of days" in done.stderr
    )


def test_the_digest_mails_it_the_silent_ones_by_group_with_device_text_escaped(
    server: ServerProcess, fleet: dict[str, Device], mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    done = server.cli("digest", *DIGEST, "--to", "head@district.example", "--smtp-host", "127.0.0.1",
                      "--smtp-port", str(port))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Sent the digest of 3 devices not reporting" in done.stdout
    ((sender, recipients, message),) = box.received
    assert sender == "homeroom@district.example"
    assert recipients == ["it@district.example", "head@district.example"]
    assert message["Subject"] == "Homeroom: 3 laptops not reporting"
    body = message.get_payload(decode=True).decode()
    lines = body.splitlines()
    assert "Lincoln High:" in lines
    listed = [line.strip().split(" ")[0] for line in lines if line.startswith("  ")]
    assert listed == ["lt-never", "lt-silent", "lt-\\nforged"]  # never heard from, then the longest silent
    assert not any(line.startswith("forged") for line in lines), "a newline in a hostname forges no line"
    assert "last seen never since enrolment" in body and ", 10 days" in body
    assert "lt-fresh" not in body


def test_nothing_silent_sends_nothing_and_a_mail_server_that_refuses_is_said_plainly(
    server: ServerProcess, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    device = enrol(server, server.token("Lincoln High"), "lt-fresh")
    assert device.post("/heartbeat", heartbeat()).status_code == 200
    done = server.cli("digest", *DIGEST, "--smtp-host", "127.0.0.1", "--smtp-port", str(port))
    assert done.returncode == 0 and "no digest sent" in done.stdout
    assert box.received == []
    silence(server, device, 8)
    closed = free_port()  # nobody listens there
    done = server.cli("digest", *DIGEST, "--smtp-host", "127.0.0.1", "--smtp-port", str(closed))
    assert done.returncode == 1 and f"the digest was not sent: SMTP 127.0.0.1:{closed}" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_digest_uses_the_same_mail_server_settings_as_the_notifications(
    server: ServerProcess, fleet: dict[str, Device], mailbox: tuple[Mailbox, int]
) -> None:
    """One place for the district's mail server: server.toml's [smtp], which the lost-laptop
    notifications read, is what `digest` sends through when no --smtp-host is given."""
    box, port = mailbox
    to = ("--to", "it@district.example")
    missing = server.cli("digest", *to)
    assert (
        missing.returncode == 2
        and "no mail server: add [smtp] (host, sender) to server.toml" in missing.stderr
    )
    (server.data_dir / "server.toml").write_text(
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nsender = "homeroom@lincoln.example"\n'
    )
    done = server.cli("digest", *to)
    assert done.returncode == 0, done.stderr
    ((sender, recipients, message),) = box.received
    assert sender == "homeroom@lincoln.example" and recipients == ["it@district.example"]
    assert message["Subject"] == "Homeroom: 3 laptops not reporting"


def test_silence_counts_from_enrolment_for_a_device_never_heard_from() -> None:
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert not_reporting(now - timedelta(days=7, seconds=1), now, now, 7)
    assert not not_reporting(now - timedelta(days=7), now - timedelta(days=30), now, 7)
    assert not_reporting(None, now - timedelta(days=8), now, 7)
    assert not not_reporting(None, now - timedelta(days=1), now, 7)
    assert silent_days(None, {}) == 7 and silent_days(3, {"HOMEROOM_NOT_REPORTING_DAYS": "30"}) == 3
