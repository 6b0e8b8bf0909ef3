"""Integration keys, managed by admins: create (the key is shown once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Admin, DbSession, IdPath, State
from api.openapi import CONFLICT, NOT_FOUND
from core.apikeys import service
from core.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead

router = APIRouter(prefix="/admin/api-keys", tags=["admin"], responses={**CONFLICT, **NOT_FOUND})


def _env_key(state: State) -> str | None:
    key = state.settings.channels.rest.api_key
    return key.get_secret_value() if key is not None else None


@router.get("", response_model=list[ApiKeyRead])
async def list_keys(session: DbSession, state: State, _user: Admin) -> list[ApiKeyRead]:
    """Every key, the environment's REST key first (it is set in the environment, not here)."""
    return await service.list_keys(session, _env_key(state))


@router.post("", response_model=ApiKeyCreated, status_code=201)
async def create_key(body: ApiKeyCreate, session: DbSession, actor: Admin) -> ApiKeyCreated:
    """A new key with its scopes; `key` in the answer is the only time it is shown (audited as api_key.create)."""
    return await service.create(session, body, actor)


@router.post("/{key_id}/revoke", response_model=ApiKeyRead)
async def revoke_key(key_id: IdPath, session: DbSession, state: State, actor: Admin) -> ApiKeyRead:
    """The key stops working at once here and within seconds on other instances (audited as api_key.revoke)."""
    row = await service.revoke(session, key_id, actor, state.clock.now())
    if state.api_keys is not None:
        state.api_keys.forget()
    return ApiKeyRead.model_validate(row)
