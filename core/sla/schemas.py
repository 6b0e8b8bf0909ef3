"""SLA policies and SLA state as the API takes and gives them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.db.base import DbId
from core.tickets.models import Priority

SlaStateName = Literal["ok", "warning", "breached", "paused", "met"]
Minutes = Field(default=None, description="Target in minutes of the policy's business time (null: no target); "
                                          "must be positive", examples=[60])


class SlaActions(BaseModel):
    """What happens to a ticket on a warning or a breach, besides the history event and the notification."""

    model_config = ConfigDict(extra="forbid")
    raise_priority: bool = Field(default=False, description="One step up (low -> normal -> high -> urgent)")
    move_to_queue: str | None = Field(default=None, max_length=64, description="Queue slug to move the ticket to "
                                      "(it waits there unassigned)")
    unassign: bool = False


class _PolicyFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    position: int | None = Field(default=None, ge=0, le=1_000_000, description="Lower matches first")
    enabled: bool | None = None
    queues: list[str] | None = Field(default=None, max_length=100, description="Queue slugs; empty: any queue")
    priorities: list[Priority] | None = Field(default=None, max_length=4, description="Empty: any priority")
    channels: list[str] | None = Field(default=None, max_length=20, description="Empty: any channel")
    intents: list[str] | None = Field(default=None, max_length=200, description="Empty: any intent")
    calendar_id: DbId | None = None
    first_response_minutes: int | None = Minutes
    next_response_minutes: int | None = Minutes
    resolution_minutes: int | None = Minutes
    warning_share: float | None = Field(default=None, description="Share of a target used when the warning "
                                        "fires, strictly between 0 and 1", examples=[0.8])
    on_warning: SlaActions | None = None
    on_breach: SlaActions | None = None


class SlaPolicyCreate(_PolicyFields):
    name: str = Field(min_length=1, max_length=120)
    calendar_id: DbId
    warning_share: float | None = Field(default=0.8, description="Share of a target used when the warning fires, "
                                        "strictly between 0 and 1", examples=[0.8])


class SlaPolicyUpdate(_PolicyFields):
    """The fields given change; a target sent as null is removed."""

    name: str | None = Field(default=None, min_length=1, max_length=120)


class SlaPolicyRead(BaseModel):
    id: int
    name: str
    position: int
    enabled: bool
    queues: list[str]
    priorities: list[Priority]
    channels: list[str]
    intents: list[str]
    calendar_id: int
    first_response_minutes: int | None
    next_response_minutes: int | None
    resolution_minutes: int | None
    warning_share: float
    on_warning: SlaActions
    on_breach: SlaActions
    created_at: datetime
    updated_at: datetime


class SlaRead(BaseModel):
    """A ticket's SLA: due times (UTC), what remains of the nearest one, and its state."""

    policy: str | None = Field(description="The policy's name")
    policy_id: int | None
    state: SlaStateName
    due_at: datetime | None = Field(description="The nearest running due time")
    remaining_seconds: int | None = Field(description="Until `due_at` (negative once breached); null when "
                                          "nothing runs (paused or met)")
    first_response_due_at: datetime | None
    first_response_met_at: datetime | None
    next_response_due_at: datetime | None
    resolution_due_at: datetime | None
    resolution_met_at: datetime | None
    paused_at: datetime | None
    breached: list[str] = Field(description="Targets breached so far: first_response, next_response, resolution")
