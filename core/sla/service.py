"""SLA rules: policies (admin), matching, and each ticket's clock as the ticket moves (issue 11 scope 3).

A ticket's clock starts when it goes to humans (status open) under the first enabled policy that matches its queue,
priority, channel and intent. Its warning and due moments are counted in the policy's calendar once, when they are
set, and stored as absolute times; the one timer per ticket (due task kind "sla", key "ticket:<id>") is armed for
the earliest moment not yet notified. While the ticket is `pending` the clock is paused; on resume every running
moment moves by the business time paused. The hooks (`track`, `after_ingest`) never commit.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core import settings_cache
from core.audit import service as audit
from core.calendars import repository as calendar_repo
from core.calendars.business_time import BusinessCalendar, add_business_time, business_time_between
from core.calendars.service import business_calendar
from core.db.base import utcnow
from core.errors import ConflictError, NotFoundError, ValidationFailedError
from core.jobs import service as jobs
from core.settings_cache import CachedSetting
from core.sla import repository
from core.sla.models import SlaPolicy, TicketSla
from core.sla.schemas import SlaActions, SlaPolicyCreate, SlaPolicyRead, SlaPolicyUpdate, SlaRead, SlaStateName
from core.tickets.models import Ticket, TicketStatus
from core.users.models import User

TASK_KIND = "sla"
TARGETS = ("first_response", "next_response", "resolution")
LEVELS = ("warning", "breach")
MAX_MINUTES = 366 * 24 * 60  # a year of business time


def task_key(ticket_id: int) -> str:
    return f"ticket:{ticket_id}"


def ticket_id_of_key(key: str) -> int | None:
    prefix, _, rest = key.partition(":")
    return int(rest) if prefix == "ticket" and rest.isascii() and rest.isdigit() else None


# -- policies (admin) -------------------------------------------------------------------------------------------


async def list_policies(session: AsyncSession) -> Sequence[SlaPolicy]:
    return await repository.list_policies(session)


async def get_policy(session: AsyncSession, policy_id: int) -> SlaPolicy:
    policy = await repository.get_policy(session, policy_id)
    if policy is None:
        raise NotFoundError(f"SLA policy {policy_id} not found")
    return policy


async def _slugs(session: AsyncSession) -> dict[int, str]:
    return {t.id: t.slug for t in await repository.teams(session)}


def _actions_read(raw: dict[str, Any], slugs: dict[int, str]) -> SlaActions:
    queue_id = raw.get("move_to_queue_id")
    return SlaActions(raise_priority=bool(raw.get("raise_priority")), unassign=bool(raw.get("unassign")),
                      move_to_queue=slugs.get(queue_id) if isinstance(queue_id, int) else None)


def policy_read(policy: SlaPolicy, slugs: dict[int, str]) -> SlaPolicyRead:
    return SlaPolicyRead(
        id=policy.id, name=policy.name, position=policy.position, enabled=policy.enabled,
        queues=[slugs[i] for i in policy.queue_ids if i in slugs], priorities=list(policy.priorities),
        channels=list(policy.channels), intents=list(policy.intents), calendar_id=policy.calendar_id,
        first_response_minutes=policy.first_response_minutes, next_response_minutes=policy.next_response_minutes,
        resolution_minutes=policy.resolution_minutes, warning_share=policy.warning_share,
        on_warning=_actions_read(policy.warning_actions, slugs), on_breach=_actions_read(policy.breach_actions, slugs),
        created_at=policy.created_at, updated_at=policy.updated_at)


async def policies_read(session: AsyncSession, policies: Sequence[SlaPolicy]) -> list[SlaPolicyRead]:
    slugs = await _slugs(session)
    return [policy_read(p, slugs) for p in policies]


def _check_minutes(name: str, value: int | None) -> None:
    if value is not None and not 0 < value <= MAX_MINUTES:
        raise ValidationFailedError(f"{name} must be a positive number of minutes (at most {MAX_MINUTES})",
                                    field=name, value=value)


def _check_share(value: float) -> None:
    if not (math.isfinite(value) and 0 < value < 1):
        raise ValidationFailedError("warning_share must be strictly between 0 and 1 (e.g. 0.8: warn at 80 % of a "
                                    "target)", field="warning_share", value=value)


async def _check_calendar(session: AsyncSession, calendar_id: int) -> None:
    if not await calendar_repo.exists(session, calendar_id):
        raise ValidationFailedError(f"calendar {calendar_id} does not exist", field="calendar_id",
                                    value=calendar_id)


def _queue_ids(slugs: Sequence[str], by_slug: dict[str, int], where: str) -> list[int]:
    unknown = [s for s in slugs if s not in by_slug]
    if unknown:
        raise ValidationFailedError(f"unknown queue(s) in {where}: {', '.join(unknown)}", field=where,
                                    unknown=unknown)
    return sorted({by_slug[s] for s in slugs})


def _actions_json(actions: SlaActions, by_slug: dict[str, int], where: str) -> dict[str, Any]:
    queue_id = _queue_ids([actions.move_to_queue], by_slug, where)[0] if actions.move_to_queue else None
    return {"raise_priority": actions.raise_priority, "move_to_queue_id": queue_id, "unassign": actions.unassign}


def _clean(values: Sequence[str]) -> list[str]:
    return sorted({v.strip() for v in values if v.strip()})


async def _apply_fields(session: AsyncSession, policy: SlaPolicy, body: SlaPolicyCreate | SlaPolicyUpdate) -> None:
    given = body.model_fields_set | ({"warning_share"} if isinstance(body, SlaPolicyCreate) else set())
    by_slug = {slug: team_id for team_id, slug in (await _slugs(session)).items()}
    if body.name is not None and body.name != policy.name:
        other = await repository.get_policy_by_name(session, body.name)
        if other is not None and other.id != policy.id:
            raise ConflictError(f"an SLA policy named {body.name!r} already exists", policy_id=other.id)
        policy.name = body.name
    for name in ("first_response_minutes", "next_response_minutes", "resolution_minutes"):
        if name in given:
            value = getattr(body, name)
            _check_minutes(name, value)
            setattr(policy, name, value)
    if "warning_share" in given:
        if body.warning_share is None:
            raise ValidationFailedError("warning_share must be strictly between 0 and 1", field="warning_share")
        _check_share(body.warning_share)
        policy.warning_share = body.warning_share
    if body.calendar_id is not None:
        await _check_calendar(session, body.calendar_id)
        policy.calendar_id = body.calendar_id
    if body.position is not None:
        policy.position = body.position
    if body.enabled is not None:
        policy.enabled = body.enabled
    if body.queues is not None:
        policy.queue_ids = _queue_ids(body.queues, by_slug, "queues")
    if body.priorities is not None:
        policy.priorities = sorted({p.value for p in body.priorities})
    if body.channels is not None:
        policy.channels = _clean(body.channels)
    if body.intents is not None:
        policy.intents = _clean(body.intents)
    if body.on_warning is not None:
        policy.warning_actions = _actions_json(body.on_warning, by_slug, "on_warning.move_to_queue")
    if body.on_breach is not None:
        policy.breach_actions = _actions_json(body.on_breach, by_slug, "on_breach.move_to_queue")
    if not any((policy.first_response_minutes, policy.next_response_minutes, policy.resolution_minutes)):
        raise ValidationFailedError("an SLA policy needs at least one target (first response, next response or "
                                    "resolution minutes)")


async def create_policy(session: AsyncSession, body: SlaPolicyCreate, actor: User | None) -> SlaPolicy:
    now = utcnow()
    policy = SlaPolicy(name="", position=100, enabled=True, queue_ids=[], priorities=[], channels=[], intents=[],
                       warning_share=0.8, warning_actions={}, breach_actions={}, created_at=now, updated_at=now)
    await _apply_fields(session, policy, body)
    session.add(policy)
    await session.flush()
    settings_cache.changed(session, settings_cache.SLA_POLICIES)
    audit.record(session, actor, "sla_policy.create", "sla_policy", policy.id, name=policy.name)
    return policy


async def update_policy(session: AsyncSession, policy_id: int, body: SlaPolicyUpdate, actor: User) -> SlaPolicy:
    """Change the fields given. Tickets already running keep the moments they were given (a policy edit applies to
    clocks started, re-matched or resumed after it)."""
    policy = await get_policy(session, policy_id)
    await _apply_fields(session, policy, body)
    policy.updated_at = utcnow()
    await session.flush()
    settings_cache.changed(session, settings_cache.SLA_POLICIES)
    audit.record(session, actor, "sla_policy.update", "sla_policy", policy.id, name=policy.name,
                 changed=sorted(body.model_fields_set))
    return policy


async def delete_policy(session: AsyncSession, policy_id: int, actor: User) -> None:
    """The policy goes with its tickets' clocks; their pending timers are cancelled (one that fires meanwhile
    finds no clock and is dropped)."""
    policy = await get_policy(session, policy_id)
    tickets = await repository.drop_policy_clocks(session, policy.id, TASK_KIND)
    await session.delete(policy)
    await session.flush()
    settings_cache.changed(session, settings_cache.SLA_POLICIES)
    audit.record(session, actor, "sla_policy.delete", "sla_policy", policy_id, name=policy.name, tickets=tickets)


# -- a ticket's clock -------------------------------------------------------------------------------------------


def matches(policy: SlaPolicy, ticket: Ticket) -> bool:
    return (policy.enabled
            and (not policy.queue_ids or ticket.team_id in policy.queue_ids)
            and (not policy.priorities or ticket.priority.value in policy.priorities)
            and (not policy.channels or ticket.channel in policy.channels)
            and (not policy.intents or ticket.intent in policy.intents))


async def detached_policies(session: AsyncSession) -> Sequence[SlaPolicy]:
    """Every policy in match order, detached from the session: what a process keeps to match tickets of later
    batches (core/settings_cache; nothing writes to these copies, and no rollback of this session expires them)."""
    policies = await repository.list_policies(session)
    for policy in policies:
        session.expunge(policy)
    return policies


@dataclass
class _Loader:
    """Policies and calendars read once per hook call (a batch of ingested messages shares them); the policies
    from the process's copy when one is given (ingest)."""

    session: AsyncSession
    cached: CachedSetting[Sequence[SlaPolicy]] | None = None
    _policies: Sequence[SlaPolicy] | None = None
    _calendars: dict[int, BusinessCalendar] = field(default_factory=dict)

    async def policies(self) -> Sequence[SlaPolicy]:
        if self._policies is None:
            self._policies = await (self.cached.get(self.session) if self.cached is not None
                                    else repository.list_policies(self.session))
        return self._policies

    async def policy(self, policy_id: int) -> SlaPolicy | None:
        for p in self._policies or ():
            if p.id == policy_id:
                return p
        return await repository.get_policy(self.session, policy_id)

    async def match(self, ticket: Ticket) -> SlaPolicy | None:
        return next((p for p in await self.policies() if matches(p, ticket)), None)

    async def calendar(self, calendar_id: int) -> BusinessCalendar:
        found = self._calendars.get(calendar_id)
        if found is None:
            row = await calendar_repo.get(self.session, calendar_id)
            if row is None:  # the foreign key keeps it, short of a hand-edited database
                raise NotFoundError(f"calendar {calendar_id} of an SLA policy not found")
            found = self._calendars[calendar_id] = business_calendar(row)
        return found


