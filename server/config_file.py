"""server.toml: the settings a district edits by hand (lost mode, SMTP, who is notified).

It lives in the data directory (or wherever HOMEROOM_CONFIG points) and is optional: without
it lost mode uses the defaults and nobody is notified. A mistake is the file, the line and the
fix (contract.config_files), and `homeroom-server serve` refuses to start on one, so a typo in
a recipient's address is found when the server starts, not when a laptop is stolen.

    [lost]
    interval_seconds = 120         # how often a laptop in lost mode reports
    evidence_keep_days = 30        # evidence is deleted this long after the case closes
    notice = "This laptop belongs to ... Please return it to ..."

    [smtp]
    host = "smtp.district.example"
    port = 587
    security = "starttls"          # starttls | tls | none
    username = "homeroom"
    password_file = "/etc/homeroom/smtp-password"
    sender = "homeroom@district.example"

    [notify]
    retry_first_seconds = 30       # the first retry after a failed send; doubling up to:
    retry_max_seconds = 3600

    [[recipient]]
    schools = ["Lincoln High"]     # device groups; "*" is every school
    email = "principal@lincoln.example"

    [[recipient]]
    schools = ["*"]
    webhook = "https://risk.district.example/homeroom"
    secret = "a long shared secret"
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from contract.config_files import (
    Schema,
    int_range,
    number_range,
    one_of,
    parse_toml,
    quoted_string,
    read_config_text,
    validate,
)
from contract.errors import ConfigError
from contract.lost import DEFAULT_INTERVAL_SECONDS, MAX_INTERVAL_SECONDS, MIN_INTERVAL_SECONDS, NOTICE_MAX

CONFIG_VARIABLE = "HOMEROOM_CONFIG"
CONFIG_NAME = "server.toml"

DEFAULT_NOTICE = (
    "This laptop belongs to the school district and has been reported lost. "
    "Please return it to the school office, or to any school of the district."
)

Security = Literal["starttls", "tls", "none"]
_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


@dataclass(frozen=True)
class LostConfig:
    interval_seconds: int = DEFAULT_INTERVAL_SECONDS
    evidence_keep_days: int = 30
    notice: str = DEFAULT_NOTICE


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    sender: str
    port: int = 587
    security: Security = "starttls"
    username: str = ""
    password: str = field(default="", repr=False)
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class Recipient:
    """One address or one webhook, for the schools (device groups) named; "*" is every school."""

    schools: tuple[str, ...]
    email: str | None = None
    webhook: str | None = None
    secret: str = field(default="", repr=False)

    def covers(self, group: str) -> bool:
        return "*" in self.schools or group in self.schools

    @property
    def channel(self) -> Literal["email", "webhook"]:
        return "email" if self.email else "webhook"

    @property
    def address(self) -> str:
        return self.email or self.webhook or ""


@dataclass(frozen=True)
class NotifyConfig:
    retry_first_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    # How often the sender looks for due notifications, and how long a process that took one may
    # try before another process may take it (one that died mid-send leaves it to the next).
    poll_seconds: float = 5.0
    lease_seconds: float = 120.0
    recipients: tuple[Recipient, ...] = ()


@dataclass(frozen=True)
class ServerConfig:
    lost: LostConfig = field(default_factory=LostConfig)
    smtp: SmtpConfig | None = None
    notify: NotifyConfig = field(default_factory=NotifyConfig)


def _text(maximum: int) -> Any:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"must be a quoted string, not {type(value).__name__}"
        if len(value) > maximum:
            return f"is {len(value)} characters long: keep it to {maximum}"
        return None

    return check


def _email(value: Any) -> str | None:
    if not isinstance(value, str) or not _EMAIL.match(value):
        return f"must be one e-mail address (name@example.org), not {value!r}"
    return None


def _url(value: Any) -> str | None:
    if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+", value):
        return f"must be an http:// or https:// address, not {value!r}"
    return None


def _schools(value: Any) -> str | None:
    if not isinstance(value, list) or not value or not all(isinstance(s, str) and s for s in value):
        return 'must be a list of school (device group) names, or ["*"] for every school'
    return None


SCHEMA: Schema = {
    "lost": {
        "interval_seconds": (
            int_range(MIN_INTERVAL_SECONDS, MAX_INTERVAL_SECONDS),
            f"seconds between a lost laptop's reports, {MIN_INTERVAL_SECONDS} to {MAX_INTERVAL_SECONDS}",
        ),
        "evidence_keep_days": (int_range(0, 3650), "days to keep evidence after a case closes, e.g. 30"),
        "notice": (_text(NOTICE_MAX), "the message a lost laptop shows, in quotes"),
    },
    "smtp": {
        "host": (quoted_string, 'the mail server\'s name, e.g. "smtp.district.example"'),
        "port": (int_range(1, 65535), "usually 587 (starttls), 465 (tls) or 25"),
        "security": (one_of("starttls", "tls", "none"), 'write "starttls", "tls" or "none"'),
        "username": (quoted_string, "the account to sign in to the mail server as, or leave it out"),
        "password_file": (quoted_string, "the path of a file holding the password (keep it 0600)"),
        "sender": (_email, 'the From address, e.g. "homeroom@district.example"'),
        "timeout_seconds": (number_range(1, 300), "seconds to wait for the mail server, e.g. 30"),
    },
    "notify": {
        "retry_first_seconds": (number_range(0.1, 86400), "seconds before the first retry, e.g. 30"),
        "retry_max_seconds": (number_range(0.1, 86400), "the longest wait between retries, e.g. 3600"),
        "poll_seconds": (number_range(0.1, 3600), "how often to look for notifications to send, e.g. 5"),
        "lease_seconds": (number_range(1, 86400), "how long one attempt may take, e.g. 120"),
    },
}

RECIPIENT_SCHEMA = {
    "schools": (_schools, 'schools = ["Lincoln High"] or ["*"]'),
    "email": (_email, 'email = "principal@lincoln.example"'),
    "webhook": (_url, 'webhook = "https://risk.district.example/homeroom"'),
    "secret": (_text(500), "the secret shared with the webhook's receiver, at least 16 characters"),
}


def config_path(data_dir: Path) -> Path:
    return Path(os.environ.get(CONFIG_VARIABLE) or data_dir / CONFIG_NAME)


def load_config(data_dir: Path) -> ServerConfig:
    """The data directory's server.toml (or HOMEROOM_CONFIG's); the defaults when there is none."""
    path = config_path(data_dir)
    if not path.exists() and CONFIG_VARIABLE not in os.environ:
        return ServerConfig()
    return config_from_text(str(path), read_config_text(path), path.parent)


def _recipient_lines(text: str) -> list[int]:
    return [
        n
        for n, line in enumerate(text.splitlines(), start=1)
        if re.match(r"^\s*\[\[\s*recipient\s*\]\]", line)
    ]


def config_from_text(name: str, text: str, base: Path) -> ServerConfig:
    data = parse_toml(name, text)
    recipients_raw = data.pop("recipient", [])
    validate(name, text, data, SCHEMA)
    lost = LostConfig(**data.get("lost", {}))
    smtp = _smtp(name, text, data.get("smtp"), base)
    lines = _recipient_lines(text)
    if not isinstance(recipients_raw, list):
        raise ConfigError(
            name, None, "recipient must be a list of [[recipient]] tables", "write [[recipient]]"
        )
    recipients = tuple(
        _recipient(name, lines[i] if i < len(lines) else None, raw) for i, raw in enumerate(recipients_raw)
    )
    if smtp is None:
        for i, recipient in enumerate(recipients):
            if recipient.email:
                raise ConfigError(
                    name,
                    lines[i] if i < len(lines) else None,
                    f"recipient {recipient.email} is an e-mail address, and there is no [smtp] section",
                    "add [smtp] with host and sender, or make it a webhook",
                )
    notify = NotifyConfig(**data.get("notify", {}), recipients=recipients)
    if notify.retry_max_seconds < notify.retry_first_seconds:
        raise ConfigError(
            name,
            None,
            "[notify] retry_max_seconds is shorter than retry_first_seconds",
            "make retry_max_seconds at least retry_first_seconds",
        )
    return ServerConfig(lost=lost, smtp=smtp, notify=notify)


def _smtp(name: str, text: str, raw: dict[str, Any] | None, base: Path) -> SmtpConfig | None:
    if raw is None:
        return None
    for required in ("host", "sender"):
        if required not in raw:
            raise ConfigError(name, None, f"[smtp] has no {required}", SCHEMA["smtp"][required][1])
    values = dict(raw)
    password = ""
    password_file = values.pop("password_file", None)
    if password_file:
        path = Path(password_file) if Path(password_file).is_absolute() else base / password_file
        password = read_config_text(path).strip()
    return SmtpConfig(password=password, **values)


def _recipient(name: str, line: int | None, raw: Any) -> Recipient:
    if not isinstance(raw, dict):
        raise ConfigError(
            name, line, "a [[recipient]] must be a table", "write [[recipient]] and key = value lines"
        )
    for key, value in raw.items():
        if key not in RECIPIENT_SCHEMA:
            raise ConfigError(
                name,
                line,
                f"unknown key {key!r} in [[recipient]]",
                f"use one of: {', '.join(RECIPIENT_SCHEMA)}",
            )
        validator, fix = RECIPIENT_SCHEMA[key]
        problem = validator(value)
        if problem:
            raise ConfigError(name, line, f"[[recipient]] {key} {problem}", fix)
    if "schools" not in raw:
        raise ConfigError(name, line, "a [[recipient]] has no schools", RECIPIENT_SCHEMA["schools"][1])
    if ("email" in raw) == ("webhook" in raw):
        raise ConfigError(
            name,
            line,
            "a [[recipient]] needs exactly one of email or webhook",
            "write one [[recipient]] for each",
        )
    secret = raw.get("secret", "")
    if "webhook" in raw and len(secret) < 16:
        raise ConfigError(
            name,
            line,
            "a webhook [[recipient]] needs a secret of at least 16 characters "
            "(its receiver checks the signature)",
            'secret = "…" (python3 -c "import secrets; print(secrets.token_urlsafe(32))")',
        )
    return Recipient(
        schools=tuple(raw["schools"]), email=raw.get("email"), webhook=raw.get("webhook"), secret=secret
    )
