"""Tables. The current state of each device is one row; history is append-only.

Fleet views read `devices` and `device_status` (one row per laptop) and stay
fast at 100,000 devices; `reports` only grows and is read per device.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class Admin(Base):
    """A person who signs in to the console. `username` is the sign-in name: an e-mail address
    (a database made before the console may still hold "admin")."""

    __tablename__ = "admins"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    # district_admin | technician | viewer (server/console/roles.py)
    role: Mapped[str] = mapped_column(String(20), default="district_admin", server_default="district_admin")
    # A viewer who reads every school (an auditor); otherwise the schools in `admin_schools`.
    district_wide: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    disabled_at: Mapped[datetime | None]


class AdminSchool(Base):
    """A school (a device group) a technician or viewer is assigned to."""

    __tablename__ = "admin_schools"
    admin_id: Mapped[int] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(100), primary_key=True)


class ConsoleSession(Base):
    """A signed-in browser. Only the SHA-256 of the cookie's token is kept: the database alone
    cannot sign anyone in. Revoked by sign-out, by disabling the user, or by expiry."""

    __tablename__ = "console_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    address: Mapped[str | None] = mapped_column(String(64))


class SignInFailure(Base):
    """Failed sign-ins in a row, per account ("account:EMAIL") and per address ("address:IP")."""

    __tablename__ = "sign_in_failures"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class EnrolmentToken(Base):
    __tablename__ = "enrolment_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Only the SHA-256 of a token is stored: the database alone cannot enrol a device.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    group_name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(100), index=True)
    serial: Mapped[str | None] = mapped_column(String(200))
    hardware_uuid: Mapped[str | None] = mapped_column(String(64))
    hostname: Mapped[str] = mapped_column(String(255))
    manufacturer: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(200))
    os: Mapped[str] = mapped_column(String(20))
    os_version: Mapped[str] = mapped_column(String(200))
    machine_id: Mapped[str | None] = mapped_column(String(64))
    macs: Mapped[list[Any]]
    identity_unreadable: Mapped[dict[str, Any]]
    public_key: Mapped[str] = mapped_column(String(64))
    agent_version: Mapped[str] = mapped_column(String(40))
    enrolled_at: Mapped[datetime]
    key_replaced_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    commands_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    # Which policy its users sign: district laptops are issued to staff or to students.
    audience: Mapped[str] = mapped_column(String(20), default="student", server_default="student")
    # After an automatic re-key the old key is kept for a while: if it signs again, the laptop it
    # belongs to is alive and the re-key was a takeover (docs/architecture.md, "Re-keying a record").
    previous_public_key: Mapped[str | None] = mapped_column(String(64))
    previous_key_until: Mapped[datetime | None]
    # Read with the key on every signed request: an answer from the old key refuses waiting claims.
    claims_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Another device whose serial, SMBIOS UUID or machine id this one also claimed: never merged.
    identity_collision: Mapped[str | None] = mapped_column(String(32))
    # The district's own label on the laptop (unique, compared without regard to case), set by IT.
    asset_tag: Mapped[str | None] = mapped_column(String(100), unique=True, index=True)
    # The lost case (server/db/lost_models.py) that keeps this laptop in lost mode, or None: read
    # with `commands_pending` by every heartbeat, so a laptop that is not lost costs nothing more.
    lost_case_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_devices_serial_uuid", "serial", "hardware_uuid"),
        # The device list's order and paging (hostname, then id): a page is read from the index.
        Index("ix_devices_hostname_id", "hostname", "id"),
        # The sign-off report's order (school, hostname, id): its pages and its CSV's batches.
        Index("ix_devices_group_hostname_id", "group_name", "hostname", "id"),
        # The overview's "not seen for N days" (migration 0011): a range, not a pass over 100,000 rows.
        Index("ix_devices_last_seen_at", "last_seen_at"),
    )


class DeviceStatus(Base):
    """The latest full report of each device: what the fleet views show."""

    __tablename__ = "device_status"
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    report_id: Mapped[str] = mapped_column(String(64))
    reported_at: Mapped[datetime]
    received_at: Mapped[datetime]
    overall: Mapped[str] = mapped_column(String(10), index=True)
    results: Mapped[list[Any]]
    # Each requirement's status alone ({"firewall": "fail", …}), beside the full results: the fleet
    # views count, filter and export it for 100,000 devices without reading every result's evidence.
    # JSONB on PostgreSQL, so `checks->>'firewall'` is read without parsing text.
    checks: Mapped[dict[str, Any] | None] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))


class Report(Base):
    """Every full report ever received, once each (unique report id)."""

    __tablename__ = "reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_id: Mapped[str] = mapped_column(String(64), unique=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    reported_at: Mapped[datetime]
    received_at: Mapped[datetime]
    overall: Mapped[str] = mapped_column(String(10))
    body: Mapped[dict[str, Any]]


class SeenRequest(Base):
    """Request ids inside the clock-skew window: a second use is a replay."""

    __tablename__ = "seen_requests"
    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32))
    seen_at: Mapped[datetime] = mapped_column(index=True)


class RequirementsDocument(Base):
    """The requirements.toml served to devices; a group's own copy wins over the default (group "")."""

    __tablename__ = "requirements_documents"
    group_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    content: Mapped[str] = mapped_column(Text)
    etag: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class DeviceCommand(Base):
    __tablename__ = "device_commands"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    command: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    detail: Mapped[dict[str, Any]]
    # Where a console action came from; None for the command line and for devices.
    address: Mapped[str | None] = mapped_column(String(64))


