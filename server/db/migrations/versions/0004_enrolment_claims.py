"""enrolment claims, the previous key, identity collisions

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrolment_claims",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("group_name", sa.String(length=100), nullable=False),
        sa.Column("identity", sa.JSON(), nullable=False),
        sa.Column("agent_version", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("waits_for", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("enrolment_claims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enrolment_claims_device_id"), ["device_id"], unique=False)
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_public_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("previous_key_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("claims_pending", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("identity_collision", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("identity_collision")
        batch_op.drop_column("claims_pending")
        batch_op.drop_column("previous_key_until")
        batch_op.drop_column("previous_public_key")
    with op.batch_alter_table("enrolment_claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrolment_claims_device_id"))
    op.drop_table("enrolment_claims")
