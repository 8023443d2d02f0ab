"""software inventory per device and its history of changes

Reports stop carrying the package list (about 56 KB each on a Debian laptop): each device's current
inventory is kept once (`device_software`, with `device_inventory` saying from which report), and
`software_changes` grows by what changed only. Reports stored before this keep their bodies as they
are; a device's inventory starts with its next report.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_inventory",
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("report_id", sa.String(length=64), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("device_id"),
    )
    op.create_table(
        "device_software",
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("item_key", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("source", sa.String(length=600), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("publisher", sa.String(length=300), nullable=False),
        sa.Column("judged", sa.Boolean(), nullable=True),
        sa.Column("basis", sa.String(length=300), server_default="", nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("device_id", "item_key"),
    )
    op.create_table(
        "software_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("report_id", sa.String(length=64), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("change", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("source", sa.String(length=600), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("publisher", sa.String(length=300), nullable=False),
        sa.Column("judged", sa.Boolean(), nullable=True),
        sa.Column("previous_version", sa.String(length=200), nullable=True),
        sa.Column("previous_publisher", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("software_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_software_changes_device_id"), ["device_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("software_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_software_changes_device_id"))
    op.drop_table("software_changes")
    op.drop_table("device_software")
    op.drop_table("device_inventory")
