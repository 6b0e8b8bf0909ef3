"""Threading rules: continue, reopen within the window, new ticket otherwise; references and number hints."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import CoreSettings
from core.db.base import utcnow
from core.events import EventBus
from core.ingest.schemas import InboundMessage, SenderInfo
from core.ingest.service import IngestService
from core.models import OutboxMessage, Ticket, TicketStatus
from tests.conftest import keyword_engine, responses


def svc(sessionmaker: async_sessionmaker[AsyncSession], window_hours: float = 72) -> IngestService:
    engine = keyword_engine()
    return IngestService(sessionmaker, lambda: engine, EventBus(), CoreSettings(reopen_window_hours=window_hours),
                         responses=responses)


def msg(ext_id: str, sender: str = "a", text: str = "my tv is broken", channel: str = "rest",
        thread_key: str | None = "default", **kw: object) -> InboundMessage:
    key = sender if thread_key == "default" else thread_key
    return InboundMessage(channel=channel, external_message_id=ext_id, sender=SenderInfo(external_id=sender),
                          text=text, thread_key=key, **kw)  # type: ignore[arg-type]


async def set_status(sessionmaker: async_sessionmaker[AsyncSession], ticket_id: int, status: TicketStatus,
                     resolved_ago: timedelta | None = None) -> None:
    values: dict[str, object] = {"status": status}
    if resolved_ago is not None:
        values["resolved_at"] = utcnow() - resolved_ago
    async with sessionmaker() as s, s.begin():
        await s.execute(update(Ticket).where(Ticket.id == ticket_id).values(**values))


async def status_of(sessionmaker: async_sessionmaker[AsyncSession], ticket_id: int) -> TicketStatus:
    async with sessionmaker() as s:
        t = await s.get(Ticket, ticket_id)
        assert t is not None
        return t.status


async def test_open_ticket_of_same_thread_continues(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker)
    first = await s.ingest(msg("1"))
    second = await s.ingest(msg("2", text="still broken"))
    assert first.ticket_id == second.ticket_id


async def test_other_customer_or_other_thread_gets_new_ticket(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker)
    first = await s.ingest(msg("1", sender="a"))
    other_customer = await s.ingest(msg("2", sender="b"))
    other_thread = await s.ingest(msg("3", sender="a", thread_key="another-session"))
    assert len({first.ticket_id, other_customer.ticket_id, other_thread.ticket_id}) == 3


async def test_resolved_within_window_reopens(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker, window_hours=24)
    first = await s.ingest(msg("1"))
    await set_status(sessionmaker, first.ticket_id, TicketStatus.resolved, resolved_ago=timedelta(hours=2))
    again = await s.ingest(msg("2", text="it broke again"))
    assert again.ticket_id == first.ticket_id
    assert await status_of(sessionmaker, first.ticket_id) == TicketStatus.open


async def test_resolved_outside_window_starts_new_ticket(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker, window_hours=24)
    first = await s.ingest(msg("1"))
    await set_status(sessionmaker, first.ticket_id, TicketStatus.resolved, resolved_ago=timedelta(hours=30))
    again = await s.ingest(msg("2"))
    assert again.ticket_id != first.ticket_id
    assert await status_of(sessionmaker, first.ticket_id) == TicketStatus.resolved


async def test_closed_ticket_never_reopens(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    s = svc(sessionmaker)
    first = await s.ingest(msg("1"))
    await set_status(sessionmaker, first.ticket_id, TicketStatus.closed, resolved_ago=timedelta(minutes=1))
    again = await s.ingest(msg("2"))
    assert again.ticket_id != first.ticket_id


async def test_pending_ticket_goes_back_to_open_when_customer_answers(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    s = svc(sessionmaker)
    first = await s.ingest(msg("1"))
    await set_status(sessionmaker, first.ticket_id, TicketStatus.pending)
    await s.ingest(msg("2", text="here is the info you asked for"))
    assert await status_of(sessionmaker, first.ticket_id) == TicketStatus.open


async def test_email_references_and_ticket_number_scoped_to_sender(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    s = svc(sessionmaker)
    first = await s.ingest(msg("<m1@x>", sender="a@x", channel="email", thread_key=None, subject="TV"))
    # A reply by reference to the customer's own message continues the ticket.
    by_ref = await s.ingest(msg("<m2@x>", sender="a@x", channel="email", thread_key=None,
                                references=("<m1@x>",)))
    assert by_ref.ticket_id == first.ticket_id
    # A reply that references our outbound mail (its provider Message-ID) continues it too.
    async with sessionmaker() as sess, sess.begin():
        await sess.execute(update(OutboxMessage).where(OutboxMessage.ticket_id == first.ticket_id)
                           .values(provider_message_id="<out1@switchboard>"))
    by_outbound = await s.ingest(msg("<m3@x>", sender="a@x", channel="email", thread_key=None,
                                     references=("<out1@switchboard>",)))
    assert by_outbound.ticket_id == first.ticket_id
    # The ticket number in the subject threads for its own customer...
    by_number = await s.ingest(msg("<m4@x>", sender="a@x", channel="email", thread_key=None,
                                   ticket_number_hint=first.ticket_number))
    assert by_number.ticket_id == first.ticket_id
    # ...but another sender quoting it (a reply to a bulk mail) gets a ticket of their own.
    stranger = await s.ingest(msg("<m5@y>", sender="b@y", channel="email", thread_key=None,
                                  ticket_number_hint=first.ticket_number, references=("<m1@x>",)))
    assert stranger.ticket_id != first.ticket_id
    # Without any hint, a new email is a new ticket.
    fresh = await s.ingest(msg("<m6@x>", sender="a@x", channel="email", thread_key=None))
    assert fresh.ticket_id != first.ticket_id