# target -> (where its clock started, the business seconds paused since, the policy's minutes for it)
_TARGET_FIELDS = {
    "first_response": ("started_at", "paused_seconds", "first_response_minutes"),
    "next_response": ("next_response_started_at", "next_response_paused_seconds", "next_response_minutes"),
    "resolution": ("resolution_started_at", "resolution_paused_seconds", "resolution_minutes"),
}


def _count(row: TicketSla, target: str, policy: SlaPolicy, calendar: BusinessCalendar) -> None:
    """THE count of a target's warning and due moments: from its start, plus the business time paused since, in
    the policy's calendar (what starting, re-matching, reopening, resuming and the next response all use)."""
    start_attr, paused_attr, minutes_attr = _TARGET_FIELDS[target]
    start: datetime | None = getattr(row, start_attr)
    minutes: int | None = getattr(policy, minutes_attr)
    warn = due = None
    if start is not None and minutes:
        paused = timedelta(seconds=getattr(row, paused_attr) or 0.0)
        whole = timedelta(minutes=minutes)
        warn = add_business_time(calendar, start, whole * policy.warning_share + paused)
        due = add_business_time(calendar, start, whole + paused)
    setattr(row, f"{target}_warn_at", warn)
    setattr(row, f"{target}_due_at", due)


def _compute(row: TicketSla, policy: SlaPolicy, calendar: BusinessCalendar) -> None:
    """(Re)count every target not met yet from where it started."""
    if row.first_response_met_at is None:
        _count(row, "first_response", policy, calendar)
    if row.resolution_met_at is None:
        _count(row, "resolution", policy, calendar)
    if row.next_response_started_at is not None:
        _count(row, "next_response", policy, calendar)


