"""The outbox: retries with backoff, terminal failure, retry button, at-most-once claims across dispatchers."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import ClassVar

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.base import ChannelHealth
from core.config import CoreSettings
from core.events import EventBus
from core.ingest.schemas import InboundMessage, SenderInfo
from core.ingest.service import IngestService
from core.models import OutboxMessage, OutboxStatus
from core.outbox import service as outbox_service
from core.outbox.dispatcher import OutboxDispatcher, PermanentSendError
from core.outbox.schemas import OutboundEnvelope
from tests.conftest import keyword_engine, responses

FAST = CoreSettings(outbox_backoff_base_seconds=0.01, outbox_backoff_max_seconds=0.02, outbox_max_attempts=3,
                    outbox_poll_seconds=0.02)


class FlakyChannel:
    """Fails the first `failures` sends of each message, then accepts."""

    kind: ClassVar[str] = "rest"

    def __init__(self, failures: int = 0, permanent: bool = False, delay: float = 0.0) -> None:
        self.failures = failures
        self.permanent = permanent
        self.delay = delay
        self.calls: Counter[int] = Counter()
        self.delivered: list[int] = []
        self.health = ChannelHealth()

    async def send(self, envelope: OutboundEnvelope) -> str | None:
        self.calls[envelope.outbox_id] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.permanent:
            raise PermanentSendError("recipient blocked the bot")
        if self.calls[envelope.outbox_id] <= self.failures:
            raise ConnectionError("provider down")
        self.delivered.append(envelope.outbox_id)
        return f"p-{envelope.outbox_id}"


async def queue_answers(sessionmaker: async_sessionmaker[AsyncSession], n: int) -> None:
    engine = keyword_engine()
    ingest = IngestService(sessionmaker, lambda: engine, EventBus(), FAST, responses=responses)
    for i in range(n):
        await ingest.ingest(InboundMessage(channel="rest", external_message_id=f"in-{i}",
                                           sender=SenderInfo(external_id=f"c-{i}"), text="hello"))


async def rows(sessionmaker: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with sessionmaker() as s:
        return list((await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def drain(dispatcher: OutboxDispatcher, rounds: int = 60) -> None:
    for _ in range(rounds):
        await dispatcher.dispatch_once()
        await asyncio.sleep(0.02)


async def test_failing_then_recovering_channel_delivers_once(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await queue_answers(sessionmaker, 3)
    channel = FlakyChannel(failures=2)
    dispatcher = OutboxDispatcher(sessionmaker, lambda kind: channel, EventBus(), FAST)
    await drain(dispatcher)
    result = await rows(sessionmaker)
    assert [r.status for r in result] == [OutboxStatus.sent] * 3
    assert all(r.attempts == 3 for r in result)
    assert sorted(channel.delivered) == [r.id for r in result]
    assert all(r.provider_message_id == f"p-{r.id}" for r in result)


async def test_terminal_failure_is_visible_and_can_be_retried(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await queue_answers(sessionmaker, 1)
    channel = FlakyChannel(failures=100)
    dispatcher = OutboxDispatcher(sessionmaker, lambda kind: channel, EventBus(), FAST)
    await drain(dispatcher)
    [row] = await rows(sessionmaker)
    assert row.status == OutboxStatus.failed
    assert row.attempts == FAST.outbox_max_attempts
    assert "provider down" in (row.last_error or "")
    assert dispatcher.stats.failed == 1

    channel.failures = 0
    async with sessionmaker() as s, s.begin():
        await outbox_service.retry(s, row.id, None)
    await drain(dispatcher, rounds=5)
    [row] = await rows(sessionmaker)
    assert row.status == OutboxStatus.sent and row.last_error is None


async def test_permanent_rejection_fails_without_retry(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await queue_answers(sessionmaker, 1)
    channel = FlakyChannel(permanent=True)
    dispatcher = OutboxDispatcher(sessionmaker, lambda kind: channel, EventBus(), FAST)
    await drain(dispatcher, rounds=5)
    [row] = await rows(sessionmaker)
    assert row.status == OutboxStatus.failed and row.attempts == 1 and "blocked" in (row.last_error or "")


async def test_unknown_channel_is_retried_not_dropped(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await queue_answers(sessionmaker, 1)
    dispatcher = OutboxDispatcher(sessionmaker, lambda kind: None, EventBus(), FAST)
    await dispatcher.dispatch_once()
    [row] = await rows(sessionmaker)
    assert row.status == OutboxStatus.queued and "not enabled" in (row.last_error or "")


@pytest.mark.postgres
async def test_concurrent_dispatchers_never_send_twice(db_url: str, sessionmaker: async_sessionmaker[AsyncSession]
                                                        ) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("FOR UPDATE SKIP LOCKED is a PostgreSQL feature; SQLite runs one dispatcher")
    await queue_answers(sessionmaker, 60)
    channel = FlakyChannel(delay=0.01)
    settings = FAST.model_copy(update={"outbox_batch_size": 5})
    dispatchers = [OutboxDispatcher(sessionmaker, lambda kind: channel, EventBus(), settings) for _ in range(6)]
    await asyncio.gather(*(drain(d, rounds=30) for d in dispatchers))
    assert len(channel.delivered) == 60
    assert max(channel.calls.values()) == 1
    assert all(r.status == OutboxStatus.sent for r in await rows(sessionmaker))
