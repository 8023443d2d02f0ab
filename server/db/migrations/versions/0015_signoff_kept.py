"""device_users carries what judging a person's sign-off needs, kept by the database itself, so that
counting the district reads one table: the laptop's school and audience (group_name, audience), the
version of the policy that applies there (signoff_version; NULL: none published) and the person's
latest decision on it (signoff_id, signoff_decision, signoff_decided_at, signoff_full_name; NULL:
none). Triggers keep them on both databases whatever code writes: a laptop moved or given another
audience, a person first seen, a policy published (or removed), a decision stored.

Revision ID: 0015
Revises: 0014
"""

# ruff: noqa: S608 - every statement here is built from this file's own constants, no input.
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _version(group: str, audience: str) -> str:
    """SQL: the version that applies to a laptop of `group` for `audience` (SQL expressions)."""
    return (
        "coalesce("
        f"(SELECT p.version FROM policies p WHERE p.group_name = {group} AND p.audience = {audience}), "
        f"(SELECT p.version FROM policies p WHERE p.group_name = '' AND p.audience = {audience}))"
    )


def _judged(group: str, audience: str) -> str:
    """SQL: the SET list that brings a `device_users` row's version and decision up to date, for a
    laptop of `group` for `audience` (the latest decision on that version, by decided_at then id)."""
    version = _version(group, audience)

    def latest(column: str) -> str:
        return (
            f"(SELECT s.{column} FROM signoffs s WHERE s.device_id = device_users.device_id "
            f'AND s."user" = device_users."user" AND s.policy_version = {version} '
            "ORDER BY s.decided_at DESC, s.id DESC LIMIT 1)"
        )

    return (
        f"signoff_version = {version}, signoff_id = {latest('id')}, "
        f"signoff_decision = {latest('decision')}, signoff_decided_at = {latest('decided_at')}, "
        f"signoff_full_name = {latest('full_name')}"
    )


OWN = _judged("device_users.group_name", "device_users.audience")
# A decision stored: it becomes the kept one if it is on the version that applies and later than
# the kept one. A condition on the row, not a recount: PostgreSQL re-reads a row another transaction
# was changing before it writes it, so two decisions stored at once keep the later.
LATER = (
    "UPDATE device_users SET signoff_id = NEW.id, signoff_decision = NEW.decision, "
    "signoff_decided_at = NEW.decided_at, signoff_full_name = NEW.full_name "
    'WHERE device_id = NEW.device_id AND "user" = NEW."user" AND signoff_version = NEW.policy_version '
    "AND (signoff_id IS NULL OR signoff_decided_at < NEW.decided_at "
    "OR (signoff_decided_at = NEW.decided_at AND signoff_id < NEW.id))"
)


def _readers(row: str) -> str:
    """SQL: the people a policy row (`row`: NEW or OLD) applies to or may have applied to."""
    return f"audience = {row}.audience AND ({row}.group_name = '' OR group_name = {row}.group_name)"


def _postgres() -> list[str]:
    def function(name: str, body: str) -> str:
        return (
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n{body}\n"
            "RETURN NULL;\nEND\n$$"
        )

    moved = _judged("NEW.group_name", "NEW.audience")
    seen = _judged("d.group_name", "d.audience")
    return [
        function(
            "device_users_follow_device",
            f"UPDATE device_users SET group_name = NEW.group_name, audience = NEW.audience, {moved} "
            "WHERE device_id = NEW.id;",
        ),
        "CREATE TRIGGER device_users_follow_device AFTER UPDATE OF group_name, audience ON devices "
        "FOR EACH ROW WHEN (OLD.group_name IS DISTINCT FROM NEW.group_name "
        "OR OLD.audience IS DISTINCT FROM NEW.audience) EXECUTE FUNCTION device_users_follow_device()",
        # FOR SHARE waits for a move of the laptop being made at that moment and reads it once
        # committed: neither the move nor the newcomer misses the other.
        function(
            "device_user_judged",
            f"UPDATE device_users SET group_name = d.group_name, audience = d.audience, {seen} "
            "FROM (SELECT group_name, audience FROM devices WHERE id = NEW.device_id FOR SHARE) AS d "
            'WHERE device_users.device_id = NEW.device_id AND device_users."user" = NEW."user";',
        ),
        "CREATE TRIGGER device_user_judged AFTER INSERT ON device_users "
        "FOR EACH ROW EXECUTE FUNCTION device_user_judged()",
        function(
            "device_users_follow_policy",
            "IF TG_OP <> 'INSERT' THEN\n"
            f"  UPDATE device_users SET {OWN} WHERE {_readers('OLD')};\nEND IF;\n"
            "IF TG_OP <> 'DELETE' THEN\n"
            f"  UPDATE device_users SET {OWN} WHERE {_readers('NEW')};\nEND IF;",
        ),
        "CREATE TRIGGER device_users_follow_policy AFTER INSERT OR UPDATE OR DELETE ON policies "
        "FOR EACH ROW EXECUTE FUNCTION device_users_follow_policy()",
        function("device_user_decided", f"{LATER};"),
        "CREATE TRIGGER device_user_decided AFTER INSERT ON signoffs "
        "FOR EACH ROW EXECUTE FUNCTION device_user_decided()",
    ]


