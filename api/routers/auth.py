from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import CurrentUser, DbSession, State
from api.openapi import UNAUTHENTICATED
from core.auth import service as login_guard
from core.errors import AuthenticationError
from core.users import service as users
from core.users.schemas import LoginRequest, TokenRead, UserRead

router = APIRouter(prefix="/auth", tags=["auth"], responses=UNAUTHENTICATED)  # a wrong password too

LOGIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Wrong email or password (`unauthenticated`)"},
    429: {"description": "Too many failed sign-ins: `too_many_attempts` (this account or address must wait) or "
                         "`account_locked`; the Retry-After header says how many seconds to wait"},
}


@router.post("/login", response_model=TokenRead, responses=LOGIN_RESPONSES)
async def login(body: LoginRequest, request: Request, session: DbSession, state: State) -> TokenRead:
    """Exchange email and password for a bearer token; failed tries slow down and then lock the account."""
    address = state.limits.proxies.client_address(request)
    user = await login_guard.authenticate(session, state.settings.login, body.email, body.password, address,
                                          state.clock.now())
    if user is None:
        await session.commit()  # the failure counts although this request fails
        raise AuthenticationError("invalid email or password")
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
