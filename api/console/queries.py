"""Read-only queries behind the console's views (inbox counts, customer panel, team board, audit names).

They live here, not in core repositories, because they exist only to draw these pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from core.customers.models import Customer
from core.db.base import utcnow
from core.nlu_admin.models import NluIntent, NluSuggestion
from core.orders.models import Order
from core.routing import service as routing
from core.routing.models import IntentRoute
from core.tickets.models import Message, Ticket, TicketStatus
from core.tickets.repository import TicketFilter
from core.users.models import Role, Team, User

ACTIVE = (TicketStatus.new, TicketStatus.open, TicketStatus.pending)
DONE = (TicketStatus.resolved, TicketStatus.closed)
VIEWS = ("mine", "unassigned", "queue", "all", "done")
ONLINE_WINDOW = timedelta(minutes=5)


def view_filter(view: str, user: User, *, status: Sequence[TicketStatus] = (), **extra: Any) -> TicketFilter:
    """The TicketFilter of an inbox view, refined by the filter form's fields."""
    statuses: Sequence[TicketStatus] = status or (DONE if view == "done" else ACTIVE)
    kwargs: dict[str, Any] = {"status": tuple(statuses), **extra}
    if view == "mine":
        kwargs["assignee_id"] = user.id
    elif view == "unassigned":
        kwargs["unassigned"] = True
    elif view == "queue" and user.team is not None and not kwargs.get("team_slug"):
        kwargs["team_slug"] = user.team.slug
    return TicketFilter(**kwargs)


