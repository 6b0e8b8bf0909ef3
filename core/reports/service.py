"""The supervisors' team board: who is online and how loaded, what waits in each queue, the recent flow."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core.assignment import service as assignment
from core.kpis import service as kpis
from core.kpis.schemas import CountDimension
from core.reports import repository
from core.reports.schemas import AgentLoad, Board, QueueState
from core.tickets import repository as ticket_repo
from core.tickets.models import TicketStatus
from core.tickets.service import ACTIVE_STATUSES
from core.users import repository as users_repo
from core.users.models import Role


async def board(session: AsyncSession, *, now: datetime, offline_after: timedelta, days: int = 14) -> Board:
    """The board: agents and supervisors with their open tickets and presence (as automatic assignment sees it:
    core.assignment.service.presence_of), the queues, tickets created per UTC day over the last `days` days (as
    of the KPI job's last fold: `kpi_fold_seconds`; merged tickets left out, as everywhere on the board), active
    tickets by status and the 100 longest-waiting."""
    people = await users_repo.list_active(session, (Role.agent, Role.supervisor))
    load = await ticket_repo.open_per_assignee(session, ACTIVE_STATUSES)
    agents = [AgentLoad(u, load.get(u.id, 0), assignment.presence_of(u, now, offline_after)) for u in people]

    counts = await repository.per_team(session, ACTIVE_STATUSES)
    queues = []
    for team in await users_repo.list_teams(session, by_name=True):
        total, waiting = counts.get(team.id, (0, 0))
        oldest = await repository.longest_waiting_unassigned(session, ACTIVE_STATUSES, team.id) if waiting else None
        queues.append(QueueState(team, waiting, total, oldest))

    # Days are UTC days, as they always were on the board. Read from the KPI engine's hourly volumes (every ticket
    # has a channel, so the channel dimension's hours sum to the tickets created): a few hundred small rows instead
    # of a per-day count over the tickets table (a scan of a year of tickets, 345-750 ms on the year bench).
    since = (now.astimezone(UTC) - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    created: dict[date, int] = defaultdict(int)
    for (_key, hour), count in (await kpis.hourly_tickets(session, CountDimension.channel, start=since)).items():
        created[hour.date()] += count
    per_day = []
    for i in range(days):
        d = (since + timedelta(days=i)).date()
        per_day.append((d.strftime("%d.%m"), created.get(d, 0)))

    by_status = await repository.count_by_status(session, (*ACTIVE_STATUSES, TicketStatus.bot))
    tickets = await repository.longest_waiting(session, ACTIVE_STATUSES, 100)
    return Board(agents=agents, queues=queues, per_day=per_day, by_status=by_status, tickets=tickets)
