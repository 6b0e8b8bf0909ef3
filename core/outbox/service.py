"""The outbox: outbound messages are written in the ingest/reply transaction and sent later, with retries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, case, insert, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.config import CoreSettings
from core.db.base import utcnow
from core.errors import ConflictError, NotFoundError
from core.events import emit
from core.jobs.backoff import Backoff
from core.outbox.models import OutboxMessage, OutboxStatus
from core.outbox.schemas import OutboundEnvelope
from core.tickets.models import Message, Ticket, format_ticket_number
from core.users.models import User


def enqueue(
    session: AsyncSession, ticket: Ticket, message: Message, recipient: str, payload: dict[str, Any]
) -> OutboxMessage:
    """Queue `message` for delivery to `recipient` on the ticket's channel (same transaction)."""
    row = OutboxMessage(
        channel=message.channel, recipient=recipient, payload=payload, status=OutboxStatus.queued,
        next_attempt_at=utcnow(),
    )
    # Relationships, not ids: the rows are inserted together at the next flush.
    row.message = message
    row.ticket = ticket
    session.add(row)
    emit(session, "outbox.queued", lambda: {"channel": row.channel, "ticket_id": row.ticket_id})
    return row


async def enqueue_many(session: AsyncSession, rows: Sequence[tuple[Ticket, int, str, dict[str, Any]]]) -> None:
    """Queue many already-inserted messages (ticket, message id, recipient, payload) in one INSERT."""
    if not rows:
        return
    now = utcnow()
    # RETURNING makes it one multi-row INSERT (a plain executemany runs one statement per row).
    await session.execute(insert(OutboxMessage).returning(OutboxMessage.id), [
        {"message_id": message_id, "ticket_id": ticket.id, "channel": ticket.channel, "recipient": recipient,
         "payload": payload, "status": OutboxStatus.queued, "attempts": 0, "next_attempt_at": now,
         "created_at": now}
        for ticket, message_id, recipient, payload in rows
    ])
    for ticket, _, _, _ in rows:
        emit(session, "outbox.queued", {"channel": ticket.channel, "ticket_id": ticket.id})


async def claim_due(
    session: AsyncSession, limit: int, lease_seconds: float, *, now: datetime | None = None
) -> dict[int, int]:
    """Claim due rows for sending, in one statement: queued ones whose time has come, and sends whose lease ran
    out (their dispatcher died or lost the database). Returns {id: attempt number} of the claimed rows; the
    attempt number is the claim's token (`heartbeat`, `mark_failed_attempt`).

    On PostgreSQL, `FOR UPDATE SKIP LOCKED` in the subquery lets many dispatchers claim disjoint rows.
    """
    now = now or utcnow()
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
        .values(status=OutboxStatus.sending, attempts=OutboxMessage.attempts + 1,
                next_attempt_at=now + timedelta(seconds=lease_seconds))
        .returning(OutboxMessage.id, OutboxMessage.attempts)
        .execution_options(synchronize_session=False)
    )
    return dict(sorted((row_id, attempts) for row_id, attempts in (await session.execute(stmt)).all()))


