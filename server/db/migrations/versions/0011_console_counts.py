"""console counts: the overview's roll-up, kept at ingest

The overview counted every device's status (and the chart read every report of the last 30 or 90
days) on each request: about 2 s, and failing, at 100,000 devices and 10 million reports. From
here on every path that changes what the overview counts writes the change into
`fleet_count_changes` in the same transaction (server/fleet/counted.py). This migration fills it
from what is stored, as of today: the chart has no figures for the days before.

"Not seen for N days" gets an index on `devices.last_seen_at`. It also rewrites
`device_status.checks` from the stored results first: the report path's upsert had stopped
updating it after a device's first report, so it could be older than `results`.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from server.fleet import counts

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# As in 0009: each requirement's status alone, from the full results.
CHECKS_FROM_RESULTS = {
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
    op.create_table(
        "fleet_count_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("school", sa.String(length=100), nullable=False),
        sa.Column("os", sa.String(length=20), nullable=False),
        sa.Column("audience", sa.String(length=20), nullable=False),
        sa.Column("measure", sa.String(length=60), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("folded", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_fleet_count_changes_folded_day", "fleet_count_changes", ["folded", "day"])
    op.create_index("ix_devices_last_seen_at", "devices", ["last_seen_at"])
    bind = op.get_bind()
    op.execute(CHECKS_FROM_RESULTS[bind.dialect.name])
    counts.fill(bind, datetime.now(timezone.utc).date())


def downgrade() -> None:
    op.drop_index("ix_devices_last_seen_at", table_name="devices")
    op.drop_index("ix_fleet_count_changes_folded_day", table_name="fleet_count_changes")
    op.drop_table("fleet_count_changes")