def _sqlite() -> list[str]:
    # One writer at a time: nothing can happen between a trigger's statements.
    laptop = "(SELECT d.{column} FROM devices d WHERE d.id = NEW.device_id)"
    group, audience = laptop.format(column="group_name"), laptop.format(column="audience")
    return [
        "CREATE TRIGGER device_users_follow_device AFTER UPDATE OF group_name, audience ON devices "
        "WHEN OLD.group_name IS NOT NEW.group_name OR OLD.audience IS NOT NEW.audience BEGIN "
        "UPDATE device_users SET group_name = NEW.group_name, audience = NEW.audience "
        "WHERE device_id = NEW.id; "
        f"UPDATE device_users SET {OWN} WHERE device_id = NEW.id; END",
        "CREATE TRIGGER device_user_judged AFTER INSERT ON device_users BEGIN "
        f"UPDATE device_users SET group_name = {group}, audience = {audience} "
        'WHERE device_id = NEW.device_id AND "user" = NEW."user"; '
        f'UPDATE device_users SET {OWN} WHERE device_id = NEW.device_id AND "user" = NEW."user"; END',
        f"CREATE TRIGGER device_users_policy_added AFTER INSERT ON policies BEGIN "
        f"UPDATE device_users SET {OWN} WHERE {_readers('NEW')}; END",
        f"CREATE TRIGGER device_users_policy_changed AFTER UPDATE ON policies BEGIN "
        f"UPDATE device_users SET {OWN} WHERE {_readers('OLD')}; "
        f"UPDATE device_users SET {OWN} WHERE {_readers('NEW')}; END",
        f"CREATE TRIGGER device_users_policy_removed AFTER DELETE ON policies BEGIN "
        f"UPDATE device_users SET {OWN} WHERE {_readers('OLD')}; END",
        f"CREATE TRIGGER device_user_decided AFTER INSERT ON signoffs BEGIN {LATER}; END",
    ]


# Each trigger (PostgreSQL: and its function, of the same name) with the table it is on.
POSTGRES_TRIGGERS = {
    "device_users_follow_device": "devices",
    "device_user_judged": "device_users",
    "device_users_follow_policy": "policies",
    "device_user_decided": "signoffs",
}
SQLITE_TRIGGERS = (
    "device_users_follow_device",
    "device_user_judged",
    "device_users_policy_added",
    "device_users_policy_changed",
    "device_users_policy_removed",
    "device_user_decided",
)


# Every row as the triggers would have kept it (also run by scripts/bench_console.py after its bulk
# load, which loads with triggers off).
FILL = (
    "UPDATE device_users SET "
    "group_name = (SELECT d.group_name FROM devices d WHERE d.id = device_users.device_id), "
    "audience = (SELECT d.audience FROM devices d WHERE d.id = device_users.device_id)",
    f"UPDATE device_users SET {OWN}",
)


def upgrade() -> None:
    # Plain ADD COLUMN (no batch rebuild on SQLite), every row filled, then the triggers.
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
    for statement in FILL:
        op.execute(statement)
    dialect = op.get_bind().dialect.name
    for statement in _postgres() if dialect == "postgresql" else _sqlite():
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for name, table in POSTGRES_TRIGGERS.items():
            op.execute(f"DROP TRIGGER {name} ON {table}")
            op.execute(f"DROP FUNCTION {name}()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    with op.batch_alter_table("device_users") as batch:
        for column in (
            "signoff_full_name",
            "signoff_decided_at",
            "signoff_decision",
            "signoff_id",
            "signoff_version",
            "audience",
            "group_name",
        ):
            batch.drop_column(column)
