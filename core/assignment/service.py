"""Who gets which ticket: presence, queue settings, and one assignment run of a queue (returns, then hand-out).

A run holds its queue's row lock for one short transaction: two runs that overlap (two instances, a lease handed
over mid-run) count the same loads one after the other, so nobody goes over capacity (an agent belongs to one
queue, so only that queue's runs give them tickets). Tickets an agent holds in a transaction of their own (a
take, a reply) are skipped, not waited for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core.assignment import repository
from core.assignment.schemas import Presence, PresenceUpdate, QueueUpdate, QueueWarning
from core.audit import service as audit
from core.tickets import repository as ticket_repo
from core.tickets import service as tickets
from core.tickets.models import Ticket
from core.users.models import AssignmentMode, Team, User

_NEVER = datetime.min.replace(tzinfo=UTC)


def presence_of(user: User, now: datetime, offline_after: timedelta) -> Presence:
    """Online (heartbeat within `offline_after`), away (online but set away) or offline."""
    if not user.is_active or user.last_seen_at is None or now - user.last_seen_at > offline_after:
        return Presence.offline
    return Presence.away if user.away else Presence.online


def heartbeat(user: User, now: datetime) -> None:
    """The agent's console is open: they are online (or away, if they said so) until `offline_after` from now."""
    user.last_seen_at = now


def update_presence(session: AsyncSession, user: User, body: PresenceUpdate) -> User:
    """An agent sets themselves away or back, or their languages; audited as `user.presence`."""
    changed: dict[str, str] = {}
    if body.away is not None and body.away != user.away:
        user.away = body.away
        changed["away"] = str(body.away).lower()
    if body.languages is not None and body.languages != list(user.languages or []):
        user.languages = list(body.languages)
        changed["languages"] = ",".join(body.languages)
    if changed:
        audit.record(session, user, "user.presence", "user", user.id, **changed)
    return user


async def queue_warnings(session: AsyncSession, teams: list[Team], now: datetime, offline_after: timedelta
                         ) -> dict[int, list[QueueWarning]]:
    """Why each automatic queue's tickets would wait now (manual queues: none), in one query."""
    staffing = await repository.staffing(session, now - offline_after)
    warnings: dict[int, list[QueueWarning]] = {}
    for team in teams:
        found: list[QueueWarning] = []
        if team.assignment_mode != AssignmentMode.manual:
            members, online, with_capacity = staffing.get(team.id, (0, 0, 0))
            if members == 0:
                found.append(QueueWarning.no_agents)
            else:
                if with_capacity == 0:
                    found.append(QueueWarning.no_capacity)
                elif online == 0:  # nobody with capacity is online and not away right now
                    found.append(QueueWarning.none_online)
        warnings[team.id] = found
    return warnings


async def update_queue(session: AsyncSession, team: Team, body: QueueUpdate, actor: User, now: datetime,
                       offline_after: timedelta) -> tuple[Team, list[QueueWarning]]:
    """An admin changes a queue's name, assignment mode or return time (audited as `team.update`).

    A queue switched to automatic with nobody to take its tickets is saved all the same, with warnings: its
    tickets wait in the queue, as in a manual one, until someone eligible is online.
    """
    changed: dict[str, str] = {}
    for key, value in body.model_dump(exclude_none=True).items():
        if getattr(team, key) != value:
            changed[key] = str(value)
            setattr(team, key, value)
    if changed:
        audit.record(session, actor, "team.update", "team", team.id, **changed)
    await session.flush()
    return team, (await queue_warnings(session, [team], now, offline_after))[team.id]


@dataclass
class RunResult:
    assigned: int = 0
    returned: int = 0
    more: bool = False  # a full batch was handed out: run again at once


def _speaks(agent: User, language: str | None) -> bool:
    return not language or not agent.languages or language in agent.languages


def _round_robin(candidates: list[User], last_id: int | None) -> User:
    """The first candidate after the one given the previous ticket (by id, wrapping round)."""
    if last_id is not None:
        for agent in candidates:
            if agent.id > last_id:
                return agent
    return candidates[0]


def _least_loaded(candidates: list[User], loads: dict[int, int]) -> User:
    """Fewest open tickets; a tie goes to the one who waited longest since their last assignment."""
    return min(candidates, key=lambda a: (loads.get(a.id, 0), a.last_assigned_at or _NEVER, a.id))


async def run_queue(session: AsyncSession, team_id: int, now: datetime, offline_after: timedelta, batch: int
                    ) -> RunResult:
    """One run of an automatic queue in the caller's transaction: return offline agents' untouched tickets, then
    hand waiting tickets to eligible agents."""
    result = RunResult()
    team = await repository.lock_queue(session, team_id)
    if team is None or team.assignment_mode == AssignmentMode.manual:
        return result
    result.returned = await _return_untouched(session, team, now, offline_after, batch)
    result.assigned, result.more = await _hand_out(session, team, now, offline_after, batch)
    return result


async def _return_untouched(session: AsyncSession, team: Team, now: datetime, offline_after: timedelta,
                            batch: int) -> int:
    wait = timedelta(minutes=team.return_after_minutes)
    # Offline for longer than the return time: last seen before now - return time - the offline window.
    rows = await repository.returnable_tickets(session, team.id, seen_before=now - wait - offline_after,
                                               assigned_before=now - wait, limit=batch)
    for ticket in rows:
        await tickets.system_assign(session, ticket, None, action="ticket.return", kind="returned",
                                    reason="offline", minutes=team.return_after_minutes)
    return len(rows)


async def _hand_out(session: AsyncSession, team: Team, now: datetime, offline_after: timedelta, batch: int
                    ) -> tuple[int, bool]:
    if not await repository.any_waiting(session, team.id):
        return 0, False
    agents = list(await repository.eligible_agents(session, team.id, now - offline_after))
    if not agents:
        return 0, False
    loads = await ticket_repo.open_per_assignee(session, tickets.ACTIVE_STATUSES, [a.id for a in agents])
    free = [a for a in agents if loads.get(a.id, 0) < a.capacity]
    if not free:
        return 0, False
    # Only tickets someone free can answer: a head of the queue in a language nobody online speaks never
    # holds back the tickets behind it.
    languages = None if any(not a.languages for a in free) else {code for a in free for code in a.languages}
    waiting = await repository.waiting_tickets(session, team.id, batch, languages)
    assigned = 0
    for ticket in waiting:
        candidates = [a for a in free if loads.get(a.id, 0) < a.capacity and _speaks(a, ticket.language)]
        if not candidates:
            continue
        agent = (_round_robin(candidates, team.last_assigned_user_id)
                 if team.assignment_mode == AssignmentMode.round_robin else _least_loaded(candidates, loads))
        await _give(session, ticket, agent, team, now)
        loads[agent.id] = loads.get(agent.id, 0) + 1
        assigned += 1
    return assigned, len(waiting) == batch and assigned > 0


async def _give(session: AsyncSession, ticket: Ticket, agent: User, team: Team, now: datetime) -> None:
    await tickets.system_assign(session, ticket, agent, action="ticket.auto_assign", now=now,
                                mode=team.assignment_mode.value)
    agent.last_assigned_at = now
    team.last_assigned_user_id = agent.id
