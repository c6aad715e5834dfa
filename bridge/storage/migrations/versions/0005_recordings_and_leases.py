"""Recordings (voicemails and recorded calls) with their audio's place in the audio
store; leases so one process at a time reconciles; when a call was last reconciled.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("recording_sid", sa.String(64), primary_key=True),
        sa.Column("call_id", sa.String(32), sa.ForeignKey("calls.id"), index=True),
        sa.Column("call_sid", sa.String(64), index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("duration", sa.Integer()),
        sa.Column("channels", sa.Integer()),
        sa.Column("source", sa.String(32)),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), index=True),
        sa.Column("last_error", sa.Text()),
        sa.Column("audio_name", sa.Text()),
        sa.Column("audio_bytes", sa.Integer()),
        sa.Column("audio_sha256", sa.String(64)),
        sa.Column("deleted_from_twilio_at", sa.DateTime(timezone=True)),
        sa.Column("transcription", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("stored_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("reconciled_at", sa.DateTime(timezone=True)))
        batch.add_column(
            sa.Column("reconcile_attempts", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("reconcile_attempts")
        batch.drop_column("reconciled_at")
    op.drop_table("leases")
    op.drop_table("recordings")
