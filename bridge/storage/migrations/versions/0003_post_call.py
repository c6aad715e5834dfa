"""ElevenLabs post-call webhooks: transcript, analysis and audio on calls; events
that match no call keep their conversation id.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CALL_COLUMNS = (
    ("transcript", sa.JSON()),
    ("analysis", sa.JSON()),
    ("post_call_metadata", sa.JSON()),
    ("summary", sa.Text()),
    ("call_successful", sa.String(16)),
    ("audio_path", sa.Text()),
    ("audio_bytes", sa.Integer()),
    ("audio_sha256", sa.String(64)),
)


def upgrade() -> None:
    # batch mode: SQLite cannot alter tables in place (a no-op wrapper on PostgreSQL).
    with op.batch_alter_table("calls") as batch:
        for name, type_ in CALL_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    with op.batch_alter_table("call_events") as batch:
        batch.add_column(sa.Column("conversation_id", sa.String(128), nullable=True))
        batch.create_index("ix_call_events_conversation_id", ["conversation_id"])


def downgrade() -> None:
    with op.batch_alter_table("call_events") as batch:
        batch.drop_index("ix_call_events_conversation_id")
        batch.drop_column("conversation_id")
    with op.batch_alter_table("calls") as batch:
        for name, _ in reversed(CALL_COLUMNS):
            batch.drop_column(name)
