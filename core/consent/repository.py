"""Queries of preferences, consent and notices."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core.consent.models import ConsentChange, OrderNoticeTemplate
from core.customers.models import ChannelIdentity
from core.tickets.models import Ticket


async def log_of(session: AsyncSession, customer_id: int, limit: int = 200) -> Sequence[ConsentChange]:
    stmt = (select(ConsentChange).where(ConsentChange.customer_id == customer_id)
            .order_by(ConsentChange.id.desc()).limit(limit))
    return (await session.scalars(stmt)).all()


async def latest_ticket_on(session: AsyncSession, customer_id: int, channel: str | None) -> Ticket | None:
    """The customer's newest unmerged ticket with an identity (on `channel`, or any), with its identity loaded."""
    stmt = (select(Ticket).join(ChannelIdentity, ChannelIdentity.id == Ticket.identity_id)
            .where(Ticket.customer_id == customer_id, Ticket.merged_into_id.is_(None))
            .options(selectinload(Ticket.identity)).order_by(Ticket.id.desc()).limit(1))
    if channel is not None:
        stmt = stmt.where(ChannelIdentity.channel == channel)
    return (await session.scalars(stmt)).first()


async def templates(session: AsyncSession) -> Sequence[OrderNoticeTemplate]:
    return (await session.scalars(select(OrderNoticeTemplate).order_by(OrderNoticeTemplate.status))).all()


async def template_of(session: AsyncSession, status: str) -> OrderNoticeTemplate | None:
    return (await session.scalars(select(OrderNoticeTemplate).where(OrderNoticeTemplate.status == status))).first()
