"""Core `Table` objects for the hot paths (every report and heartbeat).

Those paths use Core statements built once, not ORM sessions.
"""

from __future__ import annotations

from sqlalchemy import Table

from server.db.models import (
    ApprovalRequest,
    AuditDevice,
    AuditEntry,
    Device,
    DeviceCommand,
    DeviceInventory,
    DeviceStatus,
    DeviceUser,
    EnrolmentClaim,
    EnrolmentToken,
    InstalledSoftware,
    Policy,
    PolicyVersion,
    Report,
    RequirementsDocument,
    RequirementsVersion,
    SignOffRecord,
    SoftwareChange,
)

# The hot paths (every report and heartbeat) use Core statements on these tables, not ORM sessions.
DEVICES: Table = Device.__table__  # type: ignore[assignment]


DEVICE_STATUS: Table = DeviceStatus.__table__  # type: ignore[assignment]


REPORTS: Table = Report.__table__  # type: ignore[assignment]


REQUIREMENTS: Table = RequirementsDocument.__table__  # type: ignore[assignment]


COMMANDS: Table = DeviceCommand.__table__  # type: ignore[assignment]


AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]


AUDIT_DEVICES: Table = AuditDevice.__table__  # type: ignore[assignment]


POLICIES: Table = Policy.__table__  # type: ignore[assignment]


SIGNOFFS: Table = SignOffRecord.__table__  # type: ignore[assignment]


DEVICE_USERS: Table = DeviceUser.__table__  # type: ignore[assignment]


CLAIMS: Table = EnrolmentClaim.__table__  # type: ignore[assignment]


ENROLMENT_TOKENS: Table = EnrolmentToken.__table__  # type: ignore[assignment]


DEVICE_INVENTORY: Table = DeviceInventory.__table__  # type: ignore[assignment]


DEVICE_SOFTWARE: Table = InstalledSoftware.__table__  # type: ignore[assignment]


SOFTWARE_CHANGES: Table = SoftwareChange.__table__  # type: ignore[assignment]


APPROVALS: Table = ApprovalRequest.__table__  # type: ignore[assignment]


REQUIREMENTS_VERSIONS: Table = RequirementsVersion.__table__  # type: ignore[assignment]


POLICY_VERSIONS: Table = PolicyVersion.__table__  # type: ignore[assignment]
