"""Admin routes: users, queues (teams), intent routing, audit log, quarantined payloads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import Admin, DbSession, IdPath, IdQuery, Offset, State, Supervisor
from api.openapi import CONFLICT, NOT_FOUND
from core.audit import service as audit
from core.audit.schemas import AuditRead
from core.auth import service as login_guard
from core.auth.schemas import LoginRestrictionRead, UnlockResult
from core.consent.schemas import OrderNoticeTemplateRead, OrderNoticeTemplateUpdate
from core.orders import notices as order_notices
from core.quarantine import service as quarantine_service
from core.quarantine.schemas import QuarantineRead
from core.queues import service as queues
from core.queues.schemas import QueueSaved, QueueSettingsUpdate
from core.routing import service as routing
from core.routing.schemas import RouteUpdate
from core.users import service as users
from core.users.schemas import TeamCreate, TeamRead, UserCreate, UserRead, UserUpdate

OrderStatusPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
router = APIRouter(prefix="/admin", tags=["admin"], responses={**CONFLICT, **NOT_FOUND})  # unknown queues too


@router.get("/users", response_model=list[UserRead])
async def list_users(session: DbSession, _user: Supervisor) -> list[UserRead]:
    return [UserRead.model_validate(u) for u in await users.list_users(session)]


@router.post("/users", response_model=UserRead, status_code=201)
async def create_user(body: UserCreate, session: DbSession, actor: Admin) -> UserRead:
    return UserRead.model_validate(await users.create_user(session, body, actor))


@router.patch("/users/{user_id}", response_model=UserRead)
async def update_user(user_id: IdPath, body: UserUpdate, session: DbSession, actor: Admin) -> UserRead:
    return UserRead.model_validate(await users.update(session, await users.get(session, user_id), body, actor))


@router.get("/login-restrictions", response_model=list[LoginRestrictionRead])
async def login_restrictions(session: DbSession, state: State, _user: Admin) -> list[LoginRestrictionRead]:
    """Accounts locked or made to wait after failed sign-ins, right now."""
    return await login_guard.restricted_users(session, state.clock.now())


@router.post("/users/{user_id}/unlock", response_model=UnlockResult)
async def unlock_user(user_id: IdPath, session: DbSession, actor: Admin) -> UnlockResult:
    """Clear the account's failed sign-ins, delay and lock (audited as `auth.unlock`)."""
    user = await users.get(session, user_id)
    return UnlockResult(user_id=user.id, unlocked=await login_guard.unlock(session, user, actor))


@router.get("/queues", response_model=list[TeamRead])
async def list_queues(session: DbSession, _user: Supervisor) -> list[TeamRead]:
    return [TeamRead.model_validate(t) for t in await users.list_teams(session)]


@router.post("/queues", response_model=TeamRead, status_code=201)
async def create_queue(body: TeamCreate, session: DbSession, actor: Admin) -> TeamRead:
    return TeamRead.model_validate(await users.create_team(session, body.slug, body.name, actor))


@router.patch("/queues/{slug}", response_model=QueueSaved)
async def update_queue(slug: str, body: QueueSettingsUpdate, session: DbSession, state: State,
                       actor: Admin) -> QueueSaved:
    """Name, assignment mode (manual, round_robin, least_loaded) and return time of a queue, and its hand-over
    settings: calendar (business hours; null = always open), whether the bot answers self-service questions of
    customers waiting in it, the wait quoted before it has history; and its satisfaction surveys (on, delay).
    Only the fields given change. A queue switched to automatic that nobody can serve now is saved with
    `warnings`: its tickets wait until someone is online."""
    return await queues.update(session, await users.team_by_slug(session, slug), body, actor, state.clock.now(),
                               state.settings.core.presence_offline)


@router.get("/routes", response_model=dict[str, str])
async def list_routes(session: DbSession, _user: Supervisor) -> dict[str, str]:
    """Effective intent -> queue routing."""
    return await routing.list_routes(session)


@router.put("/routes/{intent}", response_model=dict[str, str])
async def set_route(intent: str, body: RouteUpdate, session: DbSession, actor: Admin) -> dict[str, str]:
    return await routing.route_to_queue(session, intent, body.queue, actor)


@router.get("/order-notices", response_model=list[OrderNoticeTemplateRead])
async def list_order_notices(session: DbSession, _user: Admin) -> list[OrderNoticeTemplateRead]:
    """The order statuses with their own notice texts (or marked internal); others get the generic notice."""
    return [OrderNoticeTemplateRead.model_validate(t) for t in await order_notices.list_templates(session)]


@router.put("/order-notices/{status}", response_model=OrderNoticeTemplateRead)
async def put_order_notice(body: OrderNoticeTemplateUpdate, session: DbSession, state: State, actor: Admin,
                           status: OrderStatusPath) -> OrderNoticeTemplateRead:
    """Set what customers are told when an order reaches `status` (audited as `order.notice_template`)."""
    row = await order_notices.put_template(session, status, internal=body.internal,
                                           text_en=(body.text_en or "").strip() or None,
                                           text_ru=(body.text_ru or "").strip() or None,
                                           actor=actor, now=state.clock.now())
    return OrderNoticeTemplateRead.model_validate(row)


@router.get("/audit", response_model=list[AuditRead])
async def audit_log(session: DbSession, _user: Admin, entity_type: str | None = None, entity_id: str | None = None,
                    actor_user_id: IdQuery = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 100,
                    offset: Offset = 0) -> list[AuditRead]:
    rows = await audit.list_entries(session, entity_type=entity_type, entity_id=entity_id,
                                         actor_user_id=actor_user_id, limit=limit, offset=offset)
    return [AuditRead.model_validate(r) for r in rows]


@router.get("/quarantine", response_model=list[QuarantineRead])
async def quarantine(session: DbSession, _user: Admin, channel: str | None = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100,
                     offset: Offset = 0) -> list[QuarantineRead]:
    rows = await quarantine_service.list_payloads(session, channel, limit, offset)
    return [QuarantineRead.model_validate(r) for r in rows]
