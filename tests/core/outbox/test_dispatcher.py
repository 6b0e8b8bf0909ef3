"""The outbox: retries with backoff, terminal failure, retry button, at-most-once claims across dispatchers."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from channels.base import ChannelHealth
from core.config import CoreSettings
from core.db.base import utcnow
from core.events import EventBus
from core.ingest.schemas import InboundMessage, SenderInfo
from core.ingest.service import IngestService
from core.models import OutboxMessage, OutboxStatus
from core.outbox import dispatcher as dispatcher_module
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


# Crash windows: short leases kept alive by a heartbeat, outcomes recorded as sends finish.

class Clock:
    """The dispatchers' clock, moved by the test (leases are timestamps; nothing here waits for them)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


class HoldingChannel(FlakyChannel):
    """Delivers at once, except the messages in `hold`: those wait until the test releases them."""

    def __init__(self, hold: set[int] | None = None, hold_all: bool = False) -> None:
        super().__init__()
        self.hold = hold or set()
        self.hold_all = hold_all
        self.started: set[int] = set()
        self.release = asyncio.Event()

    async def send(self, envelope: OutboundEnvelope) -> str | None:
        self.started.add(envelope.outbox_id)
        if self.hold_all or envelope.outbox_id in self.hold:
            await self.release.wait()
        return await super().send(envelope)


async def until(predicate: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.01)
    assert await predicate(), what


async def statuses(sessionmaker: async_sessionmaker[AsyncSession]) -> list[OutboxStatus]:
    return [r.status for r in await rows(sessionmaker)]


