"""Request and response bodies of the agent API.

Every model forbids unknown fields and bounds every string and list, so a
tampered or runaway agent gets a 422 that names the field, never a 500 and
never an unbounded row. No string may hold a NUL character (PostgreSQL's text
and JSONB refuse it, which would be a 500), and free-form evidence is bounded in
depth as well as size. Lone surrogates never get this far: the JSON parser
(`model_validate_json`) refuses them as invalid JSON.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from contract import lost
from contract.approvals import (
    APP_MAX,
    LINES_PATTERN,
    NAME_MAX,
    ONE_LINE_PATTERN,
    PUBLISHER_MAX,
    REASON_MAX,
)
from contract.requirements import CHECK_IDS

CheckId = Literal["disk_encryption", "firewall", "power_on_password", "antivirus", "screen_lock", "software"]
assert set(CheckId.__args__) == set(CHECK_IDS)  # type: ignore[attr-defined]

StatusValue = Literal["pass", "fail", "unknown", "error"]
RecordId = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F-]{8,64}$")]
# Any character but NUL: documented in the schema, so fuzzers and clients see the rule.
NO_NUL = r"^[^\x00]*$"
# Evidence is free-form JSON from the checks; the deepest a check writes today is 3 levels.
MAX_EVIDENCE_DEPTH = 16


def _plain_json(value: Any, depth: int = 1) -> Any:
    """Refuses evidence nested deeper than MAX_EVIDENCE_DEPTH or holding a NUL anywhere."""
    if depth > MAX_EVIDENCE_DEPTH:
        raise ValueError(f"evidence is nested more than {MAX_EVIDENCE_DEPTH} levels deep")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("evidence holds a NUL character")
    elif isinstance(value, dict):
        for key, item in value.items():
            _plain_json(key, depth)
            _plain_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _plain_json(item, depth + 1)
    return value


Short = Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)]
Mac = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IdentityIn(Strict):
    serial: Short | None = None
    hardware_uuid: Annotated[str, StringConstraints(max_length=64, pattern=NO_NUL)] | None = None
    hostname: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=NO_NUL)]
    manufacturer: Short | None = None
    model: Short | None = None
    os: Literal["windows", "macos", "linux"]
    os_version: Short
    machine_id: Annotated[str, StringConstraints(max_length=64, pattern=NO_NUL)] | None = None
    macs: list[Mac] = Field(default_factory=list, max_length=64)
    unreadable: dict[
        Annotated[str, StringConstraints(max_length=40, pattern=NO_NUL)],
        Annotated[str, StringConstraints(max_length=500, pattern=NO_NUL)],
    ] = Field(default_factory=dict, max_length=20)


class EnrolIn(Strict):
    token: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
    public_key: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NO_NUL)]
    identity: IdentityIn
    agent_version: Annotated[str, StringConstraints(max_length=40, pattern=NO_NUL)]


class EnrolOut(BaseModel):
    device_id: str
    group: str
    replaced_key: bool
    server_time: datetime
    # The server's answer-signing key (base64, raw Ed25519): the agent pins it and refuses any
    # later answer not signed by it (contract.wire, "answers").
    server_public_key: str


class ClaimWaitingOut(BaseModel):
    """202: the identity names a known laptop whose record this enrolment may not take over yet."""

    claim_id: int
    device_id: str
    group: str
    waits_for: Literal["quiet", "it"]
    detail: str
    server_time: datetime
    # Pinned now, as with EnrolOut: the claim's key works once accepted, and its answers must be ours.
    server_public_key: str


class CheckResultIn(Strict):
    id: CheckId
    title: Annotated[str, StringConstraints(max_length=100, pattern=NO_NUL)]
    status: StatusValue
    summary: Annotated[str, StringConstraints(max_length=2000, pattern=NO_NUL)]
    evidence: Annotated[
        dict[Annotated[str, StringConstraints(max_length=100, pattern=NO_NUL)], Any],
        AfterValidator(_plain_json),
    ] = Field(default_factory=dict, max_length=100)
    remediation: Annotated[str, StringConstraints(max_length=4000, pattern=NO_NUL)] | None = None
    duration_ms: int = Field(ge=0, le=3_600_000)


class SoftwareItemIn(Strict):
    name: Annotated[str, StringConstraints(max_length=300, pattern=NO_NUL)]
    version: Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)] = ""
    publisher: Annotated[str, StringConstraints(max_length=300, pattern=NO_NUL)] = ""
    source: Annotated[str, StringConstraints(max_length=600, pattern=NO_NUL)] = ""
    # Whether the laptop judged it as an app (False: a library, runtime, update); agents before this
    # field judged every item they sent. `basis` says why, in a few words.
    judged: bool = True
    basis: Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)] = ""


Dropped = dict[Annotated[str, StringConstraints(max_length=40, pattern=NO_NUL)], Annotated[int, Field(ge=0)]]


Account = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]

# What is wrong with the agent's own files (a damaged outbox set aside, a broken local requirements.toml):
# sent once per new problem, kept in the audit log. No NUL: PostgreSQL cannot store it.
LocalProblems = list[Annotated[str, StringConstraints(min_length=1, max_length=300, pattern=r"^[^\x00]*$")]]


class SoftwareChangesIn(Strict):
    """What was installed or removed since the agent's last inventory (an update is both)."""

    added: list[SoftwareItemIn] = Field(default_factory=list, max_length=10_000)
    removed: list[SoftwareItemIn] = Field(default_factory=list, max_length=10_000)
    since: datetime
    seen_by: Literal["watch", "schedule"]


