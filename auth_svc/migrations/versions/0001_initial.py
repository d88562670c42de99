"""auth schema: initial tables

Revision ID: 0001
Revises:
Create Date: 2026-11-25 12:49:37.232716

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute('CREATE SCHEMA IF NOT EXISTS "auth"')
    op.create_table(
        "audit_logs",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_ip", postgresql.INET(), nullable=True),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("resource_type", sa.String(length=50), nullable=True),
        sa.Column("resource_id", sa.Text(), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("success", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_logs")),
        schema="auth",
    )
    op.create_index("ix_audit_logs_action", "audit_logs", ["action"], unique=False, schema="auth")
    op.create_index("ix_audit_logs_actor_id", "audit_logs", ["actor_id"], unique=False, schema="auth")
    op.create_index(
        "ix_audit_logs_occurred_at",
        "audit_logs",
        [sa.literal_column("occurred_at DESC")],
        unique=False,
        schema="auth",
    )
    op.create_index(
        "ix_audit_logs_resource", "audit_logs", ["resource_type", "resource_id"], unique=False, schema="auth"
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("banned", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("banned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ban_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("country IS NULL OR country ~ '^[A-Z]{2}$'", name=op.f("ck_users_country_iso2")),
        sa.CheckConstraint("NOT banned OR banned_at IS NOT NULL", name=op.f("ck_users_banned_at_set")),
        sa.CheckConstraint("char_length(email) BETWEEN 3 AND 320", name=op.f("ck_users_email_length")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        schema="auth",
    )
    op.create_index(
        "ix_users_created_at", "users", [sa.literal_column("created_at DESC")], unique=False, schema="auth"
    )
    op.create_index(
        "uq_users_email_lower",
        "users",
        [sa.literal_column("lower((email)::text)")],
        unique=True,
        schema="auth",
    )
    op.create_table(
        "user_artists",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("artist_id", sa.Uuid(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("granted_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["auth.users.id"], name=op.f("fk_user_artists_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "artist_id", name=op.f("pk_user_artists")),
        schema="auth",
    )
    op.create_index("ix_user_artists_artist_id", "user_artists", ["artist_id"], unique=False, schema="auth")
    op.create_table(
        "user_roles",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("granted_by", sa.Uuid(), nullable=True),
        sa.CheckConstraint("role IN ('user', 'premium', 'artist', 'admin')", name=op.f("ck_user_roles_role")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["auth.users.id"], name=op.f("fk_user_roles_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "role", name=op.f("pk_user_roles")),
        schema="auth",
    )
    op.create_index("ix_user_roles_role", "user_roles", ["role"], unique=False, schema="auth")


def downgrade() -> None:
    op.drop_index("ix_user_roles_role", table_name="user_roles", schema="auth")
    op.drop_table("user_roles", schema="auth")
    op.drop_index("ix_user_artists_artist_id", table_name="user_artists", schema="auth")
    op.drop_table("user_artists", schema="auth")
    op.drop_index("uq_users_email_lower", table_name="users", schema="auth")
    op.drop_index("ix_users_created_at", table_name="users", schema="auth")
    op.drop_table("users", schema="auth")
    op.drop_index("ix_audit_logs_resource", table_name="audit_logs", schema="auth")
    op.drop_index("ix_audit_logs_occurred_at", table_name="audit_logs", schema="auth")
    op.drop_index("ix_audit_logs_actor_id", table_name="audit_logs", schema="auth")
    op.drop_index("ix_audit_logs_action", table_name="audit_logs", schema="auth")
    op.drop_table("audit_logs", schema="auth")
    # The schema stays: it holds this service's alembic_version table.
