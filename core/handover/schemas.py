"""A queue's hand-over settings as admins set them (the rest of a queue is in core/users)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from core.db.base import MAX_ID


class QueueHandoverUpdate(BaseModel):
    """Only the fields given change; `calendar_id: null` makes the queue always open."""

    model_config = ConfigDict(extra="forbid")
    calendar_id: int | None = Field(
        default=None, ge=1, le=MAX_ID,
        description="The queue's business hours (a calendar id); null: always open. Out of hours the hand-over "
                    "says when the team is back.")
    bot_answers_while_waiting: bool | None = Field(
        default=None, description="Whether the bot still answers self-service questions (order status) of a "
                                  "customer waiting in this queue.")
    default_wait_minutes: int | None = Field(
        default=None, ge=1, le=1440,
        description="The wait quoted before the queue has enough answered tickets to measure its own.")
