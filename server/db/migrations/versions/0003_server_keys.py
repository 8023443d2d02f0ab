"""the server's signing key, for the answers agents verify

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The key itself is made by `homeroom-server init` (or the first answer), not here:
    # a migration run on one machine should not be the only place a secret can come from.
    op.create_table(
        "server_keys",
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("private_key", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("purpose"),
    )


def downgrade() -> None:
    op.drop_table("server_keys")