class ReportIn(Strict):
    report_id: RecordId
    reported_at: datetime
    agent_version: Annotated[str, StringConstraints(max_length=40, pattern=NO_NUL)]
    identity: IdentityIn
    results: list[CheckResultIn] = Field(max_length=len(CHECK_IDS))
    software: list[SoftwareItemIn] = Field(default_factory=list, max_length=10_000)
    dropped: Dropped = Field(default_factory=dict, max_length=20)
    local_problems: LocalProblems = Field(default_factory=list, max_length=20)
    # Accounts that have logged in on this laptop: who ought to have signed the policy.
    users: list[Account] = Field(default_factory=list, max_length=100)
    audience: Literal["staff", "student"] | None = None
    software_changes: SoftwareChangesIn | None = None


class ReportOut(BaseModel):
    report_id: str
    stored: bool
    duplicate: bool


class RefusedAnswersIn(Strict):
    """Answers the agent refused since it last said so: not signed by the key it pinned."""

    count: Annotated[int, Field(ge=1, le=1_000_000_000)]
    first_at: datetime
    last_at: datetime
    last_reason: Annotated[str, StringConstraints(max_length=500)]
    server_url: Annotated[str, StringConstraints(max_length=500)]


class HeartbeatIn(Strict):
    heartbeat_id: RecordId
    sent_at: datetime
    agent_version: Annotated[str, StringConstraints(max_length=40, pattern=NO_NUL)]
    overall: Literal["pass", "fail", "unknown", "error", "none"]
    requirements_etag: Annotated[str, StringConstraints(max_length=64, pattern=NO_NUL)] | None = None
    policies_etag: Annotated[str, StringConstraints(max_length=64, pattern=NO_NUL)] | None = None
    refused_answers: RefusedAnswersIn | None = None
    dropped: Dropped = Field(default_factory=dict, max_length=20)
    local_problems: LocalProblems = Field(default_factory=list, max_length=20)


class RequirementsOut(BaseModel):
    etag: str
    content: str


class CommandOut(BaseModel):
    id: int
    command: str


class PolicyOut(BaseModel):
    audience: Literal["staff", "student"]
    policy_id: str
    version: str
    content: str


class PoliciesOut(BaseModel):
    etag: str
    documents: list[PolicyOut]


class ApprovalAnswerOut(BaseModel):
    """IT's answer to a request to approve an app, handed to the laptop that asked."""

    request_id: str
    app: str
    decision: Literal["approved", "declined"]
    message: str
    decided_at: datetime


class LostModeOut(BaseModel):
    """contract/lost.py: the laptop is in lost mode while its signed heartbeat answers carry this."""

    case_id: str
    since: datetime
    interval_seconds: int
    notice: str | None
    lock_screen: bool
    drill: bool


class HeartbeatOut(BaseModel):
    server_time: datetime
    requirements: RequirementsOut | None = None
    policies: PoliciesOut | None = None
    commands: list[CommandOut] = Field(default_factory=list)
    # Only when IT has answered a request from this laptop since the last heartbeat.
    approvals: list[ApprovalAnswerOut] = Field(default_factory=list)
    # Only while the device's lost case is open (or a drill is on); null: not lost.
    lost_mode: LostModeOut | None = None


class SignOffIn(Strict):
    record_id: RecordId
    user: Account
    full_name: Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)]
    policy_id: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NO_NUL)]
    policy_version: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    decision: Literal["agree", "decline"]
    decided_at: datetime


