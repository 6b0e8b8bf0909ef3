"""Escalated tickets go to the team of their intent: an admin's rule first, then the default, then `general`."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.ingest.schemas import IngestResult
from core.models import Ticket
from core.routing import service as routing
from core.users.models import Team
from tests.core.ingest.test_threading import msg, svc


async def team_of(sessionmaker: async_sessionmaker[AsyncSession], result: IngestResult) -> str | None:
    async with sessionmaker() as s:
        ticket = await s.get(Ticket, result.ticket_id)
        assert ticket is not None
        if ticket.team_id is None:
            return None
        team = await s.get(Team, ticket.team_id)
        return team.slug if team else None


async def test_defaults_rules_and_fallback_in_one_batch(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker)
    # Defaults: internet_down -> technical, complaint -> general, no intent -> general.
    first = await asyncio.gather(
        s.ingest(msg("1", sender="a", text="my internet is down")),
        s.ingest(msg("2", sender="b", text="I have a complaint")),
        s.ingest(msg("3", sender="c", text="something nobody understands")),
    )
    assert [await team_of(sessionmaker, r) for r in first] == ["technical", "general", "general"]
    assert all(r.action == "escalate" for r in first)

    # An admin's rule wins over the default from the next message on; the other intents keep theirs.
    async with sessionmaker() as session, session.begin():
        billing = (await session.scalars(select(Team).where(Team.slug == "billing"))).one()
        await routing.set_route(session, "internet_down", billing, actor=None)
    second = await asyncio.gather(
        s.ingest(msg("4", sender="d", text="интернет не работает")),
        s.ingest(msg("5", sender="e", text="у меня жалоба")),
    )
    assert [await team_of(sessionmaker, r) for r in second] == ["billing", "general"]


async def test_table_resolves_like_the_rules(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session, session.begin():
        technical = (await session.scalars(select(Team).where(Team.slug == "technical"))).one()
        await routing.set_route(session, "roaming", technical, actor=None)
        table = await routing.routing_table(session)

    def slug(intent: str | None) -> str | None:
        team = table.team_for(intent)
        return team.slug if team else None

    assert slug("roaming") == "technical"        # the rule (the default is sales)
    assert slug("balance_check") == "billing"    # the default
    assert slug("sim_block") == "general"        # unknown intent: the fallback
    assert slug(None) == "general"
    async with sessionmaker() as session:
        routes = await routing.list_routes(session)  # what admins see is what ingest does
    assert routes["roaming"] == "technical" and routes["balance_check"] == "billing"
