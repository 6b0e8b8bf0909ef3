"""Outages and mass problems (issue 15 item 3): one cause, many appeals.

- A supervisor (or an integration key with `incidents:write`; from a rising-problem alert, or not) opens an
  incident: the intents it answers, an area (a region prefix matched against the region of the customers' live
  contracts) and/or a list of customers, and its message (RU/EN). The affected customers are written down at once,
  the area's in one INSERT ... SELECT.
- A new appeal of an affected customer with one of those intents (core/ingest/pipeline.py, from a cached list of the
  open incidents: an ingest batch without such an intent makes no query) is answered with the incident's message
  and linked to it.
- The broadcast (if asked) and the fix are due tasks on the one scheduler: a page of customers (or linked appeals)
  per firing, `incident_notices_per_minute` at most, the cursor moved in the firing's own transaction - so each
  customer is told once across restarts and instances. Notices go through the one gate (core/consent/notices.py):
  consent, erasure, quiet hours (a customer inside theirs gets a due task of their own for its end), channel,
  language. Resolving tells every linked appeal on its ticket and resolves it (an answer to the customer's own
  question: no consent needed, an erased customer's is resolved silently), then tells the other affected customers
  who were told of the outage.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core import settings_cache
from core.audit import service as audit
from core.clock import SYSTEM_CLOCK, Clock
from core.config import CoreSettings
from core.consent.models import ConsentKind
from core.consent.notices import deliver
from core.errors import ConflictError, NotFoundError, ValidationFailedError
from core.events import TicketChanged, Topic, emit
from core.i18n import normalise, translator
from core.incidents import repository
from core.incidents.models import Incident, IncidentStatus
from core.incidents.schemas import IncidentCreate, IncidentDetail, IncidentRead, IncidentResolve, LinkedTicket
from core.jobs import service as tasks
from core.jobs.tasks import DueTask, TaskHandlers
from core.problems.models import ProblemAlert
from core.sla import service as sla
from core.tickets import service as ticket_service
from core.tickets.models import AuthorKind, TicketStatus, format_ticket_number
from core.users.models import User

log = logging.getLogger(__name__)
BROADCAST = "incident.broadcast"
NOTICE = "incident.notice"
# The phases of the due work, in order: the opening broadcast; on resolving, the linked appeals, then the others.
OPENED, LINKED, RESOLVED = "opened", "linked", "resolved"
SHOWN_LINKED = 200


# -- matching new appeals (the ingest pipeline) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenIncident:
    """What matching an appeal needs of an open incident (a detached copy, cached per process)."""

    id: int
    intents: frozenset[str]
    area: str | None
    message_en: str
    message_ru: str

    def message(self, language: str | None) -> str:
        return self.message_ru if normalise(language) == "ru" else self.message_en


async def open_snapshot(session: AsyncSession) -> tuple[OpenIncident, ...]:
    return tuple(OpenIncident(i.id, frozenset(i.intents), i.area, i.message_en, i.message_ru)
                 for i in await repository.open_incidents(session))


@dataclass(frozen=True, slots=True)
class Appeal:
    key: int  # the caller's handle (an index)
    customer_id: int
    intent: str


async def match(session: AsyncSession, incidents: Sequence[OpenIncident], appeals: Sequence[Appeal]
                ) -> dict[int, OpenIncident]:
    """appeal key -> the (oldest) open incident that answers it: its intent, and the customer listed or affected
    when it opened, or with a live contract in its area now. At most two indexed queries for the whole batch, none
    when no appeal has an incident's intent."""
    wanted = [a for a in appeals if any(a.intent in i.intents for i in incidents)]
    if not wanted:
        return {}
    relevant = [i for i in incidents if any(a.intent in i.intents for a in wanted)]
    customers = {a.customer_id for a in wanted}
    pairs = await repository.affected_pairs(session, [i.id for i in relevant], customers)
    regions = (await repository.regions_of(session, customers)
               if any(i.area is not None for i in relevant) else {})
    out: dict[int, OpenIncident] = {}
    for appeal in wanted:
        for incident in relevant:
            if appeal.intent not in incident.intents:
                continue
            if (incident.id, appeal.customer_id) in pairs or (incident.area is not None and any(
                    repository.region_in_area(r, incident.area) for r in regions.get(appeal.customer_id, ()))):
                out[appeal.key] = incident
                break
    return out


async def link(session: AsyncSession, links: Sequence[tuple[int, int]], now: datetime) -> None:
    """(incident id, ticket id) of the appeals an incident answered."""
    await repository.link(session, links, now)


# -- supervisor's actions --------------------------------------------------------------------------------------


def _by(actor: User | None, via_key: str | None) -> dict[str, Any]:
    return {"api_key": via_key} if via_key else {}


