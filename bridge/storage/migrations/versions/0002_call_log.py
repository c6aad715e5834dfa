"""The call log: one record per call, and an append-only list of its events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("call_sid", sa.String(64), unique=True),
        sa.Column("conversation_id", sa.String(128), index=True),
        sa.Column("sip_call_id", sa.String(128)),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("from_number", sa.String(64)),
        sa.Column("to_number", sa.String(64)),
        sa.Column("rule", sa.String(100)),
        sa.Column("action", sa.String(32)),
        sa.Column("agent_id", sa.String(255)),
        sa.Column("mode", sa.String(16)),
        sa.Column("outcome", sa.String(16)),
        sa.Column("status", sa.String(32), index=True),
        sa.Column("status_rank", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("status_sequence", sa.Integer()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("duration", sa.Integer()),
        sa.Column("answered_by", sa.String(32)),
        sa.Column("error", sa.Text()),
        sa.Column("idempotency_key", sa.String(255)),
    )
    op.create_table(
        "call_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(32), sa.ForeignKey("calls.id"), index=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dedupe_key", sa.String(255), unique=True),
        sa.Column("data", sa.JSON()),
    )


def downgrade() -> None:
    op.drop_table("call_events")
    op.drop_table("calls")
