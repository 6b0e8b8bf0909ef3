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
    # Every count from one grouped read of the active tickets (and those with the bot, for the status counts).
    slices = await repository.slices(session, (*ACTIVE_STATUSES, TicketStatus.bot))
    active = {str(s) for s in ACTIVE_STATUSES}
    load: dict[int, int] = defaultdict(int)
    per_team: dict[int | None, list[int]] = defaultdict(lambda: [0, 0])
    by_status: dict[str, int] = defaultdict(int)
    for piece in slices:
        by_status[piece.status] += piece.count
        if piece.status not in active:
            continue
        if piece.assignee_id is not None:
            load[piece.assignee_id] += piece.count
        per_team[piece.team_id][0] += piece.count
        if piece.assignee_id is None:
            per_team[piece.team_id][1] += piece.count
    agents = [AgentLoad(u, load.get(u.id, 0), assignment.presence_of(u, now, offline_after)) for u in people]

    oldest = await repository.longest_waiting_unassigned(session, ACTIVE_STATUSES)
    queues = []
    for team in await users_repo.list_teams(session, by_name=True):
        total, waiting = per_team.get(team.id, (0, 0))
        queues.append(QueueState(team, waiting, total, oldest.get(team.id) if waiting else None))

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

    tickets = await repository.longest_waiting(session, ACTIVE_STATUSES, 100)
    return Board(agents=agents, queues=queues, per_day=per_day, by_status=dict(by_status), tickets=tickets)
