"""Queries of the due-work table (scheduled_tasks)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.jobs.models import ScheduledTask, TaskState


async def insert_if_absent(session: AsyncSession, kind: str, key: str, due_at: datetime, payload: dict[str, Any],
                           now: datetime) -> bool:
    """Add the task unless one with this (kind, key) exists, in one statement (no race between two callers).
    Returns whether it was added."""
    values = {"kind": kind, "key": key, "due_at": due_at, "payload": payload, "state": TaskState.pending,
              "attempts": 0, "created_at": now}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(ScheduledTask).values(**values).on_conflict_do_nothing(index_elements=["kind", "key"]) \
        .returning(ScheduledTask.id)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def rearm(session: AsyncSession, kind: str, key: str, due_at: datetime,
                payload: dict[str, Any] | None) -> bool:
    """Move the task to `due_at` and make it pending again (whatever it was); returns whether it exists."""
    values: dict[str, Any] = {"due_at": due_at, "state": TaskState.pending, "attempts": 0, "claimed_by": None,
                              "lease_until": None, "done_at": None, "last_error": None}
    if payload is not None:
        values["payload"] = payload
    stmt = update(ScheduledTask).where(ScheduledTask.kind == kind, ScheduledTask.key == key).values(**values) \
        .returning(ScheduledTask.id).execution_options(synchronize_session=False)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def delete_pending(session: AsyncSession, kind: str, key: str) -> bool:
    """Cancel a task that has not fired; returns whether there was one."""
    stmt = delete(ScheduledTask).where(ScheduledTask.kind == kind, ScheduledTask.key == key,
                                       ScheduledTask.state == TaskState.pending).returning(ScheduledTask.id)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def get(session: AsyncSession, kind: str, key: str) -> ScheduledTask | None:
    return (await session.scalars(
        select(ScheduledTask).where(ScheduledTask.kind == kind, ScheduledTask.key == key))).one_or_none()


async def any_due(session: AsyncSession, now: datetime) -> bool:
    """Whether a claim would find anything (a read: an idle runner takes no write lock)."""
    return (await session.scalar(
        select(ScheduledTask.id)
        .where(ScheduledTask.state == TaskState.pending, ScheduledTask.due_at <= now,
               or_(ScheduledTask.lease_until.is_(None), ScheduledTask.lease_until <= now))
        .limit(1))) is not None


async def claim_due(session: AsyncSession, runner: str, now: datetime, limit: int,
                    lease_seconds: float) -> list[int]:
    """Claim up to `limit` due tasks for `runner`: pending, due, and not claimed by a runner whose lease still
    runs. On PostgreSQL `FOR UPDATE SKIP LOCKED` gives concurrent runners disjoint rows (and skips a row another
    runner is firing right now)."""
    due = (
        select(ScheduledTask.id)
        .where(ScheduledTask.state == TaskState.pending, ScheduledTask.due_at <= now,
               or_(ScheduledTask.lease_until.is_(None), ScheduledTask.lease_until <= now))
        .order_by(ScheduledTask.due_at, ScheduledTask.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(ScheduledTask)
        .where(ScheduledTask.id.in_(due.scalar_subquery()))
        .values(claimed_by=runner, lease_until=now + timedelta(seconds=lease_seconds))
        .returning(ScheduledTask.id, ScheduledTask.due_at)
        .execution_options(synchronize_session=False)
    )
    rows = (await session.execute(stmt)).all()
    return [row_id for row_id, _ in sorted(rows, key=lambda r: (r[1], r[0]))]


async def mark_done(session: AsyncSession, task_id: int, runner: str, now: datetime) -> ScheduledTask | None:
    """Mark a claimed task done as the first write of its firing transaction, and return it; None when it is not
    (any longer) this runner's to fire. The write locks the row (the whole database on SQLite) until the
    transaction ends, so the effect that follows in it happens once: a rollback puts the task back."""
    rows = await mark_many_done(session, [task_id], runner, now)
    return rows[0] if rows else None


async def mark_many_done(session: AsyncSession, task_ids: list[int], runner: str, now: datetime
                         ) -> list[ScheduledTask]:
    """`mark_done` for a claimed batch in one statement (one round trip: the rows come back with the update): the
    rows still this runner's, in due order."""
    stmt = (
        update(ScheduledTask)
        .where(ScheduledTask.id.in_(task_ids), ScheduledTask.state == TaskState.pending,
               ScheduledTask.claimed_by == runner)
        .values(state=TaskState.done, done_at=now, claimed_by=None, lease_until=None, last_error=None,
                attempts=ScheduledTask.attempts + 1)
        .returning(ScheduledTask)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return sorted((await session.scalars(stmt)).all(), key=lambda r: (r.due_at, r.id))


async def record_failure(session: AsyncSession, task_id: int, runner: str, error: str,
                         retry_at: datetime | None) -> TaskState | None:
    """A firing failed: retry at `retry_at`, or fail for good (None). Returns the new state, or None when the task
    is no longer this runner's."""
    state = TaskState.pending if retry_at is not None else TaskState.failed
    stmt = (
        update(ScheduledTask)
        .where(ScheduledTask.id == task_id, ScheduledTask.state == TaskState.pending,
               ScheduledTask.claimed_by == runner)
        .values(state=state, attempts=ScheduledTask.attempts + 1, last_error=error[:2000], claimed_by=None,
                lease_until=None, due_at=retry_at if retry_at is not None else ScheduledTask.due_at)
        .returning(ScheduledTask.id)
        .execution_options(synchronize_session=False)
    )
    return state if (await session.execute(stmt)).scalar_one_or_none() is not None else None


async def attempts_of(session: AsyncSession, task_id: int) -> int | None:
    return (await session.scalars(select(ScheduledTask.attempts).where(ScheduledTask.id == task_id))).one_or_none()
