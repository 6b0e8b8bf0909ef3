"""A scripted contact-centre day for the KPI tests: every moment comes from one ManualClock."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import core.db.base
from api.app import create_app
from core.bot_lifecycle import service as bot_lifecycle
from core.clock import ManualClock
from core.csat import service as csat
from core.csat.service import CsatSurveys
from core.ingest.schemas import InboundMessage, SenderInfo
from core.jobs.tasks import DueTaskRunner, TaskHandlers
from core.kpis.fold import KpiFold
from core.sla.timers import SlaTimers
from core.tickets import repository as ticket_repo
from core.tickets.models import Ticket
from core.users import service as users
from core.users.models import Role, Team
from tests.conftest import keyword_engine, make_settings, responses

MSK = ZoneInfo("Europe/Moscow")
D1 = datetime(2026, 3, 2, tzinfo=MSK).date()  # a Monday
D2 = D1 + timedelta(days=1)


def at(day: Any, hhmm: str) -> datetime:
    """A local Moscow moment as UTC."""
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=MSK).astimezone(UTC)


def drive_utcnow(monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> None:
    """Every module that took core.db.base.utcnow by name reads the manual clock instead (the ticket core stamps
    its moments with utcnow; the scenario needs them to be the script's)."""
    original = core.db.base.utcnow
    for module in list(sys.modules.values()):
        if module is not None and getattr(module, "utcnow", None) is original:
            monkeypatch.setattr(module, "utcnow", clock.now)


@dataclass
class Scenario:
    """The app (no background workers: the script runs each job itself), its clock and its people."""

    client: httpx.AsyncClient
    sessionmaker: async_sessionmaker[AsyncSession]
    clock: ManualClock
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)
    tickets: dict[str, int] = field(default_factory=dict)
    due: DueTaskRunner | None = None
    fold: KpiFold | None = None
    fold_each_step: bool = False  # fold after every step (the incremental path) instead of once at the end

    def to(self, moment: datetime) -> None:
        delta = (moment - self.clock.now()).total_seconds()
        assert delta >= 0, "the script goes forward in time"
        self.clock.advance(delta)

    async def customer_writes(self, name: str, channel: str, text: str, *, ticket: str | None = None) -> int:
        state = self.client.app.state.switchboard  # type: ignore[attr-defined]
        inbound = InboundMessage(
            channel=channel, external_message_id=f"{name}-{self.clock.now().timestamp()}",
            sender=SenderInfo(external_id=f"customer-{ticket or name}", name=f"Customer {name}"),
            text=text, thread_key=f"thread-{ticket or name}", received_at=self.clock.now(), language_hint="en")
        result = await state.ingest.ingest(inbound)
        ticket_id = int(result.ticket_id)
        self.tickets.setdefault(ticket or name, ticket_id)
        await self.step()
        return ticket_id

    async def step(self) -> None:
        if self.fold_each_step:
            await self.fold_all()

    async def reply(self, agent: str, ticket: str, text: str = "On it.") -> None:
        r = await self.client.post(f"/tickets/{self.tickets[ticket]}/reply", headers=self.headers[agent],
                                   json={"text": text})
        assert r.status_code == 201, r.text
        await self.step()

    async def set_status(self, agent: str, ticket: str, status: str) -> None:
        r = await self.client.patch(f"/tickets/{self.tickets[ticket]}", headers=self.headers[agent],
                                    json={"status": status})
        assert r.status_code == 200, r.text
        await self.step()

    async def bot_sweep(self) -> int:
        async with self.sessionmaker() as session, session.begin():
            count = await bot_lifecycle.resolve_quiet_tickets(session, self.clock.now(), timedelta(minutes=30))
        await self.step()
        return count

    async def run_due(self) -> None:
        assert self.due is not None
        while await self.due.run_once():
            pass
        await self.step()

    async def rate(self, ticket: str, score: int, channel: str) -> None:
        async with self.sessionmaker() as session, session.begin():
            await csat.submit(session, self.tickets[ticket], score, None, channel, low_score=2, clock=self.clock)
        await self.step()

    async def fold_all(self) -> None:
        assert self.fold is not None
        while await self.fold.run_once():
            pass

    async def ticket(self, name: str) -> Ticket:
        async with self.sessionmaker() as session:
            row = await session.get(Ticket, self.tickets[name])
            assert row is not None
            return row


async def make_user(sessionmaker: async_sessionmaker[AsyncSession], role: Role, email: str, queue: str | None, *,
                    ttl: timedelta) -> tuple[Any, str]:
    async with sessionmaker() as session, session.begin():
        team = await ticket_repo.get_team_by_slug(session, queue) if queue else None
        user = await users.create(session, email=email, name=email.split("@")[0], password="password-123",
                                  role=role, team=team)
        token = await users.issue_token(session, user, ttl)
    return user, token


@asynccontextmanager
async def scenario_app(db_url: str, clock: ManualClock, sessionmaker: async_sessionmaker[AsyncSession]
                       ) -> AsyncIterator[Scenario]:
    settings = make_settings(db_url, workers_enabled=False)
    app = create_app(settings, nlu_engine=keyword_engine(), responses=responses, configure_logs=False, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app = app  # type: ignore[attr-defined]
            s = Scenario(client, sessionmaker, clock)
            for name, role, queue in (("a", Role.agent, "technical"), ("b", Role.agent, "technical"),
                                      ("sup", Role.supervisor, None), ("admin", Role.admin, None)):
                user, token = await make_user(sessionmaker, role, f"{name}@kpi.example", queue,
                                              ttl=timedelta(days=30))
                s.headers[name] = {"Authorization": f"Bearer {token}"}
                s.user_ids[name] = user.id
            async with sessionmaker() as session, session.begin():
                await session.execute(update(Team).values(csat_enabled=True, csat_delay_minutes=0))
            handlers = TaskHandlers()
            SlaTimers(clock).register(handlers)
            CsatSurveys(settings.core, clock, link_secret="k" * 32).register(handlers)
            s.due = DueTaskRunner(sessionmaker, handlers, clock=clock)
            s.fold = KpiFold(sessionmaker, clock, time_zone="Europe/Moscow", csat_low=2)
            yield s
