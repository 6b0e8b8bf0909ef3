"""Notices the customer did not ask for (contract reminders, order status changes): one place decides whether,
where, when and in which language they go out, and writes them through the outbox.

A notice goes to the customer's preferred channel when they have written from it, else to the channel they last
wrote from; it is added to their newest ticket there (the outbox needs a conversation to answer in, and that is
where the customer expects to hear from the operator). It is skipped, with the reason, for an erased customer,
a withdrawn consent or a customer with no channel; inside the customer's quiet hours the caller is told when to
try again.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.config import CoreSettings
from core.consent import repository
from core.consent.models import ConsentKind
from core.csat.schedule import QuietHours, parse_hhmm
from core.customers import repository as customers
from core.customers.models import Customer
from core.i18n import normalise
from core.jobs import service as tasks
from core.jobs.tasks import DueTask
from core.tickets import service as ticket_service
from core.tickets.models import AuthorKind

MAX_MERGE_HOPS = 5


class Skip(enum.StrEnum):
    """Why a notice was not sent (kept in the audit log)."""

    customer_gone = "customer_gone"
    erased = "erased"
    no_consent = "no_consent"
    no_channel = "no_channel"


@dataclass(frozen=True, slots=True)
class Outcome:
    sent: bool = False
    skipped: Skip | None = None
    retry_at: datetime | None = None  # quiet hours: try again then
    channel: str | None = None
    ticket_id: int | None = None
    language: str | None = None


def zone_of(customer: Customer, settings: CoreSettings) -> ZoneInfo:
    return ZoneInfo(customer.time_zone or settings.notice_time_zone)


def quiet_of(customer: Customer, settings: CoreSettings) -> QuietHours:
    if customer.quiet_from and customer.quiet_until:
        return QuietHours(parse_hhmm(customer.quiet_from), parse_hhmm(customer.quiet_until))
    return QuietHours(parse_hhmm(settings.notice_quiet_from), parse_hhmm(settings.notice_quiet_until))


async def _current(session: AsyncSession, customer_id: int) -> Customer | None:
    """The customer, or the one they were merged into."""
    customer = await customers.get_customer(session, customer_id)
    hops = 0
    while customer is not None and customer.merged_into_id is not None and hops < MAX_MERGE_HOPS:
        customer = await customers.get_customer(session, customer.merged_into_id)
        hops += 1
    return customer


async def deliver(session: AsyncSession, customer_id: int, text: Callable[[str], str], *, kind: ConsentKind,
                  settings: CoreSettings, now: datetime) -> Outcome:
    """Send `text(language)` to the customer now, unless they must not get it (skipped) or not now (retry_at)."""
    customer = await _current(session, customer_id)
    if customer is None:
        return Outcome(skipped=Skip.customer_gone)
    if customer.erased_at is not None:
        return Outcome(skipped=Skip.erased)
    consented = customer.consent_notices if kind == ConsentKind.notices else customer.consent_marketing
    if not consented:
        return Outcome(skipped=Skip.no_consent)
    release = quiet_of(customer, settings).release(now, zone_of(customer, settings))
    if release != now:
        return Outcome(retry_at=release)
    ticket = None
    if customer.preferred_channel:
        ticket = await repository.latest_ticket_on(session, customer.id, customer.preferred_channel)
    if ticket is None:
        ticket = await repository.latest_ticket_on(session, customer.id, None)
    if ticket is None or ticket.identity is None:
        return Outcome(skipped=Skip.no_channel)
    language = normalise(customer.language or ticket.language)
    await ticket_service.add_outbound(session, ticket, text=text(language), author_kind=AuthorKind.bot,
                                      language=language)
    await session.flush()
    return Outcome(sent=True, channel=ticket.channel, ticket_id=ticket.id, language=language)


async def deliver_due(session: AsyncSession, task: DueTask, customer_id: int, text: Callable[[str], str], *,
                      settings: CoreSettings, now: datetime, action: str, entity: str, entity_id: str,
                      **details: object) -> Outcome:
    """A due task's notice (a contract reminder, an order status): delivered now, or the same task again at the end
    of the customer's quiet hours, or skipped; sent and skipped are audited as `<action>_sent` /
    `<action>_skipped` (with the reason) on the entity, with `details`."""
    outcome = await deliver(session, customer_id, text, kind=ConsentKind.notices, settings=settings, now=now)
    if outcome.retry_at is not None:
        await tasks.reschedule(session, task.kind, task.key, outcome.retry_at, task.payload)
    elif outcome.skipped is not None:
        audit.record(session, None, f"{action}_skipped", entity, entity_id, **details, reason=outcome.skipped.value)
    else:
        audit.record(session, None, f"{action}_sent", entity, entity_id, **details, channel=outcome.channel,
                     ticket_id=outcome.ticket_id, language=outcome.language)
    return outcome
