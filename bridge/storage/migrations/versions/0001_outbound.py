"""Idempotency keys and calls waiting to be answered.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("response_status", sa.Integer()),
        sa.Column("response_body", sa.JSON()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])
    op.create_table(
        "pending_outbound_calls",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("call_sid", sa.String(64)),
        sa.Column("agent_id", sa.String(255), nullable=False),
        sa.Column("from_number", sa.String(32), nullable=False),
        sa.Column("to_number", sa.String(32), nullable=False),
        sa.Column("client_data", sa.JSON()),
        sa.Column("on_machine", sa.String(16), nullable=False),
        sa.Column("machine_message", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_pending_outbound_calls_call_sid", "pending_outbound_calls", ["call_sid"])


def downgrade() -> None:
    op.drop_index("ix_pending_outbound_calls_call_sid", "pending_outbound_calls")
    op.drop_table("pending_outbound_calls")
    op.drop_index("ix_idempotency_keys_expires_at", "idempotency_keys")
    op.drop_table("idempotency_keys")
