"""Keeps live views honest while the cross-instance bridge is down.

Live events from other instances come through Redis; while it is unreachable nothing arrives, so this
instance looks at the database instead: every `poll_seconds` it compares a cheap change marker (the newest
message and audit entry) and, when it moved, raises `RESYNC_TOPIC` so open web-chat sockets and console
streams catch up from the database. The bridge itself raises `RESYNC_TOPIC` when it is back.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.events import BRIDGE_TOPIC, RESYNC_TOPIC, EventBus
from core.jobs import Job, JobContext
from core.tickets import repository as ticket_repo

log = logging.getLogger(__name__)


class LiveCatchUp:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], bus: EventBus, poll_seconds: float) -> None:
        self.sessionmaker = sessionmaker
        self.bus = bus
        self.poll_seconds = poll_seconds
        self.bridge_down = False
        self.resyncs = 0
        self._marker: tuple[int, int] | None = None

    def job(self) -> Job:
        """Runs in the job registry for as long as the app (a body: it waits for bridge events itself)."""

        async def body(ctx: JobContext) -> None:
            await self.run()

        return Job("live-catch-up", body=body)

    async def run(self) -> None:
        async with self.bus.subscribe(BRIDGE_TOPIC) as events:
            while True:
                try:
                    async with asyncio.timeout(self.poll_seconds if self.bridge_down else None):
                        _, payload = await events.get()
                except TimeoutError:
                    await self._poll()
                    continue
                down = payload.get("state") == "down"
                if down and not self.bridge_down:
                    self.bridge_down = True
                    # Events in flight when Redis went away are lost too: catch up once at once.
                    self._marker = await self._read_marker()
                    self._resync("bridge_down")
                elif not down:
                    self.bridge_down = False

    async def _poll(self) -> None:
        marker = await self._read_marker()
        if marker is not None and marker != self._marker:
            self._marker = marker
            self._resync("changed_while_down")

    async def _read_marker(self) -> tuple[int, int] | None:
        try:
            async with self.sessionmaker() as session:
                return await ticket_repo.change_marker(session)
        except Exception as exc:  # the database may be down too; try again next time
            log.warning("live catch-up could not read the database: %s: %s", type(exc).__name__, exc)
            return None

    def _resync(self, reason: str) -> None:
        self.resyncs += 1
        self.bus.deliver_local(RESYNC_TOPIC, {"reason": reason})
