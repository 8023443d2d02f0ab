"""console list at district scale: trigram indexes for the device search (PostgreSQL), and each
audit entry's devices in an indexed table

The Devices page searches hostname, serial, asset tag and user for any part of them ("4471" finds
serial 5CG04471XQ). `LIKE '%4471%'` cannot use a B-tree, so on PostgreSQL each searched column gets
a pg_trgm GIN index (pg_trgm ships with PostgreSQL; it is a trusted extension, so the database's
owner may create it). Where the extension cannot be created the search still works, by scanning.
SQLite scans: its districts are small.

A device page lists the audit entries by the device or about it: the actor `device:<id>` and the
detail's "device" and "other". `audit_devices` holds one row per (device, entry), filled by a
trigger on every insert into `audit_log` (whichever code writes the entry) and here for the entries
already written, so the page reads the newest 50 from an index instead of the whole log.

Revision ID: 0013
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import DBAPIError

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# (index name, table, column): the columns the device search reads.
SEARCHED = (
    ("ix_devices_hostname_trgm", "devices", "hostname"),
    ("ix_devices_serial_trgm", "devices", "serial"),
    ("ix_devices_asset_tag_trgm", "devices", "asset_tag"),
    ("ix_device_users_user_trgm", "device_users", "user"),
)

# The device ids an audit row names (`{row}` is NEW in the trigger, audit_log in the fill): the actor
# `device:<id>`, the detail's "device" and "other". Text values only (the console compares them with
# device ids), cut to the column's length (no device id is longer).
REFERENCES = {
    "postgresql": (
        "CASE WHEN {row}.actor LIKE 'device:%' THEN substr({row}.actor, 8) END",
        "CASE WHEN json_typeof({row}.detail -> 'device') = 'string' THEN {row}.detail ->> 'device' END",
        "CASE WHEN json_typeof({row}.detail -> 'other') = 'string' THEN {row}.detail ->> 'other' END",
    ),
    "sqlite": (
        "CASE WHEN substr({row}.actor, 1, 7) = 'device:' THEN substr({row}.actor, 8) END",
        # Nested so that json_type never reads a detail that is not JSON (it would raise).
        "CASE WHEN json_valid({row}.detail) THEN CASE WHEN json_type({row}.detail, '$.device') = 'text' "
        "THEN json_extract({row}.detail, '$.device') END END",
        "CASE WHEN json_valid({row}.detail) THEN CASE WHEN json_type({row}.detail, '$.other') = 'text' "
        "THEN json_extract({row}.detail, '$.other') END END",
    ),
}


def _references(dialect: str, row: str, source: str) -> str:
    """SELECT DISTINCT (device_id, audit_id) of the rows `source` gives (a FROM clause, or none)."""
    each = " UNION ALL ".join(
        f"SELECT {row}.id AS audit_id, {expression.format(row=row)} AS ref{source}"
        for expression in REFERENCES[dialect]
    )
    return (
        f"SELECT DISTINCT substr(refs.ref, 1, 64) AS device_id, refs.audit_id FROM ({each}) AS refs "  # noqa: S608 - our own SQL
        "WHERE refs.ref IS NOT NULL AND refs.ref <> ''"
    )


def _postgres_statements() -> list[str]:
    return [
        f"""
        CREATE FUNCTION audit_log_devices() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO audit_devices (device_id, audit_id) {_references("postgresql", "NEW", "")};
            RETURN NULL;
        END
        $$
        """,
        "CREATE TRIGGER audit_log_devices AFTER INSERT ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_devices()",
        "INSERT INTO audit_devices (device_id, audit_id) "
        + _references("postgresql", "audit_log", " FROM audit_log"),
    ]


def _sqlite_statements() -> list[str]:
    return [
        f"""
        CREATE TRIGGER audit_log_devices AFTER INSERT ON audit_log
        BEGIN
            INSERT INTO audit_devices (device_id, audit_id) {_references("sqlite", "NEW", "")};
        END
        """,
        "INSERT INTO audit_devices (device_id, audit_id) "
        + _references("sqlite", "audit_log", " FROM audit_log"),
    ]


def _trigram_indexes() -> None:
    bind = op.get_bind()
    available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).scalar()
    if not available:
        print("pg_trgm is not installed: the device search will scan (install postgresql-contrib)")
        return
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except DBAPIError as exc:
        print(f"pg_trgm could not be created ({exc.orig}): the device search will scan")
        return
    for name, table, column in SEARCHED:
        op.execute(f'CREATE INDEX "{name}" ON {table} USING gin ("{column}" gin_trgm_ops)')


def upgrade() -> None:
    op.create_table(
        "audit_devices",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("audit_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["audit_id"], ["audit_log.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("device_id", "audit_id"),
    )
    dialect = op.get_bind().dialect.name
    for statement in _postgres_statements() if dialect == "postgresql" else _sqlite_statements():
        op.execute(statement)
    if dialect == "postgresql":
        _trigram_indexes()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, _table, _column in SEARCHED:
            op.execute(f'DROP INDEX IF EXISTS "{name}"')
        op.execute("DROP TRIGGER audit_log_devices ON audit_log")
        op.execute("DROP FUNCTION audit_log_devices()")
    else:
        op.execute("DROP TRIGGER audit_log_devices")
    op.drop_table("audit_devices")
