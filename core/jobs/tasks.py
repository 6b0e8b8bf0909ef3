"""The runner of due work: claims due tasks and fires each one exactly once.

Firing a task marks it done and runs its handler's effect in ONE transaction (the handler gets the session), so
a task fires once across restarts and instances: a runner killed mid-firing rolls back both, and the task fires
later (once its claim's lease runs out). A handler that raises is retried with the one backoff, and after its
kind's last attempt the task is marked failed with the reason.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import SYSTEM_CLOCK, Clock
from core.events import EventBus, discard_pending, take_pending
from core.jobs import repository
from core.jobs.backoff import Backoff
from core.jobs.job import Job, JobContext
from core.jobs.models import TaskState
from core.jobs.schedule import Every

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DueTask:
    """What a handler is given about the task it fires."""

    id: int
    kind: str
    key: str
    due_at: datetime
    payload: dict[str, Any]
    attempt: int  # 1 for the first firing


TaskHandler = Callable[[AsyncSession, DueTask], Awaitable[None]]


@dataclass(frozen=True)
class _Registration:
    handler: TaskHandler
    max_attempts: int
    backoff: Backoff


class TaskHandlers:
    """Handlers keyed by task kind (one per kind)."""

    def __init__(self) -> None:
        self._handlers: dict[str, _Registration] = {}

    def register(self, kind: str, handler: TaskHandler, *, max_attempts: int = 5,
                 backoff: Backoff | None = None) -> None:
        """`handler(session, task)` does the task's effect in the firing transaction (it may flush and emit
        events, never commit); raising rolls the effect back and retries the task later."""
        if kind in self._handlers:
            raise ValueError(f"a handler for {kind!r} is registered already")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._handlers[kind] = _Registration(handler, max_attempts, backoff or Backoff(initial=30, maximum=3600))

    def get(self, kind: str) -> _Registration | None:
        return self._handlers.get(kind)

    def kinds(self) -> list[str]:
        return sorted(self._handlers)


@dataclass
class RunnerStats:
    fired: int = 0
    retried: int = 0
    failed: int = 0
    last_error: str | None = None
    fired_keys: list[tuple[str, str]] = field(default_factory=list)  # the last few, for tests and /health


class DueTaskRunner:
    """Fires due tasks; safe to run on many instances at once (each task fires once)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], handlers: TaskHandlers, *,
                 clock: Clock = SYSTEM_CLOCK, bus: EventBus | None = None, runner_id: str | None = None,
                 batch_size: int = 50, lease_seconds: float = 120.0) -> None:
        self.sessionmaker = sessionmaker
        self.handlers = handlers
        self.clock = clock
        self.bus = bus
        self.runner_id = runner_id or uuid.uuid4().hex
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.stats = RunnerStats()

    def job(self, interval: float = 5.0) -> Job:
        """The runner as a job: a batch every `interval` seconds, at once again while batches come back full."""

        async def tick(ctx: JobContext) -> bool:
            return await self.run_once() >= self.batch_size

        return Job("due-tasks", tick=tick, schedule=Every(interval), backoff=Backoff(initial=interval, maximum=60),
                   details=lambda: {"fired": self.stats.fired, "retried": self.stats.retried,
                                    "failed": self.stats.failed, "handler_error": self.stats.last_error})

    async def run_once(self) -> int:
        """Claim one batch of due tasks and fire them one by one; returns how many were claimed."""
        now = self.clock.now()
        async with self.sessionmaker() as session:
            if not await repository.any_due(session, now):
                return 0
        async with self.sessionmaker() as session, session.begin():
            claimed = await repository.claim_due(session, self.runner_id, now, self.batch_size, self.lease_seconds)
        for task_id in claimed:
            await self.fire(task_id)
        return len(claimed)

    async def fire(self, task_id: int) -> bool:
        """Fire one claimed task: done-mark and effect in one transaction. Returns whether it fired."""
        error: Exception | None = None
        task: DueTask | None = None
        async with self.sessionmaker() as session:
            try:
                async with session.begin():
                    row = await repository.mark_done(session, task_id, self.runner_id, self.clock.now())
                    if row is None:
                        return False  # fired or taken by another runner meanwhile
                    task = DueTask(row.id, row.kind, row.key, row.due_at, dict(row.payload or {}), row.attempts)
                    registration = self.handlers.get(task.kind)
                    if registration is None:
                        raise LookupError(f"no handler for tasks of kind {task.kind!r}")
                    await registration.handler(session, task)
            except Exception as exc:  # the transaction rolled back: the task is pending again, its effect undone
                discard_pending(session)
                error = exc
            else:
                if self.bus is not None:
                    self.bus.publish_all(take_pending(session))
        if error is None:
            self.stats.fired += 1
            if task is not None:
                self.stats.fired_keys = [*self.stats.fired_keys[-99:], (task.kind, task.key)]
            return True
        if task is None:
            raise error  # the database, not the task: the tick backs off and the claim's lease brings it back
        await self._failed(task_id, task, error)
        return False

    async def _failed(self, task_id: int, task: DueTask, error: Exception) -> None:
        message = f"{type(error).__name__}: {error}"
        self.stats.last_error = message[:500]
        registration = self.handlers.get(task.kind)
        attempt = task.attempt
        retry_at: datetime | None = None
        if registration is not None and attempt < registration.max_attempts:
            retry_at = self.clock.now() + timedelta(seconds=registration.backoff.delay(attempt))
        async with self.sessionmaker() as session, session.begin():
            state = await repository.record_failure(session, task_id, self.runner_id, message, retry_at)
        if state == TaskState.failed:
            self.stats.failed += 1
            log.error("scheduled task failed for good", extra={
                "task_id": task_id, "kind": task.kind, "attempts": attempt, "error": message[:200]})
        elif state == TaskState.pending:
            self.stats.retried += 1
            log.warning("scheduled task failed; retrying", extra={
                "task_id": task_id, "kind": task.kind, "attempt": attempt, "error": message[:200]})
