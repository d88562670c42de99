"""playback schema: initial tables

Revision ID: 0001
Revises:
Create Date: 2026-11-25 12:49:36.282944

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
    op.execute('CREATE SCHEMA IF NOT EXISTS "playback"')
    op.create_table(
        "counted_streams",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("track_id", sa.Uuid(), nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("product", sa.String(length=16), server_default=sa.text("'free'"), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("position_ms", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("product IN ('free', 'premium')", name=op.f("ck_counted_streams_product")),
        sa.CheckConstraint("position_ms >= 0", name=op.f("ck_counted_streams_position_ms_nonneg")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counted_streams")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_counted_streams_idempotency_key")),
        schema="playback",
    )
    op.create_index(
        "ix_counted_streams_track_id_counted_at",
        "counted_streams",
        ["track_id", "counted_at"],
        unique=False,
        schema="playback",
    )
    op.create_index(
        "ix_counted_streams_user_id_counted_at",
        "counted_streams",
        ["user_id", sa.literal_column("counted_at DESC")],
        unique=False,
        schema="playback",
    )
    op.create_table(
        "listening_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("track_id", sa.Uuid(), nullable=False),
        sa.Column("played_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("ms_played", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("completed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("skipped", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("device_type", sa.String(length=32), nullable=True),
        sa.Column("context_uri", sa.Text(), nullable=True),
        sa.Column("stream_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint("ms_played >= 0", name=op.f("ck_listening_history_ms_played_nonneg")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listening_history")),
        sa.UniqueConstraint("event_id", name=op.f("uq_listening_history_event_id")),
        schema="playback",
    )
    op.create_index(
        "ix_listening_history_played_at", "listening_history", ["played_at"], unique=False, schema="playback"
    )
    op.create_index(
        "ix_listening_history_user_id_played_at",
        "listening_history",
        ["user_id", sa.literal_column("played_at DESC")],
        unique=False,
        schema="playback",
    )
    op.create_table(
        "offline_devices",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("device_key", sa.Text(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column(
            "registered_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offline_devices")),
        sa.UniqueConstraint("user_id", "device_key", name=op.f("uq_offline_devices_user_id_device_key")),
        schema="playback",
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        schema="playback",
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        unique=False,
        schema="playback",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "play_states",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("track_id", sa.Uuid(), nullable=True),
        sa.Column("position_ms", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("is_playing", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=True),
        sa.Column("device_name", sa.String(length=100), nullable=True),
        sa.Column("device_type", sa.String(length=32), nullable=True),
        sa.Column("volume_percent", sa.SmallInteger(), nullable=True),
        sa.Column("shuffle", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("repeat_state", sa.String(length=8), server_default=sa.text("'off'"), nullable=False),
        sa.Column("context_uri", sa.Text(), nullable=True),
        sa.Column(
            "queue", postgresql.ARRAY(sa.UUID()), server_default=sa.text("'{}'::uuid[]"), nullable=False
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "repeat_state IN ('off', 'track', 'context')", name=op.f("ck_play_states_repeat_state")
        ),
        sa.CheckConstraint("position_ms >= 0", name=op.f("ck_play_states_position_ms_nonneg")),
        sa.CheckConstraint(
            "volume_percent IS NULL OR volume_percent BETWEEN 0 AND 100",
            name=op.f("ck_play_states_volume_percent"),
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_play_states")),
        schema="playback",
    )
    op.create_table(
        "track_stream_counts",
        sa.Column("track_id", sa.Uuid(), nullable=False),
        sa.Column("stream_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("stream_count >= 0", name=op.f("ck_track_stream_counts_stream_count_nonneg")),
        sa.PrimaryKeyConstraint("track_id", name=op.f("pk_track_stream_counts")),
        schema="playback",
    )
    op.create_index(
        "ix_track_stream_counts_stream_count",
        "track_stream_counts",
        [sa.literal_column("stream_count DESC")],
        unique=False,
        schema="playback",
    )
    op.create_table(
        "offline_licenses",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("track_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("expires_at > issued_at", name=op.f("ck_offline_licenses_expires_after_issued")),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["playback.offline_devices.id"],
            name=op.f("fk_offline_licenses_device_id_offline_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offline_licenses")),
        schema="playback",
    )
    op.create_index(
        "ix_offline_licenses_device_id", "offline_licenses", ["device_id"], unique=False, schema="playback"
    )
    op.create_index(
        "ix_offline_licenses_user_id", "offline_licenses", ["user_id"], unique=False, schema="playback"
    )
    op.create_index(
        "uq_offline_licenses_device_id_track_id_active",
        "offline_licenses",
        ["device_id", "track_id"],
        unique=True,
        schema="playback",
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.create_table(
        "royalty_attributions",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("stream_id", sa.Uuid(), nullable=False),
        sa.Column("track_id", sa.Uuid(), nullable=False),
        sa.Column("artist_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("product", sa.String(length=16), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("weight", sa.Numeric(precision=9, scale=6), server_default=sa.text("1"), nullable=False),
        sa.CheckConstraint("product IN ('free', 'premium')", name=op.f("ck_royalty_attributions_product")),
        sa.CheckConstraint("weight > 0 AND weight <= 1", name=op.f("ck_royalty_attributions_weight_range")),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["playback.counted_streams.id"],
            name=op.f("fk_royalty_attributions_stream_id_counted_streams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_royalty_attributions")),
        sa.UniqueConstraint(
            "stream_id", "artist_id", name=op.f("uq_royalty_attributions_stream_id_artist_id")
        ),
        schema="playback",
    )
    op.create_index(
        "ix_royalty_attributions_artist_id_counted_at",
        "royalty_attributions",
        ["artist_id", "counted_at"],
        unique=False,
        schema="playback",
    )
    op.create_index(
        "ix_royalty_attributions_counted_at",
        "royalty_attributions",
        ["counted_at"],
        unique=False,
        schema="playback",
    )


def downgrade() -> None:
    op.drop_index("ix_royalty_attributions_counted_at", table_name="royalty_attributions", schema="playback")
    op.drop_index(
        "ix_royalty_attributions_artist_id_counted_at", table_name="royalty_attributions", schema="playback"
    )
    op.drop_table("royalty_attributions", schema="playback")
    op.drop_index(
        "uq_offline_licenses_device_id_track_id_active",
        table_name="offline_licenses",
        schema="playback",
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.drop_index("ix_offline_licenses_user_id", table_name="offline_licenses", schema="playback")
    op.drop_index("ix_offline_licenses_device_id", table_name="offline_licenses", schema="playback")
    op.drop_table("offline_licenses", schema="playback")
    op.drop_index("ix_track_stream_counts_stream_count", table_name="track_stream_counts", schema="playback")
    op.drop_table("track_stream_counts", schema="playback")
    op.drop_table("play_states", schema="playback")
    op.drop_index(
        "ix_outbox_unpublished",
        table_name="outbox",
        schema="playback",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_table("outbox", schema="playback")
    op.drop_table("offline_devices", schema="playback")
    op.drop_index("ix_listening_history_user_id_played_at", table_name="listening_history", schema="playback")
    op.drop_index("ix_listening_history_played_at", table_name="listening_history", schema="playback")
    op.drop_table("listening_history", schema="playback")
    op.drop_index("ix_counted_streams_user_id_counted_at", table_name="counted_streams", schema="playback")
    op.drop_index("ix_counted_streams_track_id_counted_at", table_name="counted_streams", schema="playback")
    op.drop_table("counted_streams", schema="playback")
    # The schema stays: it holds this service's alembic_version table.
