"""device_users carries what judging a person's sign-off needs, so that counting the district reads
one table: its laptop's school and audience (group_name, audience: copied by triggers whenever the
laptop's change and whenever a person is first seen, so never stale), and the person's latest
decision on the version that applied when last brought up to date (signoff_version, signoff_id,
signoff_decision, signoff_decided_at, signoff_full_name: used only where that version still applies)

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TRIGGERS = {
    "postgresql": [
        # A laptop moved to another school or given another audience: its people follow it.
        """
        CREATE FUNCTION device_users_follow_device() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE device_users SET group_name = NEW.group_name, audience = NEW.audience
            WHERE device_id = NEW.id;
            RETURN NULL;
        END
        $$
        """,
        "CREATE TRIGGER device_users_follow_device AFTER UPDATE OF group_name, audience ON devices "
        "FOR EACH ROW WHEN (OLD.group_name IS DISTINCT FROM NEW.group_name "
        "OR OLD.audience IS DISTINCT FROM NEW.audience) EXECUTE FUNCTION device_users_follow_device()",
        # A person seen for the first time takes their laptop's. FOR SHARE waits for a move of the
        # laptop being made at that moment, and reads it once committed: neither misses the other.
        """
        CREATE FUNCTION device_user_takes_device() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE device_users SET group_name = d.group_name, audience = d.audience
            FROM (SELECT group_name, audience FROM devices WHERE id = NEW.device_id FOR SHARE) AS d
            WHERE device_users.device_id = NEW.device_id AND device_users."user" = NEW."user";
            RETURN NULL;
        END
        $$
        """,
        "CREATE TRIGGER device_user_takes_device AFTER INSERT ON device_users "
        "FOR EACH ROW EXECUTE FUNCTION device_user_takes_device()",
    ],
    "sqlite": [
        # One writer at a time: no move can happen between the statements.
        """
        CREATE TRIGGER device_users_follow_device AFTER UPDATE OF group_name, audience ON devices
        WHEN OLD.group_name IS NOT NEW.group_name OR OLD.audience IS NOT NEW.audience
        BEGIN
            UPDATE device_users SET group_name = NEW.group_name, audience = NEW.audience
            WHERE device_id = NEW.id;
        END
        """,
        """
        CREATE TRIGGER device_user_takes_device AFTER INSERT ON device_users
        BEGIN
            UPDATE device_users SET
                group_name = (SELECT group_name FROM devices WHERE id = NEW.device_id),
                audience = (SELECT audience FROM devices WHERE id = NEW.device_id)
            WHERE device_id = NEW.device_id AND "user" = NEW."user";
        END
        """,
    ],
}

# Each person's version in force (their laptop's school's policy for its audience, else the
# district's), and their latest decision on it (by decided_at, then id).
VERSION = """coalesce(
      (SELECT p.version FROM policies p
        WHERE p.group_name = device_users.group_name AND p.audience = device_users.audience),
      (SELECT p.version FROM policies p WHERE p.group_name = '' AND p.audience = device_users.audience))"""

FILL = [
    """UPDATE device_users SET
      group_name = (SELECT d.group_name FROM devices d WHERE d.id = device_users.device_id),
      audience = (SELECT d.audience FROM devices d WHERE d.id = device_users.device_id)""",
    f"""UPDATE device_users SET
      signoff_version = {VERSION},
      signoff_id = (SELECT s.id FROM signoffs s WHERE s.device_id = device_users.device_id
        AND s."user" = device_users."user" AND s.policy_version = {VERSION}
        ORDER BY s.decided_at DESC, s.id DESC LIMIT 1),
      signoff_decision = (SELECT s.decision FROM signoffs s WHERE s.device_id = device_users.device_id
        AND s."user" = device_users."user" AND s.policy_version = {VERSION}
        ORDER BY s.decided_at DESC, s.id DESC LIMIT 1),
      signoff_decided_at = (SELECT s.decided_at FROM signoffs s WHERE s.device_id = device_users.device_id
        AND s."user" = device_users."user" AND s.policy_version = {VERSION}
        ORDER BY s.decided_at DESC, s.id DESC LIMIT 1),
      signoff_full_name = (SELECT s.full_name FROM signoffs s WHERE s.device_id = device_users.device_id
        AND s."user" = device_users."user" AND s.policy_version = {VERSION}
        ORDER BY s.decided_at DESC, s.id DESC LIMIT 1)""",  # noqa: S608 - our own SQL
]


def upgrade() -> None:
    # Plain ADD COLUMN (no batch rebuild on SQLite), the triggers, then every row filled.
    op.add_column(
        "device_users", sa.Column("group_name", sa.String(length=100), nullable=False, server_default="")
    )
    op.add_column(
        "device_users", sa.Column("audience", sa.String(length=20), nullable=False, server_default="student")
    )
    op.add_column("device_users", sa.Column("signoff_version", sa.String(length=64), nullable=True))
    op.add_column("device_users", sa.Column("signoff_id", sa.Integer(), nullable=True))
    op.add_column("device_users", sa.Column("signoff_decision", sa.String(length=10), nullable=True))
    op.add_column("device_users", sa.Column("signoff_decided_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("device_users", sa.Column("signoff_full_name", sa.String(length=200), nullable=True))
    for statement in TRIGGERS[op.get_bind().dialect.name]:
        op.execute(statement)
    for statement in FILL:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER device_user_takes_device ON device_users")
        op.execute("DROP TRIGGER device_users_follow_device ON devices")
        op.execute("DROP FUNCTION device_user_takes_device()")
        op.execute("DROP FUNCTION device_users_follow_device()")
    else:
        op.execute("DROP TRIGGER device_user_takes_device")
        op.execute("DROP TRIGGER device_users_follow_device")
    with op.batch_alter_table("device_users") as batch:
        for column in (
            "signoff_full_name",
            "signoff_decided_at",
            "signoff_decision",
            "signoff_id",
            "signoff_version",
        ):
            batch.drop_column(column)
        batch.drop_column("audience")
        batch.drop_column("group_name")
