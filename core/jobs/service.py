"""Scheduling due work: what SLA timers, surveys and reminders call, inside their own transaction (never commits).

A task is named by (kind, key) - e.g. ("sla.breach", "ticket:42:first_response") - so scheduling the same thing
twice is one task, and it can be moved or cancelled by name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.base import utcnow
from core.errors import ValidationFailedError
from core.jobs import repository
from core.jobs.models import ScheduledTask


def _check(kind: str, key: str, due_at: datetime) -> None:
    if not kind or len(kind) > 64:
        raise ValidationFailedError("a task kind is 1 to 64 characters")
    if not key or len(key) > 255:
        raise ValidationFailedError("a task key is 1 to 255 characters")
    if due_at.tzinfo is None:
        raise ValidationFailedError("a task's due time needs a time zone")


async def schedule(session: AsyncSession, kind: str, key: str, due_at: datetime,
                   payload: dict[str, Any] | None = None) -> bool:
    """Fire the handler of `kind` at `due_at` with `payload`, unless (kind, key) is scheduled already (then nothing
    changes: use `reschedule` to move it). Returns whether a task was added."""
    _check(kind, key, due_at)
    return await repository.insert_if_absent(session, kind, key, due_at, payload or {}, utcnow())


async def reschedule(session: AsyncSession, kind: str, key: str, due_at: datetime,
                     payload: dict[str, Any] | None = None) -> bool:
    """Move (kind, key) to `due_at` and arm it again, even if it fired or failed; added if it did not exist.
    Returns whether it existed."""
    _check(kind, key, due_at)
    if await repository.rearm(session, kind, key, due_at, payload):
        return True
    await repository.insert_if_absent(session, kind, key, due_at, payload or {}, utcnow())
    return False


async def cancel(session: AsyncSession, kind: str, key: str) -> bool:
    """Cancel (kind, key) if it has not fired; returns whether it was pending."""
    return await repository.delete_pending(session, kind, key)


async def get(session: AsyncSession, kind: str, key: str) -> ScheduledTask | None:
    return await repository.get(session, kind, key)
