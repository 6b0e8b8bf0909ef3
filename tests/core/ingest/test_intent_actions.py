"""Every shipped intent ends in the state its declared action says; admins' declarations take effect at once."""

from __future__ import annotations

from functools import cache

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import CoreSettings
from core.decision import texts
from core.decision.policy import IntentAction
from core.errors import ValidationFailedError
from core.events import EventBus
from core.ingest.schemas import InboundMessage, SenderInfo
from core.ingest.service import IngestService
from core.models import Message, Ticket, TicketStatus
from core.nlu_admin import actions
from core.nlu_admin import service as nlu_service
from core.routing.service import DEFAULT_ROUTES, DEFAULT_TEAM
from core.users.models import Team
from nlu.data import load_training_data
from nlu.protocol import KeywordEngine, Parse, TrainingData
from nlu.text import detect_language


@cache
def shipped() -> TrainingData:
    return load_training_data()


SHIPPED_INTENTS = sorted(set(shipped().responses) | {e.intent for e in shipped().examples})


def shipped_action(intent: str) -> IntentAction:
    """What ingest does with a shipped intent nobody declared: its default, else answer its shipped answer."""
    return actions.ActionTable({}).action_for(intent, bool(shipped().responses.get(intent)))


def first_example(intent: str, language: str) -> str:
    return next(e.text for e in shipped().examples
                if e.intent == intent and detect_language(e.text, default="en") == language)


class ExactEngine(KeywordEngine):
    """Reads a text as the intent whose keyword it is exactly (the real model is tested in tests/nlu)."""

    async def parse(self, text: str) -> Parse:
        for intent, words in self.keywords.items():
            if text.lower() in words:
                return Parse(text=text, intent=intent, confidence=1.0, confident=True,
                             language=detect_language(text, default="en"))
        return await super().parse(text)


def shipped_engine() -> KeywordEngine:
    """Each shipped intent is read from its own first examples."""
    return ExactEngine({intent: [first_example(intent, lang).lower() for lang in ("en", "ru")]
                        for intent in SHIPPED_INTENTS})


def shipped_answer(intent: str, language: str) -> str | None:
    return shipped().responses.get(intent, {}).get(language)


def service(sessionmaker: async_sessionmaker[AsyncSession]) -> IngestService:
    engine = shipped_engine()
    return IngestService(sessionmaker, lambda: engine, EventBus(), CoreSettings(), responses=shipped_answer)


def message(ext: str, text: str, sender: str) -> InboundMessage:
    return InboundMessage(channel="rest", external_message_id=ext, sender=SenderInfo(external_id=sender), text=text,
                          thread_key=sender)


async def state(sessionmaker: async_sessionmaker[AsyncSession], ticket_id: int,
                reply_ids: list[int]) -> tuple[Ticket, str | None, list[str]]:
    async with sessionmaker() as s:
        ticket = await s.get(Ticket, ticket_id)
        assert ticket is not None
        team = await s.get(Team, ticket.team_id) if ticket.team_id else None
        replies = list((await s.scalars(select(Message.text).where(Message.id.in_(reply_ids)))).all())
    return ticket, team.slug if team else None, replies


@pytest.mark.parametrize("language", ["ru", "en"])
@pytest.mark.parametrize("intent", SHIPPED_INTENTS)
async def test_shipped_intent_ends_in_its_declared_state(
        sessionmaker: async_sessionmaker[AsyncSession], intent: str, language: str) -> None:
    text = first_example(intent, language)
    result = await service(sessionmaker).ingest(message("1", text, sender=f"{intent}-{language}"))
    ticket, team, replies = await state(sessionmaker, result.ticket_id, result.reply_message_ids)
    assert ticket.intent == intent, f"{text!r} was read as {ticket.intent}"
    assert len(replies) == 1
    reply = replies[0]
    action = shipped_action(intent)
    answer = shipped_answer(intent, language)
    if action == IntentAction.answer:
        assert (result.action, ticket.status, ticket.team_id) == ("answer", TicketStatus.bot, None)
        assert reply == answer
    elif action == IntentAction.self_service:
        assert (result.action, ticket.status) == ("answer", TicketStatus.bot)
        # Nothing on record for a new customer: the order status asks for the number, the contract question
        # gets the intent's general answer.
        expected = answer if intent == "contract_info" else texts.text("ask_order_number", language)
        assert reply == expected
    else:
        assert (result.action, ticket.status) == ("escalate", TicketStatus.open)
        expected_team = DEFAULT_TEAM if intent == "human_handoff" else DEFAULT_ROUTES.get(intent, DEFAULT_TEAM)
        assert team == expected_team
        # The hand-over says: with the team, the ticket number and the expected wait, in the customer's language.
        assert ticket.number in reply
        assert ("Expected wait" if language == "en" else "Ожидаемое время") in reply
        if action == IntentAction.answer_and_escalate:
            assert answer is not None and reply.startswith(answer)


