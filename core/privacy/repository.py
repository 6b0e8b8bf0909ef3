"""The statements that remove personal data from a set of tickets (erasure of a customer, retention of old closed
tickets) and from everything about one customer. Rows stay, for the statistics; only what people wrote and who
they are goes."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core.audit.models import AuditEntry
from core.consent.models import ConsentChange
from core.csat.models import CsatSurvey
from core.customers.models import ChannelIdentity, Customer, CustomerMerge
from core.nlu_admin.models import NluExample, NluSuggestion
from core.orders.models import Order, OrderStatusChange
from core.outbox.models import OutboxMessage
from core.quarantine.models import QuarantinedPayload
from core.search.indexes import SQLITE_FTS
from core.tickets.models import Message, Note, Ticket, TicketStatus

# Message.extra keys kept when a message is blanked: how it was handled, never what anyone wrote or whom it went
# to (to/cc, bounce recipients, refused file names, quoted history, Message-IDs and dates are all dropped).
KEPT_EXTRA_KEYS = ("action", "mailbox", "synthetic_message_id", "auto_reply")
ERASED_RECIPIENT = "erased"


def _kept_extra(extra: object) -> dict[str, Any]:
    if not isinstance(extra, dict):
        return {}
    return {k: v for k, v in extra.items() if k in KEPT_EXTRA_KEYS and not isinstance(v, dict | list)}


async def attachment_keys(session: AsyncSession, ticket_ids: Sequence[int]) -> set[str]:
    """The storage keys the messages of these tickets refer to."""
    keys: set[str] = set()
    for chunk in _chunks(ticket_ids):
        rows = await session.scalars(select(Message.attachments).where(Message.ticket_id.in_(chunk)))
        for items in rows:
            if isinstance(items, list):
                keys |= {str(a["storage_key"]) for a in items if isinstance(a, dict) and a.get("storage_key")}
    return keys


def _chunks(ids: Sequence[int], size: int = 500) -> list[list[int]]:
    ordered = list(ids)
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


async def blank_tickets(session: AsyncSession, ticket_ids: Sequence[int]) -> None:
    """Remove what people wrote from these tickets: subjects and thread keys; message texts, markup,
    attachments, entities, external ids and personal `extra` keys; notes; the outbox rows' recipients, payloads
    and errors; survey comments; NLU suggestions made from the messages (and the training examples accepted from
    them). The PostgreSQL tsvector columns follow the texts through their triggers, SQLite's FTS5 tables through
    theirs (see `purge_search_index`)."""
    for chunk in _chunks(ticket_ids):
        await session.execute(update(Ticket).where(Ticket.id.in_(chunk)).values(subject="", thread_key=None)
                              .execution_options(synchronize_session=False))
        message_ids = select(Message.id).where(Message.ticket_id.in_(chunk))
        made = (await session.execute(select(NluSuggestion.text, NluSuggestion.created_at)
                                      .where(NluSuggestion.message_id.in_(message_ids)))).all()
        suggestions = [row[0] for row in made]
        if suggestions:
            await session.execute(delete(NluExample).where(NluExample.source == "suggestion",
                                                           NluExample.text.in_(suggestions)))
            await _scrub_example_audit(session, set(suggestions), since=min(row[1] for row in made))
        await session.execute(delete(NluSuggestion).where(NluSuggestion.message_id.in_(message_ids)))
        # Only the e-mails (and the few others) that carry extra keys are rewritten one by one.
        rows = await session.execute(select(Message.id, Message.extra).where(Message.ticket_id.in_(chunk)))
        for message_id, extra in rows.all():
            kept = _kept_extra(extra)
            if kept != extra:
                await session.execute(update(Message).where(Message.id == message_id).values(extra=kept)
                                      .execution_options(synchronize_session=False))
        await session.execute(
            update(Message).where(Message.ticket_id.in_(chunk))
            .values(text="", html=None, attachments=[], entities=[], external_message_id=None)
            .execution_options(synchronize_session=False))
        await session.execute(update(Note).where(Note.ticket_id.in_(chunk)).values(text="")
                              .execution_options(synchronize_session=False))
        await session.execute(update(OutboxMessage).where(OutboxMessage.ticket_id.in_(chunk))
                              .values(recipient=ERASED_RECIPIENT, payload={}, last_error=None,
                                      provider_message_id=None)
                              .execution_options(synchronize_session=False))
        await session.execute(update(CsatSurvey).where(CsatSurvey.ticket_id.in_(chunk)).values(comment=None)
                              .execution_options(synchronize_session=False))


async def _scrub_example_audit(session: AsyncSession, texts: set[str], since: datetime) -> None:
    """The audit entries of training examples keep the example's text: those made from these texts lose it. An
    example from a suggestion is added after the suggestion was made: the audit log's time index bounds the read."""
    rows = await session.execute(select(AuditEntry.id, AuditEntry.data).where(
        AuditEntry.created_at >= since, AuditEntry.action.in_(("nlu.example.add", "nlu.example.delete"))))
    for entry_id, data in rows.all():
        if isinstance(data, dict) and data.get("text") in texts:
            await session.execute(update(AuditEntry).where(AuditEntry.id == entry_id)
                                  .values(data={**data, "text": ""}).execution_options(synchronize_session=False))


