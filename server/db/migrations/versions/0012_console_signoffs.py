"""console sign-offs at district scale: laptops in the sign-off report's order

The Sign-offs page, the admin API and the sign-off CSV read people in the report's order (school,
hostname, laptop). With this index a page is read from it instead of sorting every person in the
district, and the CSV walks the laptops in that order a batch at a time (`signoff_report.batches`).
Plain CREATE INDEX, no batch table rebuild: on SQLite a rebuild of `devices` would cascade away
the rows that hang from it (see 0010).

Revision ID: 0012
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_devices_group_hostname_id", "devices", ["group_name", "hostname", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_devices_group_hostname_id", table_name="devices")
