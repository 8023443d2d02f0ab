"""server.toml (every mistake: file, line, fix), what a notification says, its signature, the backoff,
and when evidence is due for deletion. Pure functions; the real deliveries are in
test_lost_notifications.py."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from contract.errors import ConfigError
from server.config_file import DEFAULT_NOTICE, config_from_text
from server.lost.evidence import evidence_expired
from server.notify import messages
from server.notify.outbox import backoff_seconds

GOOD = """
[lost]
interval_seconds = 60
evidence_keep_days = 14

[smtp]
host = "smtp.district.example"
port = 587
sender = "homeroom@district.example"
password_file = "smtp-password"
username = "homeroom"

[notify]
retry_first_seconds = 10

[[recipient]]
schools = ["Lincoln High"]
email = "principal@lincoln.example"

[[recipient]]
schools = ["*"]
webhook = "https://risk.district.example/homeroom"
secret = "0123456789abcdef-shared"
"""


def test_a_good_file(tmp_path: Path) -> None:
    (tmp_path / "smtp-password").write_text("s3cret\n")
    config = config_from_text("server.toml", GOOD, tmp_path)
    assert config.lost.interval_seconds == 60 and config.lost.evidence_keep_days == 14
    assert config.lost.notice == DEFAULT_NOTICE
    assert config.smtp is not None and config.smtp.password == "s3cret" and config.smtp.security == "starttls"
    assert "s3cret" not in repr(config)  # never in a log line
    principal, hook = config.notify.recipients
    assert principal.covers("Lincoln High") and not principal.covers("Roosevelt Elementary")
    assert hook.covers("Roosevelt Elementary") and hook.channel == "webhook"
    assert config.notify.retry_first_seconds == 10


@pytest.mark.parametrize(
    ("change", "line", "said"),
    [
        (
            ("interval_seconds = 60", "interval_seconds = 5"),
            3,
            "[lost] interval_seconds must be between 30 and 3600",
        ),
        (("port = 587", "prot = 587"), 8, "unknown key 'prot' in [smtp]"),
        (
            ('email = "principal@lincoln.example"', 'email = "principal"'),
            16,
            "[[recipient]] email must be one e-mail",
        ),
        (('secret = "0123456789abcdef-shared"', 'secret = "short"'), 20, "needs a secret of at least 16"),
        (('schools = ["*"]', 'schools = "*"'), 20, "[[recipient]] schools must be a list"),
        (("[notify]", "[notifications]"), 13, "unknown section [notifications]"),
    ],
)
def test_each_mistake_names_the_line(tmp_path: Path, change: tuple[str, str], line: int, said: str) -> None:
    (tmp_path / "smtp-password").write_text("x")
    with pytest.raises(ConfigError) as caught:
        config_from_text("server.toml", GOOD.replace(*change), tmp_path)
    assert caught.value.line == line, str(caught.value)
    assert said in str(caught.value)


def test_email_recipients_need_smtp(tmp_path: Path) -> None:
    text = '[[recipient]]\nschools = ["*"]\nemail = "it@district.example"\n'
    with pytest.raises(ConfigError) as caught:
        config_from_text("server.toml", text, tmp_path)
    assert "there is no [smtp] section" in str(caught.value) and caught.value.line == 1


PAYLOAD = {
    "case_id": "7",
    "kind": "stolen",
    "status": "confirmed_stolen",
    "event": "status",
    "by": "root@it-desk",
    "at": "2026-12-01T10:00:00+00:00",
    "note": "police report filed",
    "device": {
        "serial": "5CG1234XYZ",
        "asset_tag": "LHS-0042",
        "manufacturer": "HP",
        "model": "HP ProBook 440 G8",
        "hostname": "student-lt042\r\nBcc: everyone@example.org",
        "school": "Lincoln High",
        "assigned_user": "ada",
        "last_seen_at": "2026-12-01T09:58:00+00:00",
    },
    "last_network": {
        "collected_at": "2026-12-01T09:58:00+00:00",
        "public_address": "203.0.113.9",
        "seen_near": "seen near Lincoln High, Library",
    },
    "report": {
        "reporter": "rossi",
        "reporter_name": "Maria Rossi",
        "contact": "rossi@lincoln.example",
        "what_happened": "Left in the library.\nGone ten minutes later.",
        "police_report": "PD-2026-1182",
        "last_seen_where": "library",
        "last_seen_at": None,
        "kind": "stolen",
        "made_at": "2026-12-01T09:00:00+00:00",
    },
}


def test_the_email_says_what_the_risk_office_needs_and_no_header_is_forged() -> None:
    made = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    message = messages.email_message(
        PAYLOAD, 41, "homeroom@district.example", "risk@district.example", made, "hr.example"
    )
    assert message["Subject"] == "Homeroom: laptop 5CG1234XYZ, asset tag LHS-0042 confirmed stolen (case 7)"
    assert message["Message-ID"] == "<homeroom-notification-41@hr.example>"
    assert message["Bcc"] is None
    body = message.get_content()
    for expected in (
        "5CG1234XYZ",
        "LHS-0042",
        "HP ProBook 440 G8",
        "Assigned user:  ada",
        "Last seen:      2026-12-01T09:58:00+00:00",
        "203.0.113.9, seen near Lincoln High, Library",
        "PD-2026-1182",
        "police report filed",
        "  Gone ten minutes later.",
    ):
        assert expected in body, expected
    assert "student-lt042\\r\\nBcc: everyone@example.org" in body  # escaped, on one line


def test_the_webhook_is_json_signed_over_timestamp_and_body() -> None:
    body = messages.webhook_body(PAYLOAD, 41)
    assert body == messages.webhook_body(PAYLOAD, 41)  # the same bytes on every attempt
    document = json.loads(body)
    assert document["type"] == "homeroom.lost_case" and document["delivery"] == "41"
    assert document["device"]["asset_tag"] == "LHS-0042"
    headers = messages.webhook_headers("shared-secret-0123", 1764583200, body, 41)
    expected = hmac.new(b"shared-secret-0123", b"1764583200." + body, hashlib.sha256).hexdigest()
    assert headers["X-Homeroom-Signature"] == f"sha256={expected}"
    assert headers["X-Homeroom-Timestamp"] == "1764583200" and headers["X-Homeroom-Delivery"] == "41"
    assert messages.signature_valid("shared-secret-0123", "1764583200", body, headers["X-Homeroom-Signature"])
    assert not messages.signature_valid(
        "another-secret-000", "1764583200", body, headers["X-Homeroom-Signature"]
    )
    assert not messages.signature_valid(
        "shared-secret-0123", "1764583201", body, headers["X-Homeroom-Signature"]
    )


def test_retries_back_off_doubling_up_to_the_limit() -> None:
    assert [backoff_seconds(n, 30, 3600) for n in (1, 2, 3, 4, 8, 9, 500)] == [
        30,
        60,
        120,
        240,
        3600,
        3600,
        3600,
    ]


def test_evidence_is_due_keep_days_after_the_case_closed_never_while_open() -> None:
    closed = datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert not evidence_expired(None, closed + timedelta(days=999), 30)
    assert not evidence_expired(closed, closed + timedelta(days=29, hours=23), 30)
    assert evidence_expired(closed, closed + timedelta(days=30), 30)
    assert evidence_expired(
        closed.replace(tzinfo=None), closed + timedelta(days=31), 30
    )  # as SQLite returns it
    assert evidence_expired(closed, closed, 0)
