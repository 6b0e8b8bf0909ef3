"""Ingest's live events: typed topics and payloads whose wire format the web chat and the console read."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import CoreSettings
from core.events import (
    EventBus,
    MessageAdded,
    MessageContent,
    OutboxQueued,
    Resync,
    TicketChanged,
    Topic,
    take_pending,
)
from core.ingest.schemas import InboundMessage, SenderInfo
from core.ingest.service import IngestService
from core.tickets import service as ticket_service
from core.users.models import Role
from tests.conftest import keyword_engine, make_user, responses

MESSAGE_KEYS = {"ticket_id", "message_id", "direction", "author_kind", "customer_id", "channel", "thread_key"}
CONTENT_KEYS = {"text", "created_at", "attachments", "quick_replies", "author_name"}


def test_topics_are_the_strings_on_the_wire() -> None:
    """A topic read back from Redis (a plain str) is the same topic; JSON carries the string."""
    assert Topic.MESSAGES == "messages" and hash(Topic.MESSAGES) == hash("messages")
    assert json.loads(json.dumps({"t": Topic.OUTBOX_QUEUED})) == {"t": "outbox.queued"}
    assert {Topic.TICKETS: 1}["tickets"] == 1


def test_payloads_keep_their_wire_format() -> None:
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    inbound = MessageAdded(ticket_id=1, message_id=2, direction="inbound", author_kind="customer", customer_id=3,
                           channel="webchat", thread_key="v-1")
    assert inbound.to_payload() == {"ticket_id": 1, "message_id": 2, "direction": "inbound",
                                    "author_kind": "customer", "customer_id": 3, "channel": "webchat",
                                    "thread_key": "v-1"}
    outbound = MessageAdded(ticket_id=1, message_id=4, direction="outbound", author_kind="bot", customer_id=3,
                            channel="webchat", thread_key="v-1", content=MessageContent("hi", at, [], []))
    assert outbound.to_payload()["content"] == {"text": "hi", "created_at": "2025-01-02T03:04:05+00:00",
                                                "attachments": [], "quick_replies": [], "author_name": None}
    assert OutboxQueued(channel="email", ticket_id=None).to_payload() == {"channel": "email", "ticket_id": None}
    assert Resync("reconnected").to_payload() == {"reason": "reconnected"}


async def test_bus_delivers_typed_payloads_as_dicts() -> None:
    bus = EventBus()
    async with bus.subscribe(Topic.LIVE_RESYNC) as queue:
        bus.deliver_local(Topic.LIVE_RESYNC, Resync("peer_dropped"))
        assert queue.get_nowait() == ("live.resync", {"reason": "peer_dropped"})


async def test_every_message_event_has_one_shape(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The customer's message, the bot's answer (bulk path) and an agent's reply publish the same keys."""
    bus = EventBus()
    engine = keyword_engine()
    service = IngestService(sessionmaker, lambda: engine, bus, CoreSettings(), responses=responses)
    agent, _ = await make_user(sessionmaker, Role.agent, "events-agent@example.com")
    async with bus.subscribe(Topic.MESSAGES, Topic.TICKETS) as queue:
        result = await service.ingest(InboundMessage(channel="rest", external_message_id="e-1",
                                                     sender=SenderInfo(external_id="c-1"), text="hello"))
        async with sessionmaker() as session:
            async with session.begin():
                ticket = await ticket_service.get(session, result.ticket_id)
                await ticket_service.reply(session, ticket, agent, "an agent's answer")
            bus.publish_all(take_pending(session))
        events = []
        while not queue.empty():
            events.append(queue.get_nowait())
    messages = [p for t, p in events if t == Topic.MESSAGES]
    assert [(m["direction"], m["author_kind"]) for m in messages] == [
        ("inbound", "customer"), ("outbound", "bot"), ("outbound", "agent")]
    for m in messages:
        assert set(m) == MESSAGE_KEYS | ({"content"} if m["direction"] == "outbound" else set())
        assert m["ticket_id"] == result.ticket_id and m["customer_id"] == result.customer_id
        assert m["channel"] == "rest" and m["thread_key"] is None
    assert [m["message_id"] for m in messages[:2]] == [result.message_id, *result.reply_message_ids]
    assert all(set(m["content"]) == CONTENT_KEYS for m in messages[1:])
    assert messages[2]["content"]["text"] == "an agent's answer"
    tickets = [p for t, p in events if t == Topic.TICKETS]
    assert [t["kind"] for t in tickets] == ["created", "assigned", "replied"]  # the agent took it by answering
    assert tickets[-1] == TicketChanged.of(ticket, "replied").to_payload()
