"""The tables, as queries see them; Alembic migrations (bridge/storage/migrations)
create and change them. `fitted` cuts a value to its column.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(32), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # "in_progress" or "done"
    Column("response_status", Integer),
    Column("response_body", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

# Console sessions signed out before they expire (bridge.web.ui_sessions writes it).
signed_out_sessions = Table(
    "signed_out_sessions",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

# "Sign out everywhere" in the console: sessions issued before the latest `at` are
# refused (bridge.web.ui_sessions writes it).
ui_sign_outs = Table(
    "ui_sign_outs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

# The dashboard's rollup (bridge.calllog.dashboard): calls of a finished day, in a time
# zone, by outcome and rule; a row with outcome "" marks a day as counted.
dashboard_days = Table(
    "dashboard_days",
    metadata,
    Column("zone", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("outcome", String(16), primary_key=True),
    Column("rule", String(100), primary_key=True),
    Column("calls", Integer, nullable=False),
)

# Calls placed through Twilio wait here for the callee to answer: the answer
# webhook then registers the conversation with what the API request asked for.
pending_calls = Table(
    "pending_outbound_calls",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("call_sid", String(64), index=True),
    Column("agent_id", String(255), nullable=False),
    Column("from_number", String(32), nullable=False),
    Column("to_number", String(32), nullable=False),
    # `secret__` dynamic variables are sealed (bridge.outbound.sealing), never stored in clear.
    Column("client_data", JSON),
    Column("on_machine", String(16), nullable=False),
    Column("machine_message", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


calls = Table(
    "calls",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("call_sid", String(64), unique=True),
    Column("conversation_id", String(128), index=True),
    Column("sip_call_id", String(128)),
    Column("direction", String(16), nullable=False),
    Column("from_number", String(64)),
    Column("to_number", String(64)),
    Column("rule", String(100)),
    Column("action", String(32)),
    Column("agent_id", String(255)),
    Column("mode", String(16)),
    Column("outcome", String(16)),
    # Twilio's status; it never moves backwards (status_rank, then status_sequence).
    Column("status", String(32), index=True),
    Column("status_rank", Integer, nullable=False, server_default="0"),
    Column("status_sequence", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("answered_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("duration", Integer),
    Column("answered_by", String(32)),
    Column("error", Text),
    Column("idempotency_key", String(255)),
    # From ElevenLabs' post-call webhooks (bridge.calllog.post_call).
    Column("transcript", JSON),
    Column("analysis", JSON),
    Column("post_call_metadata", JSON),
    Column("summary", Text),
    Column("call_successful", String(16)),
    Column("audio_path", Text),
    Column("audio_bytes", Integer),
    Column("audio_sha256", String(64)),
    # Reconciliation (bridge.reconcile): when it last looked at the call, and how often.
    Column("reconciled_at", DateTime(timezone=True)),
    Column("reconcile_attempts", Integer, nullable=False, server_default="0"),
    # The console's dashboard (bridge.calllog.dashboard), migration 0008.
    Index("ix_calls_dashboard", "created_at", "outcome", "status", "rule", "direction"),
)

# Append-only: what happened to a call, in order. `dedupe_key` makes replays no-ops.
call_events = Table(
    "call_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(32), ForeignKey("calls.id"), index=True),
    Column("kind", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("dedupe_key", String(255), unique=True),
    Column("data", JSON),
    # Set for ElevenLabs webhooks, so events of a conversation not matched yet are found.
    Column("conversation_id", String(128), index=True),
    Index("ix_call_events_kind_at", "kind", "at"),
)


# A voicemail or a recorded call. Its audio is fetched from Twilio into the audio
# store (bridge.audio) by the bridge: `status` pending -> stored (or failed, retried
# at `next_attempt_at`); `audio_name` is the object's name, derived by the bridge.
recordings = Table(
    "recordings",
    metadata,
    Column("recording_sid", String(64), primary_key=True),
    Column("call_id", String(32), ForeignKey("calls.id"), index=True),
    Column("call_sid", String(64), index=True),
    Column("kind", String(16), nullable=False),  # "voicemail" or "recording"
    Column("status", String(16), nullable=False),
    Column("duration", Integer),
    Column("channels", Integer),
    Column("source", String(32)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), index=True),
    Column("last_error", Text),
    Column("audio_name", Text),
    Column("audio_bytes", Integer),
    Column("audio_sha256", String(64)),
    Column("deleted_from_twilio_at", DateTime(timezone=True)),
    Column("transcription", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("stored_at", DateTime(timezone=True)),
    Index("ix_recordings_kind_created", "kind", "created_at"),
)

# One holder at a time per name, across processes and dynos (reconciliation).
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)


# Outgoing events (bridge.events): one row per event, written in the same transaction
# as the change that causes it. `body` is the JSON sent, fixed at creation, so every
# retry sends the same bytes; `id` is its `webhook-id`; `dedupe_key` makes a replayed
# cause add no second event.
event_outbox = Table(
    "event_outbox",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("type", String(64), nullable=False, index=True),
    Column("dedupe_key", String(255), nullable=False, unique=True),
    Column("call_id", String(32), index=True),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)

# One delivery per (event, endpoint URL): `status` pending -> delivered, or failed
# (given up after 24 hours), or disabled (the endpoint answered 410).
event_deliveries = Table(
    "event_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(40), ForeignKey("event_outbox.id"), nullable=False, index=True),
    Column("endpoint", Text, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), index=True),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("delivered_at", DateTime(timezone=True)),
)

# Endpoints that answered 410 Gone: nothing more is sent to them until an event is
# redelivered (`callbridge events redeliver ID`), which enables them again.
event_endpoints = Table(
    "event_endpoints",
    metadata,
    Column("url", String(2048), primary_key=True),
    Column("disabled_at", DateTime(timezone=True), nullable=False),
)


# Server-side campaigns (bridge.campaigns). `state`: active, paused, cancelled,
# finished. `next_dial_at` paces every worker at once: a worker may dial only when it
# is due, and moves it 1/rate seconds on in the same transaction as its claim.
campaigns = Table(
    "campaigns",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("agent_id", String(255)),
    Column("mode", String(16)),
    Column("options", JSON, nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("recipient_count", Integer, nullable=False, server_default="0"),
    Column("start_at", DateTime(timezone=True), nullable=False),
    Column("next_dial_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# One row per number of a campaign. `state`: pending, scheduled, dialing, in_progress,
# then completed, busy, no_answer, machine, failed, do_not_call, invalid, cancelled.
# `next_attempt_at` is when it is due (its local hours or a retry time); a worker
# dialling it holds it until `claim_expires_at`, after which another takes it over.
campaign_recipients = Table(
    "campaign_recipients",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign_id", String(32), ForeignKey("campaigns.id"), nullable=False),
    Column("line", Integer, nullable=False),
    Column("external_id", String(255)),
    Column("phone", String(32), nullable=False, index=True),
    Column("variables", JSON),
    # The IANA zones its calling hours are read in (comma separated), all of which
    # must be open: a number spanning several zones gets the most restrictive reading.
    Column("time_zones", String(1024), nullable=False, server_default=""),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("claimed_by", String(128)),
    Column("claim_expires_at", DateTime(timezone=True)),
    Column("call_sid", String(64), index=True),
    Column("outcome", String(32)),
    Column("error", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Index("ix_campaign_recipients_campaign_state", "campaign_id", "state"),
    Index("ix_campaign_recipients_due", "state", "next_attempt_at"),
)

# Every attempt at a recipient: the Idempotency-Key it was placed with (one per
# recipient and attempt, so a retry after an unknown placement replays), its call SID
# and how it ended.
campaign_attempts = Table(
    "campaign_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "recipient_id", Integer, ForeignKey("campaign_recipients.id"), nullable=False, index=True
    ),
    Column("attempt", Integer, nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("call_sid", String(64), index=True),
    Column("outcome", String(32)),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    UniqueConstraint("recipient_id", "attempt", name="uq_campaign_attempts_recipient_attempt"),
)

# Numbers never to call (campaigns, POST /calls, `callbridge call`): `source` says who
# added it (api, cli, console, import, opt_out).
do_not_call = Table(
    "do_not_call",
    metadata,
    Column("number", String(32), primary_key=True),
    Column("reason", Text),
    Column("source", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)


def fitted(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """`values` with each string cut to its column's length.

    What callers send is not ours to limit (a Twilio Client caller is `client:` and
    an identity of up to 121 characters); PostgreSQL refuses a value that is too
    long, and a refused record must not be what stops the call log.
    """
    for name, value in values.items():
        if isinstance(value, str):
            length = getattr(table.c[name].type, "length", None)
            if length is not None and len(value) > length:
                values[name] = value[:length]
    return values
