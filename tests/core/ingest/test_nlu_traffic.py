"""Real traffic through ingest with the real embedded model (the shipped data): a long e-mail with a signature is
answered, a two-request chat message has both handled, a near-domain question is escalated, and a text that does
not tell its language is answered in the customer's earlier one. On SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import CoreSettings
from core.decision import texts
from core.events import EventBus
from core.ingest.schemas import InboundMessage, SenderInfo
from core.ingest.service import IngestService
from core.models import Message, Order, Ticket, TicketStatus
from nlu.data import load_training_data
from nlu.embedded import EmbeddedEngine
from nlu.protocol import OUT_OF_SCOPE, TrainingData

LETTER = """Здравствуйте!

Я ваш абонент с 2016 года, договор 40-1177, живу на ул. Гагарина, д. 9, кв. 40. Подскажите, пожалуйста, какими \
способами можно оплатить ваши услуги? Хочу платить картой, а не наличными в офисе.

С уважением,
Мария Ковалёва
+7 (921) 444-55-66
Отправлено с iPhone"""


@cache
def shipped() -> TrainingData:
    return load_training_data()


def answer(intent: str, language: str) -> str | None:
    return shipped().responses.get(intent, {}).get(language)


@pytest.fixture
def engine(tmp_path: Path, trained_model_dir: Path) -> EmbeddedEngine:
    shutil.copytree(trained_model_dir, tmp_path / "models")
    model = EmbeddedEngine(tmp_path / "models")
    model.load_active()
    return model


def service(sessionmaker: async_sessionmaker[AsyncSession], engine: EmbeddedEngine) -> IngestService:
    return IngestService(sessionmaker, lambda: engine, EventBus(), CoreSettings(), responses=answer)


def inbound(ext: str, text: str, sender: str, channel: str = "rest") -> InboundMessage:
    return InboundMessage(channel=channel, external_message_id=ext, sender=SenderInfo(external_id=sender), text=text,
                          thread_key=sender)


async def replies(sessionmaker: async_sessionmaker[AsyncSession], ids: list[int]) -> list[str]:
    async with sessionmaker() as s:
        return list((await s.scalars(select(Message.text).where(Message.id.in_(ids)).order_by(Message.id))).all())


async def test_a_long_email_with_a_signature_is_answered(sessionmaker: async_sessionmaker[AsyncSession],
                                                        engine: EmbeddedEngine) -> None:
    result = await service(sessionmaker, engine).ingest(inbound("<m1@example.org>", LETTER, "maria@example.org",
                                                               channel="email"))
    assert result.action == "answer"
    assert await replies(sessionmaker, result.reply_message_ids) == [answer("payment_methods", "ru")]
    async with sessionmaker() as s:
        ticket = await s.get(Ticket, result.ticket_id)
        assert ticket is not None and (ticket.intent, ticket.status) == ("payment_methods", TicketStatus.bot)


async def test_two_requests_in_a_chat_message_are_both_handled(sessionmaker: async_sessionmaker[AsyncSession],
                                                               engine: EmbeddedEngine) -> None:
    text = "поменяйте мои паспортные данные, и где мой заказ?"
    result = await service(sessionmaker, engine).ingest(inbound("c1", text, "chat-1"))
    # The passport question has an FAQ answer; the order needs a person: answered, and handed over.
    assert result.action == "escalate"
    [reply] = await replies(sessionmaker, result.reply_message_ids)
    faq = answer("personal_data_change", "ru")
    assert faq is not None and reply.startswith(faq) and "Ожидаемое время" in reply
    async with sessionmaker() as s:
        ticket = await s.get(Ticket, result.ticket_id)
        message = await s.get(Message, result.message_id)
        assert ticket is not None and message is not None
        assert (ticket.intent, ticket.status) == ("order_status", TicketStatus.open)
        assert message.extra["reason"] == "several_requests"
        assert {r["intent"] for r in message.extra["requests"]} == {"personal_data_change", "order_status"}


async def test_an_order_found_in_a_two_request_message_is_looked_up(
        sessionmaker: async_sessionmaker[AsyncSession], engine: EmbeddedEngine) -> None:
    async with sessionmaker() as s, s.begin():
        s.add(Order(number="ORD-123456", status="shipped"))
    text = "поменяйте мои паспортные данные, и где мой заказ ORD-123456?"
    result = await service(sessionmaker, engine).ingest(inbound("c2", text, "chat-2"))
    # Both requests answered by the bot: the passport FAQ, then the order's status from its record.
    assert result.action == "answer"
    [reply] = await replies(sessionmaker, result.reply_message_ids)
    faq = answer("personal_data_change", "ru")
    assert faq is not None and reply.startswith(faq)
    assert "ORD-123456" in reply and texts.order_status("shipped", "ru") in reply
    async with sessionmaker() as s:
        ticket = await s.get(Ticket, result.ticket_id)
        message = await s.get(Message, result.message_id)
        assert ticket is not None and message is not None
        assert ticket.status == TicketStatus.bot and message.extra["reason"] == "several_answered"
        assert {r["intent"] for r in message.extra["requests"]} == {"personal_data_change", "order_status"}


async def test_a_near_domain_question_is_escalated(sessionmaker: async_sessionmaker[AsyncSession],
                                                   engine: EmbeddedEngine) -> None:
    result = await service(sessionmaker, engine).ingest(inbound("n1", "хочу стать дилером ваших сим-карт", "dealer"))
    assert result.action == "escalate"
    async with sessionmaker() as s:
        message = await s.get(Message, result.message_id)
        assert message is not None and message.extra["reason"] == "low_confidence"
        assert message.intent == OUT_OF_SCOPE


async def test_a_text_without_its_own_language_is_answered_in_the_customers(
        sessionmaker: async_sessionmaker[AsyncSession], engine: EmbeddedEngine) -> None:
    svc = service(sessionmaker, engine)
    first = await svc.ingest(inbound("l1", "как оплатить картой?", "lang-1"))
    assert first.action == "answer"
    second = await svc.ingest(inbound("l2", "ok", "lang-1"))
    [reply] = await replies(sessionmaker, second.reply_message_ids)
    assert any("\u0400" <= ch <= "\u04ff" for ch in reply), reply
    async with sessionmaker() as s:
        ticket = await s.get(Ticket, second.ticket_id)
        assert ticket is not None and ticket.language == "ru"
