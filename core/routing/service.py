"""Intent-to-queue routing: defaults for the shipped intents, overridden by admins' rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.nlu_admin import service as nlu_service
from core.routing import repository
from core.routing.models import IntentRoute
from core.tickets import repository as ticket_repo
from core.users import service as users
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


@dataclass(frozen=True, slots=True)
class RoutingTable:
    """The teams and the admins' rules, read once: resolves intents to teams without a query each."""

    teams_by_slug: dict[str, Team]
    rules: dict[str, Team]
    teams_by_id: dict[int, Team] = field(init=False)  # built once: ingest asks it for every message of a batch

    def __post_init__(self) -> None:
        object.__setattr__(self, "teams_by_id", {team.id: team for team in self.teams_by_slug.values()})

    def team_for(self, intent: str | None) -> Team | None:
        """The team an intent routes to: an admin's rule, else the default, else `general`."""
        ruled = self.rules.get(intent or "")
        if ruled is not None:
            return ruled
        slug = DEFAULT_ROUTES.get(intent or "", DEFAULT_TEAM)
        return self.teams_by_slug.get(slug) or self.teams_by_slug.get(DEFAULT_TEAM)


async def routing_table(session: AsyncSession) -> RoutingTable:
    """Every team with the intents routed to it by a rule, in one query (both tables stay small)."""
    rows = await repository.teams_with_rules(session)
    teams = {team.slug: team for team, _ in rows}
    rules = {intent: team for team, intent in rows if intent is not None}
    return RoutingTable(teams_by_slug=teams, rules=rules)


async def list_routes(session: AsyncSession) -> dict[str, str]:
    """Effective routing of every intent with a default or a rule: the team its tickets go to, as ingest routes."""
    table = await routing_table(session)
    routes: dict[str, str] = {}
    for intent in [*DEFAULT_ROUTES, *table.rules]:
        team = table.team_for(intent)
        routes[intent] = team.slug if team is not None else DEFAULT_ROUTES.get(intent, DEFAULT_TEAM)
    return routes


async def known_intents(session: AsyncSession) -> list[str]:
    """Intents an agent can pick when correcting the bot: routed ones, trained ones and those the bot produced."""
    seen = await ticket_repo.intents_seen(session)
    trained = await nlu_service.intent_names(session)
    return sorted(set(await list_routes(session)) | {i for i in seen if i} | set(trained))


async def set_route(session: AsyncSession, intent: str, team: Team, actor: User | None) -> IntentRoute:
    """Send tickets of `intent` to `team` from now on."""
    nlu_service.check_intent_name(intent)
    route = await repository.get_rule(session, intent)
    if route is None:
        route = IntentRoute(intent=intent, team_id=team.id)
        session.add(route)
    else:
        route.team_id = team.id
    await session.flush()
    audit.record(session, actor, "routing.set", "intent", intent, queue=team.slug)
    return route


async def route_to_queue(session: AsyncSession, intent: str, queue: str, actor: User | None) -> dict[str, str]:
    """Send tickets of `intent` to the queue with slug `queue` from now on; returns the effective routing.

    Raises:
        ValidationFailedError: not an intent name.
        NotFoundError: no such queue.
    """
    nlu_service.check_intent_name(intent)
    await set_route(session, intent, await users.team_by_slug(session, queue), actor)
    return await list_routes(session)
