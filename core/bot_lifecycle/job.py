"""The bot-resolve job: every minute, one leased sweep over the tickets the bot answered and nobody wrote since."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.bot_lifecycle import service
from core.clock import Clock
from core.events import EventBus, publishing_transaction
from core.jobs import Every, Job, JobContext

JOB_NAME = "bot-resolve"


class QuietTicketSweep:
    """Resolves quiet bot tickets in batches, each a transaction, and publishes their events after the commit."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], bus: EventBus | None, clock: Clock, *,
                 quiet: timedelta, batch_size: int = 500) -> None:
        self.sessionmaker = sessionmaker
        self.bus = bus
        self.clock = clock
        self.quiet = quiet
        self.batch_size = batch_size
        self.resolved = 0

    async def run_once(self) -> int:
        """One batch; how many tickets it resolved."""
        async with publishing_transaction(self.sessionmaker, self.bus) as session:
            count = await service.resolve_quiet_tickets(session, self.clock.now(), self.quiet, self.batch_size)
        self.resolved += count
        return count

    async def tick(self, ctx: JobContext) -> bool:
        return await self.run_once() >= self.batch_size  # a full batch: more are waiting, go again at once

    def job(self, every_seconds: float) -> Job:
        """Leased: one instance sweeps at a time (the row locks would keep two from resolving a ticket twice)."""
        return Job(JOB_NAME, tick=self.tick, schedule=Every(every_seconds), lease=JOB_NAME,
                   standby_seconds=every_seconds, details=lambda: {"resolved": self.resolved})