async def open_incident(session: AsyncSession, body: IncidentCreate, *, actor: User | None, via_key: str | None,
                        now: datetime) -> Incident:
    """Open an incident and write down whom it affects; its broadcast is armed when asked.

    Raises:
        ValidationFailedError: listed customers unknown or erased (422, the ids in `details`).
        NotFoundError: the alert does not exist.
    """
    listed = sorted(set(body.customers))
    usable = await repository.usable_customers(session, listed)
    unknown = [c for c in listed if c not in usable]
    if unknown:
        raise ValidationFailedError(f"{len(unknown)} listed customer(s) unknown or erased", reason="unknown_customers",
                                    customers=unknown[:100])
    if body.alert_id is not None and await session.get(ProblemAlert, body.alert_id) is None:
        raise NotFoundError(f"problem alert {body.alert_id} not found")
    incident = Incident(title=body.title, message_en=body.message_en, message_ru=body.message_ru,
                        intents=body.intents, area=body.area, status=IncidentStatus.open,
                        notify_affected=body.notify_affected, alert_id=body.alert_id,
                        opened_by_id=actor.id if actor else None, opened_via=via_key, opened_at=now,
                        affected_count=0)
    session.add(incident)
    await session.flush()
    await repository.add_listed(session, incident.id, listed)
    if body.area is not None:
        await repository.add_area(session, incident.id, body.area)
    incident.affected_count = await repository.count_affected(session, incident.id)
    if body.notify_affected:
        await tasks.schedule(session, BROADCAST, _key(incident.id, OPENED), now,
                             {"incident_id": incident.id, "phase": OPENED, "after": 0})
    audit.record(session, actor, "incident.open", "incident", incident.id, title=body.title, area=body.area,
                 intents=body.intents, listed=len(listed), affected=incident.affected_count,
                 notify=body.notify_affected, alert_id=body.alert_id, **_by(actor, via_key))
    settings_cache.changed(session, settings_cache.OPEN_INCIDENTS)
    await session.flush()
    return incident


async def resolve(session: AsyncSession, incident_id: int, body: IncidentResolve, *, actor: User | None,
                  via_key: str | None, now: datetime) -> Incident:
    """Resolve it: new appeals are no longer answered with it; the linked appeals are told and resolved, then the
    affected customers who were told of it hear of the fix (due tasks, paged and rate-limited).

    Raises:
        NotFoundError, ConflictError (resolved already).
    """
    incident = await repository.get(session, incident_id, lock=True)
    if incident is None:
        raise NotFoundError(f"incident {incident_id} not found")
    if incident.status == IncidentStatus.resolved:
        raise ConflictError(f"incident {incident_id} is resolved already", reason="already_resolved")
    incident.status = IncidentStatus.resolved
    incident.resolved_at = now
    incident.resolved_by_id = actor.id if actor else None
    incident.resolution_en = (body.resolution_en or "").strip() or None
    incident.resolution_ru = (body.resolution_ru or "").strip() or None
    await tasks.schedule(session, BROADCAST, _key(incident.id, LINKED), now,
                         {"incident_id": incident.id, "phase": LINKED, "after": 0})
    audit.record(session, actor, "incident.resolve", "incident", incident.id, **_by(actor, via_key))
    settings_cache.changed(session, settings_cache.OPEN_INCIDENTS)
    await session.flush()
    return incident


async def get(session: AsyncSession, incident_id: int) -> Incident:
    incident = await repository.get(session, incident_id)
    if incident is None:
        raise NotFoundError(f"incident {incident_id} not found")
    return incident


async def detail(session: AsyncSession, incident_id: int) -> IncidentDetail:
    incident = await get(session, incident_id)
    rows = await repository.newest_linked(session, incident_id, SHOWN_LINKED)
    return IncidentDetail(
        **IncidentRead.model_validate(incident).model_dump(),
        linked_count=await repository.count_linked(session, incident_id),
        tickets=[LinkedTicket(ticket_id=t, number=format_ticket_number(t), status=str(s), customer_id=c, linked_at=at)
                 for t, s, c, at in rows])


async def page(session: AsyncSession, status: IncidentStatus | None, before: int | None, limit: int
               ) -> Sequence[Incident]:
    return await repository.page(session, status, before, limit)


# -- the broadcast and the fix: due tasks ------------------------------------------------------------------------


def _key(incident_id: int, phase: str) -> str:
    return f"incident:{incident_id}:{phase}"


def resolution_text(incident: Incident, language: str | None) -> str:
    own = incident.resolution_ru if normalise(language) == "ru" else incident.resolution_en
    return own or translator(language)("incident.resolved", title=incident.title)


def opening_text(incident: Incident, language: str | None) -> str:
    return incident.message_ru if normalise(language) == "ru" else incident.message_en


