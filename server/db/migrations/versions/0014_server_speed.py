"""device_inventory.listed_digest and listed_length: the software list's bytes as last sent, so the
same list is not parsed, validated and diffed again

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch rebuild on SQLite): rows from before it are validated once more, by
    # their device's next report, which fills it in.
    op.add_column("device_inventory", sa.Column("listed_digest", sa.String(length=64), nullable=True))
    op.add_column("device_inventory", sa.Column("listed_length", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("device_inventory") as batch:
        batch.drop_column("listed_length")
        batch.drop_column("listed_digest")
