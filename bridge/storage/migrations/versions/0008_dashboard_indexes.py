"""The console: indexes and a rollup for the dashboard's figures, "sign out everywhere".

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Counts by day, outcome, status and rule read this index alone (index-only scans).
    op.create_index(
        "ix_calls_dashboard", "calls", ["created_at", "outcome", "status", "rule", "direction"]
    )
    # Fallback reasons and register-call latency: the events of one kind in a window.
    op.create_index("ix_call_events_kind_at", "call_events", ["kind", "at"])
    op.create_index("ix_recordings_kind_created", "recordings", ["kind", "created_at"])
    # The dashboard's rollup: finished days' counts, by zone, outcome and rule.
    op.create_table(
        "dashboard_days",
        sa.Column("zone", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("outcome", sa.String(16), primary_key=True),
        sa.Column("rule", sa.String(100), primary_key=True),
        sa.Column("calls", sa.Integer(), nullable=False),
    )
    # "Sign out everywhere": sessions issued before the latest row's time are refused.
    op.create_table(
        "ui_sign_outs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ui_sign_outs")
    op.drop_table("dashboard_days")
    op.drop_index("ix_recordings_kind_created", "recordings")
    op.drop_index("ix_call_events_kind_at", "call_events")
    op.drop_index("ix_calls_dashboard", "calls")
