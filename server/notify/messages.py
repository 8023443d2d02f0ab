"""What a notification says: the e-mail (subject and plain text) and the webhook's JSON body and
signature, made from the facts frozen when the event happened. Pure: no clock, no network.

Text from laptops (hostnames, a typed "what happened") goes into headers and bodies escaped
(server.terminal.printable), so a hostname with a line break cannot add a header to the e-mail.

The webhook is signed as Stripe and GitHub sign theirs, so receivers can use what they know:
`X-Homeroom-Timestamp: <unix seconds>` and `X-Homeroom-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>.<body>" with the shared secret>`; a receiver refuses a timestamp far from its clock
(a replayed delivery) and compares the signature in constant time. `X-Homeroom-Delivery` is the
same for every attempt of one notification: a receiver that sees it twice has it already.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from server.terminal import printable

STATUS_WORDS = {
    "reported": "reported lost or stolen",
    "confirmed_lost": "confirmed lost",
    "confirmed_stolen": "confirmed stolen",
    "recovered": "recovered",
    "written_off": "written off",
}
EVENT_WORDS = {
    "reported": "A user reported a laptop {kind}",
    "opened": "IT marked a laptop {kind}",
    "status": "A lost laptop's case changed: {status}",
}


def _one_line(value: object) -> str:
    return printable(value)[:200]


def _shown(value: object) -> str:
    return "—" if value in (None, "") else printable(value)


def subject(payload: dict[str, Any]) -> str:
    device = payload["device"]
    tag = f", asset tag {_one_line(device['asset_tag'])}" if device.get("asset_tag") else ""
    return (
        f"Homeroom: laptop {_one_line(device.get('serial') or device.get('hostname'))}{tag} "
        f"{STATUS_WORDS.get(payload['status'], payload['status'])} (case {payload['case_id']})"
    )


def text_body(payload: dict[str, Any]) -> str:
    device, network, report = payload["device"], payload.get("last_network"), payload.get("report")
    headline = EVENT_WORDS.get(payload["event"], "{status}").format(
        kind=payload.get("kind", "lost"), status=STATUS_WORDS.get(payload["status"], payload["status"])
    )
    lines = [
        f"{headline}.",
        "",
        f"Case:           {payload['case_id']} ({STATUS_WORDS.get(payload['status'], payload['status'])})",
        f"Changed by:     {_shown(payload.get('by'))} at {_shown(payload.get('at'))}",
    ]
    if payload.get("note"):
        lines.append(f"Note:           {_shown(payload['note'])}")
    lines += [
        "",
        f"Serial number:  {_shown(device.get('serial'))}",
        f"Asset tag:      {_shown(device.get('asset_tag'))}",
        f"Make and model: {_shown(device.get('manufacturer'))} {_shown(device.get('model'))}",
        f"Hostname:       {_shown(device.get('hostname'))}",
        f"School:         {_shown(device.get('school'))}",
        f"Assigned user:  {_shown(device.get('assigned_user'))}",
        f"Last seen:      {_shown(device.get('last_seen_at'))}",
    ]
    if network:
        near = f", {network['seen_near']}" if network.get("seen_near") else ""
        lines.append(
            f"Last network:   {_shown(network.get('public_address'))}{near} "
            f"(at {_shown(network.get('collected_at'))})"
        )
    else:
        lines.append("Last network:   none reported since the case opened (lost mode reports it)")
    if report:
        lines += [
            "",
            f"Reported by:    {_shown(report.get('reporter_name'))} ({_shown(report.get('reporter'))}), "
            f"contact {_shown(report.get('contact'))}",
            f"Last seen:      {_shown(report.get('last_seen_at'))}, {_shown(report.get('last_seen_where'))}",
            f"Police report:  {_shown(report.get('police_report'))}",
            "What happened:",
            *("  " + printable(line) for line in str(report.get("what_happened") or "—").splitlines()),
        ]
    lines += ["", "`homeroom-server devices lost --case " + str(payload["case_id"]) + "` shows the timeline."]
    return "\n".join(lines) + "\n"


def email_message(
    payload: dict[str, Any], notification_id: int, sender: str, recipient: str, made_at: datetime, domain: str
) -> EmailMessage:
    """One message for one recipient. Its Message-ID is the notification's own, the same on every
    attempt, so a copy sent twice (see architecture.md) is recognisably one message."""
    message = EmailMessage()
    message["Subject"] = subject(payload)
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = format_datetime(made_at)
    message["Message-ID"] = f"<homeroom-notification-{notification_id}@{domain}>"
    message.set_content(text_body(payload))
    return message


def webhook_body(payload: dict[str, Any], notification_id: int) -> bytes:
    """The JSON sent, byte for byte the same on every attempt."""
    document = {"type": "homeroom.lost_case", "delivery": str(notification_id), **payload}
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def webhook_headers(secret: str, timestamp: int, body: bytes, notification_id: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "Homeroom-Server",
        "X-Homeroom-Timestamp": str(timestamp),
        "X-Homeroom-Signature": webhook_signature(secret, timestamp, body),
        "X-Homeroom-Delivery": str(notification_id),
    }


def signature_valid(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver checks (also used by the tests' receiver): the HMAC, in constant time."""
    if not timestamp.isdigit():
        return False
    return hmac.compare_digest(webhook_signature(secret, int(timestamp), body), signature)
