"""What the customer is told when their ticket goes to a queue: it is with the team, its number, and the expected
wait (from the queue's load and recent first-response times) or, out of the queue's hours, when the team is back.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.calendars import repository as calendar_repo
from core.calendars import service as calendar_service
from core.calendars.business_time import BusinessCalendar, is_open, next_opening
from core.decision import texts
from core.errors import ValidationFailedError
from core.handover import repository
from core.handover.schemas import QueueHandoverUpdate
from core.users.models import Team, User

HISTORY = 20
"""How many of a queue's latest first responses its typical response time is the median of."""
MIN_HISTORY = 3
"""Fewer answered tickets than this: the queue's default wait is quoted instead."""
LOAD_CAP = 500
"""A queue's open unassigned tickets are counted up to this many (the count stays a short index walk)."""


@dataclass(frozen=True, slots=True)
class QueueState:
    """One queue as the hand-over notice sees it."""

    open_unassigned: int
    agents: int
    recent_first_responses: tuple[timedelta, ...]
    default_wait: timedelta
    calendar: BusinessCalendar | None = None


def expected_wait(state: QueueState) -> timedelta:
    """The queue's typical first response (median of its latest ones, or its default without history) times the
    rounds its agents need to reach this ticket: the open unassigned tickets (this one included) per agent."""
    recent = state.recent_first_responses
    typical = (timedelta(seconds=statistics.median(r.total_seconds() for r in recent))
               if len(recent) >= MIN_HISTORY else state.default_wait)
    rounds = max(1, math.ceil(state.open_unassigned / max(state.agents, 1)))
    return max(typical * rounds, timedelta(minutes=1))


def wait_sentence(state: QueueState | None, now: datetime, language: str) -> str:
    """"Expected wait: about 20 minutes." or, out of the queue's hours, "We are back at 09:00 (Mon)."; empty when
    the ticket has no queue."""
    if state is None:
        return ""
    if state.calendar is not None and not is_open(state.calendar, now):
        back = next_opening(state.calendar, now).astimezone(state.calendar.zone)
        return texts.back_at(back, language)
    return texts.expected_wait(expected_wait(state), language)


async def queue_states(session: AsyncSession, teams: Collection[Team]) -> dict[int, QueueState]:
    """The state of each of `teams` (ids flushed): one statement of indexed reads, and one for the calendars of
    the queues that have one, whatever their number."""
    ids = {t.id for t in teams}
    if not ids:
        return {}
    figures = await repository.queue_figures(session, ids, LOAD_CAP, HISTORY)
    load, agents = figures.open_unassigned, figures.agents
    recent: dict[int, list[timedelta]] = {}
    for team_id, created, answered in figures.recent:
        recent.setdefault(team_id, []).append(max(answered - created, timedelta(0)))
    calendar_ids = {t.calendar_id for t in teams if t.calendar_id is not None}
    calendars = {c.id: calendar_service.business_calendar(c)
                 for c in (await repository.calendars(session, calendar_ids) if calendar_ids else ())}
    return {t.id: QueueState(open_unassigned=load.get(t.id, 0), agents=agents.get(t.id, 0),
                             recent_first_responses=tuple(recent.get(t.id, ())),
                             default_wait=timedelta(minutes=t.default_wait_minutes),
                             calendar=calendars.get(t.calendar_id) if t.calendar_id is not None else None)
            for t in teams}


async def update_queue(session: AsyncSession, team: Team, body: QueueHandoverUpdate, actor: User | None) -> Team:
    """Change a queue's hand-over settings (audited with the fields that changed, when one did: a settings form
    saved as shown records nothing).

    Raises:
        ValidationFailedError: no such calendar.
    """
    changed: dict[str, object] = {}
    if "calendar_id" in body.model_fields_set:
        if body.calendar_id is not None and not await calendar_repo.exists(session, body.calendar_id):
            raise ValidationFailedError(f"calendar {body.calendar_id} does not exist", field="calendar_id")
        if team.calendar_id != body.calendar_id:
            team.calendar_id = changed["calendar_id"] = body.calendar_id
    if body.bot_answers_while_waiting is not None and team.bot_answers_while_waiting != body.bot_answers_while_waiting:
        team.bot_answers_while_waiting = changed["bot_answers_while_waiting"] = body.bot_answers_while_waiting
    if body.default_wait_minutes is not None and team.default_wait_minutes != body.default_wait_minutes:
        team.default_wait_minutes = changed["default_wait_minutes"] = body.default_wait_minutes
    await session.flush()
    if changed:
        audit.record(session, actor, "team.handover", "team", team.id, slug=team.slug, **changed)
    return team
