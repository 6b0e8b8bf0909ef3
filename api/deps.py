"""Request dependencies: one unit of work per request, the current user, role checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.convertors import Convertor, register_url_convertor

from api.openapi import FORBIDDEN, UNAUTHENTICATED, UNAVAILABLE, declares
from api.state import AppState
from core.db.base import MAX_ID
from core.db.timeout import limit_statements
from core.errors import AuthenticationError, PermissionDeniedError
from core.events import discard_pending, take_pending
from core.nlu_admin.service import INTENT_NAME
from core.users import service as users
from core.users.models import Role, User


# async, not def: FastAPI runs a plain-def dependency in a worker thread, on every request.
async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.switchboard
    return state


State = Annotated[AppState, Depends(get_state)]


def app_state(request: Request) -> AppState:
    """The state, for the channels' ingress routes: they take the traffic, and a dependency costs each request
    more than the rest of FastAPI's work (its parameters are re-inspected every time)."""
    state: AppState = request.app.state.switchboard
    return state


def header_docs(*headers: tuple[str, str]) -> dict[str, Any]:
    """OpenAPI for headers an ingress route reads itself: `openapi_extra=header_docs((name, description))`."""
    return {"parameters": [{"name": name, "in": "header", "required": False, "description": description,
                            "schema": {"type": "string"}} for name, description in headers]}


@declares(UNAVAILABLE)
async def get_db_session(state: State) -> AsyncIterator[AsyncSession]:
    """Commit on success, roll back on error; publish the events only after the commit.

    Every statement is bounded by `statement_timeout_seconds`: one slow query answers 503 instead of holding a
    database backend (and the agents behind it) for minutes."""
    async with state.sessionmaker() as session:
        limit_statements(session, state.settings.statement_timeout_seconds)
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            discard_pending(session)
            raise
        state.bus.publish_all(take_pending(session))


# scope="function": the commit runs before the response is sent. FastAPI's default ("request") sends the response
# first, so a commit that failed (the database gone at that moment) had already been answered 200.
DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
bearer = HTTPBearer(auto_error=False)


@declares(UNAUTHENTICATED)
async def current_user(
    session: DbSession, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError("missing bearer token")
    user = await users.user_for_token(session, credentials.credentials)
    if user is None:
        raise AuthenticationError("invalid or expired token")
    users.touch(user)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require_role(role: Role) -> Callable[[User], Coroutine[Any, Any, User]]:
    @declares(FORBIDDEN)
    async def check(user: CurrentUser) -> User:
        if user.role.rank < role.rank:
            raise PermissionDeniedError(f"this needs the {role.value} role; you are {user.role.value}")
        return user

    return check


Agent = Annotated[User, Depends(require_role(Role.agent))]
Supervisor = Annotated[User, Depends(require_role(Role.supervisor))]
Admin = Annotated[User, Depends(require_role(Role.admin))]


IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
"""An id in a URL: past the integer range it is a 422, not a database error."""
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
"""An optional id in the query string, bounded like IdPath."""
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="How many items to skip")]
"""Every offset in a query string: 2**63 is a 422, not an integer overflow in the database (a 500)."""
Cursor = Annotated[int, Query(ge=0, le=MAX_ID, description="The next_cursor of the previous page")]
"""A keyset cursor (the last id seen), bounded like an id."""


class IntentNameConvertor(Convertor[str]):
    """`{name:intent}` in a path: an intent name, a retrieval intent's `group/name` included (its slash would end a
    plain path parameter, and `:path` would swallow the rest of the URL: `/intents/x/examples/4/delete`)."""

    regex = INTENT_NAME.pattern.removeprefix("^").removesuffix("$")

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("intent", IntentNameConvertor())
