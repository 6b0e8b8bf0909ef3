"""The runner of due work: claims due tasks and fires each one exactly once.

Firing a task marks it done and runs its handler's effect in ONE transaction (the handler gets the session), so
a task fires once across restarts and instances: a runner killed mid-firing rolls back both, and the task fires
later (once its claim's lease runs out). A claimed batch fires in one transaction (one statement marks them all
done, then every handler, one commit): a firing is then its handler's few statements, which is what lets one runner
keep up with thousands of SLA timers (bench/sla.py). When a handler raises, the batch rolls back and its tasks fire
one by one instead; the one that raises is retried with the one backoff, and after its kind's last attempt it is
marked failed with the reason.
"""

from __future__ import annotations

import asyncio
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
from core.jobs.models import ScheduledTask, TaskState
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


def _task_of(row: ScheduledTask) -> DueTask:
    return DueTask(row.id, row.kind, row.key, row.due_at, dict(row.payload or {}), row.attempts)


class _HandlerFailed(Exception):
    """A handler raised while its batch fired together: the batch is rolled back and fired one by one."""


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
                 batch_size: int = 200, lease_seconds: float = 120.0, concurrency: int = 4) -> None:
        """`batch_size` tasks are claimed at a time and fired in `concurrency` parts at once, each part one
        transaction on its own connection: a firing mostly waits on the database, and one part at a time fired
        ~110 SLA alerts/s on a busy 2-core machine where 3 at once kept up with 150/s (bench/sla.py)."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self.sessionmaker = sessionmaker
        self.handlers = handlers
        self.clock = clock
        self.bus = bus
        self.runner_id = runner_id or uuid.uuid4().hex
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.stats = RunnerStats()

    def job(self, interval: float = 5.0) -> Job:
        """The runner as a job: a look every `interval` seconds, and at once again while a batch fired anything
        (due work is fired back to back until none is left: waiting `interval` after each part-full batch capped
        a runner at batch/(firing + interval) tasks/s, which fell behind the SLA bench's due rate)."""

        async def tick(ctx: JobContext) -> bool:
            return await self.run_once() > 0

        return Job("due-tasks", tick=tick, schedule=Every(interval), backoff=Backoff(initial=interval, maximum=60),
                   details=lambda: {"fired": self.stats.fired, "retried": self.stats.retried,
                                    "failed": self.stats.failed, "handler_error": self.stats.last_error})

    async def run_once(self) -> int:
        """Claim one batch of due tasks and fire them (in `concurrency` parts at once); returns how many were
        claimed."""
        now = self.clock.now()
        async with self.sessionmaker() as session:
            if not await repository.any_due(session, now):
                return 0
        async with self.sessionmaker() as session, session.begin():
            claimed = await repository.claim_due(session, self.runner_id, now, self.batch_size, self.lease_seconds)
        if claimed:
            # Dealt round: every part walks the due order, so the earliest tasks fire first whatever the part.
            parts = [claimed[i::self.concurrency] for i in range(min(self.concurrency, len(claimed)))]
            results = await asyncio.gather(*(self.fire_batch(part) for part in parts), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result  # the database: the tick backs off; unfired claims come back with their lease
        return len(claimed)

    async def fire_batch(self, task_ids: list[int]) -> int:
        """Fire claimed tasks together: all done-marks in one statement, every handler, one commit. If a handler
        raises, the whole batch rolls back (nothing of it happened) and its tasks fire one by one, each in its own
        transaction, so the others still fire and the failing one is retried alone (a lone task fires alone at
        once: its handler never runs twice for one firing). Returns how many fired."""
        if len(task_ids) == 1:
            return int(await self.fire(task_ids[0]))
        try:
            return await self._fire_together(task_ids)
        except _HandlerFailed:
            fired = 0
            for task_id in task_ids:
                fired += await self.fire(task_id)
            return fired

    async def _fire_together(self, task_ids: list[int]) -> int:
        fired: list[DueTask] = []
        async with self.sessionmaker() as session:
            try:
                async with session.begin():
                    rows = await repository.mark_many_done(session, task_ids, self.runner_id, self.clock.now())
                    for row in rows:
                        task = _task_of(row)
                        try:
                            await self._handle(session, task)
                        except Exception as exc:
                            raise _HandlerFailed from exc
                        fired.append(task)
            except BaseException:
                discard_pending(session)
                raise
            events = take_pending(session)
        if self.bus is not None:
            self.bus.publish_all(events)
        self._count_fired(fired)
        return len(fired)

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
                    task = _task_of(row)
                    await self._handle(session, task)
            except Exception as exc:  # the transaction rolled back: the task is pending again, its effect undone
                discard_pending(session)
                error = exc
            else:
                if self.bus is not None:
                    self.bus.publish_all(take_pending(session))
        if error is None:
            if task is not None:
                self._count_fired([task])
            return True
        if task is None:
            raise error  # the database, not the task: the tick backs off and the claim's lease brings it back
        await self._failed(task_id, task, error)
        return False

    async def _handle(self, session: AsyncSession, task: DueTask) -> None:
        """Run the task's handler in the firing transaction (LookupError: no handler for its kind)."""
        registration = self.handlers.get(task.kind)
        if registration is None:
            raise LookupError(f"no handler for tasks of kind {task.kind!r}")
        await registration.handler(session, task)

    def _count_fired(self, tasks: list[DueTask]) -> None:
        self.stats.fired += len(tasks)
        self.stats.fired_keys = [*self.stats.fired_keys, *((t.kind, t.key) for t in tasks)][-100:]

    def _retry_at(self, task: DueTask) -> datetime | None:
        registration = self.handlers.get(task.kind)
        if registration is not None and task.attempt < registration.max_attempts:
            return self.clock.now() + timedelta(seconds=registration.backoff.delay(task.attempt))
        return None

    async def _failed(self, task_id: int, task: DueTask, error: Exception) -> None:
        message = f"{type(error).__name__}: {error}"
        self.stats.last_error = message[:500]
        attempt = task.attempt
        async with self.sessionmaker() as session, session.begin():
            state = await repository.record_failure(session, task_id, self.runner_id, message, self._retry_at(task))
        if state == TaskState.failed:
            self.stats.failed += 1
            log.error("scheduled task failed for good", extra={
                "task_id": task_id, "kind": task.kind, "attempts": attempt, "error": message[:200]})
        elif state == TaskState.pending:
            self.stats.retried += 1
            log.warning("scheduled task failed; retrying", extra={
                "task_id": task_id, "kind": task.kind, "attempt": attempt, "error": message[:200]})
