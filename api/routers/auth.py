from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import CurrentUser, DbSession, State
from api.openapi import UNAUTHENTICATED
from core.users import service as users
from core.users.schemas import LoginRequest, TokenRead, UserRead

router = APIRouter(prefix="/auth", tags=["auth"], responses=UNAUTHENTICATED)  # a wrong password too


@router.post("/login", response_model=TokenRead)
async def login(body: LoginRequest, session: DbSession, state: State) -> TokenRead:
    user = await users.authenticate(session, body.email, body.password)
    ttl = timedelta(hours=state.settings.token_ttl_hours)
    token = await users.issue_token(session, user, ttl)
    return TokenRead(access_token=token, expires_in=int(ttl.total_seconds()))


@router.post("/logout", status_code=204)
async def logout(
    _user: CurrentUser, session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials, Depends(HTTPBearer())],
) -> None:
    await users.revoke_token(session, credentials.credentials)


@router.get("/me", response_model=UserRead)
async def me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)