class AuditDevice(Base):
    """A device an audit entry is by or about (the actor `device:<id>`, the detail's "device" or
    "other"), so a device page reads its entries from an index. Written by a database trigger on
    every insert into `audit_log` (migration 0013), not by the code that audits: nothing can forget it.
    No foreign key to `devices`: the log outlives a deleted device."""

    __tablename__ = "audit_devices"
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("audit_log.id", ondelete="CASCADE"), primary_key=True)


class Policy(Base):
    """The Acceptable Use Policy a group's staff or students sign; its version is the hash of its text."""

    __tablename__ = "policies"
    group_name: Mapped[str] = mapped_column(String(100), primary_key=True)  # "" = every group
    audience: Mapped[str] = mapped_column(String(20), primary_key=True)  # "staff" | "student"
    policy_id: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    version: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime]


class SignOffRecord(Base):
    """Each decision a user made on a device, once per record id (the agent may send it twice)."""

    __tablename__ = "signoffs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(String(64), unique=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    user: Mapped[str] = mapped_column(String(200))
    full_name: Mapped[str] = mapped_column(String(200))
    policy_id: Mapped[str] = mapped_column(String(100))
    policy_version: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(10))
    decided_at: Mapped[datetime]
    received_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_signoffs_device_user", "device_id", "user"),
        # Each (laptop, person, version)'s decisions newest first: the latest read in index order.
        Index(
            "ix_signoffs_latest",
            "device_id",
            "user",
            "policy_version",
            text("decided_at DESC"),
            text("id DESC"),
            postgresql_include=["decision"],
        ),
    )


class DeviceUser(Base):
    """Accounts seen logged in on a device: who ought to have signed."""

    __tablename__ = "device_users"
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    user: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_seen_at: Mapped[datetime]
    # What judging the person's sign-off needs, kept by the database's triggers (migration 0015)
    # whatever code writes: the laptop's school and audience, the version of the policy that applies
    # there (None: none published) and the person's latest decision on it (None: none). The sign-off
    # views count the district from this table alone (server/fleet/signoff_state.py).
    # (Database defaults only: an INSERT … SELECT names no value for them, and the trigger sets both.)
    group_name: Mapped[str] = mapped_column(String(100), server_default="")
    audience: Mapped[str] = mapped_column(String(20), server_default="student")
    signoff_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    signoff_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    signoff_decision: Mapped[str | None] = mapped_column(String(10), nullable=True)
    signoff_decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    signoff_full_name: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ServerKey(Base):
    """The server's own signing key, one row per purpose ("answers").

    Kept in the database rather than in a file so that every server process sharing the
    database (several machines behind a load balancer, on PostgreSQL) signs with the same
    key without copying files between them, and so that processes starting at once agree on
    one key (the primary key lets only the first insert win).
    """

    __tablename__ = "server_keys"
    purpose: Mapped[str] = mapped_column(String(40), primary_key=True)
    private_key: Mapped[str] = mapped_column(String(64))  # base64 of the raw 32-byte Ed25519 seed
    public_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class EnrolmentClaim(Base):
    """An enrolment that matched an existing record but was not allowed to re-key it at once.

    `waits_for` is "quiet" (re-keyed automatically once the old key has been silent long enough)
    or "it" (only an administrator's `homeroom-server devices approve-claim` re-keys it).
    """

    __tablename__ = "enrolment_claims"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    public_key: Mapped[str] = mapped_column(String(64))
    group_name: Mapped[str] = mapped_column(String(100))
    identity: Mapped[dict[str, Any]]
    agent_version: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20))  # pending | approved | refused | contested
    waits_for: Mapped[str] = mapped_column(String(10))  # quiet | it
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(100))