class SignOffOut(BaseModel):
    record_id: str
    stored: bool
    duplicate: bool


class ApprovalRequestIn(Strict):
    """A user's request that IT approve an app: which, why (for school work), and who asks.

    The contract's rules (contract/approvals.py): bounded, no control or bidirectional characters.
    """

    record_id: RecordId
    user: Account
    full_name: Annotated[str, StringConstraints(min_length=2, max_length=NAME_MAX, pattern=ONE_LINE_PATTERN)]
    app: Annotated[str, StringConstraints(min_length=1, max_length=APP_MAX, pattern=ONE_LINE_PATTERN)]
    publisher: Annotated[str, StringConstraints(max_length=PUBLISHER_MAX, pattern=ONE_LINE_PATTERN)] = ""
    reason: Annotated[str, StringConstraints(min_length=1, max_length=REASON_MAX, pattern=LINES_PATTERN)]
    requested_at: datetime


class ApprovalRequestOut(BaseModel):
    record_id: str
    stored: bool
    duplicate: bool
    # "waiting" for IT, or IT's answer when a resent request was already decided.
    decision: Literal["waiting", "approved", "declined"]
    message: str = ""


# --- lost and stolen laptops (contract/lost.py) ------------------------------------------------


def _as_utc(value: datetime) -> datetime:
    """In UTC (a time without a zone is taken as UTC): SQLite keeps no zone, so what is stored is UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("is out of range in UTC") from None


LostTime = Annotated[datetime, AfterValidator(_as_utc)]


def _one_line(maximum: int) -> StringConstraints:
    return StringConstraints(max_length=maximum, pattern=ONE_LINE_PATTERN)


def _lines(maximum: int) -> StringConstraints:
    return StringConstraints(max_length=maximum, pattern=LINES_PATTERN)


class LostDeviceIn(Strict):
    """Which laptop is lost: the one sending ("this"), or another by serial, asset tag or hostname."""

    by: Literal["this", "serial", "asset_tag", "hostname"]
    value: Annotated[str, _one_line(lost.DEVICE_VALUE_MAX)] = ""


class LostReportIn(Strict):
    record_id: RecordId
    reporter: Account
    reporter_name: Annotated[str, _one_line(lost.REPORTER_NAME_MAX)]
    contact: Annotated[str, _lines(lost.CONTACT_MAX)]
    device: LostDeviceIn
    kind: Literal["lost", "stolen"]
    last_seen_at: LostTime | None = None
    last_seen_where: Annotated[str, _lines(lost.WHERE_MAX)] = ""
    what_happened: Annotated[str, _lines(lost.WHAT_HAPPENED_MAX)] = ""
    police_report: Annotated[str, _one_line(lost.POLICE_REPORT_MAX)] | None = None
    made_at: LostTime


class LostReportOut(BaseModel):
    record_id: str
    stored: bool
    duplicate: bool
    outcome: Literal["recorded", "unknown_device", "already_reported", "already_recovered"]
    message: str
    closest: list[str] = Field(default_factory=list)


class WifiNetworkIn(Strict):
    bssid: Annotated[str, StringConstraints(max_length=64, pattern=ONE_LINE_PATTERN)]
    ssid: Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)]
    signal: int | None = Field(default=None, ge=-200, le=200)
    channel: int | None = Field(default=None, ge=0, le=1000)


Address = Annotated[str, StringConstraints(max_length=64, pattern=ONE_LINE_PATTERN)]


class LostEvidenceIn(Strict):
    record_id: RecordId
    case_id: Annotated[str, StringConstraints(min_length=1, max_length=9, pattern=r"^[0-9]+$")]
    collected_at: LostTime
    local_addresses: list[Address] = Field(default_factory=list, max_length=lost.ADDRESSES_MAX)
    gateway: Address | None = None
    wifi: list[WifiNetworkIn] = Field(default_factory=list, max_length=lost.WIFI_MAX)
    logged_in_user: Annotated[str, StringConstraints(max_length=200, pattern=ONE_LINE_PATTERN)] | None = None
    uptime_seconds: int | None = Field(default=None, ge=0, le=10**10)
    unseen: list[Annotated[str, StringConstraints(max_length=300, pattern=LINES_PATTERN)]] = Field(
        default_factory=list, max_length=20
    )


class LostEvidenceOut(BaseModel):
    record_id: str
    stored: bool
    duplicate: bool


class ErrorOut(BaseModel):
    detail: str


class FieldErrorOut(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """What a 422 says: which fields, and what is wrong with each; never the input itself."""

    detail: list[FieldErrorOut]