async def test_the_issues_sentences_reach_a_queue(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    engine = KeywordEngine({"contract_terminate": ["расторгнуть договор", "terminate my contract"],
                            "data_deletion": ["персональные данные"]})
    svc = IngestService(sessionmaker, lambda: engine, EventBus(), CoreSettings(), responses=shipped_answer)
    for n, text in enumerate(["Хочу расторгнуть договор", "I want to terminate my contract",
                              "Удалите мои персональные данные"]):
        result = await svc.ingest(message(str(n), text, sender=f"c{n}"))
        ticket, team, _ = await state(sessionmaker, result.ticket_id, result.reply_message_ids)
        assert ticket.status == TicketStatus.open and team in ("retention", "general"), text


async def test_admins_declaration_takes_effect_from_the_next_message(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    svc = service(sessionmaker)
    text = first_example("contract_info", "en")
    assert (await svc.ingest(message("1", text, sender="a"))).action == "answer"
    async with sessionmaker() as s, s.begin():
        await actions.set_action(s, "contract_info", IntentAction.escalate, actor=None)
        await nlu_service.create_intent(s, "roaming", "", actor=None)
        await nlu_service.set_responses(s, "roaming", {"en": shipped_answer("roaming", "en")}, actor=None)
    escalated = await svc.ingest(message("2", text, sender="b"))
    _, team, _ = await state(sessionmaker, escalated.ticket_id, escalated.reply_message_ids)
    assert escalated.action == "escalate" and team == "retention"
    async with sessionmaker() as s:
        effective = await actions.effective_actions(s, ["contract_info", "roaming", "sim_block"])
    assert effective == {"contract_info": (IntentAction.escalate, True), "roaming": (IntentAction.answer, False),
                         "sim_block": (IntentAction.escalate, False)}


async def test_bad_declarations_are_refused_with_a_reason(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as s, s.begin():
        await nlu_service.create_intent(s, "sim_block", "", actor=None)
        with pytest.raises(ValidationFailedError, match="no answer text"):
            await actions.set_action(s, "sim_block", IntentAction.answer, actor=None)
        with pytest.raises(ValidationFailedError, match="no self-service lookup"):
            await actions.set_action(s, "sim_block", IntentAction.self_service, actor=None)
        with pytest.raises(ValidationFailedError, match="intent name"):
            await actions.set_action(s, "Bad Name", IntentAction.escalate, actor=None)
        await nlu_service.set_responses(s, "sim_block", {"en": "Block it in the app."}, actor=None)
        assert await actions.set_action(s, "sim_block", IntentAction.answer, actor=None) == IntentAction.answer
        # The customer asking for a person always reaches one, even when the intent has an answer text.
        await nlu_service.create_intent(s, "human_handoff", "", actor=None)
        await nlu_service.set_responses(s, "human_handoff", {"en": "Connecting you."}, actor=None)
        for refused in (IntentAction.answer, IntentAction.self_service):
            with pytest.raises(ValidationFailedError, match="asking for a person") as raised:
                await actions.set_action(s, "human_handoff", refused, actor=None)
            assert raised.value.details["allowed"] == ["escalate", "answer_and_escalate"]
        assert await actions.set_action(s, "human_handoff", IntentAction.answer_and_escalate,
                                        actor=None) == IntentAction.answer_and_escalate
