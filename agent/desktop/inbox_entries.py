"""What an inbox entry must look like before the service acts on it: pure, bytes in, entry or reason out.

Anyone with an account on the laptop can put a file in the inbox, so every field is checked here
against what the server will accept (types, lengths, encodable UTF-8, nesting depth), and the
entry is rebuilt from the checked fields only. Whatever passes can be queued, logged and sent
without raising; whatever does not gets a short reason that names no content (the content is the
attacker's).
"""

from __future__ import annotations

import json
import math
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.checks import CHECKS
from agent.checks.results import Status
from contract.approvals import APP_MAX, NAME_MAX, PUBLISHER_MAX, REASON_MAX, text_problem
from contract.lost import (
    CONTACT_MAX,
    DEVICE_BY,
    DEVICE_VALUE_MAX,
    POLICE_REPORT_MAX,
    REPORTER_NAME_MAX,
    WHAT_HAPPENED_MAX,
    WHERE_MAX,
)
from contract.lost import (
    KINDS as LOST_KINDS,
)

KINDS = frozenset({"signoff", "user_results", "check_now", "approval_request", "lost_report"})
MAX_ENTRY_BYTES = 256 * 1024
# The deepest an honest entry goes is {"results": [{"evidence": {key: [ {…} ]}}]}; the JSON parser
# recurses per level, and a document 100,000 levels deep would raise RecursionError inside it.
MAX_DEPTH = 10
MAX_RESULTS = len(CHECKS)
MAX_EVIDENCE_KEYS = 100
ENTRY_NAME = re.compile(
    r"^(signoff|user_results|check_now|approval_request|lost_report)-[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.json$"
)
RECORD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SENT_RECORD_ID = re.compile(r"^[0-9a-fA-F-]{8,64}$")  # what the server takes as a record id
POLICY_VERSION = re.compile(r"^[0-9a-f]{64}$")
ACCOUNT = re.compile(r"^[^\x00-\x1f\x7f/\\:]{1,200}$")  # POSIX and Windows account names alike
USER_CHECK_IDS = frozenset(spec.id for spec in CHECKS if spec.where == "user")


@dataclass(frozen=True)
class InboxEntry:
    path: Path
    kind: str
    user: str
    data: dict[str, Any]


class Refused(ValueError):
    """Why an entry is not acted on; the message is safe to log."""


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest, counted without parsing (strings are skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _text(value: object, field: str, max_length: int, min_length: int = 1) -> str:
    if not isinstance(value, str):
        raise Refused(f"{field} is not a string")
    if not min_length <= len(value) <= max_length:
        raise Refused(f"{field} must be {min_length}-{max_length} characters")
    _encodable(value, field)
    return value


def _encodable(value: str, field: str) -> None:
    """A lone surrogate (valid in JSON's \\u escapes, not in UTF-8) or a NUL cannot be stored or sent."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Refused(f"{field} is not valid Unicode") from None
    if "\x00" in value:
        raise Refused(f"{field} holds a NUL character")


def _plain_json(value: object, field: str) -> None:
    """Every string (keys too) encodable; numbers finite. Depth is already bounded by json_depth."""
    if isinstance(value, str):
        _encodable(value, field)
    elif isinstance(value, float) and not math.isfinite(value):
        raise Refused(f"{field} holds a non-finite number")
    elif isinstance(value, dict):
        for key, item in value.items():
            _encodable(key, field)
            _plain_json(item, field)
    elif isinstance(value, list):
        for item in value:
            _plain_json(item, field)


def _signoff(data: dict[str, Any]) -> dict[str, Any]:
    decided_at = _text(data.get("decided_at"), "decided_at", 40)
    try:
        parsed = datetime.fromisoformat(decided_at)
    except ValueError:
        raise Refused("decided_at is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise Refused("decided_at has no time zone")
    record_id = _text(data.get("record_id"), "record_id", 64)
    if not RECORD_ID.match(record_id):
        raise Refused("record_id must be letters, digits, '-' or '_'")
    policy_version = _text(data.get("policy_version"), "policy_version", 64)
    if not POLICY_VERSION.match(policy_version):
        raise Refused("policy_version is not a SHA-256")
    decision = data.get("decision")
    if decision not in ("agree", "decline"):
        raise Refused("decision must be 'agree' or 'decline'")
    device_id = data.get("device_id")
    if device_id is not None:
        _text(device_id, "device_id", 64)
    return {
        "record_id": record_id,
        "user": data["user"],
        "full_name": _text(data.get("full_name", ""), "full_name", 200, min_length=0),
        "device_id": device_id,
        "policy_id": _text(data.get("policy_id"), "policy_id", 100),
        "policy_version": policy_version,
        "decision": decision,
        "decided_at": decided_at,
    }


def _aware_time(value: object, field: str) -> str:
    text = _text(value, field, 40)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise Refused(f"{field} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise Refused(f"{field} has no time zone")
    return text


def _request_text(data: dict[str, Any], field: str, maximum: int, required: bool, lines: bool = False) -> str:
    """The contract's rules (length, no control characters), the same the tray's form and the server use."""
    value = _text(data.get(field, ""), field, maximum, min_length=0)
    if required and not value.strip():
        raise Refused(f"{field} is empty")
    wrong = text_problem(value, field, maximum, allow_lines=lines)
    if wrong:
        raise Refused(wrong)
    return value


def _approval_request(data: dict[str, Any]) -> dict[str, Any]:
    record_id = _text(data.get("record_id"), "record_id", 64)
    if not SENT_RECORD_ID.match(record_id):
        raise Refused("record_id must be 8-64 hexadecimal digits or '-'")
    return {
        "record_id": record_id,
        "user": data["user"],
        "app": _request_text(data, "app", APP_MAX, required=True),
        "publisher": _request_text(data, "publisher", PUBLISHER_MAX, required=False),
        "reason": _request_text(data, "reason", REASON_MAX, required=True, lines=True),
        "full_name": _request_text(data, "full_name", NAME_MAX, required=True),
        "requested_at": _aware_time(data.get("requested_at"), "requested_at"),
    }


def _lost_report(data: dict[str, Any]) -> dict[str, Any]:
    """contract/lost.py's limits; whether the fields make a report worth sending (an empty one, a
    name without letters) is judged again by the service with the form's own rules."""
    record_id = _text(data.get("record_id"), "record_id", 64)
    if not SENT_RECORD_ID.match(record_id):
        raise Refused("record_id must be 8-64 hexadecimal digits or '-'")
    device_by = data.get("device_by")
    if device_by not in DEVICE_BY:
        raise Refused("device_by is not one of this, serial, asset_tag, hostname")
    loss = data.get("loss")
    if loss not in (*LOST_KINDS, ""):
        raise Refused("loss must be 'lost' or 'stolen'")
    last_seen_at = data.get("last_seen_at")
    police = data.get("police_report")
    return {
        "record_id": record_id,
        "user": data["user"],
        "made_at": _aware_time(data.get("made_at"), "made_at"),
        "device_by": device_by,
        "device_value": _request_text(data, "device_value", DEVICE_VALUE_MAX, required=False),
        "loss": loss,
        "last_seen_at": None if last_seen_at is None else _aware_time(last_seen_at, "last_seen_at"),
        "last_seen_where": _request_text(data, "last_seen_where", WHERE_MAX, required=False, lines=True),
        "what_happened": _request_text(data, "what_happened", WHAT_HAPPENED_MAX, required=False, lines=True),
        "police_report": None
        if police is None
        else _request_text(data, "police_report", POLICE_REPORT_MAX, required=False),
        "reporter_name": _request_text(data, "reporter_name", REPORTER_NAME_MAX, required=False),
        "contact": _request_text(data, "contact", CONTACT_MAX, required=False),
    }


