"""The outbox: outbound messages are written in the ingest/reply transaction and sent later, with retries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.config import CoreSettings
from core.db.base import utcnow
from core.errors import ConflictError, NotFoundError
from core.events import OutboxFailed, OutboxQueued, OutboxSent, Topic, emit
from core.jobs.backoff import Backoff
from core.outbox import repository
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
    emit(session, Topic.OUTBOX_QUEUED, lambda: OutboxQueued(channel=row.channel, ticket_id=row.ticket_id))
    return row


async def enqueue_many(session: AsyncSession, rows: Sequence[tuple[Ticket, int, str, dict[str, Any]]]) -> None:
    """Queue many already-inserted messages (ticket, message id, recipient, payload) in one INSERT."""
    if not rows:
        return
    now = utcnow()
    await repository.insert_queued(session, [
        {"message_id": message_id, "ticket_id": ticket.id, "channel": ticket.channel, "recipient": recipient,
         "payload": payload, "status": OutboxStatus.queued, "attempts": 0, "next_attempt_at": now,
         "created_at": now}
        for ticket, message_id, recipient, payload in rows
    ])
    for ticket, _, _, _ in rows:
        emit(session, Topic.OUTBOX_QUEUED, OutboxQueued(channel=ticket.channel, ticket_id=ticket.id))


async def claim_due(
    session: AsyncSession, limit: int, lease_seconds: float, *, now: datetime | None = None
) -> dict[int, int]:
    """Claim due rows for sending, in one statement: queued ones whose time has come, and sends whose lease ran
    out (their dispatcher died or lost the database). Returns {id: attempt number} of the claimed rows; the
    attempt number is the claim's token (`heartbeat`, `mark_failed_attempt`).

    On PostgreSQL, `FOR UPDATE SKIP LOCKED` in the subquery lets many dispatchers claim disjoint rows.
    """
    now = now or utcnow()
    return await repository.claim_due(session, limit, now, now + timedelta(seconds=lease_seconds))


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
    return await repository.extend_leases(session, claims, now + timedelta(seconds=lease_seconds))


async def build_envelopes(session: AsyncSession, ids: Sequence[int]) -> list[OutboundEnvelope]:
    """What the channels need to send the given outbox rows (plain columns: no ORM objects for a hot path)."""
    envelopes = []
    for (outbox_id, ticket_id, channel, recipient, p, message_id, text, html, attachments, author_kind,
         created_at, provider_id) in await repository.envelope_rows(session, ids):
        envelopes.append(OutboundEnvelope(
            outbox_id=outbox_id, message_id=message_id, ticket_id=ticket_id, channel=channel, recipient=recipient,
            ticket_number=format_ticket_number(ticket_id), text=text, html=html, subject=p.get("subject"),
            attachments=list(attachments or []), thread_key=p.get("thread_key"),
            in_reply_to=p.get("in_reply_to"), references=list(p.get("references", [])),
            quick_replies=p.get("quick_replies", []), language=p.get("language"),
            author_kind=author_kind.value, author_name=p.get("author_name"), created_at=created_at,
            delivered_parts=int(p.get("delivered_parts", 0)), provider_message_id=provider_id,
            template=p.get("template"),
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
    await repository.mark_sent(session, [(e.outbox_id, provider_id) for e, provider_id in sent], utcnow())
    for e, _ in sent:
        emit(session, Topic.OUTBOX_SENT, OutboxSent(outbox_id=e.outbox_id, ticket_id=e.ticket_id,
                                                    message_id=e.message_id))


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
    row = await repository.get(session, outbox_id, lock=True)
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
        emit(session, Topic.OUTBOX_FAILED,
             OutboxFailed(outbox_id=row.id, ticket_id=row.ticket_id, error=row.last_error))
    else:
        row.status = OutboxStatus.queued
        row.next_attempt_at = utcnow() + timedelta(seconds=backoff_seconds(row.attempts, settings))
    return row.status


async def retry(session: AsyncSession, outbox_id: int, actor: User | None, *, ticket_id: int | None = None
                ) -> OutboxMessage:
    """Put a failed message back in the queue (agent's retry button); with `ticket_id`, only one of that ticket."""
    row = await repository.get(session, outbox_id)
    if row is None:
        raise NotFoundError(f"outbox message {outbox_id} not found")
    if ticket_id is not None and row.ticket_id != ticket_id:
        raise NotFoundError(f"outbound message {outbox_id} not found on this ticket")
    if row.status != OutboxStatus.failed:
        raise ConflictError(f"only failed messages can be retried; this one is {row.status.value}",
                            status=row.status.value)
    row.status = OutboxStatus.queued
    row.attempts = 0
    row.next_attempt_at = utcnow()
    audit.record(session, actor, "outbox.retry", "outbox", row.id, last_error=row.last_error)
    emit(session, Topic.OUTBOX_QUEUED, OutboxQueued(channel=row.channel, ticket_id=row.ticket_id))
    return row


async def list_rows(
    session: AsyncSession, *, status: OutboxStatus | None, channel: str | None, limit: int, offset: int
) -> Sequence[OutboxMessage]:
    return await repository.list_rows(session, status=status, channel=channel, limit=limit, offset=offset)


async def sent_on_channel(session: AsyncSession, channel: str, *, after: int, recipient: str | None, limit: int
                          ) -> Sequence[OutboxMessage]:
    """Messages delivered on `channel` (to `recipient`, or anyone) after outbox id `after`, oldest first, with
    their messages: the replies a polling integration reads."""
    return await repository.sent_on_channel(session, channel, after=after, recipient=recipient, limit=limit)
