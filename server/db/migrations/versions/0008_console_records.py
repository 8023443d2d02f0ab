"""console records: every published requirements document and policy kept as a version

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "requirements_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_name", sa.String(length=100), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("requirements_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_requirements_versions_group_name"), ["group_name"], unique=False)
    op.create_table(
        "policy_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_name", sa.String(length=100), nullable=False),
        sa.Column("audience", sa.String(length=20), nullable=False),
        sa.Column("policy_id", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_policy_versions_group_name"), ["group_name"], unique=False)
    # What is in force now is the first version of each (who published it before is in the audit log).
    op.execute(
        "INSERT INTO requirements_versions (group_name, etag, content, published_at, published_by) "
        "SELECT group_name, etag, content, updated_at, 'before versions were kept' "
        "FROM requirements_documents"
    )
    op.execute(
        "INSERT INTO policy_versions "
        "(group_name, audience, policy_id, title, version, content, published_at, published_by) "
        "SELECT group_name, audience, policy_id, title, version, content, published_at, "
        "'before versions were kept' FROM policies"
    )


def downgrade() -> None:
    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_versions_group_name"))
    op.drop_table("policy_versions")
    with op.batch_alter_table("requirements_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_requirements_versions_group_name"))
    op.drop_table("requirements_versions")
