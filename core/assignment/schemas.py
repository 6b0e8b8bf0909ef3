"""Queue assignment settings and agents' presence: request and response models."""

from __future__ import annotations

import enum
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from core.csat.schemas import QueueCsatUpdate
from core.handover.schemas import QueueHandoverUpdate
from core.users.models import AssignmentMode, Team
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


class QueueSettingsUpdate(QueueUpdate, QueueHandoverUpdate):
    """Everything `PATCH /admin/queues/{slug}` changes: name and assignment, the hand-over and the surveys."""

    csat_enabled: bool | None = Field(
        default=None, description="Whether customers get a satisfaction survey after a person resolves a ticket.")
    csat_delay_minutes: StrictInt | None = Field(
        default=None, ge=0, le=10080, description="How long after the resolution the survey goes out.")

    def csat_part(self, team: Team) -> QueueCsatUpdate | None:
        """The survey settings when one of them was given (the other stays as the queue has it)."""
        if self.csat_enabled is None and self.csat_delay_minutes is None:
            return None
        return QueueCsatUpdate(
            csat_enabled=team.csat_enabled if self.csat_enabled is None else self.csat_enabled,
            csat_delay_minutes=team.csat_delay_minutes if self.csat_delay_minutes is None
            else self.csat_delay_minutes)

    def assignment_part(self) -> QueueUpdate:
        return QueueUpdate.model_validate(self.model_dump(include=set(QueueUpdate.model_fields), exclude_unset=True))

    def handover_part(self) -> QueueHandoverUpdate | None:
        """The hand-over fields given (None: none were); an explicit `calendar_id: null` stays explicit."""
        given = self.model_dump(include=set(QueueHandoverUpdate.model_fields), exclude_unset=True)
        return QueueHandoverUpdate.model_validate(given) if given else None


class QueueSaved(BaseModel):
    """The queue as saved, with what will keep its tickets waiting (shown, never refused)."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    slug: str
    name: str
    assignment_mode: AssignmentMode
    return_after_minutes: int
    calendar_id: int | None = None  # hand-over settings (core/handover): business hours, null = always open
    bot_answers_while_waiting: bool = False
    default_wait_minutes: int = 15
    csat_enabled: bool = False  # satisfaction surveys (core/csat)
    csat_delay_minutes: int = 60
    warnings: list[QueueWarning] = Field(default_factory=list)


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