class DeviceInventory(Base):
    """Which report each device's current inventory (`device_software`) comes from, and its digest.

    A report whose inventory hashes to the stored digest costs one comparison and no diff; a report
    dated before `reported_at` (delayed by an outage) does not move the inventory back in time.
    """

    __tablename__ = "device_inventory"
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    report_id: Mapped[str] = mapped_column(String(64))
    reported_at: Mapped[datetime]
    digest: Mapped[str] = mapped_column(String(64))
    items: Mapped[int] = mapped_column(Integer)
    # SHA-256 and length of the list's bytes as that report sent them (`server.fleet.report_body`): a
    # report that sends the same bytes again is not parsed, validated or diffed again. Empty for rows
    # from before 0011 (and for a list whose bytes could not be told apart).
    listed_digest: Mapped[str | None] = mapped_column(String(64))
    listed_length: Mapped[int | None] = mapped_column(Integer)


class InstalledSoftware(Base):
    """What is installed on each device now: one row per (name, source), replaced only when it changes.

    Keyed by a hash of name and source rather than the two strings: together they may be longer than
    PostgreSQL lets an index entry be (300 + 600 characters of up to 4 bytes each).
    """

    __tablename__ = "device_software"
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    item_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(600))
    version: Mapped[str] = mapped_column(String(200))
    publisher: Mapped[str] = mapped_column(String(300))
    # True: an app the check judges; False: only part of the inventory (agents before the flag: True).
    judged: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    basis: Mapped[str] = mapped_column(String(300), default="", server_default="")
    since: Mapped[datetime]


class SoftwareChange(Base):
    """The history of each device's inventory: one row per item added, removed or changed, append-only.

    `report_id` and `reported_at` say which report showed the change and when. For "removed" the item's
    columns hold what was removed; for "changed" they hold the new values and `previous_*` the old.
    """

    __tablename__ = "software_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    report_id: Mapped[str] = mapped_column(String(64))
    reported_at: Mapped[datetime]
    change: Mapped[str] = mapped_column(String(10))  # added | removed | changed
    name: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(600))
    version: Mapped[str] = mapped_column(String(200))
    publisher: Mapped[str] = mapped_column(String(300))
    judged: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    previous_version: Mapped[str | None] = mapped_column(String(200))
    previous_publisher: Mapped[str | None] = mapped_column(String(300))


class ApprovalRequest(Base):
    """A user's request that IT approve an app, once per record id, and IT's answer.

    `state` is waiting, approved or declined; `answer_delivered_at` is when a heartbeat's answer
    carried IT's decision to the laptop (the device's `commands_pending` says one is due).
    """

    __tablename__ = "approval_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(String(64), unique=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    user: Mapped[str] = mapped_column(String(200))
    full_name: Mapped[str] = mapped_column(String(200))
    app: Mapped[str] = mapped_column(String(200))
    publisher: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime]
    received_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(10), index=True)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text, default="")
    answer_delivered_at: Mapped[datetime | None]


class RequirementsVersion(Base):
    """Every requirements document ever published to a group, append-only: the console lists them
    and diffs an edit against the current one. `requirements_documents` keeps the one in force."""

    __tablename__ = "requirements_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_name: Mapped[str] = mapped_column(String(100), index=True)  # "" = every group
    etag: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime]
    published_by: Mapped[str] = mapped_column(String(100))


class PolicyVersion(Base):
    """Every policy ever published per group and audience, append-only (`policies` keeps the one
    in force): old sign-offs name a version, and IT can still read what was signed."""

    __tablename__ = "policy_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_name: Mapped[str] = mapped_column(String(100), index=True)  # "" = every group
    audience: Mapped[str] = mapped_column(String(20))
    policy_id: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    version: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime]
    published_by: Mapped[str] = mapped_column(String(100))


class ApiToken(Base):
    """A console user's token for the admin API (`Authorization: Bearer …`). Only its SHA-256 is
    kept; it acts with its user's role and schools as they are at each request, and stops working
    when revoked or when its user is disabled."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
