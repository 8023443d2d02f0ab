"""console sign-offs at district scale: laptops in the sign-off report's order, sign-offs in
the order of "latest decision"

The Sign-offs page, the admin API and the sign-off CSV read people in the report's order (school,
hostname, laptop): with `ix_devices_group_hostname_id` a page is read from it instead of sorting
every person in the district, and the CSV walks the laptops in that order a batch at a time
(`signoff_report.batches`). `ix_signoffs_latest` holds each (laptop, person, version)'s decisions
newest first, with the decision itself: a count of everyone reads the latest ones from it in order
(`signoff_state._latest_in_index_order`). Plain CREATE INDEX, no batch table rebuild: on SQLite a
rebuild of `devices` would cascade away the rows that hang from it (see 0010).

Revision ID: 0012
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_devices_group_hostname_id", "devices", ["group_name", "hostname", "id"], unique=False)
    op.create_index(
        "ix_signoffs_latest",
        "signoffs",
        ["device_id", "user", "policy_version", sa.text("decided_at DESC"), sa.text("id DESC")],
        unique=False,
        postgresql_include=["decision"],
    )


def downgrade() -> None:
    op.drop_index("ix_signoffs_latest", table_name="signoffs")
    op.drop_index("ix_devices_group_hostname_id", table_name="devices")
