"""Notifications about lost laptops, delivered for real: a real server process (SQLite and PostgreSQL)
with a server.toml naming recipients per school, a real SMTP server (aiosmtpd) and a real HTTP
receiver that checks each webhook's signature. Each recipient gets each event once, with what the
risk office needs, also when the mail server is down for a while and the server is killed and
restarted in between; a drill tells nobody."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from server.db.engine import make_engine
from server.db.lost_models import NOTIFICATIONS
from tests.helpers.receivers import SmtpServer, WebhookReceiver, wait_for
from tests.helpers.servers import InitialisedDatabases, PostgresCluster, ServerProcess
from tests.helpers.signed_device import heartbeat, report
from tests.server.test_lost_cases import enrolled, evidence, lost_report

SECRET = "test-webhook-secret-0123456789"

CONFIG = """
[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
sender = "homeroom@district.example"
timeout_seconds = 5

[notify]
poll_seconds = 0.2
retry_first_seconds = 0.3
retry_max_seconds = 1
lease_seconds = 5

[[recipient]]
schools = ["Lincoln High"]
email = "principal@lincoln.example"

[[recipient]]
schools = ["*"]
email = "risk@district.example"

[[recipient]]
schools = ["Roosevelt Elementary"]
email = "principal@roosevelt.example"

[[recipient]]
schools = ["*"]
webhook = "{hook_url}"
secret = "{secret}"
"""


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    mail = SmtpServer()  # not started: each test starts it when the outage is over
    try:
        yield mail
    finally:
        mail.stop()


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(SECRET)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def notifying(
    request: pytest.FixtureRequest,
    database_url: str,
    tmp_path: Path,
    initialised_databases: InitialisedDatabases,
    smtp: SmtpServer,
    hook: WebhookReceiver,
) -> Iterator[ServerProcess]:
    """The `server` fixture's server, with a server.toml written before it starts."""
    (tmp_path / "server.toml").write_text(
        CONFIG.format(smtp_port=smtp.port, hook_url=hook.url, secret=SECRET)
    )
    process = ServerProcess(database_url, tmp_path)
    cluster: PostgresCluster | None = None
    if not database_url.startswith("sqlite:"):
        cluster = request.getfixturevalue("postgres")
    initialised_databases.copy_into(database_url, cluster)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def queued(server: ServerProcess) -> list[dict[str, Any]]:
    """The outbox as it is now, read from the database (polled: a process per look is too slow)."""
    engine = make_engine(server.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(NOTIFICATIONS).order_by(NOTIFICATIONS.c.id)).all()
    finally:
        engine.dispose()
    return [dict(row._mapping) for row in rows]


def queued_printed(server: ServerProcess) -> list[dict[str, Any]]:
    done = server.cli("lost", "notifications", "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["notifications"])


def test_each_recipient_is_told_once_across_an_smtp_outage_and_server_restarts(
    notifying: ServerProcess, smtp: SmtpServer, hook: WebhookReceiver, tmp_path: Path
) -> None:
    teacher, student = enrolled(notifying), enrolled(notifying)
    serial, hostname = student.identity["serial"], student.identity["hostname"]
    seen_report = {**report(), "identity": student.identity, "users": ["ada"]}
    assert student.post("/reports", seen_report).status_code == 200  # ada is the laptop's user
    assert notifying.cli("devices", "set-asset-tag", serial, "LHS-0042").returncode == 0
    points = tmp_path / "aps.csv"
    points.write_text("BSSID,Building,Room\n00:1a:2b:3c:4d:50,Lincoln High,Library\n")
    assert notifying.cli("networks", "import-access-points", str(points)).returncode == 0

    # The mail server is down when the report arrives: the webhook goes, the e-mails wait.
    filed = teacher.post("/lost-reports", lost_report("serial", serial, police_report="PD-2026-1182")).json()
    assert filed["outcome"] == "recorded"
    assert wait_for(lambda: len(hook.deliveries) == 1)

    def emails_retried() -> bool:
        emails = [n for n in queued(notifying) if n["channel"] == "email"]
        return len(emails) == 2 and all(
            n["attempts"] >= 2 and "SMTP" in (n["last_error"] or "") for n in emails
        )

    assert wait_for(emails_retried)
    assert smtp.inbox == []

    # The server is killed while the e-mails wait; the mail server comes back; the server restarts.
    notifying.kill()
    smtp.start()
    notifying.start()
    assert wait_for(lambda: len(smtp.inbox) == 2)

    # The lost laptop hears a district access point; IT confirms it stolen: everyone is told again.
    mode = student.post("/heartbeat", heartbeat()).json()["lost_mode"]
    heard = [{"bssid": "00:1A:2B:3C:4D:50", "ssid": "LHS-Staff", "signal": -61, "channel": 36}]
    assert student.post("/lost-evidence", evidence(mode["case_id"], wifi=heard)).status_code == 200
    changed = notifying.cli(
        "devices", "lost-status", mode["case_id"], "confirmed_stolen", "--note", "Police told"
    )
    assert changed.returncode == 0 and "3 notification(s) queued" in changed.stdout
    assert wait_for(lambda: len(smtp.inbox) == 4 and len(hook.deliveries) == 2)

    # Restarted twice more (once politely, once killed): nothing is sent again.
    notifying.stop()
    notifying.start()
    notifying.kill()
    notifying.start()
    time.sleep(2)  # ten of the sender's polls
    assert len(smtp.inbox) == 4 and len(hook.deliveries) == 2
    printed = queued_printed(notifying)
    assert len(printed) == 6 and all(n["sent_at"] and n["attempts"] >= 1 for n in printed)

    # Each e-mail recipient of Lincoln High once per event, nobody of another school.
    assert Counter(r for mail in smtp.inbox for r in mail.recipients) == {
        "principal@lincoln.example": 2,
        "risk@district.example": 2,
    }
    assert len({mail.message["Message-ID"] for mail in smtp.inbox}) == 4
    first, later = smtp.inbox[0].message, smtp.inbox[-1].message
    assert f"laptop {serial}, asset tag LHS-0042 reported lost or stolen" in str(first["Subject"])
    assert "confirmed stolen" in str(later["Subject"])
    text = first.get_content()
    for expected in (
        serial,
        "LHS-0042",
        "HP ProBook 440 G8",
        f"Hostname:       {hostname}",
        "School:         Lincoln High",
        "Assigned user:  ada",
        "Maria Rossi",
        "PD-2026-1182",
        "It was gone when I came back.",
    ):
        assert expected in text, expected
    assert "Last seen:      20" in text  # when the server last heard from it
    later_text = later.get_content()
    assert "Last network:   127.0.0.1, seen near Lincoln High, Library" in later_text
    assert "Police told" in later_text

    # The webhook: signed for its receiver, one delivery per event, with the same facts.
    assert all(d.signed for d in hook.deliveries)
    assert len({d.headers["X-Homeroom-Delivery"] for d in hook.deliveries}) == 2
    opened, stolen = (d.document for d in hook.deliveries)
    assert opened["event"] == "reported" and opened["status"] == "reported"
    assert opened["device"] == {
        "device_id": student.device_id,
        "serial": serial,
        "asset_tag": "LHS-0042",
        "manufacturer": "HP",
        "model": "HP ProBook 440 G8",
        "hostname": hostname,
        "school": "Lincoln High",
        "assigned_user": "ada",
        "last_seen_at": opened["device"]["last_seen_at"],
    }
    assert opened["device"]["last_seen_at"] and opened["report"]["police_report"] == "PD-2026-1182"
    assert opened["last_network"] is None
    assert stolen["status"] == "confirmed_stolen" and stolen["previous_status"] == "reported"
    assert stolen["last_network"]["public_address"] == "127.0.0.1"
    assert stolen["last_network"]["seen_near"] == "seen near Lincoln High, Library"


def test_a_drill_tells_nobody(notifying: ServerProcess, smtp: SmtpServer, hook: WebhookReceiver) -> None:
    smtp.start()
    practice, real = enrolled(notifying), enrolled(notifying, group="Roosevelt Elementary")
    drill = notifying.cli("devices", "mark-lost", practice.identity["serial"], "--kind", "stolen", "--drill")
    assert drill.returncode == 0, drill.stderr
    mode = practice.post("/heartbeat", heartbeat()).json()["lost_mode"]
    assert mode["drill"] is True
    assert practice.post("/lost-evidence", evidence(mode["case_id"])).status_code == 200
    assert notifying.cli("devices", "lost-status", mode["case_id"], "recovered").returncode == 0
    time.sleep(1.5)
    assert queued(notifying) == [] and smtp.inbox == [] and hook.deliveries == []

    # The same server tells people about a real loss (so the silence above was the drill's).
    marked = notifying.cli("devices", "mark-lost", real.identity["serial"], "--kind", "lost")
    assert marked.returncode == 0 and "3 notification(s) queued" in marked.stdout
    assert wait_for(lambda: len(smtp.inbox) == 2 and len(hook.deliveries) == 1)
    assert Counter(r for mail in smtp.inbox for r in mail.recipients) == {
        "principal@roosevelt.example": 1,
        "risk@district.example": 1,
    }
    assert hook.deliveries[0].document["event"] == "opened"
