"""When a ticket's survey goes out: armed as the `csat.send` due task when a ticket is resolved (by a person).

Kept apart from core/csat/service.py so that the ticket service can arm it without importing what sends it.
The due time is the resolution plus the queue's `csat_delay_minutes`; the handler, when it fires inside quiet hours
(in the queue calendar's time zone, else CoreSettings.csat_time_zone), moves it to their end instead of sending.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from core.csat import repository
from core.jobs import service as tasks
from core.tickets.models import Ticket
from core.users.models import Team

CSAT_SEND = "csat.send"


def task_key(ticket_id: int) -> str:
    return f"ticket:{ticket_id}"


@dataclass(frozen=True, slots=True)
class QuietHours:
    """No survey from `start` to `end` local time (may span midnight); start == end: never quiet."""

    start: time
    end: time

    def release(self, when: datetime, zone: ZoneInfo) -> datetime:
        """`when` itself if it is outside quiet hours, else the end of these quiet hours (timezone-aware)."""
        if self.start == self.end:
            return when
        local = when.astimezone(zone)
        t = local.timetz().replace(tzinfo=None)
        if self.start < self.end:
            quiet = self.start <= t < self.end
            end_day = local.date()
        else:  # e.g. 22:00-09:00
            quiet = t >= self.start or t < self.end
            end_day = local.date() + timedelta(days=1) if t >= self.start else local.date()
        if not quiet:
            return when
        end = datetime.combine(end_day, self.end, tzinfo=zone)
        return end.astimezone(when.tzinfo)


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


async def arm(session: AsyncSession, ticket: Ticket) -> bool:
    """Arm (or move) the ticket's survey if its queue sends surveys and none was sent; returns whether armed."""
    if ticket.resolved_by_bot or ticket.merged_into_id is not None or ticket.resolved_at is None:
        return False
    team = await session.get(Team, ticket.team_id) if ticket.team_id is not None else None
    if team is None or not team.csat_enabled:
        return False
    if await repository.survey_of(session, ticket.id) is not None:
        return False  # one survey per ticket, even when it is resolved again
    due = ticket.resolved_at + timedelta(minutes=team.csat_delay_minutes)
    await tasks.reschedule(session, CSAT_SEND, task_key(ticket.id), due, {"ticket_id": ticket.id})
    return True


async def disarm(session: AsyncSession, ticket: Ticket) -> None:
    """The ticket was reopened: a survey not sent yet is dropped (a new resolution arms it again)."""
    await tasks.cancel(session, CSAT_SEND, task_key(ticket.id))