async def heartbeat(
    session: AsyncSession, claims: Mapping[int, int], lease_seconds: float, *, now: datetime | None = None
) -> int:
    """Extend the lease of rows still being sent under these claims ({id: attempt}), in one UPDATE.

    A row whose lease ran out and was claimed again (its attempt number moved on) is not touched: the lease
    stays with whoever holds it now. Returns how many rows were extended.
    """
    if not claims:
        return 0
    now = now or utcnow()
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.sending,
               tuple_(OutboxMessage.id, OutboxMessage.attempts).in_(list(claims.items())))
        .values(next_attempt_at=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def build_envelopes(session: AsyncSession, ids: Sequence[int]) -> list[OutboundEnvelope]:
    """What the channels need to send the given outbox rows (plain columns: no ORM objects for a hot path)."""
    o, m = OutboxMessage, Message
    stmt = (
        select(o.id, o.ticket_id, o.channel, o.recipient, o.payload, m.id, m.text, m.html, m.attachments,
               m.author_kind, m.created_at, o.provider_message_id)
        .join(m, m.id == o.message_id)
        .where(o.id.in_(list(ids)))
        .order_by(o.id)
    )
    envelopes = []
    for (outbox_id, ticket_id, channel, recipient, p, message_id, text, html, attachments, author_kind,
         created_at, provider_id) in (await session.execute(stmt)).all():
        envelopes.append(OutboundEnvelope(
            outbox_id=outbox_id, message_id=message_id, ticket_id=ticket_id, channel=channel, recipient=recipient,
            ticket_number=format_ticket_number(ticket_id), text=text, html=html, subject=p.get("subject"),
            attachments=list(attachments or []), thread_key=p.get("thread_key"),
            in_reply_to=p.get("in_reply_to"), references=list(p.get("references", [])),
            quick_replies=p.get("quick_replies", []), language=p.get("language"),
            author_kind=author_kind.value, created_at=created_at,
            delivered_parts=int(p.get("delivered_parts", 0)), provider_message_id=provider_id,
        ))
    return envelopes


def backoff_seconds(attempts: int, settings: CoreSettings) -> float:
    """The one backoff (core.jobs): base*2^(n-1), capped, with jitter in its upper half."""
    base = settings.outbox_backoff_base_seconds
    return Backoff(base, max(base, settings.outbox_backoff_max_seconds)).delay(attempts)


async def mark_sent(session: AsyncSession, sent: Sequence[tuple[OutboundEnvelope, str | None]]) -> None:
    """Record delivered messages in one UPDATE statement (each row's provider id picked by a CASE on its id)."""
    if not sent:
        return
    provider_ids = case(
        *((OutboxMessage.id == e.outbox_id, literal(provider_id, String())) for e, provider_id in sent),
        else_=OutboxMessage.provider_message_id,
    )
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.id.in_([e.outbox_id for e, _ in sent]))
        .values(status=OutboxStatus.sent, sent_at=utcnow(), last_error=None, provider_message_id=provider_ids)
        .execution_options(synchronize_session=False)
    )
    for e, _ in sent:
        emit(session, "outbox.sent", {"outbox_id": e.outbox_id, "ticket_id": e.ticket_id, "message_id": e.message_id})


async def mark_failed_attempt(
    session: AsyncSession, outbox_id: int, error: str, settings: CoreSettings, *, permanent: bool = False,
    progress: tuple[int, str | None] | None = None, attempt: int | None = None,
) -> OutboxStatus:
    """Record a failed attempt: retry later with backoff, or fail for good after the last attempt.

    `progress` (parts delivered so far, the first part's provider id) makes the retry send only the rest.
    `attempt` (the claim's token): when the row has been claimed again since (this dispatcher's lease ran out)
    or is no longer being sent, the failure is stale and changes nothing - it must not put a row that another
    dispatcher delivered back in the queue.
    """
    row = await session.get(OutboxMessage, outbox_id, with_for_update=True)
    if row is None:
        return OutboxStatus.failed
    if attempt is not None and (row.attempts != attempt or row.status != OutboxStatus.sending):
        return row.status
    if progress is not None:
        delivered, provider_id = progress
        row.payload = {**row.payload, "delivered_parts": delivered}
        row.provider_message_id = row.provider_message_id or provider_id
    row.last_error = error[:2000]
    if permanent or row.attempts >= settings.outbox_max_attempts:
        row.status = OutboxStatus.failed
        emit(session, "outbox.failed", {"outbox_id": row.id, "ticket_id": row.ticket_id, "error": row.last_error})
    else:
        row.status = OutboxStatus.queued
        row.next_attempt_at = utcnow() + timedelta(seconds=backoff_seconds(row.attempts, settings))
    return row.status


async def retry(session: AsyncSession, outbox_id: int, actor: User | None) -> OutboxMessage:
    """Put a failed message back in the queue (agent's retry button)."""
    row = await session.get(OutboxMessage, outbox_id)
    if row is None:
        raise NotFoundError(f"outbox message {outbox_id} not found")
    if row.status != OutboxStatus.failed:
        raise ConflictError(f"only failed messages can be retried; this one is {row.status.value}",
                            status=row.status.value)
    row.status = OutboxStatus.queued
    row.attempts = 0
    row.next_attempt_at = utcnow()
    audit.record(session, actor, "outbox.retry", "outbox", row.id, last_error=row.last_error)
    emit(session, "outbox.queued", {"channel": row.channel, "ticket_id": row.ticket_id})
    return row


async def list_rows(
    session: AsyncSession, *, status: OutboxStatus | None, channel: str | None, limit: int, offset: int
) -> Sequence[OutboxMessage]:
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit).offset(offset)
    if status is not None:
        stmt = stmt.where(OutboxMessage.status == status)
    if channel is not None:
        stmt = stmt.where(OutboxMessage.channel == channel)
    return (await session.scalars(stmt)).all()
