"""Server-side campaigns: campaigns, their recipients and attempts; the do-not-call list.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("agent_id", sa.String(255)),
        sa.Column("mode", sa.String(16)),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("recipient_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_dial_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "campaign_recipients",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.String(32), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(255)),
        sa.Column("phone", sa.String(32), nullable=False, index=True),
        sa.Column("variables", sa.JSON()),
        sa.Column("time_zones", sa.String(1024), nullable=False, server_default=""),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("claim_expires_at", sa.DateTime(timezone=True)),
        sa.Column("call_sid", sa.String(64), index=True),
        sa.Column("outcome", sa.String(32)),
        sa.Column("error", sa.Text()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "ix_campaign_recipients_campaign_state", "campaign_recipients", ["campaign_id", "state"]
    )
    op.create_index(
        "ix_campaign_recipients_due", "campaign_recipients", ["state", "next_attempt_at"]
    )
    op.create_table(
        "campaign_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "recipient_id",
            sa.Integer(),
            sa.ForeignKey("campaign_recipients.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("call_sid", sa.String(64), index=True),
        sa.Column("outcome", sa.String(32)),
        sa.Column("error", sa.Text()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint(
            "recipient_id", "attempt", name="uq_campaign_attempts_recipient_attempt"
        ),
    )
    op.create_table(
        "do_not_call",
        sa.Column("number", sa.String(32), primary_key=True),
        sa.Column("reason", sa.Text()),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("do_not_call")
    op.drop_table("campaign_attempts")
    op.drop_index("ix_campaign_recipients_due", table_name="campaign_recipients")
    op.drop_index("ix_campaign_recipients_campaign_state", table_name="campaign_recipients")
    op.drop_table("campaign_recipients")
    op.drop_table("campaigns")