@dataclass
class IncidentNotices:
    """The `incident.broadcast` (a page per firing) and `incident.notice` (one customer held back by their quiet
    hours) handlers; `register` adds them to the app's task handlers."""

    settings: CoreSettings
    clock: Clock = field(default=SYSTEM_CLOCK)

    @property
    def page_size(self) -> int:
        return max(1, int(self.settings.incident_notices_per_minute * self.settings.incident_page_seconds / 60))

    def register(self, handlers: TaskHandlers) -> None:
        handlers.register(BROADCAST, self.broadcast)
        handlers.register(NOTICE, self.notice)

    async def broadcast(self, session: AsyncSession, task: DueTask) -> None:
        incident_id, phase, after = (task.payload.get(k) for k in ("incident_id", "phase", "after"))
        if not isinstance(incident_id, int) or phase not in (OPENED, LINKED, RESOLVED) or not isinstance(after, int):
            log.warning("incident.broadcast task without an incident dropped", extra={"key": task.key})
            return
        incident = await repository.get(session, incident_id)
        if incident is None:
            return
        if phase == OPENED and incident.status != IncidentStatus.open:
            return  # resolved before everyone heard of it: the rest hear nothing of an outage that is over
        now = self.clock.now()
        tally: dict[str, int] = {}
        if phase == LINKED:
            tickets = await repository.linked_page(session, incident_id, after, self.page_size)
            for ticket in tickets:
                outcome = await self._close_linked(session, incident, ticket)
                tally[outcome] = tally.get(outcome, 0) + 1
            last, full = (tickets[-1].id if tickets else after), len(tickets) == self.page_size
        else:
            customers = await repository.affected_page(session, incident_id, after, self.page_size)
            told_on_ticket = (await repository.linked_customers(session, incident_id, customers)
                              if phase == RESOLVED else set())
            for customer_id in customers:
                if customer_id in told_on_ticket:
                    outcome = "linked"
                else:
                    outcome = await self._tell(session, incident, customer_id, phase, now)
                tally[outcome] = tally.get(outcome, 0) + 1
            last, full = (customers[-1] if customers else after), len(customers) == self.page_size
        if tally:
            audit.record(session, None, "incident.broadcast", "incident", incident_id, phase=phase, **tally)
        if full:  # more to come: the same task, a page later
            await tasks.reschedule(session, BROADCAST, task.key,
                                   now + timedelta(seconds=self.settings.incident_page_seconds),
                                   {**task.payload, "after": last})
        elif phase == LINKED and incident.notify_affected:
            await tasks.schedule(session, BROADCAST, _key(incident_id, RESOLVED),
                                 now + timedelta(seconds=self.settings.incident_page_seconds),
                                 {"incident_id": incident_id, "phase": RESOLVED, "after": 0})

    async def _tell(self, session: AsyncSession, incident: Incident, customer_id: int, phase: str,
                    now: datetime) -> str:
        text = (lambda lang: opening_text(incident, lang)) if phase == OPENED else (
            lambda lang: resolution_text(incident, lang))
        outcome = await deliver(session, customer_id, text, kind=ConsentKind.notices, settings=self.settings, now=now)
        if outcome.retry_at is not None:
            await tasks.schedule(session, NOTICE, f"incident:{incident.id}:{phase}:{customer_id}", outcome.retry_at,
                                 {"incident_id": incident.id, "phase": phase, "customer_id": customer_id})
            return "held_quiet_hours"
        return "sent" if outcome.skipped is None else outcome.skipped.value

    async def _close_linked(self, session: AsyncSession, incident: Incident, ticket: Any) -> str:
        if ticket.status in (TicketStatus.resolved, TicketStatus.closed):
            return "already_resolved"
        erased = ticket.customer is None or ticket.customer.erased_at is not None
        if not erased and ticket.identity is not None:
            await ticket_service.add_outbound(session, ticket, text=resolution_text(incident, ticket.language),
                                              author_kind=AuthorKind.bot, language=ticket.language, reply_refs=[])
        ticket_service.transition(ticket, TicketStatus.resolved)
        ticket.resolved_by_bot = True
        audit.record(session, None, "ticket.resolved_by_incident", "ticket", ticket.id, incident_id=incident.id)
        emit(session, Topic.TICKETS, TicketChanged.of(ticket, "resolved_by_incident"))
        await sla.track(session, ticket)
        return "resolved" if not erased else "resolved_erased"

    async def notice(self, session: AsyncSession, task: DueTask) -> None:
        incident_id, phase, customer_id = (task.payload.get(k) for k in ("incident_id", "phase", "customer_id"))
        if not isinstance(incident_id, int) or not isinstance(customer_id, int) or phase not in (OPENED, RESOLVED):
            log.warning("incident.notice task without a customer dropped", extra={"key": task.key})
            return
        incident = await repository.get(session, incident_id)
        if incident is None or (phase == OPENED and incident.status != IncidentStatus.open):
            return
        now = self.clock.now()
        text = (lambda lang: opening_text(incident, lang)) if phase == OPENED else (
            lambda lang: resolution_text(incident, lang))
        outcome = await deliver(session, customer_id, text, kind=ConsentKind.notices, settings=self.settings, now=now)
        if outcome.retry_at is not None:
            await tasks.reschedule(session, NOTICE, task.key, outcome.retry_at, task.payload)
            return
        audit.record(session, None, "incident.broadcast", "incident", incident_id, phase=phase,
                     **{"sent" if outcome.skipped is None else outcome.skipped.value: 1})
