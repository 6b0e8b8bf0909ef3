"""Due work: a row per thing to do at a time (an SLA timer, a survey, a reminder), fired exactly once."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, utcnow
from core.users.models import str_enum


class TaskState(enum.StrEnum):
    pending = "pending"
    done = "done"
    failed = "failed"


class ScheduledTask(Base):
    """One firing of a handler of `kind` at `due_at`; (kind, key) names it, so scheduling it twice is one row."""

    __tablename__ = "scheduled_tasks"
    __table_args__ = (
        UniqueConstraint("kind", "key"),
        Index("ix_scheduled_tasks_due", "state", "due_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    due_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[TaskState] = mapped_column(str_enum(TaskState), default=TaskState.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
