"""Keeps the running adapters in step with the channel configurations in the database, without a restart.

The hot path never reads the table: adapters are built from settings held in memory. This job looks at the table's
(id, version) pairs every `interval` seconds (one small query), and at once when a change is announced (the
CHANNEL_CONFIGS event, published after the change commits; forwarded to the other instances by the Redis bridge
when there is one). When the pairs differ it computes each kind's settings again and rebuilds only the kinds whose
settings changed: the old adapter stops (its pollers and mailbox readers with it), the new one starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import ChannelAdapter, ChannelContext, ChannelRegistry
from channels.config import ChannelsSettings
from channels.setup import service
from channels.setup.kinds import effective
from core.channel_configs import repository
from core.channel_configs.secrets import SecretBox
from core.events import Topic
from core.jobs import Backoff, Every, Job, JobContext

log = logging.getLogger(__name__)

JOB_NAME = "channel-configs"
Factory = Callable[[ChannelsSettings, ChannelContext], ChannelAdapter | None]


class ChannelReconciler:
    """Builds the adapters from the environment's settings and the database's rows, and rebuilds what changes."""

    def __init__(self, env: ChannelsSettings, ctx: ChannelContext, registry: ChannelRegistry, box: SecretBox,
                 factories: dict[str, Factory], interval: float = 5.0) -> None:
        self.env = env
        self.ctx = ctx
        self.registry = registry
        self.box = box
        self.factories = factories
        self.interval = interval
        self.running: dict[str, BaseModel] = {}
        self.notes: dict[int, str] = {}  # rows not used, and why
        self.rebuilds = 0
        self.last_error: str | None = None
        self._fingerprint: frozenset[tuple[int, int]] | None = None
        self._lock = asyncio.Lock()

    async def _read(self, session: AsyncSession) -> ChannelsSettings:
        """The channels' settings with the rows applied (the fingerprint was read just before, in this session:
        a change between the two is newer than the fingerprint, so the next look reads it again)."""
        rows = await service.row_values(session, self.box)
        settings, self.notes = effective(self.env, rows)
        return settings

    async def build(self) -> list[ChannelAdapter]:
        """The adapters to run at start (not started): the environment's channels with the rows applied."""
        async with self._lock:
            async with self.ctx.sessionmaker() as session:
                self._fingerprint = await repository.fingerprint(session)
                settings = await self._read(session)
            adapters = []
            for kind, factory in self.factories.items():
                self.running[kind] = getattr(settings, kind)
                adapter = factory(settings, self.ctx)
                if adapter is not None:
                    adapters.append(adapter)
            return adapters

    async def check(self) -> bool:
        """Rebuild the kinds whose settings changed since the last look; True when any was rebuilt."""
        async with self._lock:
            async with self.ctx.sessionmaker() as session:
                fingerprint = await repository.fingerprint(session)
                if fingerprint == self._fingerprint:
                    return False
                settings = await self._read(session)
            rebuilt = False
            for kind, factory in self.factories.items():
                wanted = getattr(settings, kind)
                if self.running.get(kind) == wanted:
                    continue
                await self._swap(kind, factory, settings)
                self.running[kind] = wanted
                rebuilt = True
            self._fingerprint = fingerprint
            return rebuilt

    async def _swap(self, kind: str, factory: Factory, settings: ChannelsSettings) -> None:
        old = self.registry.get(kind)
        if old is not None:
            try:
                await old.stop()
            except Exception:
                log.exception("channel failed to stop", extra={"channel": kind})
            self.registry.remove(kind)
        adapter = factory(settings, self.ctx)
        self.rebuilds += 1
        if adapter is None:
            log.info("channel switched off", extra={"channel": kind})
            return
        self.registry.register(adapter)
        try:
            await adapter.start()
        except Exception as exc:
            # As at the app's start: a failing channel shows its error and never stops the others.
            adapter.health.error(f"start failed: {type(exc).__name__}: {exc}")
            log.exception("channel failed to start", extra={"channel": kind})
        log.info("channel rebuilt from its configuration", extra={"channel": kind})

    def job(self) -> Job:
        async def tick(ctx: JobContext) -> None:
            try:
                await self.check()
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                raise
            self.last_error = None

        def details() -> dict[str, Any]:
            return {"rebuilds": self.rebuilds, "unused_configs": len(self.notes)}

        return Job(JOB_NAME, tick=tick, schedule=Every(self.interval, first_delay=self.interval),
                   backoff=Backoff(initial=self.interval, maximum=60), wake_topics=(Topic.CHANNEL_CONFIGS,),
                   details=details)
