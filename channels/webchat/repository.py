"""The web chat's queries: a visitor's conversation, one pushed message, agents online."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.outbox.models import OutboxMessage
from core.tickets.models import AuthorKind, Message, Ticket
from core.users.models import Role, User

CHANNEL = "webchat"
VISIBLE = (AuthorKind.customer, AuthorKind.bot, AuthorKind.agent)


def _conversation(visitor_id: str) -> Any:
    return (
        select(Message, OutboxMessage.payload)
        .join(Ticket, Ticket.id == Message.ticket_id)
        .outerjoin(OutboxMessage, OutboxMessage.message_id == Message.id)
        .where(Ticket.channel == CHANNEL, Ticket.thread_key == visitor_id, Message.author_kind.in_(VISIBLE))
    )


async def history(session: AsyncSession, visitor_id: str, after: int, limit: int
                  ) -> Sequence[tuple[Message, dict[str, Any] | None]]:
    """Messages after `after`, oldest first; with after=0 the latest `limit` ones."""
    stmt = _conversation(visitor_id)
    if after > 0:
        rows = (await session.execute(stmt.where(Message.id > after).order_by(Message.id).limit(limit))).all()
        return [(m, p) for m, p in rows]
    rows = (await session.execute(stmt.order_by(Message.id.desc()).limit(limit))).all()
    return [(m, p) for m, p in reversed(rows)]


async def messages_for_push(session: AsyncSession, message_ids: Sequence[int]
                            ) -> dict[int, tuple[Message, dict[str, Any] | None]]:
    """Messages with their outbox payload (quick replies), by id, in one query."""
    rows = (await session.execute(
        select(Message, OutboxMessage.payload).outerjoin(OutboxMessage, OutboxMessage.message_id == Message.id)
        .where(Message.id.in_(message_ids))
    )).all()
    return {message.id: (message, payload) for message, payload in rows}


async def agents_online(session: AsyncSession, seen_since: datetime) -> int:
    """Active agents seen recently; where presence was never recorded, every active agent counts."""
    base = select(func.count()).select_from(User).where(
        User.is_active.is_(True), User.role.in_((Role.agent, Role.supervisor)))
    tracked = await session.scalar(base.where(User.last_seen_at.is_not(None)))
    if tracked:
        return int(await session.scalar(base.where(User.last_seen_at >= seen_since)) or 0)
    return int(await session.scalar(base) or 0)


async def thread_of_ticket(session: AsyncSession, ticket_id: int) -> str | None:
    row = (await session.execute(select(Ticket.channel, Ticket.thread_key).where(Ticket.id == ticket_id))).first()
    if row is None or row[0] != CHANNEL:
        return None
    return row[1]


async def latest_message_id(session: AsyncSession) -> int:
    """The highest message id: a new socket's cursor when its history is complete."""
    return int(await session.scalar(select(func.max(Message.id))) or 0)


async def visible_after(session: AsyncSession, after: int, limit: int
                        ) -> Sequence[tuple[Message, dict[str, Any] | None, str]]:
    """Web-chat messages a visitor sees, of every visitor, after a message id (oldest first), with the visitor.

    One range scan on the primary key: the catch-up of every open socket after live events may have been lost.
    """
    rows = (await session.execute(
        select(Message, OutboxMessage.payload, Ticket.thread_key)
        .join(Ticket, Ticket.id == Message.ticket_id)
        .outerjoin(OutboxMessage, OutboxMessage.message_id == Message.id)
        .where(Message.id > after, Ticket.channel == CHANNEL, Message.author_kind.in_(VISIBLE))
        .order_by(Message.id).limit(limit)
    )).all()
    return [(m, p, str(t)) for m, p, t in rows]
