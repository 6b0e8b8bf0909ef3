"""All outbox queries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, case, insert, literal, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from core.db.base import UTCDateTime
from core.outbox.models import OutboxMessage, OutboxStatus
from core.tickets.models import Message


async def get(session: AsyncSession, outbox_id: int, *, lock: bool = False) -> OutboxMessage | None:
    return await session.get(OutboxMessage, outbox_id, with_for_update=lock or None)


async def insert_queued(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many outbox rows (column values) in one statement."""
    # RETURNING makes it one multi-row INSERT (a plain executemany runs one statement per row).
    await session.execute(insert(OutboxMessage).returning(OutboxMessage.id), list(rows))


async def claim_due(session: AsyncSession, limit: int, now: datetime, lease_until: datetime) -> dict[int, int]:
    """Mark due rows (queued, or sending with a lapsed lease) as being sent until `lease_until`, in one statement;
    {id: attempt number} of the claimed rows. `FOR UPDATE SKIP LOCKED` lets PostgreSQL dispatchers claim apart."""
    due = (
        select(OutboxMessage.id)
        .where(OutboxMessage.status.in_((OutboxStatus.queued, OutboxStatus.sending)),
               OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due.scalar_subquery()))
        .values(status=OutboxStatus.sending, attempts=OutboxMessage.attempts + 1, next_attempt_at=lease_until)
        .returning(OutboxMessage.id, OutboxMessage.attempts)
        .execution_options(synchronize_session=False)
    )
    return dict(sorted((row_id, attempts) for row_id, attempts in (await session.execute(stmt)).all()))


async def extend_leases(session: AsyncSession, claims: Mapping[int, int], lease_until: datetime) -> int:
    """Extend the lease of rows still being sent under these claims ({id: attempt}); how many were extended."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.sending,
               tuple_(OutboxMessage.id, OutboxMessage.attempts).in_(list(claims.items())))
        .values(next_attempt_at=lease_until)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def envelope_rows(session: AsyncSession, ids: Sequence[int]) -> Sequence[Any]:
    """Plain columns of the given outbox rows and their messages, by id: (outbox id, ticket id, channel,
    recipient, payload, message id, text, html, attachments, author kind, created at, provider message id)."""
    o, m = OutboxMessage, Message
    stmt = (
        select(o.id, o.ticket_id, o.channel, o.recipient, o.payload, m.id, m.text, m.html, m.attachments,
               m.author_kind, m.created_at, o.provider_message_id)
        .join(m, m.id == o.message_id)
        .where(o.id.in_(list(ids)))
        .order_by(o.id)
    )
    return (await session.execute(stmt)).all()


# PostgreSQL: one statement text whatever the number of rows (ids and provider ids as two arrays), so a
# connection prepares it once and each group of deliveries is one Bind/Execute round trip.
_MARK_SENT_PG = text(
    "UPDATE outbox SET status = 'sent', sent_at = :now, last_error = NULL, "
    "provider_message_id = COALESCE(v.provider_id, outbox.provider_message_id) "
    "FROM unnest(CAST(:ids AS integer[]), CAST(:provider_ids AS varchar[])) AS v(id, provider_id) "
    "WHERE outbox.id = v.id"
).bindparams(bindparam("now", type_=UTCDateTime()))


async def mark_sent(session: AsyncSession, sent: Sequence[tuple[int, str | None]], now: datetime) -> None:
    """Record delivered rows ((outbox id, provider id) pairs) in one UPDATE; a row whose channel gave no provider
    id keeps the one it had (the first part's, after a partial delivery)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_MARK_SENT_PG, {"now": now, "ids": [outbox_id for outbox_id, _ in sent],
                                              "provider_ids": [provider_id for _, provider_id in sent]})
        return
    values: dict[str, Any] = {"status": OutboxStatus.sent, "sent_at": now, "last_error": None}
    given = [(OutboxMessage.id == outbox_id, literal(provider_id, String()))
             for outbox_id, provider_id in sent if provider_id is not None]
    if given:
        values["provider_message_id"] = case(*given, else_=OutboxMessage.provider_message_id)
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id.in_([outbox_id for outbox_id, _ in sent]))
        .values(**values).execution_options(synchronize_session=False)
    )


async def list_rows(
    session: AsyncSession, *, status: OutboxStatus | None, channel: str | None, limit: int, offset: int
) -> Sequence[OutboxMessage]:
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit).offset(offset)
    if status is not None:
        stmt = stmt.where(OutboxMessage.status == status)
    if channel is not None:
        stmt = stmt.where(OutboxMessage.channel == channel)
    return (await session.scalars(stmt)).all()


async def sent_on_channel(session: AsyncSession, channel: str, *, after: int, recipient: str | None, limit: int
                          ) -> Sequence[OutboxMessage]:
    """Rows delivered on `channel` with ids above `after`, oldest first, with their messages."""
    stmt = (
        select(OutboxMessage)
        .where(OutboxMessage.channel == channel, OutboxMessage.status == OutboxStatus.sent, OutboxMessage.id > after)
        .options(joinedload(OutboxMessage.message))
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if recipient is not None:
        stmt = stmt.where(OutboxMessage.recipient == recipient)
    return (await session.scalars(stmt)).all()