def _result(item: object, index: int) -> dict[str, Any]:
    field = f"results[{index}]"
    if not isinstance(item, dict):
        raise Refused(f"{field} is not an object")
    check_id = item.get("id")
    if check_id not in USER_CHECK_IDS:
        raise Refused(f"{field} is not a check the user's session runs")
    status = item.get("status")
    if status not in {s.value for s in Status}:
        raise Refused(f"{field}.status is not a status")
    evidence = item.get("evidence") or {}
    if not isinstance(evidence, dict) or len(evidence) > MAX_EVIDENCE_KEYS:
        raise Refused(f"{field}.evidence must be an object of at most {MAX_EVIDENCE_KEYS} keys")
    for key in evidence:
        _text(key, f"{field}.evidence key", 100)
    _plain_json(evidence, f"{field}.evidence")
    remediation = item.get("remediation")
    if remediation is not None:
        _text(remediation, f"{field}.remediation", 4000, min_length=0)
    duration = item.get("duration_ms", 0)
    if not isinstance(duration, int) or isinstance(duration, bool) or not 0 <= duration <= 3_600_000:
        raise Refused(f"{field}.duration_ms must be 0-3600000")
    return {
        "id": check_id,
        "title": _text(item.get("title"), f"{field}.title", 100),
        "status": status,
        "summary": _text(item.get("summary"), f"{field}.summary", 2000, min_length=0),
        "evidence": evidence,
        "remediation": remediation,
        "duration_ms": duration,
    }


def _user_results(data: dict[str, Any]) -> dict[str, Any]:
    results = data.get("results")
    if not isinstance(results, list) or len(results) > MAX_RESULTS:
        raise Refused(f"results must be a list of at most {MAX_RESULTS}")
    return {"user": data["user"], "results": [_result(item, i) for i, item in enumerate(results)]}


BUILDERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "signoff": _signoff,
    "user_results": _user_results,
    "check_now": lambda data: {"user": data["user"]},
    "approval_request": _approval_request,
    "lost_report": _lost_report,
}


def check_entry(
    name: str,
    mode: int,
    size: int,
    links: int,
    owner_uid: int | None,
    raw: bytes,
    uid_of: Callable[[str], int | None],
) -> InboxEntry | str:
    """The entry, rebuilt from checked fields only, or why it is refused.

    Pure: the caller opened the file without following links, took mode, size, link count and
    owner from that open file, and read at most MAX_ENTRY_BYTES + 1 bytes of it.
    `owner_uid` None means the platform has no owner to compare (Windows: the ACL does that job).
    """
    if not stat.S_ISREG(mode):
        return "not a regular file"
    if links != 1:
        return "a hard link to another file"
    if size > MAX_ENTRY_BYTES or len(raw) > MAX_ENTRY_BYTES:
        return f"larger than {MAX_ENTRY_BYTES} bytes"
    match = ENTRY_NAME.match(name)
    if not match:
        return "not named kind-id.json"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    if json_depth(text) > MAX_DEPTH:
        return f"nested deeper than {MAX_DEPTH} levels"
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return "not JSON"
    if not isinstance(data, dict):
        return "not a JSON object"
    kind = data.get("kind")
    if kind != match.group(1):
        return "its kind does not match its name"
    user = data.get("user")
    if not isinstance(user, str) or not ACCOUNT.match(user):
        return "no valid user"
    try:
        _encodable(user, "user")
    except Refused as exc:
        return str(exc)
    if owner_uid is not None and owner_uid != 0 and uid_of(user) != owner_uid:
        return f"written by uid {owner_uid}, but speaks for {user!a}"
    try:
        fields = BUILDERS[kind](data)
    except Refused as exc:
        return str(exc)
    return InboxEntry(Path(name), kind, user, fields)