async def test_rows_of_a_dead_dispatcher_are_sent_again_within_the_short_lease(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    defaults = CoreSettings()
    assert defaults.outbox_lease_seconds <= 15  # seconds, not the minute it used to be
    await queue_answers(sessionmaker, 1)
    clock = Clock()
    stuck = HoldingChannel(hold_all=True)
    dying = OutboxDispatcher(sessionmaker, lambda kind: stuck, EventBus(), defaults, clock=clock)
    task = asyncio.create_task(dying.dispatch_once())

    async def started() -> bool:
        return bool(stuck.started)

    await until(started, "the first dispatcher is sending")
    task.cancel()  # it stops mid-send and the send outlasts the grace: no heartbeat, no outcome after it
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await statuses(sessionmaker) == [OutboxStatus.sending]

    channel = FlakyChannel()
    later = Clock()
    survivor = OutboxDispatcher(sessionmaker, lambda kind: channel, EventBus(), defaults, clock=later)
    later.now = clock.now + timedelta(seconds=defaults.outbox_lease_seconds - 1)
    assert await survivor.dispatch_once() == 0  # still within the dead dispatcher's lease
    later.now = clock.now + timedelta(seconds=defaults.outbox_lease_seconds + 0.5)
    assert await survivor.dispatch_once() == 1
    [row] = await rows(sessionmaker)
    assert row.status == OutboxStatus.sent and row.attempts == 2 and channel.delivered == [row.id]


async def test_a_long_send_under_heartbeat_is_not_taken_by_another_dispatcher(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    settings = FAST.model_copy(update={"outbox_lease_seconds": 10.0, "outbox_heartbeat_seconds": 0.02})
    await queue_answers(sessionmaker, 1)
    clock = Clock()
    slow = HoldingChannel(hold_all=True)
    first = OutboxDispatcher(sessionmaker, lambda kind: slow, EventBus(), settings, clock=clock)
    task = asyncio.create_task(first.dispatch_once())

    async def started() -> bool:
        return bool(slow.started)

    await until(started, "the first dispatcher is sending")
    clock.now += timedelta(seconds=3 * settings.outbox_lease_seconds)  # far past the first lease's end

    async def renewed() -> bool:
        [row] = await rows(sessionmaker)
        return row.next_attempt_at > clock.now

    await until(renewed, "the heartbeat renewed the lease")
    other = FlakyChannel()
    second = OutboxDispatcher(sessionmaker, lambda kind: other, EventBus(), settings, clock=clock)
    assert await second.dispatch_once() == 0
    slow.release.set()
    assert await task == 1
    [row] = await rows(sessionmaker)
    assert row.status == OutboxStatus.sent and row.attempts == 1
    assert slow.calls[row.id] == 1 and not other.calls


async def test_delivered_rows_are_recorded_while_a_later_send_of_the_batch_hangs(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await queue_answers(sessionmaker, 5)
    ids = [r.id for r in await rows(sessionmaker)]
    channel = HoldingChannel(hold={ids[-1]})
    dispatcher = OutboxDispatcher(sessionmaker, lambda kind: channel, EventBus(), FAST)
    task = asyncio.create_task(dispatcher.dispatch_once())

    async def four_recorded() -> bool:
        return await statuses(sessionmaker) == [OutboxStatus.sent] * 4 + [OutboxStatus.sending]

    await until(four_recorded, "the four delivered replies are recorded while the fifth is in flight")
    assert dispatcher.stats.sent == 4
    channel.release.set()
    assert await task == 5
    assert await statuses(sessionmaker) == [OutboxStatus.sent] * 5
    assert sorted(channel.delivered) == ids and max(channel.calls.values()) == 1


async def test_a_send_that_never_returns_is_a_failed_attempt(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await queue_answers(sessionmaker, 1)
    channel = HoldingChannel(hold_all=True)
    settings = FAST.model_copy(update={"outbox_send_timeout_seconds": 0.05})
    dispatcher = OutboxDispatcher(sessionmaker, lambda kind: channel, EventBus(), settings)
    assert await dispatcher.dispatch_once() == 1
    [row] = await rows(sessionmaker)
    assert row.status == OutboxStatus.queued and "timed out" in (row.last_error or "")


async def test_recording_is_retried_when_the_database_fails_after_the_send(
        sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch) -> None:
    await queue_answers(sessionmaker, 2)
    real_mark_sent = outbox_service.mark_sent
    failures = iter([ConnectionRefusedError("database is away"), OSError("still away")])

    async def flaky_mark_sent(session: AsyncSession, sent: Any) -> None:
        exc = next(failures, None)
        if exc is not None:
            raise exc
        await real_mark_sent(session, sent)

    monkeypatch.setattr(outbox_service, "mark_sent", flaky_mark_sent)
    channel = FlakyChannel()
    dispatcher = OutboxDispatcher(sessionmaker, lambda kind: channel, EventBus(), FAST)
    assert await dispatcher.dispatch_once() == 2
    assert await statuses(sessionmaker) == [OutboxStatus.sent] * 2
    assert max(channel.calls.values()) == 1 and dispatcher.stats.sent == 2


async def test_a_stale_failure_never_puts_a_delivered_row_back(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await queue_answers(sessionmaker, 1)
    clock = Clock()
    async with sessionmaker() as s, s.begin():
        first = await outbox_service.claim_due(s, 10, 10.0, now=clock.now)
    async with sessionmaker() as s, s.begin():  # the first claim's lease ran out; another dispatcher claims
        second = await outbox_service.claim_due(s, 10, 10.0, now=clock.now + timedelta(seconds=11))
        [envelope] = await outbox_service.build_envelopes(s, list(second))
        await outbox_service.mark_sent(s, [(envelope, "p-1")])
    [(row_id, attempt)] = first.items()
    assert second == {row_id: attempt + 1}
    async with sessionmaker() as s, s.begin():
        status = await outbox_service.mark_failed_attempt(s, row_id, "timeout", FAST, attempt=attempt)
    assert status == OutboxStatus.sent
    [row] = await rows(sessionmaker)
    assert row.status == OutboxStatus.sent and row.last_error is None
    async with sessionmaker() as s, s.begin():  # nor does the first dispatcher's heartbeat touch it
        assert await outbox_service.heartbeat(s, first, 10.0, now=clock.now) == 0


async def test_a_stopping_dispatcher_lets_the_sends_on_the_wire_finish_and_records_them(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await queue_answers(sessionmaker, 1)
    channel = HoldingChannel(hold_all=True)
    dispatcher = OutboxDispatcher(sessionmaker, lambda kind: channel, EventBus(), FAST)
    task = asyncio.create_task(dispatcher.dispatch_once())

    async def started() -> bool:
        return bool(channel.started)

    await until(started, "the reply is on the wire")
    task.cancel()  # the app stops (a deploy) while the provider is still answering
    channel.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    [row] = await rows(sessionmaker)
    assert row.status == OutboxStatus.sent and channel.delivered == [row.id]  # not sent again after the restart



async def test_a_stop_during_the_claim_leaves_no_transaction_open(
        db_url: str, db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The app stops (its dispatcher is cancelled) while the claim's UPDATE .. RETURNING runs: the claim ends and
    commits first. A statement cancelled there used to leave its connection inside the transaction, holding
    SQLite's write lock: every later writer (the app's own clean-up at shutdown) waited out the 10 s busy timeout
    and failed with "database is locked"."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the write lock a cancelled statement keeps is SQLite's (PostgreSQL cancels the statement)")
    await queue_answers(sessionmaker, 1)
    armed, in_statement = threading.Event(), threading.Event()

    def claim_in_progress() -> int:  # runs in the driver's thread, inside the claim's UPDATE
        if armed.is_set():
            in_statement.set()
            time.sleep(0.5)
        return 1

    @event.listens_for(db_engine.sync_engine, "connect")
    def _register(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.create_function("claim_in_progress", 0, claim_in_progress)

    await db_engine.dispose()  # the pooled connection predates the function
    async with sessionmaker() as s, s.begin():
        await s.execute(text("CREATE TRIGGER slow_claim BEFORE UPDATE ON outbox BEGIN SELECT claim_in_progress(); END"))
    channel = FlakyChannel()
    dispatcher = OutboxDispatcher(sessionmaker, lambda kind: channel, EventBus(), FAST)
    armed.set()
    task = asyncio.create_task(dispatcher.dispatch_once())

    async def claiming() -> bool:
        return in_statement.is_set()

    await until(claiming, "the claim's UPDATE is running")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    armed.clear()
    async with asyncio.timeout(5):  # far below the busy timeout: the lock is free at once
        async with sessionmaker() as s, s.begin():
            await s.execute(text("DROP TRIGGER slow_claim"))
    [row] = await rows(sessionmaker)
    # The claim committed (its lease brings the row back to a dispatcher); nothing went out.
    assert row.status == OutboxStatus.sending and row.attempts == 1 and channel.calls == Counter()


# The crash window: at most `outbox_max_unrecorded` replies out with no recorded outcome.

class CountingChannel(FlakyChannel):
    """Delivers at once, noting at each send how many replies it has that the database does not show as sent."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        super().__init__()
        self.sessionmaker = sessionmaker
        self.unrecorded_at_send: list[int] = []

    async def send(self, envelope: OutboundEnvelope) -> str | None:
        # The sends out before this one, taken before the read: sends that start while the read waits (a slot freed
        # by a commit the read did not see yet) would otherwise count against a stale picture (seen once under load).
        out = set(self.calls) | {envelope.outbox_id}
        async with self.sessionmaker() as s:
            recorded = set((await s.scalars(select(OutboxMessage.id).where(
                OutboxMessage.status == OutboxStatus.sent))).all())
        self.unrecorded_at_send.append(len(out - recorded))
        return await super().send(envelope)


async def test_a_send_starts_only_while_fewer_than_the_window_are_unrecorded(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await queue_answers(sessionmaker, 12)
    settings = FAST.model_copy(update={"outbox_max_unrecorded": 3})
    channel = CountingChannel(sessionmaker)
    dispatcher = OutboxDispatcher(sessionmaker, lambda kind: channel, EventBus(), settings)
    assert await dispatcher.dispatch_once() == 12
    assert await statuses(sessionmaker) == [OutboxStatus.sent] * 12
    assert max(channel.calls.values()) == 1 and dispatcher.stats.sent == 12
    # Each send counts itself: never a fourth reply out before an earlier one was committed.
    assert max(channel.unrecorded_at_send) <= 3


def frozen_recording(monkeypatch: pytest.MonkeyPatch, frozen: list[OutboxDispatcher]
                     ) -> tuple[asyncio.Event, asyncio.Event]:
    """Deliveries of the dispatchers in `frozen` wait, before touching the database, for the first event (the
    second is set once one is waiting): a process that died after its receivers answered."""
    real_write = dispatcher_module._Recorder._write
    thaw, waiting = asyncio.Event(), asyncio.Event()

    async def write(self: Any, group: Any) -> None:
        if self.dispatcher in frozen:
            waiting.set()
            await thaw.wait()
        await real_write(self, group)

    monkeypatch.setattr(dispatcher_module._Recorder, "_write", write)
    return thaw, waiting


async def test_a_crash_sends_again_at_most_the_window(
        sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch) -> None:
    await queue_answers(sessionmaker, 10)
    settings = CoreSettings(outbox_max_unrecorded=4)
    clock = Clock()
    channel = FlakyChannel()
    dying = OutboxDispatcher(sessionmaker, lambda kind: channel, EventBus(), settings, clock=clock)
    thaw, waiting = frozen_recording(monkeypatch, [dying])
    task = asyncio.create_task(dying.dispatch_once())
    try:
        await asyncio.wait_for(waiting.wait(), 30)

        async def window_full() -> bool:
            return len(channel.delivered) >= 4

        await until(window_full, "four replies are out, none recorded")
        # The process "dies" here, its records never written. Its lease runs out; another dispatcher takes over.
        survivor = OutboxDispatcher(sessionmaker, lambda kind: channel, EventBus(), settings,
                                    clock=lambda: clock.now + timedelta(seconds=settings.outbox_lease_seconds + 1))
        assert await survivor.dispatch_once() == 10
        assert await statuses(sessionmaker) == [OutboxStatus.sent] * 10
        assert sorted(channel.calls.values()) == [1] * 6 + [2] * 4  # the window, and nothing more, went twice
    finally:
        thaw.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_delivery_without_a_provider_id_keeps_the_one_it_had(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await queue_answers(sessionmaker, 3)
    async with sessionmaker() as s, s.begin():
        claims = await outbox_service.claim_due(s, 10, 10.0)
        envelopes = await outbox_service.build_envelopes(s, list(claims))
        first = await s.get(OutboxMessage, envelopes[0].outbox_id)
        assert first is not None
        first.provider_message_id = "part-1"  # a retry after the first part was delivered
    async with sessionmaker() as s, s.begin():
        await outbox_service.mark_sent(s, [(envelopes[0], None), (envelopes[1], "p-2"), (envelopes[2], None)])
    result = await rows(sessionmaker)
    assert [r.status for r in result] == [OutboxStatus.sent] * 3
    assert [r.provider_message_id for r in result] == ["part-1", "p-2", None]
    assert all(r.sent_at is not None and r.last_error is None for r in result)


@pytest.mark.postgres
async def test_postgres_deliveries_are_written_without_waiting_for_the_flush_and_the_connection_comes_back_reset(
        db_url: str, db_engine: AsyncEngine) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("synchronous_commit is PostgreSQL's")
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(db_url, pool_size=2, max_overflow=0)
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        await queue_answers(sessions, 3)
        seen: list[str] = []
        real_mark_sent = outbox_service.mark_sent

        async def mark_sent(session: AsyncSession, sent: Any) -> None:
            seen.append(str((await session.execute(text("SHOW synchronous_commit"))).scalar_one()))
            await real_mark_sent(session, sent)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(outbox_service, "mark_sent", mark_sent)
            assert await OutboxDispatcher(sessions, lambda kind: FlakyChannel(), EventBus(), FAST).dispatch_once() == 3
        assert seen and set(seen) == {"off"}
        assert await statuses(sessions) == [OutboxStatus.sent] * 3
        # Both pooled connections (the claim's and the recorder's) are back as they were.
        async with engine.connect() as a, engine.connect() as b:
            for conn in (a, b):
                assert (await conn.execute(text("SHOW synchronous_commit"))).scalar_one() == "on"
    finally:
        await engine.dispose()
