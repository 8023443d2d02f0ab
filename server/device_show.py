"""What `homeroom-server devices show HOST` prints: the whole device, as the console's device page.

Every value a laptop sent passes through `server.terminal.printable` (or `cell`), so a hostname or
an app name holding escape sequences, newlines or bidi overrides is shown, never obeyed.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from server.fleet.device_record import DeviceRecord
from server.terminal import cell, printable

SHOWN_HISTORY = 20
SHOWN_AUDIT = 20


def _pairs(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"  {name + ':':<20} {printable(value)}" for name, value in pairs if value]


def as_text(record: DeviceRecord) -> str:
    lines = [f"{printable(record.hostname)} ({record.id})", "", "Identity"]
    lines += _pairs(
        [
            ("School", f"{record.school} ({record.audience} laptop)"),
            ("Serial", record.serial or "not read yet"),
            ("Asset tag", record.asset_tag),
            ("Hardware UUID", record.hardware_uuid),
            ("Model", f"{record.manufacturer} {record.model}".strip()),
            ("Operating system", f"{record.os} {record.os_version}"),
            ("Agent version", record.agent_version),
            ("Network adapters", ", ".join(record.macs)),
            ("Users seen", ", ".join(record.users) or "no user has signed in yet"),
            ("Enrolled", record.enrolled_at),
            ("Last seen", record.last_seen),
            ("Key replaced", record.key_replaced_at),
            ("Identity collides", record.identity_collision),
            ("Lost", record.lost_status),
            (
                "Overall",
                record.overall + (f" (report of {record.reported_at})" if record.reported_at else ""),
            ),
        ]
    )
    lines += ["", "Requirements"]
    for result in record.results:
        said = result.cell.summary or result.cell.text
        lines.append(f"  {cell(result.title, 20)} {cell(result.cell.status, 12)} {printable(said)}")
        if result.remediation and result.cell.status != "pass":
            lines.append(f"  {'':<20} {'':<12} fix: {printable(result.remediation)}")
    lines += ["", f"Software ({len(record.software)} items, {record.unapproved_apps} not approved)"]
    for app in [app for app in record.software if app.unapproved]:
        standing = "blocked" if app.standing == "blocked" else "not approved"
        lines.append(
            f"  {cell(standing, 12)} {cell(app.name, 32)} {cell(app.version, 20)} {printable(app.publisher)}"
        )
    lines += ["", "Sign-offs"]
    if not record.signoff_status:
        lines.append("  no user has signed in on this laptop yet")
    for status in record.signoff_status:
        lines.append(f"  {cell(status.user, 20)} {cell(status.status, 16)} {printable(status.note)}")
    for signoff in record.signoffs:
        decision = "agreed" if signoff.decision == "agree" else "did not agree"
        lines.append(
            f"  {signoff.decided_at[:16]:<16} {cell(signoff.user, 20)} {cell(decision, 14)} "
            f"{cell(signoff.full_name, 24)} {printable(signoff.policy_id)} {signoff.policy_version[:12]}"
        )
    lines += ["", f"Recent history (newest {SHOWN_HISTORY})"]
    lines += [f"  {m.at[:16]:<16} {m.kind:<9} {printable(m.text)}" for m in record.history[:SHOWN_HISTORY]]
    if not record.history:
        lines.append("  nothing yet")
    lines += ["", f"Audit entries (newest {SHOWN_AUDIT})"]
    for entry in record.audit[:SHOWN_AUDIT]:
        detail = json.dumps(entry["detail"], ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
        who, what = cell(entry["actor"], 28), cell(entry["action"], 24)
        lines.append(f"  {entry['at'][:16]:<16} {who} {what} {printable(detail)}")
    if not record.audit:
        lines.append("  none")
    return "\n".join(lines) + "\n"


def as_json(record: DeviceRecord) -> dict[str, Any]:
    return asdict(record)