async def view_counts(session: AsyncSession, user: User) -> dict[str, int]:
    """How many tickets each inbox view holds, in one query."""
    active = Ticket.status.in_(ACTIVE)
    team_id = user.team_id

    def count_if(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    stmt = select(
        count_if(and_(active, Ticket.assignee_id == user.id)),
        count_if(and_(active, Ticket.assignee_id.is_(None))),
        count_if(and_(active, Ticket.team_id == team_id) if team_id is not None else active),
        count_if(active),
        count_if(Ticket.status.in_(DONE)),
    ).where(Ticket.merged_into_id.is_(None))
    row = (await session.execute(stmt)).one()
    return {view: int(value) for view, value in zip(VIEWS, row, strict=True)}


async def channels_in_use(session: AsyncSession) -> list[str]:
    return sorted((await session.scalars(select(Ticket.channel).distinct())).all())


async def users_by_id(session: AsyncSession, ids: set[int]) -> dict[int, User]:
    if not ids:
        return {}
    return {u.id: u for u in (await session.scalars(select(User).where(User.id.in_(ids)))).all()}


async def assignable_users(session: AsyncSession) -> Sequence[User]:
    stmt = (select(User).where(User.is_active.is_(True)).options(joinedload(User.team))
            .order_by(User.name, User.id))
    return (await session.scalars(stmt)).all()


@dataclass
class CustomerPanel:
    customer: Customer
    orders: Sequence[Order]
    previous: Sequence[Ticket]


async def customer_panel(session: AsyncSession, ticket: Ticket) -> CustomerPanel:
    customer = (await session.scalars(
        select(Customer).where(Customer.id == ticket.customer_id).options(selectinload(Customer.identities))
    )).one()
    orders = (await session.scalars(
        select(Order).where(Order.customer_id == customer.id).order_by(Order.id.desc()).limit(20)
    )).all()
    previous = (await session.scalars(
        select(Ticket).where(Ticket.customer_id == customer.id, Ticket.id != ticket.id,
                             Ticket.merged_into_id.is_(None))
        .order_by(Ticket.id.desc()).limit(20)
    )).all()
    return CustomerPanel(customer=customer, orders=orders, previous=previous)


async def effective_routes(session: AsyncSession) -> dict[str, str]:
    """Intent -> queue slug: the defaults with admins' rules applied (as `core.routing` resolves them)."""
    rows = (await session.execute(
        select(IntentRoute.intent, Team.slug).join(Team, Team.id == IntentRoute.team_id))).all()
    routes = dict(routing.DEFAULT_ROUTES)
    routes.update({intent: slug for intent, slug in rows})
    return routes


async def known_intents(session: AsyncSession) -> list[str]:
    """Intents an agent can pick when correcting the bot: routed ones and those the bot has produced."""
    seen = (await session.scalars(select(Message.intent).where(Message.intent.is_not(None)).distinct())).all()
    trained = (await session.scalars(select(NluIntent.name))).all()
    return sorted(set(await effective_routes(session)) | {i for i in seen if i} | set(trained))


async def suggestions_for(session: AsyncSession, message_ids: Sequence[int]) -> dict[int, NluSuggestion]:
    """The latest suggested intent per message (an agent's correction, as the admins see it)."""
    if not message_ids:
        return {}
    rows = (await session.scalars(select(NluSuggestion).where(NluSuggestion.message_id.in_(message_ids))
                                  .order_by(NluSuggestion.id))).all()
    return {s.message_id: s for s in rows if s.message_id is not None}


@dataclass
class AgentLoad:
    user: User
    open_count: int
    online: bool


@dataclass
class QueueState:
    team: Team
    waiting: int
    open_count: int
    oldest: Ticket | None


@dataclass
class Board:
    agents: list[AgentLoad]
    queues: list[QueueState]
    per_day: list[tuple[str, int]]
    by_status: dict[str, int]
    tickets: Sequence[Ticket] = field(default_factory=list)


async def board(session: AsyncSession, *, days: int = 14) -> Board:
    now = utcnow()
    people = (await session.scalars(
        select(User).where(User.is_active.is_(True), User.role.in_([Role.agent, Role.supervisor]))
        .options(joinedload(User.team)).order_by(User.name)
    )).all()
    load = dict((await session.execute(
        select(Ticket.assignee_id, func.count()).where(Ticket.status.in_(ACTIVE), Ticket.assignee_id.is_not(None),
                                                       Ticket.merged_into_id.is_(None))
        .group_by(Ticket.assignee_id)
    )).all())
    agents = [AgentLoad(u, int(load.get(u.id, 0)),
                        u.last_seen_at is not None and now - u.last_seen_at < ONLINE_WINDOW) for u in people]

    teams = (await session.scalars(select(Team).order_by(Team.name))).all()
    unassigned_active = and_(Ticket.status.in_(ACTIVE), Ticket.assignee_id.is_(None), Ticket.merged_into_id.is_(None))
    counts = {row[0]: (int(row[1]), int(row[2])) for row in (await session.execute(
        select(Ticket.team_id, func.count(), func.coalesce(func.sum(case((Ticket.assignee_id.is_(None), 1),
                                                                         else_=0)), 0))
        .where(Ticket.status.in_(ACTIVE), Ticket.merged_into_id.is_(None)).group_by(Ticket.team_id)
    )).all()}
    queues = []
    for team in teams:
        total, waiting = counts.get(team.id, (0, 0))
        oldest = None
        if waiting:
            oldest = (await session.scalars(
                select(Ticket).where(unassigned_active, Ticket.team_id == team.id).options(joinedload(Ticket.customer))
                .order_by(Ticket.last_customer_message_at.is_(None), Ticket.last_customer_message_at, Ticket.id)
                .limit(1)
            )).first()
        queues.append(QueueState(team, waiting, total, oldest))

    since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    day = func.date(Ticket.created_at)
    per_day_rows: dict[Any, Any] = dict((await session.execute(
        select(day, func.count()).where(Ticket.created_at >= since).group_by(day)
    )).all())
    per_day_map = {_day_key(k): int(v) for k, v in per_day_rows.items()}
    per_day = []
    for i in range(days):
        d = (since + timedelta(days=i)).date()
        per_day.append((d.strftime("%d.%m"), per_day_map.get(d.isoformat(), 0)))

    by_status = {str(s): int(c) for s, c in (await session.execute(
        select(Ticket.status, func.count()).where(Ticket.status.in_((*ACTIVE, TicketStatus.bot)),
                                                  Ticket.merged_into_id.is_(None)).group_by(Ticket.status)
    )).all()}

    tickets = (await session.scalars(
        select(Ticket).where(Ticket.status.in_(ACTIVE), Ticket.merged_into_id.is_(None))
        .options(joinedload(Ticket.customer), joinedload(Ticket.team), joinedload(Ticket.assignee))
        .order_by(Ticket.last_customer_message_at.is_(None), Ticket.last_customer_message_at, Ticket.id).limit(100)
    )).all()
    return Board(agents=agents, queues=queues, per_day=per_day, by_status=by_status, tickets=tickets)


def _day_key(value: object) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)[:10]
