"""SLA policies and each ticket's SLA clock (issue 11 scope 3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, JSONType, utcnow


class SlaPolicy(Base):
    """Response and resolution targets for the tickets it matches (first match by `position`).

    The match lists are JSON (team ids, priorities, channels, intents; empty = any): a handful of policies is read
    whole and matched in memory, never queried by piece.
    """

    __tablename__ = "sla_policies"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=100)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    queue_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    priorities: Mapped[list[str]] = mapped_column(JSONType, default=list)
    channels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    intents: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # RESTRICT: a calendar a policy counts in cannot go (the API says 409 before the database would).
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="RESTRICT"), index=True)
    first_response_minutes: Mapped[int | None] = mapped_column(Integer)
    next_response_minutes: Mapped[int | None] = mapped_column(Integer)
    resolution_minutes: Mapped[int | None] = mapped_column(Integer)
    warning_share: Mapped[float] = mapped_column(Float, default=0.8)
    # {"raise_priority": bool, "move_to_queue_id": int | None, "unassign": bool}
    warning_actions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    breach_actions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketSla(Base):
    """One ticket's SLA clock: absolute warning and due moments per target, already counted in the policy's
    calendar, so a timer firing needs no calendar (only comparisons). A target is running while its due moment is
    set and it is not met; `notified` holds the "target:level" alerts already fired (each fires once)."""

    __tablename__ = "ticket_slas"
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    # CASCADE: a deleted policy's clocks go with it (their timers find nothing and are dropped).
    policy_id: Mapped[int] = mapped_column(ForeignKey("sla_policies.id", ondelete="CASCADE"), index=True)
    # Each target counts from its own start plus the business time paused since then (core/sla/service.py
    # `_count`): the first response from `started_at`, the next response from the customer's first unanswered
    # message, the resolution from `resolution_started_at` (the start, or the reopening).
    started_at: Mapped[datetime]
    first_response_warn_at: Mapped[datetime | None]
    first_response_due_at: Mapped[datetime | None]
    first_response_met_at: Mapped[datetime | None]
    next_response_started_at: Mapped[datetime | None]
    next_response_warn_at: Mapped[datetime | None]
    next_response_due_at: Mapped[datetime | None]
    next_response_paused_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    resolution_started_at: Mapped[datetime | None]
    resolution_paused_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    resolution_warn_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    resolution_met_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    paused_seconds: Mapped[float] = mapped_column(Float, default=0.0)  # business seconds paused since started_at
    # The moment the ticket's timer is armed for (None: not armed): re-armed only when the earliest pending
    # moment changes, so a message that changes nothing writes no task (and keeps a failing timer's backoff).
    armed_at: Mapped[datetime | None]
    notified: Mapped[list[str]] = mapped_column(JSONType, default=list)
    reminded: Mapped[bool] = mapped_column(Boolean, default=False)  # the customer's one waiting reminder
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
