"""Building blocks of the SLA tests: calendars, policies and a ticket with humans."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit.models import AuditEntry
from core.calendars import service as calendars
from core.calendars.schemas import CalendarCreate, WeeklyHours
from core.customers.models import ChannelIdentity, Customer
from core.db.base import utcnow
from core.sla import service as sla
from core.sla.schemas import SlaPolicyCreate
from core.tickets import repository as ticket_repo
from core.tickets import service as tickets
from core.tickets.models import Priority, Ticket, TicketStatus
from core.users.models import Role, User

WEEKDAYS_9_TO_18 = WeeklyHours(mon=["09:00-18:00"], tue=["09:00-18:00"], wed=["09:00-18:00"], thu=["09:00-18:00"],
                               fri=["09:00-18:00"])


async def calendar(session: AsyncSession, name: str = "24/7 test", weekly: WeeklyHours | None = None) -> int:
    weekly = weekly or WeeklyHours.model_validate({d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri",
                                                                                 "sat", "sun")})
    row = await calendars.create(session, CalendarCreate(name=name, time_zone="UTC", weekly=weekly), actor=None)
    return row.id


async def policy(session: AsyncSession, calendar: int, **fields: Any) -> int:
    body = SlaPolicyCreate.model_validate({"name": "standard", "calendar_id": calendar,
                                           "first_response_minutes": 60, "resolution_minutes": 480, **fields})
    return (await sla.create_policy(session, body, actor=None)).id


async def system_user(session: AsyncSession) -> User:
    user = User(email="sup@sla.example", name="Sup", password_hash="x", role=Role.supervisor, language="en",
                capacity=10, is_active=True)
    session.add(user)
    await session.flush()
    return user


async def ticket(session: AsyncSession, *, status: TicketStatus = TicketStatus.new, queue: str | None = "billing",
                 channel: str = "rest", priority: Priority = Priority.normal, language: str = "en") -> Ticket:
    customer = Customer(name="C", language=language)
    identity = ChannelIdentity(channel=channel, external_id=f"ext-{utcnow().timestamp()}", customer=customer,
                               verified=False)
    team = await ticket_repo.get_team_by_slug(session, queue) if queue else None
    row = Ticket(subject="s", channel=channel, status=status, priority=priority, customer=customer, identity=identity,
                 team=team, team_id=team.id if team else None, failed_bot_answers=0, language=language,
                 created_at=utcnow(), updated_at=utcnow())
    row.assignee = None
    session.add_all([customer, identity, row])
    await session.flush()
    return row


async def escalate(session: AsyncSession, row: Ticket, actor: User) -> Ticket:
    """The ticket goes to humans (as an agent action does)."""
    return await tickets.change_status(session, row, TicketStatus.open, actor)


async def sla_history(sessionmaker: async_sessionmaker[AsyncSession], ticket_id: int) -> list[tuple[str, str]]:
    async with sessionmaker() as session:
        rows = (await session.scalars(select(AuditEntry).where(
            AuditEntry.entity_type == "ticket", AuditEntry.entity_id == str(ticket_id),
            AuditEntry.action.like("sla.%")).order_by(AuditEntry.id))).all()
    return [(r.action, r.data["target"]) for r in rows]