def running(row: TicketSla) -> dict[str, tuple[datetime | None, datetime]]:
    """The targets whose clock runs: target -> (warning moment, due moment)."""
    out: dict[str, tuple[datetime | None, datetime]] = {}
    if row.first_response_due_at is not None and row.first_response_met_at is None:
        out["first_response"] = (row.first_response_warn_at, row.first_response_due_at)
    if row.next_response_due_at is not None:
        out["next_response"] = (row.next_response_warn_at, row.next_response_due_at)
    if row.resolution_due_at is not None and row.resolution_met_at is None:
        out["resolution"] = (row.resolution_warn_at, row.resolution_due_at)
    return out


def pending_alerts(row: TicketSla) -> list[tuple[datetime, str, str]]:
    """(moment, target, level) of every alert still to fire, earliest first (none while paused)."""
    if row.paused_at is not None:
        return []
    out = []
    for target, (warn, due) in running(row).items():
        if warn is not None and warn < due and f"{target}:warning" not in row.notified:
            out.append((warn, target, "warning"))
        if f"{target}:breach" not in row.notified:
            out.append((due, target, "breach"))
    return sorted(out)


def _set_due(ticket: Ticket, due: datetime | None) -> None:
    """The ticket's inbox due time, assigned only when it changes: assigning the same value still marks the row
    modified, and every later flush of the session (an autoflush before a query, the commit) then walks the ticket
    again - for a batch of customer messages on tickets without a policy, a whole extra flush of its tickets."""
    if ticket.sla_due_at != due:
        ticket.sla_due_at = due


