"""The daily e-mail to IT listing laptops that stopped reporting.

This module builds the message (pure); `homeroom-server digest` sends it through the same SMTP
settings (server.toml's [smtp]) and code (`server.notify.sender.send_email`) as the lost-laptop
notifications, in one SMTP session. Run daily by a systemd timer or cron; a run with nothing
silent sends nothing. It is not queued: the next day's run sends it again if this one failed.
Hostnames come from laptops, so they are escaped (server.terminal) before they reach a mail
client: a newline in one cannot forge a line, and no device text goes in a header.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from server.fleet.silence import SilentDevice
from server.terminal import printable


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
