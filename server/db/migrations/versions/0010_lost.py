"""lost and stolen laptops: asset tags, cases and timelines, reports, evidence, district
networks, the notifications outbox

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN and a unique index, not a batch table rebuild: on SQLite a rebuild drops
    # `devices`, and with foreign keys on that deletes every row that cascades from it (device_status,
    # reports, ...). tests/server/console/test_signoff_coverage.py upgrades a filled database.
    op.add_column("devices", sa.Column("asset_tag", sa.String(length=100), nullable=True))
    op.add_column("devices", sa.Column("lost_case_id", sa.Integer(), nullable=True))
    op.create_index("ix_devices_asset_tag", "devices", ["asset_tag"], unique=True)
    op.create_table(
        "lost_cases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("drill", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("notice", sa.Text(), nullable=True),
        sa.Column("lock_screen", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(length=300), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("lost_cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lost_cases_device_id"), ["device_id"], unique=False)
    op.create_table(
        "lost_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=300), nullable=False),
        sa.Column("event", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["lost_cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("lost_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lost_events_case_id"), ["case_id"], unique=False)
    op.create_table(
        "lost_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("from_device_id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("reporter", sa.String(length=200), nullable=False),
        sa.Column("reporter_name", sa.String(length=200), nullable=False),
        sa.Column("contact", sa.String(length=300), nullable=False),
        sa.Column("device_by", sa.String(length=10), nullable=False),
        sa.Column("device_value", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_where", sa.Text(), nullable=False),
        sa.Column("what_happened", sa.Text(), nullable=False),
        sa.Column("police_report", sa.String(length=100), nullable=True),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["lost_cases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["from_device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("record_id"),
    )
    with op.batch_alter_table("lost_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lost_reports_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lost_reports_from_device_id"), ["from_device_id"], unique=False)
    op.create_table(
        "lost_evidence",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("public_address", sa.String(length=64), nullable=True),
        sa.Column("local_addresses", sa.JSON(), nullable=False),
        sa.Column("gateway", sa.String(length=64), nullable=True),
        sa.Column("wifi", sa.JSON(), nullable=False),
        sa.Column("logged_in_user", sa.String(length=200), nullable=True),
        sa.Column("uptime_seconds", sa.Integer(), nullable=True),
        sa.Column("unseen", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["lost_cases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("record_id"),
    )
    with op.batch_alter_table("lost_evidence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lost_evidence_case_id"), ["case_id"], unique=False)
    op.create_table(
        "district_ranges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("building", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "district_access_points",
        sa.Column("bssid", sa.String(length=17), nullable=False),
        sa.Column("building", sa.String(length=200), nullable=False),
        sa.Column("room", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("bssid"),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("recipient", sa.String(length=500), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["lost_cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "channel", "recipient"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_case_id"), ["case_id"], unique=False)
        batch_op.create_index("ix_notifications_due", ["sent_at", "next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_due")
        batch_op.drop_index(batch_op.f("ix_notifications_case_id"))
    op.drop_table("notifications")
    op.drop_table("district_access_points")
    op.drop_table("district_ranges")
    with op.batch_alter_table("lost_evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lost_evidence_case_id"))
    op.drop_table("lost_evidence")
    with op.batch_alter_table("lost_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lost_reports_from_device_id"))
        batch_op.drop_index(batch_op.f("ix_lost_reports_case_id"))
    op.drop_table("lost_reports")
    with op.batch_alter_table("lost_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lost_events_case_id"))
    op.drop_table("lost_events")
    with op.batch_alter_table("lost_cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lost_cases_device_id"))
    op.drop_table("lost_cases")
    op.drop_index("ix_devices_asset_tag", table_name="devices")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("lost_case_id")
        batch_op.drop_column("asset_tag")
