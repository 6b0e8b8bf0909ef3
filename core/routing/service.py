"""Intent-to-queue routing: defaults for the shipped intents, overridden by admins' rules."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.nlu_admin.service import check_intent_name
from core.routing.models import IntentRoute
from core.users.models import Team, User

DEFAULT_TEAM = "general"
DEFAULT_ROUTES: dict[str, str] = {
    "billing_question": "billing", "payment_methods": "billing", "balance_check": "billing",
    "internet_down": "technical", "slow_internet": "technical", "mobile_no_signal": "technical",
    "tv_not_working": "technical", "router_setup": "technical",
    "new_connection": "sales", "tariff_change": "sales", "tariff_info": "sales", "roaming": "sales",
    "order_status": "sales",
    "contract_terminate": "retention", "contract_info": "retention",
    "complaint": "general", "personal_data_change": "general", "data_deletion": "general",
}


async def team_for_intent(session: AsyncSession, intent: str | None) -> Team | None:
    """The team an intent routes to: an admin's rule, else the default, else `general`."""
    slug = DEFAULT_ROUTES.get(intent or "", DEFAULT_TEAM)
    # One query for the admin's rule, the default and the fallback; preference is in that order.
    routed = select(IntentRoute.team_id).where(IntentRoute.intent == (intent or ""))
    rows = (await session.execute(
        select(Team, Team.id.in_(routed).label("is_rule"))
        .where(or_(Team.id.in_(routed), Team.slug.in_((slug, DEFAULT_TEAM))))
    )).all()

    def rank(row: tuple[Team, bool]) -> int:
        team, is_rule = row
        return 0 if is_rule else (1 if team.slug == slug else 2)

    return min(rows, key=rank)[0] if rows else None


async def list_routes(session: AsyncSession) -> dict[str, str]:
    """Effective routing: defaults with admins' rules applied."""
    rows: Sequence[tuple[str, str]] = (await session.execute(
        select(IntentRoute.intent, Team.slug).join(Team, Team.id == IntentRoute.team_id)
    )).all()
    routes = dict(DEFAULT_ROUTES)
    routes.update(dict(rows))
    return routes


async def set_route(session: AsyncSession, intent: str, team: Team, actor: User | None) -> IntentRoute:
    """Send tickets of `intent` to `team` from now on."""
    check_intent_name(intent)
    route = (await session.scalars(select(IntentRoute).where(IntentRoute.intent == intent))).first()
    if route is None:
        route = IntentRoute(intent=intent, team_id=team.id)
        session.add(route)
    else:
        route.team_id = team.id
    await session.flush()
    audit.record(session, actor, "routing.set", "intent", intent, queue=team.slug)
    return route
