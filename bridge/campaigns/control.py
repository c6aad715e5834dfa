"""Pausing, resuming and cancelling a campaign: the campaign's state flips, and the
event says so (through the outbox, in the same transaction).

- pause: active → paused. Workers dial no one of a paused campaign; calls already
  dialling or in progress finish, and their outcomes are settled as usual.
- resume: paused → active, its pacing starting again from now (no catch-up burst).
- cancel: active or paused → cancelled. Recipients still waiting become `cancelled`;
  those dialling or in progress finish (the worker settles them and sets
  `finished_at` once none is left; here at once when none is active).

Any other transition (a finished or cancelled campaign, pausing a paused one) is a
`Conflict` naming the campaign's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.campaigns.queries import campaign_in
from bridge.campaigns.states import ACTIVE, WAITING
from bridge.events.outbox import Outbox
from bridge.storage.database import Database
from bridge.storage.tables import campaign_recipients, campaigns

Action = Literal["pause", "resume", "cancel"]
ACTIONS: tuple[Action, ...] = ("pause", "resume", "cancel")


@dataclass(frozen=True)
class Transition:
    allowed_from: tuple[str, ...]
    to: str
    event: str


TRANSITIONS: dict[Action, Transition] = {
    "pause": Transition(("active",), "paused", "campaign.paused"),
    "resume": Transition(("paused",), "active", "campaign.resumed"),
    "cancel": Transition(("active", "paused"), "cancelled", "campaign.cancelled"),
}


class NotFound(LookupError):
    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"No campaign {campaign_id!r}.")
        self.message = str(self)


class Conflict(Exception):
    """The campaign's state does not allow the action."""

    def __init__(self, action: Action, campaign_id: str, state: str) -> None:
        allowed = " or ".join(TRANSITIONS[action].allowed_from)
        super().__init__(
            f"Cannot {action} campaign {campaign_id!r}: it is {state} (only a campaign that "
            f"is {allowed} can be {_past(action)})."
        )
        self.message = str(self)
        self.state = state


def _past(action: Action) -> str:
    return {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}[action]


async def control(
    database: Database,
    campaign_id: str,
    action: Action,
    *,
    events: Outbox | None,
    now: datetime,
) -> dict[str, Any]:
    """Apply `action`; the campaign as it is then. NotFound or Conflict."""
    engine = await database.engine()
    async with engine.begin() as connection:
        await _apply(connection, campaign_id, action, events=events, now=now)
        shown = await campaign_in(connection, campaign_id, now)
    assert shown is not None  # it was just updated in this transaction
    return shown


async def _apply(
    connection: AsyncConnection,
    campaign_id: str,
    action: Action,
    *,
    events: Outbox | None,
    now: datetime,
) -> None:
    transition = TRANSITIONS[action]
    values: dict[str, Any] = {"state": transition.to, "updated_at": now}
    if action == "resume":
        # Pacing starts again from now: the time paused is not owed as a burst of dials.
        values["next_dial_at"] = case(
            (campaigns.c.next_dial_at < now, now), else_=campaigns.c.next_dial_at
        )
    # Compare-and-set: of two requests at once, one wins and the other sees the new state.
    changed = await connection.execute(
        update(campaigns)
        .where(and_(campaigns.c.id == campaign_id, campaigns.c.state.in_(transition.allowed_from)))
        .values(**values)
        .returning(campaigns.c.name)
    )
    name = changed.scalar()
    if name is None:
        state = await connection.scalar(
            select(campaigns.c.state).where(campaigns.c.id == campaign_id)
        )
        if state is None:
            raise NotFound(campaign_id)
        raise Conflict(action, campaign_id, state)
    cancelled = 0
    if action == "cancel":
        result = await connection.execute(
            update(campaign_recipients)
            .where(
                and_(
                    campaign_recipients.c.campaign_id == campaign_id,
                    campaign_recipients.c.state.in_(sorted(WAITING)),
                )
            )
            .values(state="cancelled", next_attempt_at=None, updated_at=now, finished_at=now)
        )
        cancelled = result.rowcount or 0
        active = await connection.scalar(
            select(func.count())
            .select_from(campaign_recipients)
            .where(
                and_(
                    campaign_recipients.c.campaign_id == campaign_id,
                    campaign_recipients.c.state.in_(sorted(ACTIVE)),
                )
            )
        )
        if not active:
            await connection.execute(
                update(campaigns).where(campaigns.c.id == campaign_id).values(finished_at=now)
            )
    if events is not None:
        data: dict[str, Any] = {"campaign_id": campaign_id, "name": name, "state": transition.to}
        if action == "cancel":
            data["recipients_cancelled"] = cancelled
        await events.enqueue(
            connection,
            transition.event,
            data,
            dedupe_key=f"{transition.event}:{campaign_id}:{now.isoformat()}",
        )
