"""Tickets at known moments with known intents, channels and escalation reasons, for the top lists and rising
problems (written as ingest leaves them: the ticket row, and the customer message carrying the decision)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.customers.models import Customer
from core.kpis.fold import KpiFold
from core.tickets.models import AuthorKind, Direction, Message, Ticket, TicketStatus


async def tickets(session: AsyncSession, at: datetime, n: int = 1, *, intent: str | None = None,
                  channel: str = "rest", reason: str | None = None, text: str = "...") -> None:
    """`n` tickets created at `at`; with `reason`, their first message was escalated for it."""
    customer = Customer(name="C", language="en")
    session.add(customer)
    await session.flush()
    rows = [Ticket(customer_id=customer.id, status=TicketStatus.open if reason else TicketStatus.bot, intent=intent,
                   channel=channel, created_at=at, updated_at=at, last_customer_message_at=at) for _ in range(n)]
    session.add_all(rows)
    await session.flush()
    session.add_all([Message(
        ticket_id=t.id, direction=Direction.inbound, author_kind=AuthorKind.customer, channel=channel, text=text,
        intent=intent, extra={"action": "escalate" if reason else "answer", "reason": reason or "faq"}, created_at=at)
        for t in rows])
    await session.flush()


async def kpis_up_to_date(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The KPI engine's counts include every change made so far: its fold (core/kpis/fold.py) run to the end."""
    fold = KpiFold(sessionmaker, time_zone="Europe/Moscow")
    while await fold.run_once():
        pass
