"""The rising-problem job: every few minutes, one leased evaluation of the recent volume per intent and channel."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import Clock
from core.events import EventBus, publishing_transaction
from core.jobs import Every, Job, JobContext
from core.problems import service
from core.problems.config import ProblemsSettings

JOB_NAME = "problems-rising"


class RisingProblems:
    """Evaluates rising problems in one transaction and publishes the raised/resolved alerts after the commit."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], bus: EventBus | None, clock: Clock,
                 settings: ProblemsSettings) -> None:
        self.sessionmaker = sessionmaker
        self.bus = bus
        self.clock = clock
        self.settings = settings
        self.raised = 0
        self.resolved = 0
        self.active = 0

    async def run_once(self) -> service.RisingOutcome:
        async with publishing_transaction(self.sessionmaker, self.bus) as session:
            outcome = await service.evaluate_rising(session, self.settings, self.clock.now())
        self.raised += len(outcome.raised)
        self.resolved += len(outcome.resolved)
        self.active = len(outcome.raised) + len(outcome.updated)
        return outcome

    async def tick(self, ctx: JobContext) -> bool:
        await self.run_once()
        return False

    def job(self) -> Job:
        """Leased: one instance evaluates at a time (the unique index on active alerts backs it up)."""
        every = self.settings.rising_every_seconds
        return Job(JOB_NAME, tick=self.tick, schedule=Every(every), lease=JOB_NAME, standby_seconds=every,
                   details=lambda: {"raised": self.raised, "resolved": self.resolved, "active": self.active})
