"""Request and response bodies of the agent API.

Every model forbids unknown fields and bounds every string and list, so a
tampered or runaway agent gets a 422 that names the field, never a 500 and
never an unbounded row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from contract.requirements import CHECK_IDS

CheckId = Literal["disk_encryption", "firewall", "power_on_password", "antivirus", "screen_lock", "software"]
assert set(CheckId.__args__) == set(CHECK_IDS)  # type: ignore[attr-defined]

StatusValue = Literal["pass", "fail", "unknown", "error"]
RecordId = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F-]{8,64}$")]
Short = Annotated[str, StringConstraints(max_length=200)]
Mac = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IdentityIn(Strict):
    serial: Short | None = None
    hardware_uuid: Annotated[str, StringConstraints(max_length=64)] | None = None
    hostname: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    manufacturer: Short | None = None
    model: Short | None = None
    os: Literal["windows", "macos", "linux"]
    os_version: Short
    machine_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    macs: list[Mac] = Field(default_factory=list, max_length=64)
    unreadable: dict[
        Annotated[str, StringConstraints(max_length=40)], Annotated[str, StringConstraints(max_length=500)]
    ] = Field(default_factory=dict, max_length=20)


class EnrolIn(Strict):
    token: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    public_key: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    identity: IdentityIn
    agent_version: Annotated[str, StringConstraints(max_length=40)]


class EnrolOut(BaseModel):
    device_id: str
    group: str
    replaced_key: bool
    server_time: datetime


class CheckResultIn(Strict):
    id: CheckId
    title: Annotated[str, StringConstraints(max_length=100)]
    status: StatusValue
    summary: Annotated[str, StringConstraints(max_length=2000)]
    evidence: dict[Annotated[str, StringConstraints(max_length=100)], Any] = Field(
        default_factory=dict, max_length=100
    )
    remediation: Annotated[str, StringConstraints(max_length=4000)] | None = None
    duration_ms: int = Field(ge=0, le=3_600_000)


class SoftwareItemIn(Strict):
    name: Annotated[str, StringConstraints(max_length=300)]
    version: Annotated[str, StringConstraints(max_length=200)] = ""
    publisher: Annotated[str, StringConstraints(max_length=300)] = ""
    source: Annotated[str, StringConstraints(max_length=600)] = ""


Dropped = dict[Annotated[str, StringConstraints(max_length=40)], Annotated[int, Field(ge=0)]]


Account = Annotated[str, StringConstraints(min_length=1, max_length=200)]

# What is wrong with the agent's own files (a damaged outbox set aside, a broken local requirements.toml):
# sent once per new problem, kept in the audit log. No NUL: PostgreSQL cannot store it.
LocalProblems = list[Annotated[str, StringConstraints(min_length=1, max_length=300, pattern=r"^[^\x00]*$")]]


class ReportIn(Strict):
    report_id: RecordId
    reported_at: datetime
    agent_version: Annotated[str, StringConstraints(max_length=40)]
    identity: IdentityIn
    results: list[CheckResultIn] = Field(max_length=len(CHECK_IDS))
    software: list[SoftwareItemIn] = Field(default_factory=list, max_length=10_000)
    dropped: Dropped = Field(default_factory=dict, max_length=20)
    local_problems: LocalProblems = Field(default_factory=list, max_length=20)
    # Accounts that have logged in on this laptop: who ought to have signed the policy.
    users: list[Account] = Field(default_factory=list, max_length=100)
    audience: Literal["staff", "student"] | None = None


class ReportOut(BaseModel):
    report_id: str
    stored: bool
    duplicate: bool


class HeartbeatIn(Strict):
    heartbeat_id: RecordId
    sent_at: datetime
    agent_version: Annotated[str, StringConstraints(max_length=40)]
    overall: Literal["pass", "fail", "unknown", "error", "none"]
    requirements_etag: Annotated[str, StringConstraints(max_length=64)] | None = None
    policies_etag: Annotated[str, StringConstraints(max_length=64)] | None = None
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


class HeartbeatOut(BaseModel):
    server_time: datetime
    requirements: RequirementsOut | None = None
    policies: PoliciesOut | None = None
    commands: list[CommandOut] = Field(default_factory=list)


class SignOffIn(Strict):
    record_id: RecordId
    user: Account
    full_name: Annotated[str, StringConstraints(max_length=200)]
    policy_id: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    policy_version: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    decision: Literal["agree", "decline"]
    decided_at: datetime


class SignOffOut(BaseModel):
    record_id: str
    stored: bool
    duplicate: bool


class ErrorOut(BaseModel):
    detail: str
