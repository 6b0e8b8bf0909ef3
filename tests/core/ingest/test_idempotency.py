"""No inbound message is stored twice, whatever is redelivered or submitted concurrently."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import CoreSettings
from core.events import EventBus
from core.ingest.schemas import InboundMessage, SenderInfo
from core.ingest.service import IngestService
from core.models import ChannelIdentity, Customer, Message, OutboxMessage, Ticket
from tests.conftest import keyword_engine, responses


def service(sessionmaker: async_sessionmaker[AsyncSession]) -> IngestService:
    engine = keyword_engine()
    return IngestService(sessionmaker, lambda: engine, EventBus(), CoreSettings(), responses=responses)


def inbound(ext_id: str, text: str = "hello", sender: str = "s-1") -> InboundMessage:
    return InboundMessage(channel="rest", external_message_id=ext_id, sender=SenderInfo(external_id=sender),
                          text=text, thread_key=sender)


async def counts(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessionmaker() as s:
        return {m.__tablename__: int(await s.scalar(select(func.count()).select_from(m)) or 0)
                for m in (Message, Ticket, Customer, ChannelIdentity, OutboxMessage)}


async def test_replay_returns_original_result_and_writes_nothing(sessionmaker: async_sessionmaker[AsyncSession]
                                                                 ) -> None:
    svc = service(sessionmaker)
    first = await svc.ingest(inbound("x-1"))
    assert first.created and first.action == "answer" and len(first.reply_message_ids) == 1
    before = await counts(sessionmaker)
    again = await svc.ingest(inbound("x-1", text="a different body, same id"))
    assert not again.created
    assert (again.ticket_id, again.message_id, again.reply_message_ids) == (
        first.ticket_id, first.message_id, first.reply_message_ids)
    assert again.action == "answer"
    assert await counts(sessionmaker) == before


async def test_concurrent_duplicates_store_exactly_one_message(sessionmaker: async_sessionmaker[AsyncSession]
                                                               ) -> None:
    svc = service(sessionmaker)
    results = await asyncio.gather(*(svc.ingest(inbound("dup-1", sender="new-customer")) for _ in range(40)))
    assert sum(r.created for r in results) == 1
    assert len({(r.ticket_id, r.message_id) for r in results}) == 1
    c = await counts(sessionmaker)
    assert c["messages"] == 2  # the customer's message and the single bot answer
    assert c["tickets"] == 1 and c["customers"] == 1 and c["channel_identities"] == 1
    assert c["outbox"] == 1


async def test_concurrent_first_messages_of_one_new_customer(sessionmaker: async_sessionmaker[AsyncSession]
                                                             ) -> None:
    """Different messages of a brand-new sender at once: one customer, one identity, one open thread."""
    svc = service(sessionmaker)
    results = await asyncio.gather(*(svc.ingest(inbound(f"m-{i}", text="tv broken", sender="fresh"))
                                     for i in range(20)))
    assert all(r.created for r in results)
    c = await counts(sessionmaker)
    assert c["customers"] == 1 and c["channel_identities"] == 1
    assert len({r.ticket_id for r in results}) == 1
    assert c["tickets"] == 1


async def test_same_external_id_on_other_channel_is_another_message(sessionmaker: async_sessionmaker[AsyncSession]
                                                                    ) -> None:
    svc = service(sessionmaker)
    a = await svc.ingest(inbound("same"))
    b = await svc.ingest(InboundMessage(channel="email", external_message_id="same",
                                        sender=SenderInfo(external_id="s@example.com"), text="hi"))
    assert a.created and b.created and a.message_id != b.message_id


async def test_engine_failure_escalates_instead_of_failing(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    class Broken:
        name = "broken"

        async def parse(self, text: str) -> None:
            raise ConnectionError("rasa server unreachable")

    svc = IngestService(sessionmaker, lambda: Broken(), EventBus(), CoreSettings())  # type: ignore[arg-type, return-value]
    result = await svc.ingest(inbound("e-1", text="hello"))
    assert result.created and result.action == "escalate"
    async with sessionmaker() as s:
        ticket = await s.get(Ticket, result.ticket_id)
        assert ticket is not None and ticket.status.value == "open"


async def test_verified_contact_links_two_channels(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """A customer known by a verified phone on one channel who shares it on another is one customer."""
    svc = service(sessionmaker)
    web = await svc.ingest(InboundMessage(channel="webchat", external_message_id="w-1",
                                          sender=SenderInfo(external_id="u:42", phone="+79001112233", verified=True),
                                          text="hello", thread_key="u:42"))
    tg = await svc.ingest(InboundMessage(channel="telegram", external_message_id="t-1",
                                         sender=SenderInfo(external_id="777"), text="hello", thread_key="777"))
    assert tg.customer_id != web.customer_id
    # The Telegram user shares their contact: verified phone, same as the web-chat customer's.
    linked = await svc.ingest(InboundMessage(channel="telegram", external_message_id="t-2",
                                             sender=SenderInfo(external_id="777", phone="+79001112233",
                                                               verified=True),
                                             text="my tv is broken", thread_key="777"))
    assert linked.customer_id == web.customer_id
    async with sessionmaker() as s:
        old = await s.get(Customer, tg.customer_id)
        assert old is not None
        assert old.merged_into_id == web.customer_id
        ticket = await s.get(Ticket, tg.ticket_id)
        assert ticket is not None
        assert ticket.customer_id == web.customer_id


async def test_handoff_button_payload_escalates(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    svc = service(sessionmaker)
    await svc.ingest(inbound("h-1", text="hello", sender="b"))
    pressed = await svc.ingest(InboundMessage(channel="rest", external_message_id="h-2",
                                              sender=SenderInfo(external_id="b"), text="Talk to a human",
                                              thread_key="b", extra={"quick_reply": "/human_handoff"}))
    assert pressed.action == "escalate"
    async with sessionmaker() as s:
        message = await s.get(Message, pressed.message_id)
        assert message is not None
        # The payload decided it, not a guess from the text (which the engine does not know).
        assert message.extra["reason"] == "handoff"
        assert message.intent == "human_handoff"
