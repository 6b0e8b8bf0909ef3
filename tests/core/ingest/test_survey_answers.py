"""A survey button press is a survey answer whatever it finds: stored, never read by the NLU nor decided; with no
survey to rate, the customer is told so (and the score is not taken for a message)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import CoreSettings
from core.csat.models import CsatSurvey
from core.db.base import utcnow
from core.events import EventBus
from core.ingest.schemas import InboundMessage, SenderInfo
from core.ingest.service import IngestService
from core.models import Message, Ticket, TicketStatus
from core.tickets.models import Direction
from nlu.protocol import KeywordEngine, Parse

NO_SURVEY_EN = "There is no open survey to rate here"


class CountingEngine(KeywordEngine):
    """Reads "5" as a greeting (so a press that reached the NLU would be answered) and counts what it read."""

    def __init__(self) -> None:
        super().__init__({"greeting": ["5", "hello"]})
        self.read: list[str] = []

    async def parse(self, text: str) -> Parse:
        self.read.append(text)
        return await super().parse(text)


def service(sessionmaker: async_sessionmaker[AsyncSession], engine: CountingEngine) -> IngestService:
    return IngestService(sessionmaker, lambda: engine, EventBus(), CoreSettings(),
                         responses=lambda intent, _lang: "Hello!" if intent == "greeting" else None)


def press(ext: str, score: object, sender: str = "a") -> InboundMessage:
    return InboundMessage(channel="webchat", external_message_id=ext, sender=SenderInfo(external_id=sender),
                          text=str(score), thread_key=sender, language_hint="en",
                          extra={"quick_reply": f"/csat {score}", "csat": score})


async def outbound_texts(sessionmaker: async_sessionmaker[AsyncSession], ticket_id: int) -> list[str]:
    async with sessionmaker() as s:
        return list((await s.scalars(select(Message.text).where(
            Message.ticket_id == ticket_id, Message.direction == Direction.outbound).order_by(Message.id))).all())


async def test_a_press_on_a_ticket_without_survey_is_no_message(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    engine = CountingEngine()
    svc = service(sessionmaker, engine)
    first = await svc.ingest(InboundMessage(channel="webchat", external_message_id="1",
                                            sender=SenderInfo(external_id="a"), text="hello", thread_key="a"))
    assert first.action == "answer"
    result = await svc.ingest(press("2", 5))
    assert result.ticket_id == first.ticket_id
    assert result.action == "ignore"
    assert engine.read == ["hello"]  # the score never went through the NLU
    texts = await outbound_texts(sessionmaker, first.ticket_id)
    assert texts[-1].startswith(NO_SURVEY_EN) and "Hello!" not in texts[1:]
    async with sessionmaker() as s:
        ticket = await s.get(Ticket, first.ticket_id)
        assert ticket is not None and ticket.status == TicketStatus.bot
        stored = await s.get(Message, result.message_id)
        assert stored is not None and stored.extra["csat"] == 5 and stored.extra["reason"] == "csat"
        assert stored.intent is None


async def test_a_press_in_a_chat_without_tickets_is_kept_on_a_closed_ticket(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    engine = CountingEngine()
    result = await service(sessionmaker, engine).ingest(press("1", 4, sender="stranger"))
    assert result.action == "ignore" and result.created and engine.read == []
    async with sessionmaker() as s:
        ticket = await s.get(Ticket, result.ticket_id)
        assert ticket is not None and ticket.status == TicketStatus.closed and ticket.team_id is None
    assert (await outbound_texts(sessionmaker, result.ticket_id))[0].startswith(NO_SURVEY_EN)


async def test_a_press_stores_the_score_of_the_latest_tickets_survey(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    engine = CountingEngine()
    svc = service(sessionmaker, engine)
    first = await svc.ingest(InboundMessage(channel="webchat", external_message_id="1",
                                            sender=SenderInfo(external_id="a"), text="hello", thread_key="a"))
    async with sessionmaker() as s, s.begin():
        ticket = await s.get(Ticket, first.ticket_id)
        assert ticket is not None
        ticket.status, ticket.resolved_at = TicketStatus.resolved, utcnow()
        s.add(CsatSurvey(ticket_id=ticket.id, channel="webchat", language="ru", sent_at=utcnow()))
    assert (await svc.ingest(press("2", 2))).action == "ignore"
    assert (await svc.ingest(press("3", 6))).action == "ignore"  # no survey asks for a 6: nothing changes
    assert (await svc.ingest(press("4", 5))).action == "ignore"
    texts = await outbound_texts(sessionmaker, first.ticket_id)
    assert texts[-3:] == ["Спасибо за оценку! Если хотите, расскажите подробнее следующим сообщением.",
                          texts[-2], "Вы уже оценили это обращение. Спасибо!"]
    assert texts[-2].startswith("Здесь нет открытого опроса")
    async with sessionmaker() as s:
        survey = (await s.scalars(select(CsatSurvey).where(CsatSurvey.ticket_id == first.ticket_id))).one()
        assert (survey.score, survey.answer_channel, survey.flagged) == (2, "webchat", True)
        ticket = await s.get(Ticket, first.ticket_id)
        assert ticket is not None and ticket.status == TicketStatus.resolved
    assert engine.read == ["hello"]
