"""The supervisors' team board: who is online and how loaded, what waits in each queue, the recent flow."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.base import utcnow
from core.reports import repository
from core.reports.schemas import AgentLoad, Board, QueueState
from core.tickets.models import TicketStatus
from core.tickets.service import ACTIVE_STATUSES
from core.users import repository as users_repo
from core.users.models import Role

ONLINE_WINDOW = timedelta(minutes=5)


async def board(session: AsyncSession, *, days: int = 14, online_window: timedelta = ONLINE_WINDOW) -> Board:
    """The board: agents and supervisors with their open tickets and presence (online within `online_window`,
    away, offline), the queues, tickets created per day over the last `days` days, active tickets by status and
    the 100 longest-waiting."""
    now = utcnow()
    people = await users_repo.list_active(session, (Role.agent, Role.supervisor))
    load = await repository.open_per_assignee(session, ACTIVE_STATUSES)
    agents = []
    for u in people:
        online = u.last_seen_at is not None and now - u.last_seen_at < online_window
        agents.append(AgentLoad(u, load.get(u.id, 0), online, "offline" if not online else
                                "away" if u.away else "online"))

    counts = await repository.per_team(session, ACTIVE_STATUSES)
    queues = []
    for team in await users_repo.list_teams(session, by_name=True):
        total, waiting = counts.get(team.id, (0, 0))
        oldest = await repository.longest_waiting_unassigned(session, ACTIVE_STATUSES, team.id) if waiting else None
        queues.append(QueueState(team, waiting, total, oldest))

    since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    created = await repository.created_per_day(session, since)
    per_day = []
    for i in range(days):
        d = (since + timedelta(days=i)).date()
        per_day.append((d.strftime("%d.%m"), created.get(d.isoformat(), 0)))

    by_status = await repository.count_by_status(session, (*ACTIVE_STATUSES, TicketStatus.bot))
    tickets = await repository.longest_waiting(session, ACTIVE_STATUSES, 100)
    return Board(agents=agents, queues=queues, per_day=per_day, by_status=by_status, tickets=tickets)
