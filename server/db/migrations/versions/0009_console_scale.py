"""console at district scale: each requirement's status beside the results, the list's index,
API tokens

The overview counts failing devices per requirement and the device list and its CSV show one
status per requirement. Read from `device_status.results` that means parsing every result's
evidence for 100,000 devices; `device_status.checks` holds the statuses alone (JSONB on
PostgreSQL), filled in here from the stored results and written with every report from now on.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FILL_IN = {
    "postgresql": """
        UPDATE device_status SET checks = COALESCE((
            SELECT jsonb_object_agg(result->>'id', result->>'status')
            FROM json_array_elements(device_status.results) AS result
            WHERE json_typeof(result) = 'object' AND result->>'id' IS NOT NULL
        ), '{}'::jsonb)
        WHERE json_typeof(results) = 'array'
    """,
    "sqlite": """
        UPDATE device_status SET checks = COALESCE((
            SELECT json_group_object(json_extract(value, '$.id'), json_extract(value, '$.status'))
            FROM json_each(device_status.results)
            WHERE type = 'object' AND json_extract(value, '$.id') IS NOT NULL
        ), '{}')
        WHERE json_type(results) = 'array'
    """,
}


def upgrade() -> None:
    with op.batch_alter_table("device_status", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("checks", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True)
        )
    op.execute(FILL_IN[op.get_bind().dialect.name])
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index("ix_devices_hostname_id", ["hostname", "id"], unique=False)
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("admin_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["admin_id"], ["admins.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_admin_id"), ["admin_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_admin_id"))
    op.drop_table("api_tokens")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index("ix_devices_hostname_id")
    with op.batch_alter_table("device_status", schema=None) as batch_op:
        batch_op.drop_column("checks")
