"""The assignment job: every second, one leased run over the automatic queues."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.assignment import repository, service
from core.clock import Clock
from core.events import EventBus, publishing_transaction
from core.jobs import Every, Job, JobContext

JOB_NAME = "assignment"

log = logging.getLogger(__name__)


@dataclass
class AssignmentStats:
    runs: int = 0
    assigned: int = 0
    returned: int = 0


class AssignmentRunner:
    """Runs each automatic queue in a transaction of its own and publishes its events after the commit."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], bus: EventBus | None, clock: Clock, *,
                 offline_after: timedelta, batch_size: int = 200) -> None:
        self.sessionmaker = sessionmaker
        self.bus = bus
        self.clock = clock
        self.offline_after = offline_after
        self.batch_size = batch_size
        self.stats = AssignmentStats()

    async def run_once(self) -> bool:
        """One pass over the automatic queues; True when some queue handed out a full batch (more may wait)."""
        async with self.sessionmaker() as session:
            queue_ids = await repository.automatic_queue_ids(session)
        more = False
        failed: Exception | None = None
        for team_id in queue_ids:
            try:
                async with publishing_transaction(self.sessionmaker, self.bus) as session:
                    result = await service.run_queue(session, team_id, self.clock.now(), self.offline_after,
                                                     self.batch_size)
            except Exception as exc:
                # One queue's trouble (rolled back) never holds up the others; the job still reports it.
                log.error("assignment run of a queue failed", extra={"team_id": team_id}, exc_info=exc)
                failed = failed or exc
                continue
            self.stats.assigned += result.assigned
            self.stats.returned += result.returned
            more = more or result.more
        self.stats.runs += 1
        if failed is not None:
            raise failed
        return more

    async def tick(self, ctx: JobContext) -> bool:
        return await self.run_once()

    def details(self) -> dict[str, Any]:
        return {"assigned": self.stats.assigned, "returned": self.stats.returned}

    def job(self, every_seconds: float) -> Job:
        """Leased (one instance hands out at a time; the row locks hold even if two runs overlap), every
        `every_seconds` (1 s: the longest a waiting ticket waits for an online agent with room). Not woken by
        ticket events: under load that was a run, and on PostgreSQL a lease connection, several times a second
        per worker, for a gain of under a second."""
        return Job(JOB_NAME, tick=self.tick, schedule=Every(every_seconds), lease=JOB_NAME,
                   standby_seconds=every_seconds, details=self.details)