async def arm(session: AsyncSession, ticket: Ticket, row: TicketSla | None) -> None:
    """The ticket's due time for the inbox and its one timer, from its clock. The timer is rescheduled or cancelled
    only when the earliest pending moment changed (`row.armed_at`): a customer message that moves nothing writes
    no task, and a timer whose handler failed keeps its attempts and backoff."""
    active = row is not None and row.paused_at is None and ticket.status == TicketStatus.open
    dues = [due for _, due in running(row).values()] if row is not None and active else []
    _set_due(ticket, min(dues) if dues else None)
    if row is None:
        return
    alerts = pending_alerts(row) if active else []
    moment = alerts[0][0] if alerts else None
    if moment == row.armed_at:
        return
    if moment is not None:
        await jobs.reschedule(session, TASK_KIND, task_key(ticket.id), moment)
    else:
        await jobs.cancel(session, TASK_KIND, task_key(ticket.id))
    row.armed_at = moment


async def forget(session: AsyncSession, ticket: Ticket) -> None:
    """The ticket leaves SLA altogether (merged into another): its clock goes and its timer is cancelled, so it is
    neither reported as met nor fired."""
    row = await repository.get_ticket_sla(session, ticket.id)
    if row is not None:
        await session.delete(row)
        await jobs.cancel(session, TASK_KIND, task_key(ticket.id))
    _set_due(ticket, None)


def _forget(row: TicketSla, target: str) -> None:
    row.notified = [n for n in row.notified if not n.startswith(f"{target}:")]


async def _start(loader: _Loader, ticket: Ticket, now: datetime) -> TicketSla | None:
    policy = await loader.match(ticket)
    if policy is None:
        return None
    row = TicketSla(ticket_id=ticket.id, policy_id=policy.id, started_at=now, resolution_started_at=now,
                    paused_seconds=0.0, resolution_paused_seconds=0.0, next_response_paused_seconds=0.0,
                    notified=[], reminded=False, updated_at=now)
    _compute(row, policy, await loader.calendar(policy.calendar_id))
    loader.session.add(row)
    return row


