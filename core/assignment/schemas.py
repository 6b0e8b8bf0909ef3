"""Queue assignment settings and agents' presence: request and response models."""

from __future__ import annotations

import enum
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from core.users.models import AssignmentMode
from core.users.schemas import Languages, trimmed_name


class Presence(enum.StrEnum):
    online = "online"  # a console heartbeat within the offline window, not away: gets new tickets
    away = "away"  # online but set away by the agent: keeps their tickets, gets no new ones
    offline = "offline"  # no heartbeat for longer than the offline window


class QueueWarning(enum.StrEnum):
    no_agents = "no_agents"  # an automatic queue without active members: tickets wait until someone joins
    none_online = "none_online"  # members, but nobody online and not away right now
    no_capacity = "no_capacity"  # every member has capacity 0


class QueueUpdate(BaseModel):
    """Fields left out, or null, stay as they are."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    assignment_mode: AssignmentMode | None = None
    return_after_minutes: StrictInt | None = Field(
        default=None, ge=1, le=10080,
        description="An offline agent's untouched tickets go back to the queue after this many minutes.")

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str | None) -> str | None:
        return trimmed_name(value)


class PresenceRead(BaseModel):
    user_id: int
    presence: Presence
    away: bool
    languages: list[str]
    last_seen_at: datetime | None


class PresenceUpdate(BaseModel):
    """What agents set about themselves; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")
    away: bool | None = None
    languages: Languages | None = None
