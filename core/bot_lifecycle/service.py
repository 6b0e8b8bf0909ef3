"""A ticket the bot answered is resolved by the bot once the customer has been quiet for the configured time.

Every inbound message and bot answer stamps the ticket's `updated_at`; a leased job (core/bot_lifecycle/job.py)
sweeps the tickets still with the bot whose last activity is older than the quiet time and resolves them, each
in the same transaction as its check, so a ticket is resolved once however many instances sweep. Ingest pays
nothing for it beyond the index entry of a ticket with the bot (no timer row per answer). A ticket that was
merged, escalated or written to since is not with the bot or not quiet, so it is left alone. `resolved_by_bot`
marks what containment counts; a customer writing again within the reopen window brings the ticket back to the
bot (core/ingest/pipeline.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.bot_lifecycle import repository
from core.events import TicketChanged, Topic, emit
from core.tickets import service as ticket_service
from core.tickets.models import TicketStatus


async def resolve_quiet_tickets(session: AsyncSession, now: datetime, quiet: timedelta, limit: int = 500) -> int:
    """Resolve (by the bot) up to `limit` tickets with the bot that have been quiet for `quiet`; how many."""
    tickets = await repository.quiet_bot_tickets(session, now - quiet, limit)
    for ticket in tickets:
        quiet_since = ticket.updated_at
        ticket_service.transition(ticket, TicketStatus.resolved)
        ticket.resolved_by_bot = True
        audit.record(session, None, "ticket.resolved_by_bot", "ticket", ticket.id,
                     quiet_since=quiet_since.isoformat() if quiet_since else None)
        emit(session, Topic.TICKETS, TicketChanged.of(ticket, "resolved_by_bot"))
    await session.flush()
    return len(tickets)