async def _rematch(loader: _Loader, ticket: Ticket, row: TicketSla, now: datetime) -> TicketSla | None:
    """Queue or priority changed: the first matching policy now; a different one recomputes the running targets
    from when they started (alerts whose moment has not come yet again are forgotten). None: no policy matches any
    longer and the clock is gone."""
    policy = await loader.match(ticket)
    if policy is None:
        await loader.session.delete(row)
        return None
    if policy.id != row.policy_id:
        row.policy_id = policy.id
        _compute(row, policy, await loader.calendar(policy.calendar_id))
        alerts = {f"{t}:{lvl}" for m, t, lvl in _all_alerts(row) if m > now}
        row.notified = [n for n in row.notified if n not in alerts]
    return row


def _all_alerts(row: TicketSla) -> list[tuple[datetime, str, str]]:
    out = []
    for target, (warn, due) in running(row).items():
        if warn is not None:
            out.append((warn, target, "warning"))
        out.append((due, target, "breach"))
    return out


async def _resume(loader: _Loader, row: TicketSla, now: datetime) -> None:
    """Back from pending: every running target's pause grows by the business time the ticket waited for the
    customer, and its moments are counted again."""
    paused_at = row.paused_at
    row.paused_at = None
    policy = await loader.policy(row.policy_id)
    if paused_at is None or policy is None:
        return
    calendar = await loader.calendar(policy.calendar_id)
    paused = business_time_between(calendar, paused_at, now) if now > paused_at else timedelta()
    if paused <= timedelta():
        return
    seconds = paused.total_seconds()
    run = running(row)
    row.paused_seconds += seconds  # the first response's (it counts from when the clock started)
    if "next_response" in run:
        row.next_response_paused_seconds += seconds
    if "resolution" in run:
        row.resolution_paused_seconds += seconds
    for target in run:
        _count(row, target, policy, calendar)


async def _start_next_response(loader: _Loader, row: TicketSla, now: datetime) -> None:
    """A customer wrote while with humans: the next response is due, counted from their first unanswered message."""
    if row.first_response_met_at is None or row.next_response_due_at is not None:
        return
    policy = await loader.policy(row.policy_id)
    if policy is None or not policy.next_response_minutes:
        return
    row.next_response_started_at = now
    row.next_response_paused_seconds = 0.0
    _count(row, "next_response", policy, await loader.calendar(policy.calendar_id))
    _forget(row, "next_response")


async def _reconcile(loader: _Loader, ticket: Ticket, row: TicketSla | None, now: datetime, *, replied: bool,
                     rematch: bool, customer_wrote: bool) -> None:
    status = ticket.status
    if status in (TicketStatus.resolved, TicketStatus.closed):
        if row is not None and replied and row.first_response_met_at is None and row.first_response_due_at:
            row.first_response_met_at = now  # answered and resolved in one go
        if row is not None and row.resolution_met_at is None:
            row.resolution_met_at = now
            row.next_response_started_at = row.next_response_warn_at = row.next_response_due_at = None
            row.paused_at = None
            row.updated_at = now
        await arm(loader.session, ticket, row)
        return
    if status not in (TicketStatus.open, TicketStatus.pending):
        return
    if row is None:
        row = await _start(loader, ticket, now)
        if row is None:
            _set_due(ticket, None)
            return
    elif rematch:
        row = await _rematch(loader, ticket, row, now)
        if row is None:
            _set_due(ticket, None)
            await jobs.cancel(loader.session, TASK_KIND, task_key(ticket.id))
            return
    if status == TicketStatus.pending and row.paused_at is None:
        row.paused_at = now
    elif status == TicketStatus.open:
        if row.paused_at is not None:
            await _resume(loader, row, now)
        if row.resolution_met_at is not None:
            # Reopened: a new round of resolution, counted from now.
            row.resolution_met_at = None
            row.resolution_started_at, row.resolution_paused_seconds = now, 0.0
            policy = await loader.policy(row.policy_id)
            if policy is not None:
                _count(row, "resolution", policy, await loader.calendar(policy.calendar_id))
            _forget(row, "resolution")
    if replied:
        row.first_response_met_at = row.first_response_met_at or now
        row.next_response_started_at = row.next_response_warn_at = row.next_response_due_at = None
    elif customer_wrote and status == TicketStatus.open:
        await _start_next_response(loader, row, now)
    row.updated_at = now
    await arm(loader.session, ticket, row)


