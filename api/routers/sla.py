"""Admin routes for SLA policies (targets counted in business-hours calendars)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Admin, DbSession, IdPath, Supervisor
from api.openapi import CONFLICT
from core.sla import service as sla
from core.sla.schemas import SlaPolicyCreate, SlaPolicyRead, SlaPolicyUpdate

router = APIRouter(prefix="/admin/sla-policies", tags=["admin"])


@router.get("", response_model=list[SlaPolicyRead])
async def list_policies(session: DbSession, _user: Supervisor) -> list[SlaPolicyRead]:
    """Every policy in match order: a ticket gets the first enabled one that matches it."""
    return await sla.policies_read(session, await sla.list_policies(session))


@router.get("/{policy_id}", response_model=SlaPolicyRead)
async def get_policy(policy_id: IdPath, session: DbSession, _user: Supervisor) -> SlaPolicyRead:
    return (await sla.policies_read(session, [await sla.get_policy(session, policy_id)]))[0]


@router.post("", response_model=SlaPolicyRead, status_code=201, responses={**CONFLICT})
async def create_policy(body: SlaPolicyCreate, session: DbSession, actor: Admin) -> SlaPolicyRead:
    """A new policy. Zero or negative targets, no target at all, a warning share outside (0, 1), an unknown
    calendar or queue are a 422 with the reason; a name in use is a 409."""
    return (await sla.policies_read(session, [await sla.create_policy(session, body, actor)]))[0]


@router.patch("/{policy_id}", response_model=SlaPolicyRead, responses={**CONFLICT})
async def update_policy(policy_id: IdPath, body: SlaPolicyUpdate, session: DbSession, actor: Admin
                        ) -> SlaPolicyRead:
    """Change the fields given (a target sent as null is removed); running clocks keep their moments until their
    ticket is re-matched."""
    return (await sla.policies_read(session, [await sla.update_policy(session, policy_id, body, actor)]))[0]


@router.delete("/{policy_id}", status_code=204)
async def delete_policy(policy_id: IdPath, session: DbSession, actor: Admin) -> None:
    """The policy and its tickets' clocks go; their timers are cancelled."""
    await sla.delete_policy(session, policy_id, actor)
