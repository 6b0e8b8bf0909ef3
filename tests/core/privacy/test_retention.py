"""The retention policy: closed tickets older than the configured age are anonymised by a job on the injectable
clock; newer or still open tickets, and the customer, are left as they were."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.attachments.backends import LocalBackend
from core.attachments.store import AttachmentStore
from core.audit.models import AuditEntry
from core.clock import ManualClock
from core.config import CoreSettings
from core.customers.models import Customer
from core.events import EventBus
from core.ingest.schemas import InboundMessage, SenderInfo
from core.ingest.service import IngestService
from core.jobs.job import JobContext, JobHealth
from core.privacy.service import retention_job
from core.tickets.models import Message, Note, Ticket, TicketStatus
from tests.conftest import keyword_engine, responses


async def test_old_closed_tickets_are_anonymised_once(sessionmaker: async_sessionmaker[AsyncSession],
                                                      tmp_path: Path) -> None:
    clock = ManualClock()
    files = LocalBackend(AttachmentStore(tmp_path))
    engine = keyword_engine()
    ingest = IngestService(sessionmaker, lambda: engine, EventBus(), CoreSettings(), responses=responses)
    stored = await files.save("old-bill.pdf", "application/pdf", b"%PDF old secret", namespace="email")
    results = {}
    for key, sender in (("old", "a"), ("recent", "b"), ("open", "c")):
        results[key] = await ingest.ingest(InboundMessage(
            channel="rest", external_message_id=key, sender=SenderInfo(external_id=sender, name=f"Name {sender}"),
            text=f"secret words {key}", thread_key=sender,
            attachments=(stored,) if key == "old" else ()))
    now = clock.now()
    closed_at = {"old": now - timedelta(days=400), "recent": now - timedelta(days=10)}
    async with sessionmaker.begin() as session:
        for key, when in closed_at.items():
            await session.execute(update(Ticket).where(Ticket.id == results[key].ticket_id)
                                  .values(status=TicketStatus.closed, closed_at=when, subject=f"subject {key}"))
        await session.execute(update(Ticket).where(Ticket.id == results["open"].ticket_id)
                              .values(created_at=now - timedelta(days=500)))
        session.add(Note(ticket_id=results["old"].ticket_id, text="a note about the old one"))

    job = retention_job(sessionmaker, files, clock, older_than=timedelta(days=365), interval_seconds=3600, batch=1)
    assert job.tick is not None
    ctx = JobContext("retention", clock, JobHealth("retention"), lambda: None)
    assert await job.tick(ctx) is True  # a full batch (of one): more may be waiting
    assert await job.tick(ctx) is False  # nothing else is old enough
    async with sessionmaker() as session:
        tickets = {t.id: t for t in await session.scalars(select(Ticket))}
        texts = {m.ticket_id: m.text for m in await session.scalars(select(Message).where(
            Message.direction == "inbound"))}
        notes = list(await session.scalars(select(Note.text)))
        customers = list(await session.scalars(select(Customer.name).order_by(Customer.id)))
        audit = list(await session.scalars(select(AuditEntry.action).where(AuditEntry.action == "ticket.retention")))
    old, recent, still_open = (tickets[results[k].ticket_id] for k in ("old", "recent", "open"))
    assert old.subject == "" and old.anonymised_at is not None and texts[old.id] == ""
    assert notes == [""]
    assert recent.subject == "subject recent" and recent.anonymised_at is None
    assert texts[recent.id] == "secret words recent"
    assert still_open.anonymised_at is None and texts[still_open.id] == "secret words open"
    assert customers == ["Name a", "Name b", "Name c"]  # the customers stay; only old conversations go
    assert audit == ["ticket.retention"]
    assert not (tmp_path / "attachments" / stored.storage_key).exists() and not any(
        p.is_file() for p in (tmp_path / "attachments").rglob("*") if "old-bill" in p.name)

    # A year later the recent one is old enough too.
    clock.advance(timedelta(days=365).total_seconds())
    assert await job.tick(ctx) is True
    assert await job.tick(ctx) is False
    async with sessionmaker() as session:
        assert (await session.get(Ticket, recent.id)).anonymised_at is not None  # type: ignore[union-attr]
    await files.close()