async def track(session: AsyncSession, ticket: Ticket, *, replied: bool = False, rematch: bool = False,
                now: datetime | None = None) -> None:
    """Keep the ticket's SLA clock in step after a change by a person (status, reply, priority, queue).

    Args:
        replied: an agent answered the customer (first response met; the next response stops running).
        rematch: the queue or priority changed: match the policies again.
    A ticket with the bot (new, bot) costs no query.
    """
    if ticket.status in (TicketStatus.new, TicketStatus.bot) or ticket.id is None:
        return
    row = await repository.get_ticket_sla(session, ticket.id)
    await _reconcile(_Loader(session), ticket, row, now or utcnow(), replied=replied, rematch=rematch,
                     customer_wrote=False)


async def after_ingest(session: AsyncSession, tickets: Sequence[Ticket], now: datetime | None = None, *,
                       created: Collection[int] = (),
                       policies: CachedSetting[Sequence[SlaPolicy]] | None = None) -> None:
    """The ingest's one call per batch: the tickets the customers wrote to. Those with humans (open, pending) get
    their clock started, resumed, re-matched or their next response due; a query for the clocks of the tickets
    that existed before (`created`: the ids of those the batch created, which have none yet) and the policies
    (from the process's copy `policies` when given, see detached_policies), nothing when every ticket is with the
    bot."""
    with_humans = {t.id: t for t in tickets if t.status in (TicketStatus.open, TicketStatus.pending)}
    if not with_humans:
        return
    known = [ticket_id for ticket_id in with_humans if ticket_id not in created]
    rows = await repository.ticket_slas(session, known)
    loader = _Loader(session, cached=policies)
    moment = now or utcnow()
    for ticket_id, ticket in with_humans.items():
        # Re-matched: the bot's decision may have raised the priority or routed the ticket to another queue.
        await _reconcile(loader, ticket, rows.get(ticket_id), moment, replied=False, rematch=True,
                         customer_wrote=True)


def alert_is_for(payload: dict[str, Any], user_id: int, supervisor: bool, team_id: int | None) -> bool:
    """Whether a live event is an SLA alert (core/sla/timers.py SlaAlert) this console user is told about: the
    ticket's assignee, and the supervisors of its queue."""
    if payload.get("kind") not in ("sla_warning", "sla_breach"):
        return False
    return payload.get("assignee_id") == user_id or (
        supervisor and team_id is not None and payload.get("team_id") == team_id)


# -- reading ----------------------------------------------------------------------------------------------------


def state_of(row: TicketSla, now: datetime) -> SlaStateName:
    if row.paused_at is not None:
        return "paused"
    run = running(row)
    if not run:
        return "met"
    if any(due <= now or f"{t}:breach" in row.notified for t, (_, due) in run.items()):
        return "breached"
    if any((warn is not None and warn <= now) or f"{t}:warning" in row.notified for t, (warn, _) in run.items()):
        return "warning"
    return "ok"


def read(row: TicketSla, policy_name: str | None, now: datetime) -> SlaRead:
    dues = [due for _, due in running(row).values()] if row.paused_at is None else []
    due_at = min(dues) if dues else None
    return SlaRead(
        policy=policy_name, policy_id=row.policy_id, state=state_of(row, now), due_at=due_at,
        remaining_seconds=math.floor((due_at - now).total_seconds()) if due_at is not None else None,
        first_response_due_at=row.first_response_due_at, first_response_met_at=row.first_response_met_at,
        next_response_due_at=row.next_response_due_at, resolution_due_at=row.resolution_due_at,
        resolution_met_at=row.resolution_met_at, paused_at=row.paused_at,
        breached=[t for t in TARGETS if f"{t}:breach" in row.notified])


async def sla_of(session: AsyncSession, ticket_id: int, now: datetime | None = None) -> SlaRead | None:
    """A ticket's SLA as the API and the ticket page show it; None when no policy applies to it."""
    rows = await sla_of_many(session, [ticket_id], now)
    return rows.get(ticket_id)


async def sla_of_many(session: AsyncSession, ticket_ids: Sequence[int], now: datetime | None = None
                      ) -> dict[int, SlaRead]:
    """The SLA of each listed ticket that has one: two queries for a page."""
    rows = await repository.ticket_slas(session, ticket_ids)
    if not rows:
        return {}
    names = {p.id: p.name for p in await repository.list_policies(session)}
    moment = now or utcnow()
    return {tid: read(row, names.get(row.policy_id), moment) for tid, row in rows.items()}

