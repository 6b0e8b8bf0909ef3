"""Ingest's in-memory copies of the intent actions and SLA policies: a change saved here applies to the next message,
a rolled back one reads nothing again, a change from elsewhere is read within max_age."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import settings_cache
from core.config import CoreSettings
from core.decision.policy import IntentAction
from core.events import EventBus
from core.ingest.schemas import InboundMessage, SenderInfo
from core.ingest.service import IngestService
from core.nlu_admin import actions
from core.nlu_admin.models import IntentActionRule
from core.settings_cache import CachedSetting
from core.sla.models import SlaPolicy, TicketSla
from core.tickets.models import Ticket, TicketStatus
from tests.conftest import keyword_engine, responses
from tests.core.sla import helpers


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_change_committed_here_is_read_at_once_a_rolled_back_one_is_not(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    cache = CachedSetting(settings_cache.INTENT_ACTIONS, actions.action_table, max_age=3600.0)
    async with sessionmaker() as s:
        assert (await cache.get(s)).declared == {}
        assert (await cache.get(s)).declared == {}
    assert cache.loads == 1

    async with sessionmaker() as s:
        await actions.set_action(s, "greeting", IntentAction.escalate, actor=None)
        await s.rollback()
    async with sessionmaker() as s:
        assert (await cache.get(s)).declared == {}
    assert cache.loads == 1

    async with sessionmaker() as s, s.begin():
        await actions.set_action(s, "greeting", IntentAction.escalate, actor=None)
    async with sessionmaker() as s:
        assert (await cache.get(s)).declared == {"greeting": IntentAction.escalate}
    assert cache.loads == 2


async def test_a_change_saved_elsewhere_is_read_within_max_age(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    clock = FakeMonotonic()
    cache = CachedSetting(settings_cache.INTENT_ACTIONS, actions.action_table, max_age=1.0, monotonic=clock)
    async with sessionmaker() as s:
        assert (await cache.get(s)).declared == {}
    # Another instance's change: this process is not told.
    async with sessionmaker() as s, s.begin():
        await s.execute(insert(IntentActionRule).values(intent="greeting", action="escalate"))
    clock.now += 0.5
    async with sessionmaker() as s:
        assert (await cache.get(s)).declared == {}
    clock.now += 0.5
    async with sessionmaker() as s:
        assert (await cache.get(s)).declared == {"greeting": IntentAction.escalate}


def message(ext: str, text: str, sender: str) -> InboundMessage:
    return InboundMessage(channel="rest", external_message_id=ext, sender=SenderInfo(external_id=sender), text=text,
                          thread_key=ext)


@pytest.mark.parametrize("cache_seconds", [60.0, 0.0])
async def test_an_sla_policy_saved_here_applies_to_the_next_escalation(
        sessionmaker: async_sessionmaker[AsyncSession], cache_seconds: float) -> None:
    engine = keyword_engine()
    svc = IngestService(sessionmaker, lambda: engine, EventBus(), CoreSettings(settings_cache_seconds=cache_seconds),
                        responses=responses)
    first = await svc.ingest(message("1", "my internet is down", "a"))
    assert first.action == "escalate"
    async with sessionmaker() as s, s.begin():
        await helpers.policy(s, await helpers.calendar(s))
    second = await svc.ingest(message("2", "my internet is down again", "b"))
    async with sessionmaker() as s:
        clocks = set((await s.scalars(select(TicketSla.ticket_id))).all())
        ticket = await s.get(Ticket, second.ticket_id)
    assert ticket is not None and ticket.status == TicketStatus.open
    assert clocks == {second.ticket_id}
    assert ticket.sla_due_at is not None
    # The batches read the policies once each: the first had none, the second was told of the new one.
    assert svc.pipeline.policies.loads == 2


async def test_a_batch_that_fails_on_a_policy_deleted_elsewhere_is_retried_with_fresh_policies(
        sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    engine = keyword_engine()
    svc = IngestService(sessionmaker, lambda: engine, EventBus(), CoreSettings(settings_cache_seconds=60.0),
                        responses=responses)
    async with sessionmaker() as s, s.begin():
        policy_id = await helpers.policy(s, await helpers.calendar(s))
    first = await svc.ingest(message("1", "my internet is down", "a"))
    # Deleted through another instance: this process still has the policy in memory.
    async with sessionmaker() as s, s.begin():
        await s.execute(delete(SlaPolicy).where(SlaPolicy.id == policy_id))
    second = await svc.ingest(message("2", "my internet is down again", "b"))
    assert (first.action, second.action) == ("escalate", "escalate")
    async with sessionmaker() as s:
        assert list((await s.scalars(select(TicketSla.ticket_id))).all()) == []
        ticket = await s.get(Ticket, second.ticket_id)
    assert ticket is not None and ticket.status == TicketStatus.open and ticket.sla_due_at is None
    assert svc.pipeline.policies.loads == 2
