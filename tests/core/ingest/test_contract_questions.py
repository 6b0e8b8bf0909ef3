"""The bot answers contract questions from the record (end date, tariff) like order status, asks which contract
when the customer has several, never tells another customer's contract; a termination request goes to the
retention queue with the contract kept on the message."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import CoreSettings
from core.contracts.models import Contract, ContractStatus
from core.customers.models import ChannelIdentity, Customer
from core.events import EventBus
from core.ingest.schemas import InboundMessage, SenderInfo
from core.ingest.service import IngestService
from core.models import Message, Ticket, TicketStatus
from core.users.models import Team
from nlu.entities import EntityExtractor
from nlu.protocol import KeywordEngine, Parse

FAQ = {("contract_info", "en"): "Your contract is in your online account.",
       ("contract_terminate", "en"): "I am passing your request to a specialist."}


class EntityEngine(KeywordEngine):
    """Keywords for the intent, the real entity extractor for the numbers."""

    extractor = EntityExtractor()

    async def parse(self, text: str) -> Parse:
        return replace(await super().parse(text), entities=self.extractor.extract(text))


def service(sessionmaker: async_sessionmaker[AsyncSession]) -> IngestService:
    engine = EntityEngine({"contract_terminate": ["terminate", "расторгнуть"], "contract_info": ["contract",
                                                                                              "договор"]})
    return IngestService(sessionmaker, lambda: engine, EventBus(), CoreSettings(),
                         responses=lambda intent, language: FAQ.get((intent, language)))


async def customer(sessionmaker: async_sessionmaker[AsyncSession], sender: str, *contracts: tuple[str, str]) -> int:
    """A REST customer known by `sender`, with contracts (number, status)."""
    async with sessionmaker() as s, s.begin():
        row = Customer(name=sender, language="en")
        s.add(row)
        s.add(ChannelIdentity(channel="rest", external_id=sender, customer=row, verified=False))
        await s.flush()
        for number, status in contracts:
            s.add(Contract(number=number, customer_id=row.id, tariff="Home 500", services=["internet"],
                           start_date=date(2026, 1, 1), end_date=date(2027, 1, 31), auto_renewal=True,
                           status=ContractStatus(status)))
        return row.id


async def ask(sessionmaker: async_sessionmaker[AsyncSession], ext: str, text: str, sender: str
              ) -> tuple[Ticket, Message, list[str]]:
    result = await service(sessionmaker).ingest(InboundMessage(
        channel="rest", external_message_id=ext, sender=SenderInfo(external_id=sender), text=text,
        thread_key=sender))
    async with sessionmaker() as s:
        ticket = await s.get(Ticket, result.ticket_id)
        inbound = await s.get(Message, result.message_id)
        replies = [m.text for m in (await s.scalars(select(Message).where(
            Message.id.in_(result.reply_message_ids)).order_by(Message.id))).all()]
    assert ticket is not None and inbound is not None
    return ticket, inbound, replies


async def test_the_only_contract_is_answered_from_its_record(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await customer(sessionmaker, "anna", ("12345678", "active"))
    ticket, inbound, replies = await ask(sessionmaker, "m1", "When does my contract end?", "anna")
    assert replies == ["Contract 12345678: tariff Home 500, valid until 31.01.2027 (active). It renews "
                       "automatically."]
    assert ticket.status == TicketStatus.bot and inbound.extra["reason"] == "contract_found"


async def test_several_contracts_the_bot_asks_which_then_answers_by_number(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await customer(sessionmaker, "bob", ("11111111", "active"), ("22222222", "active"))
    _, inbound, replies = await ask(sessionmaker, "m1", "what tariff is on my contract", "bob")
    assert inbound.extra["reason"] == "contract_number_missing" and "several contracts" in replies[0]
    _, inbound, replies = await ask(sessionmaker, "m2", "contract 22222222 please", "bob")
    assert inbound.extra["reason"] == "contract_found" and replies[0].startswith("Contract 22222222:")


async def test_another_customers_contract_is_not_told(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await customer(sessionmaker, "owner", ("33333333", "active"))
    await customer(sessionmaker, "stranger")
    _, inbound, replies = await ask(sessionmaker, "m1", "contract 33333333 end date?", "stranger")
    assert inbound.extra["reason"] == "contract_not_found" and "33333333" in replies[0]
    assert "Home 500" not in replies[0]
    ticket, inbound, _ = await ask(sessionmaker, "m2", "contract 33333333 end date??", "stranger")
    assert inbound.extra["reason"] == "second_failed_answer" and ticket.status == TicketStatus.open


async def test_no_contract_on_record_gets_the_general_answer(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await customer(sessionmaker, "new")
    _, inbound, replies = await ask(sessionmaker, "m1", "tell me about my contract", "new")
    assert inbound.extra["reason"] == "contract_faq" and replies == [FAQ[("contract_info", "en")]]


@pytest.mark.parametrize("text", ["I want to terminate my contract", "хочу расторгнуть договор 44444444"])
async def test_a_termination_request_goes_to_retention_with_the_contract(
        sessionmaker: async_sessionmaker[AsyncSession], text: str) -> None:
    await customer(sessionmaker, "leaving", ("44444444", "active"))
    ticket, inbound, _ = await ask(sessionmaker, "m1", text, "leaving")
    async with sessionmaker() as s:
        team = await s.get(Team, ticket.team_id)
    assert ticket.status == TicketStatus.open and team is not None and team.slug == "retention"
    assert inbound.extra["contract"] == "44444444"
