"""The daily e-mail to IT listing laptops that stopped reporting, sent with smtplib.

No notifications queue exists in this tree yet (the lost-device work brings one): this module
builds the message (pure) and hands it to the district's mail server in one SMTP session. Run
daily by cron or a systemd timer (`homeroom-server digest …`); a run with nothing silent sends
nothing. Hostnames come from laptops, so they are escaped (server.terminal) before they reach a
mail client: a newline in one cannot forge a line, and no device text goes in a header.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from server.fleet.silence import SilentDevice
from server.terminal import printable

SECURITY_CHOICES = ("starttls", "tls", "none")
SMTP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str = "starttls"  # "tls": SMTP over TLS from the first byte (port 465); "none": a test server
    username: str = ""
    password: str = ""


def digest_message(
    devices: Sequence[SilentDevice], now: datetime, days: int, sender: str, recipients: Sequence[str]
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"Homeroom: {len(devices)} laptop{'s' if len(devices) != 1 else ''} not reporting"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain="homeroom")
    lines = [
        f"These laptops have not reported for more than {days} days (as of {now:%Y-%m-%d %H:%M} UTC).",
        "A laptop that is switched off, lost, wiped or whose agent was stopped looks the same from the",
        "server: please find out which. `homeroom-server devices` shows them all.",
        "",
    ]
    group = None
    for device in devices:
        if device.group != group:
            group = device.group
            lines += ["", f"{printable(group)}:"]
        seen = device.last_seen.strftime("%Y-%m-%d") if device.last_seen else "never since enrolment"
        silent = device.silent_for_days(now)
        for_days = f", {silent} days" if silent is not None else ""
        serial = f", serial {printable(device.serial)}" if device.serial else ""
        lines.append(
            f"  {printable(device.hostname)} (last seen {seen}{for_days}{serial}; id {device.device_id})"
        )
    message.set_content("\n".join(lines) + "\n")
    return message


def send(message: EmailMessage, smtp: SmtpSettings) -> None:
    """One SMTP session; refusals and an unreachable server raise smtplib's or OSError's errors."""
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if smtp.security == "tls":
        client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=SMTP_TIMEOUT_SECONDS, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=SMTP_TIMEOUT_SECONDS)
    with client:
        if smtp.security == "starttls":
            client.starttls(context=context)
        if smtp.username:
            client.login(smtp.username, smtp.password)
        client.send_message(message)
