"""X-Api-Key checks shared by the REST channel and the integration routes (orders, contracts, customers, reports).

Wrong keys are counted per client address (a brute force must wait longer and longer: 429, and while it waits even
the right key is refused, or the answer would tell it apart); the right key is held to its request rate. Both in
memory, per process (core/auth/ratelimit.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.requests import HTTPConnection

from api.deps import DbSession, State, bearer, current_user
from api.openapi import FORBIDDEN, UNAUTHENTICATED, declares
from api.state import AppState
from core.apikeys.schemas import Scope
from core.apikeys.service import KeyInfo
from core.errors import AuthenticationError, PermissionDeniedError, ServiceUnavailableError, TooManyRequestsError
from core.users.models import Role, User

# The REST channel's logger, as before this module existed: operators' log filters look for it.
log = logging.getLogger("api.routers.rest_channel")


async def check_api_key(state: AppState, request: HTTPConnection, api_key: str | None, scope: Scope) -> KeyInfo:
    """The key's info when it is valid and carries `scope`; else 401 (wrong), 403 (scope) or 429 (throttled)."""
    if state.api_keys is None:
        raise ServiceUnavailableError("API keys are not available yet")
    limits = state.limits
    address = limits.proxies.client_address(request)
    wait = limits.rest_bad_keys.blocked(address)
    if wait > 0:
        raise TooManyRequestsError("too many wrong X-Api-Key tries from your address; wait before trying again",
                                   wait, reason="bad_api_keys")
    if api_key is None:
        raise AuthenticationError("missing or wrong X-Api-Key")
    info = await state.api_keys.lookup(api_key)
    if info is None:
        wait = limits.rest_bad_keys.failure(address)
        if wait > 0:  # at most one line per wait: tries while waiting are refused uncounted
            log.warning("wrong X-Api-Key tries: the address must wait",
                        extra={"address": address, "wait_seconds": wait})
        raise AuthenticationError("missing or wrong X-Api-Key")
    limits.rest_bad_keys.success(address)
    if not info.allows(scope):
        raise PermissionDeniedError(f"this API key lacks the {scope.value} scope", scope=scope.value)
    wait = limits.rest_keys.take(api_key)
    if wait > 0:
        raise TooManyRequestsError("this API key is over its request rate; slow down", wait, reason="key_rate")
    return info


ApiKeyHeader = Annotated[str | None, Header(
    alias="X-Api-Key", description="An integration key with the route's scope, instead of a bearer token")]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls an integration route: a signed-in user, or an integration key."""

    user: User | None
    key: KeyInfo | None

    @property
    def key_name(self) -> str | None:
        return self.key.name if self.key is not None else None


def user_or_key(role: Role, scope: Scope) -> Callable[..., Coroutine[Any, Any, Caller]]:
    """A user of at least `role` (bearer token), or an X-Api-Key carrying `scope` (then no token is needed)."""

    @declares({**UNAUTHENTICATED, **FORBIDDEN})
    async def check(request: Request, state: State, session: DbSession,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
                    x_api_key: ApiKeyHeader = None) -> Caller:
        if x_api_key is not None and credentials is None:
            return Caller(None, await check_api_key(state, request, x_api_key, scope))
        user = await current_user(session, credentials)
        if user.role.rank < role.rank:
            raise PermissionDeniedError(f"this needs the {role.value} role or an API key with the {scope.value} "
                                        f"scope; you are {user.role.value}")
        return Caller(user, None)

    return check


OrdersWriter = Annotated[Caller, Depends(user_or_key(Role.supervisor, Scope.orders_write))]
ContractsWriter = Annotated[Caller, Depends(user_or_key(Role.supervisor, Scope.contracts_write))]
CustomersReader = Annotated[Caller, Depends(user_or_key(Role.agent, Scope.customers_read))]
ReportsReader = Annotated[Caller, Depends(user_or_key(Role.supervisor, Scope.reports_read))]
IncidentsWriter = Annotated[Caller, Depends(user_or_key(Role.supervisor, Scope.incidents_write))]
