"""Group commit: concurrent messages are written in shared transactions with the outcome of one-by-one ingest."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import CoreSettings
from core.events import EventBus
from core.ingest.schemas import InboundMessage, IngestResult, SenderInfo
from core.ingest.service import IngestService
from core.models import Message, OutboxMessage, Ticket
from tests.conftest import keyword_engine, responses

WAIT = re.compile(r"(Expected wait|Ожидаемое время ответа): [^.]*\.")


def svc(sessionmaker: async_sessionmaker[AsyncSession], **settings: Any) -> IngestService:
    engine = keyword_engine()
    return IngestService(sessionmaker, lambda: engine, EventBus(), CoreSettings(**settings), responses=responses)


def script(channel: str) -> list[InboundMessage]:
    """A conversation mix where every message depends on the ones before it in the same batch."""

    def m(ext: str, sender: str, text: str, thread: str | None = None, **kw: Any) -> InboundMessage:
        return InboundMessage(channel=channel, external_message_id=ext, sender=SenderInfo(external_id=sender),
                              text=text, thread_key=thread or sender, **kw)

    return [
        m("1", "anna", "hello"),                                  # new customer, new ticket, FAQ answer
        m("2", "anna", "hello again"),                            # continues; the same answer again escalates
        m("3", "boris", "what are your office hours"),            # another new customer
        m("4", "boris", "my internet is down", thread="other"),   # same customer, other thread: new ticket
        m("5", "anna", "can I talk to an operator"),              # continues anna's ticket
        m("6", "vera", "жалоба на качество связи"),               # complaint: high priority, Russian answer
        m("7", "vera", "Re: жалоба", thread="mail-2", references=(f"{channel}-x", "6")),  # reply to message 6
        m("8", "gleb", "where is my order"),                      # order status without a number
        m("9", "gleb", "hello", extra={"quick_reply": "/human_handoff"}),  # the handoff button
        m("10", "dina", "", attachments=()),                      # empty text: escalates
    ]


async def outcome(sessionmaker: async_sessionmaker[AsyncSession], results: list[IngestResult]
                  ) -> list[tuple[Any, ...]]:
    """What each message did, with ids replaced by their order of first appearance."""
    order: dict[int, int] = {}
    rows = []
    async with sessionmaker() as session:
        for r in results:
            ticket = await session.get(Ticket, r.ticket_id)
            assert ticket is not None
            replies = (await session.scalars(select(Message.text).where(Message.id.in_(r.reply_message_ids))
                                              .order_by(Message.id))).all()
            n = order.setdefault(r.ticket_id, len(order))
            # The quoted wait depends on the queue's load, which the first run's tickets still add to.
            replies = [WAIT.sub(r"\1: ...", t.replace(ticket.number, f"#{n}")) for t in replies]
            rows.append((n, r.action, ticket.status.value, ticket.priority.value, ticket.intent,
                         ticket.failed_bot_answers, tuple(replies)))
    return rows


async def test_a_batch_has_the_outcome_of_one_by_one_ingest(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    one_by_one = svc(sessionmaker)
    sequential = [await one_by_one.ingest(m) for m in script("seq")]
    assert one_by_one.stats.largest_batch == 1

    batched = svc(sessionmaker)
    together = list(await asyncio.gather(*(batched.ingest(m) for m in script("bat"))))
    assert batched.stats.largest_batch == len(together), "the concurrent messages shared one transaction"
    assert batched.stats.split_batches == 0

    assert await outcome(sessionmaker, together) == await outcome(sessionmaker, sequential)
    # The references reply joined its parent's ticket; the same answer twice escalated.
    assert together[6].ticket_id == together[5].ticket_id
    assert together[1].action == "escalate"
    async with sessionmaker() as session:
        queued = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.channel == "bat"))
    assert queued == sum(len(r.reply_message_ids) for r in together)


async def test_a_duplicate_inside_a_batch_gets_the_original_result(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker)
    m = InboundMessage(channel="rest", external_message_id="dup", sender=SenderInfo(external_id="a"), text="hello")
    other = InboundMessage(channel="rest", external_message_id="x", sender=SenderInfo(external_id="b"), text="hi")
    first, second, third = await asyncio.gather(s.ingest(m), s.ingest(other), s.ingest(m))
    assert first.created and not third.created
    assert (third.ticket_id, third.message_id, third.reply_message_ids) == \
        (first.ticket_id, first.message_id, first.reply_message_ids)
    assert second.created
    async with sessionmaker() as session:
        stored = await session.scalar(select(func.count()).select_from(Message).where(
            Message.external_message_id == "dup"))
    assert stored == 1


async def test_a_message_that_fails_does_not_fail_its_batch(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """A batch that fails is rolled back and its messages are retried alone: only the bad one fails."""
    s = svc(sessionmaker)
    original = s.pipeline._place

    async def place(session: AsyncSession, look: Any, inbound: InboundMessage, parse: Any) -> Any:
        if inbound.external_message_id == "bad":
            raise ValueError("a bug this one message triggers")
        return await original(session, look, inbound, parse)

    s.pipeline._place = place  # type: ignore[method-assign]
    msgs = [InboundMessage(channel="rest", external_message_id=e, sender=SenderInfo(external_id=e), text="hello")
            for e in ("a", "bad", "c")]
    results = await asyncio.gather(*(s.ingest(m) for m in msgs), return_exceptions=True)
    assert isinstance(results[1], ValueError)
    assert all(isinstance(r, IngestResult) and r.created for r in (results[0], results[2]))
    assert s.stats.split_batches == 1
    async with sessionmaker() as session:
        stored = (await session.scalars(select(Message.external_message_id).where(
            Message.direction == "inbound"))).all()
    assert sorted(stored) == ["a", "c"]


async def test_an_outage_fails_every_caller_and_writes_nothing(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker)

    async def down(*_args: Any) -> Any:
        raise OperationalError("INSERT", {}, ConnectionRefusedError("database is down"))

    s.pipeline.write = down  # type: ignore[method-assign]
    msgs = [InboundMessage(channel="rest", external_message_id=e, sender=SenderInfo(external_id=e), text="hello")
            for e in ("a", "b")]
    results = await asyncio.gather(*(s.ingest(m) for m in msgs), return_exceptions=True)
    assert all(isinstance(r, OperationalError) for r in results)
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == 0


async def test_batches_are_bounded_and_a_caller_that_leaves_still_gets_its_message_written(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker, ingest_batch_size=4)
    msgs = [InboundMessage(channel="rest", external_message_id=str(i), sender=SenderInfo(external_id=f"s{i % 3}"),
                           thread_key=f"s{i % 3}", text="my internet is down") for i in range(10)]
    tasks = [asyncio.create_task(s.ingest(m)) for m in msgs]
    await asyncio.sleep(0)
    tasks[9].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[9], asyncio.CancelledError)
    assert s.stats.largest_batch == 4
    assert s.stats.messages == 10
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Message).where(
            Message.direction == "inbound")) == 10
    # Three senders, one thread each: every later message continued its sender's ticket.
    assert len({r.ticket_id for r in done if isinstance(r, IngestResult)}) == 3


async def test_under_load_the_next_batch_lingers_for_arrivals_and_a_lone_message_does_not_wait(
        monkeypatch: Any) -> None:
    """The group commit's linger: after a batch of several messages, a batch that would not be full waits a moment
    and what arrives meanwhile joins it; after a quiet spell (the last batch held one message) nothing waits."""
    from core.ingest import batcher as batcher_module
    from core.ingest.batcher import BatchStats, GroupCommit

    batches: list[list[str]] = []
    first_started, release_first = asyncio.Event(), asyncio.Event()

    async def write(items: list[str]) -> tuple[list[str], list[Any]]:
        batches.append(items)
        if len(batches) == 1:
            first_started.set()
            await release_first.wait()
        return [f"done {i}" for i in items], []

    async def found(_item: str) -> str | None:
        return None

    group: GroupCommit[str, str] = GroupCommit(
        write=write, find_existing=found, key=lambda i: i, publish=lambda _events: None, batch_size=lambda: 10,
        on_result=lambda _i, _r: None, stats=BatchStats(), linger=lambda: 0.5)
    lingers: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        lingers.append(seconds)
        # Arrivals during the linger (the clock is not ours to wait on: the arrival is the sleep itself).
        arriving.append(asyncio.ensure_future(group.submit(f"late {len(lingers)}")))
        await real_sleep(0)

    arriving: list[asyncio.Future[str]] = []
    monkeypatch.setattr(batcher_module.asyncio, "sleep", sleep)

    a, b = asyncio.ensure_future(group.submit("a")), asyncio.ensure_future(group.submit("b"))
    await first_started.wait()
    c = asyncio.ensure_future(group.submit("c"))  # arrives while the first batch is written
    release_first.set()
    assert await asyncio.gather(a, b, c) == ["done a", "done b", "done c"]
    assert await asyncio.gather(*arriving) == ["done late 1"]
    assert lingers == [0.5]  # after the batch of two: one wait, and the message that came meanwhile joined
    assert batches == [["a", "b"], ["c", "late 1"]]

    # A quiet spell: the drainer ended; a lone message is written without a wait, and the batch after it too.
    batches.clear()
    assert await group.submit("d") == "done d"
    assert lingers == [0.5]
    assert batches == [["d"]]
