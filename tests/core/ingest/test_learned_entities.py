"""Issue 18, scope 3: an entity the embedded engine learned from the data's annotations (the CRF) is used by the
decision policy the way the rule-based ones are: an order number in the operator's own format, which no rule knows,
finds the customer's order; a tariff name fills the `{tariff}` placeholder of the tariff FAQ's answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import CoreSettings
from core.customers.models import ChannelIdentity, Customer
from core.decision import texts
from core.events import EventBus
from core.ingest.schemas import InboundMessage, SenderInfo
from core.ingest.service import IngestService
from core.models import Message, Ticket, TicketStatus
from core.orders.models import Order
from nlu.embedded import EmbeddedEngine
from nlu.protocol import ExampleEntity, TrainingData, TrainingExample

Sessionmaker = async_sessionmaker[AsyncSession]

# The operator's order numbers look like "kx-4821-qz": two letters, four digits, two letters (no rule knows them).
ORDERS = ["kx-4821-qz", "tb-1093-mr", "pl-5530-ae", "wd-7712-hn", "ca-3308-vf", "ry-6204-jd", "me-9150-us",
          "go-2467-bt", "fi-8831-lo", "sn-4075-ki", "hu-1728-pe", "za-6649-ow"]
ORDER_PHRASES = ["where is my order {}", "what is the status of order {} please", "has {} shipped yet",
                 "track my parcel {}", "any news about {}?", "my order {} has not arrived"]
TARIFFS = ["Home 500", "Turbo Max", "Family Plus", "Start Lite", "Gamer Pro", "Smart Mini", "Office Flex"]
TARIFF_PHRASES = ["how much is {} per month", "what does the {} tariff include", "tell me about {}",
                  "is {} available at my address"]
TARIFF_ANSWER = "The {tariff} tariff: prices and speeds are at example.com/tariffs. Shall I connect you?"
OTHER = {
    "greet": ["hi", "hello", "good morning", "hey there", "hello, anyone there?", "good evening", "hi team",
              "greetings"],
    "ask_hours": ["when are you open", "what are your opening hours", "are you open on sunday",
                  "until what time do you work", "what time do you close", "opening times please",
                  "do you work at night", "what are your hours"],
}


def _data() -> TrainingData:
    examples = []
    for i, number in enumerate(ORDERS):
        for phrase in ORDER_PHRASES[i % 3::3]:
            text = phrase.format(number)
            start = text.index(number)
            examples.append(TrainingExample(text, "order_status", (
                ExampleEntity(start, start + len(number), "order_number"),)))
    for i, tariff in enumerate(TARIFFS):
        for phrase in TARIFF_PHRASES[i % 2::2]:
            text = phrase.format(tariff)
            start = text.index(tariff)
            examples.append(TrainingExample(text, "tariff_info",
                                            (ExampleEntity(start, start + len(tariff), "tariff"),)))
    examples += [TrainingExample(t, intent) for intent, texts_ in OTHER.items() for t in texts_]
    return TrainingData(examples=examples)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedEngine:
    engine = EmbeddedEngine(Path(tmp_path_factory.mktemp("learned")), target_precision=0.8)
    engine.train_sync(_data())
    return engine


async def _ask(sessionmaker: Sessionmaker, engine: EmbeddedEngine, ext: str, text: str, sender: str
               ) -> tuple[Ticket, Message, list[str]]:
    service = IngestService(sessionmaker, lambda: engine, EventBus(), CoreSettings(),
                            responses=lambda intent, _lang: TARIFF_ANSWER if intent == "tariff_info" else None)
    result = await service.ingest(InboundMessage(channel="rest", external_message_id=ext,
                                                 sender=SenderInfo(external_id=sender), text=text,
                                                 thread_key=sender))
    async with sessionmaker() as s:
        ticket = await s.get(Ticket, result.ticket_id)
        inbound = await s.get(Message, result.message_id)
        replies = [m.text for m in (await s.scalars(select(Message).where(
            Message.id.in_(result.reply_message_ids)).order_by(Message.id))).all()]
    assert ticket is not None and inbound is not None
    return ticket, inbound, replies


async def _customer_with_order(sessionmaker: Sessionmaker, sender: str, number: str, status: str) -> None:
    async with sessionmaker() as s, s.begin():
        row = Customer(name=sender, language="en")
        s.add(row)
        s.add(ChannelIdentity(channel="rest", external_id=sender, customer=row, verified=False))
        await s.flush()
        s.add(Order(number=number, customer_id=row.id, status=status))


async def test_a_learned_order_number_finds_the_order(sessionmaker: Sessionmaker, engine: EmbeddedEngine) -> None:
    await _customer_with_order(sessionmaker, "olga", "VB-3141-XE", "shipped")
    parse = engine.parse_sync("where is my order vb-3141-xe")
    assert parse.intent == "order_status" and parse.confident
    assert [(e.type, e.text) for e in parse.entities] == [("order_number", "vb-3141-xe")]  # learned, not a rule

    ticket, inbound, replies = await _ask(sessionmaker, engine, "o1", "where is my order vb-3141-xe", "olga")
    assert inbound.extra["reason"] == "order_found" and ticket.status == TicketStatus.bot
    assert len(replies) == 1 and "VB-3141-XE" in replies[0] and texts.order_status("shipped", "en") in replies[0]
    assert inbound.entities == [{"type": "order_number", "value": "vb-3141-xe", "start": 18, "end": 28}]


async def test_a_learned_order_number_of_someone_else_is_not_told(sessionmaker: Sessionmaker,
                                                                  engine: EmbeddedEngine) -> None:
    await _customer_with_order(sessionmaker, "petr", "QJ-5151-AL", "delivered")
    _, inbound, replies = await _ask(sessionmaker, engine, "o2", "any news about qj-5151-al?", "someone-else")
    assert inbound.extra["reason"] == "order_not_found"
    assert replies and texts.order_status("delivered", "en") not in " ".join(replies)


async def test_without_a_number_the_bot_still_asks_for_it(sessionmaker: Sessionmaker, engine: EmbeddedEngine) -> None:
    _, inbound, _ = await _ask(sessionmaker, engine, "o3", "where is my order", "ivan")
    assert inbound.extra["reason"] == "order_number_missing"


async def test_a_learned_tariff_name_fills_the_tariff_answer(sessionmaker: Sessionmaker, engine: EmbeddedEngine
                                                             ) -> None:
    parse = engine.parse_sync("how much is Ultra Fiber per month")
    assert parse.intent == "tariff_info" and [(e.type, e.text) for e in parse.entities] == [("tariff", "Ultra Fiber")]
    ticket, inbound, replies = await _ask(sessionmaker, engine, "t1", "how much is Ultra Fiber per month", "vera")
    assert inbound.extra["reason"] == "faq" and ticket.status == TicketStatus.bot
    assert replies == [TARIFF_ANSWER.replace("{tariff}", "Ultra Fiber")]


async def test_a_tariff_answer_with_no_tariff_named_goes_to_a_person(sessionmaker: Sessionmaker,
                                                                     engine: EmbeddedEngine) -> None:
    """"The {tariff} tariff" with nothing to fill it would not make sense: the question is a person's."""
    parse = engine.parse_sync("what does the tariff include")
    assert parse.intent == "tariff_info" and parse.entity("tariff") is None
    ticket, inbound, replies = await _ask(sessionmaker, engine, "t2", "what does the tariff include", "gleb")
    assert inbound.extra["action"] == "escalate" and ticket.status == TicketStatus.open
    assert not any("{tariff}" in r for r in replies)
