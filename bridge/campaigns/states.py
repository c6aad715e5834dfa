"""The states of a campaign and of each of its recipients, and which are final."""

from __future__ import annotations

from typing import Literal

CampaignState = Literal["active", "paused", "cancelled", "finished"]
CAMPAIGN_STATES: tuple[CampaignState, ...] = ("active", "paused", "cancelled", "finished")

RecipientState = Literal[
    "pending",  # not tried yet
    "scheduled",  # waiting for its local calling hours or a retry time
    "dialing",  # claimed by a worker that is placing the call
    "in_progress",  # placed; waiting for the call's final status
    "completed",
    "busy",
    "no_answer",
    "machine",
    "failed",
    "do_not_call",
    "invalid",
    "cancelled",
]
RECIPIENT_STATES: tuple[RecipientState, ...] = (
    "pending",
    "scheduled",
    "dialing",
    "in_progress",
    "completed",
    "busy",
    "no_answer",
    "machine",
    "failed",
    "do_not_call",
    "invalid",
    "cancelled",
)
# Waiting for a worker to dial them (when `next_attempt_at` is due).
WAITING: frozenset[RecipientState] = frozenset({"pending", "scheduled"})
# A call is being placed or is in progress.
ACTIVE: frozenset[RecipientState] = frozenset({"dialing", "in_progress"})
FINAL: frozenset[RecipientState] = frozenset(RECIPIENT_STATES) - WAITING - ACTIVE

# Outcomes a campaign may retry (`options.retry.on`), and the final state each leaves
# the recipient in when no retry is left.
RetryOutcome = Literal["busy", "no-answer", "failed", "machine"]
RETRY_OUTCOMES: tuple[RetryOutcome, ...] = ("busy", "no-answer", "failed", "machine")
STATE_OF_OUTCOME: dict[str, RecipientState] = {
    "completed": "completed",
    "busy": "busy",
    "no-answer": "no_answer",
    "failed": "failed",
    "machine": "machine",
}