async def secure_delete(session: AsyncSession, enabled: bool | None) -> bool | None:
    """SQLite: while on, removed and rewritten content is overwritten with zeros in the file (not just unlinked
    into free pages where a reader of the file would still find it). Per connection, and on by default in some
    builds (Debian's), not in others: set for an erasure, then given back its value. Returns the value before
    (None elsewhere, and `enabled=None` changes nothing)."""
    if session.get_bind().dialect.name != "sqlite" or enabled is None:
        return None
    before = bool(await session.scalar(text("PRAGMA secure_delete")))
    await session.execute(text(f"PRAGMA secure_delete = {1 if enabled else 0}"))
    return before


async def checkpoint(session: AsyncSession) -> None:
    """SQLite, after an erasure's commit: copy the write-ahead log into the database and empty it, so the log's
    older frames (which hold the rows as they were) are gone too. Best effort: a busy reader leaves the log as it
    is until the next checkpoint."""
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


async def purge_search_index(session: AsyncSession) -> None:
    """SQLite: FTS5 keeps a deleted row's words in its older index segments until they are merged; 'optimize'
    merges them, so the erased words are gone from the file, not only from the results. PostgreSQL's tsvector
    columns are rewritten with the row (the old row versions go at the next VACUUM, as every update's do)."""
    if session.get_bind().dialect.name != "sqlite":
        return
    for fts in SQLITE_FTS:
        await session.execute(text(f"INSERT INTO {fts}({fts}) VALUES ('optimize')"))  # noqa: S608 - constants


async def merged_family(session: AsyncSession, customer_id: int) -> list[Customer]:
    """The customer and every customer merged into it (directly or through others), with identities."""
    found: dict[int, Customer] = {}
    frontier = [customer_id]
    while frontier:
        rows = (await session.scalars(
            select(Customer).where(or_(Customer.id.in_(frontier), Customer.merged_into_id.in_(frontier)))
            .options(selectinload(Customer.identities)))).all()
        frontier = [c.id for c in rows if c.id not in found]
        found.update({c.id: c for c in rows})
    return list(found.values())


async def ticket_ids_of(session: AsyncSession, customer_ids: Collection[int]) -> list[int]:
    return list(await session.scalars(select(Ticket.id).where(Ticket.customer_id.in_(list(customer_ids)))))


async def blank_customer_rows(session: AsyncSession, customer_ids: Collection[int]) -> None:
    """Consent-log notes, order descriptions and status notes, the contact values merges recorded."""
    ids = list(customer_ids)
    await session.execute(update(ConsentChange).where(ConsentChange.customer_id.in_(ids)).values(note="")
                          .execution_options(synchronize_session=False))
    order_ids = select(Order.id).where(Order.customer_id.in_(ids))
    await session.execute(update(OrderStatusChange).where(OrderStatusChange.order_id.in_(order_ids)).values(note="")
                          .execution_options(synchronize_session=False))
    await session.execute(update(Order).where(Order.customer_id.in_(ids)).values(description="")
                          .execution_options(synchronize_session=False))
    await session.execute(update(CustomerMerge).where(or_(CustomerMerge.source_id.in_(ids),
                                                          CustomerMerge.target_id.in_(ids))).values(filled={})
                          .execution_options(synchronize_session=False))


async def drop_quarantined(session: AsyncSession, needles: Collection[str]) -> int:
    """Delete quarantined payloads (channel input that could not be read) that name the customer: their
    addresses, phone numbers or external ids. A scan of the quarantine, which stays small (it holds failures)."""
    wanted = [n for n in needles if n and len(n) >= 5]
    if not wanted:
        return 0
    result = await session.execute(delete(QuarantinedPayload).where(
        or_(*(func.lower(QuarantinedPayload.payload).contains(n.lower(), autoescape=True) for n in wanted))))
    return int(getattr(result, "rowcount", 0) or 0)


def old_closed(cutoff: datetime, limit: int) -> Select[Any]:
    """Closed tickets (closed before `cutoff`) not anonymised yet, oldest first: the retention policy's work."""
    return (select(Ticket.id).where(Ticket.status == TicketStatus.closed, Ticket.anonymised_at.is_(None),
                                    Ticket.closed_at < cutoff)
            .order_by(Ticket.closed_at).limit(limit))


async def due_for_retention(session: AsyncSession, cutoff: datetime, limit: int) -> list[int]:
    return list(await session.scalars(old_closed(cutoff, limit)))


async def mark_anonymised(session: AsyncSession, ticket_ids: Sequence[int], now: datetime) -> None:
    for chunk in _chunks(ticket_ids):
        await session.execute(update(Ticket).where(Ticket.id.in_(chunk)).values(anonymised_at=now)
                              .execution_options(synchronize_session=False))


async def identities_of(session: AsyncSession, customer_ids: Collection[int]) -> Sequence[ChannelIdentity]:
    return (await session.scalars(select(ChannelIdentity).where(
        ChannelIdentity.customer_id.in_(list(customer_ids))))).all()
