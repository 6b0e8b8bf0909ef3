"""A ticket the bot answered is resolved by the bot once the customer has been quiet for the configured time.

Ingest moves the ticket's `bot.resolve` timer (core/jobs due tasks, one per ticket) on every bot answer; the
timer fires once, in the same transaction as its effect. It resolves only a ticket that is still with the bot and
whose newest message is still the answer that armed it; a ticket that was merged, deleted, escalated or written
to since is left alone (the task is done, nothing happens). `resolved_by_bot` marks what containment counts; a
customer writing again within the reopen window brings the ticket back to the bot (core/ingest/pipeline.py).
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.bot_lifecycle import repository
from core.events import TicketChanged, Topic, emit
from core.jobs.tasks import DueTask
from core.tickets import repository as ticket_repo
from core.tickets import service as ticket_service
from core.tickets.models import TicketStatus

log = logging.getLogger(__name__)

BOT_RESOLVE = "bot.resolve"


async def resolve_quiet_ticket(session: AsyncSession, task: DueTask) -> None:
    """The `bot.resolve` handler: resolve the ticket by the bot if nothing happened since the answer."""
    ticket_id = task.payload.get("ticket_id")
    reply_id = task.payload.get("reply_id")
    if not isinstance(ticket_id, int) or not isinstance(reply_id, int):
        log.warning("bot.resolve task without ticket and reply ids dropped", extra={"key": task.key})
        return
    ticket = await ticket_repo.get(session, ticket_id, lock=True)
    if ticket is None or ticket.merged_into_id is not None or ticket.status != TicketStatus.bot:
        return  # deleted, merged into another ticket, or no longer the bot's: nothing to resolve
    if await repository.latest_message_id(session, ticket.id) != reply_id:
        return  # the customer (or an agent) wrote after the answer that armed this timer
    ticket_service.transition(ticket, TicketStatus.resolved)
    ticket.resolved_by_bot = True
    audit.record(session, None, "ticket.resolved_by_bot", "ticket", ticket.id, reply_id=reply_id)
    emit(session, Topic.TICKETS, TicketChanged.of(ticket, "resolved_by_bot"))
    await session.flush()
