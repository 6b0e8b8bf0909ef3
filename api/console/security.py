"""Console sessions and CSRF protection.

The session cookie holds an ordinary API token (issued by `core.users.service`), so signing out revokes it
server-side. The CSRF token of a signed-in user is an HMAC of the session token with the app's secret key:
stateless, bound to the session, and unknowable to another origin. The login form, which has no session
yet, uses a double-submit cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote, unquote

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import DbSession, State
from core.db.base import utcnow
from core.users import service as users
from core.users.models import Role, User

SESSION_COOKIE = "sb_session"
LOGIN_CSRF_COOKIE = "sb_login_csrf"
FLASH_COOKIE = "sb_flash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
COOKIE_PATH = "/"
LAST_SEEN_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Viewer:
    """What pages need to know about the signed-in user, still readable after the request's rollback."""

    id: int
    name: str
    role: Role
    language: str
    away: bool = False  # the header's away toggle

    @classmethod
    def of(cls, user: User) -> Viewer:
        return cls(id=user.id, name=user.name, role=user.role, language=user.language, away=user.away)


class LoginRequiredError(Exception):
    """No valid console session: the handler redirects to the login page."""


class ForbiddenPageError(Exception):
    """Signed in, but the role is too low: the handler renders the forbidden page."""

    def __init__(self, user: User, needed: Role) -> None:
        super().__init__(f"needs {needed.value}")
        self.user = Viewer.of(user)
        self.needed = needed


class CsrfError(Exception):
    """A POST without the right CSRF token."""


def csrf_for(secret: str, session_token: str) -> str:
    return hmac.new(secret.encode(), b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def set_session_cookie(response: Response, token: str, max_age: int, secure: bool) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="lax", secure=secure,
                        path=COOKIE_PATH)


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax")


def set_flash(response: Response, message: str, kind: str = "info") -> None:
    """A one-shot message shown on the next page (escaped there like any other text)."""
    response.set_cookie(FLASH_COOKIE, quote(f"{kind}:{message[:600]}"), max_age=60, httponly=True,
                        samesite="lax", path=COOKIE_PATH)


def pop_flash(request: Request, response: Response) -> tuple[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax")
    kind, _, message = unquote(raw).partition(":")
    return (kind if kind in ("info", "error") else "info"), message


async def user_from_cookie(session: AsyncSession, request: Request) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return await users.user_for_token(session, token)


async def console_user(request: Request, session: DbSession) -> User:
    user = await user_from_cookie(session, request)
    if user is None:
        raise LoginRequiredError
    now = utcnow()
    # Presence for the team board, written at most once a minute per user.
    if user.last_seen_at is None or now - user.last_seen_at > LAST_SEEN_EVERY:
        user.last_seen_at = now
    request.state.console_viewer = Viewer.of(user)
    return user


ConsoleUser = Annotated[User, Depends(console_user)]


def _require(role: Role) -> object:
    async def check(user: ConsoleUser) -> User:
        if user.role.rank < role.rank:
            raise ForbiddenPageError(user, role)
        return user

    return check


ConsoleAgent = ConsoleUser
ConsoleSupervisor = Annotated[User, Depends(_require(Role.supervisor))]
ConsoleAdmin = Annotated[User, Depends(_require(Role.admin))]


def expected_csrf(request: Request, state: State) -> str | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return csrf_for(state.settings.secret_key.get_secret_value(), token)


async def check_csrf(request: Request, state: State) -> None:
    """Reject a state-changing request whose form field or header does not carry the session's CSRF token."""
    expected = expected_csrf(request, state)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    # ASCII first: compare_digest raises TypeError on str with other characters (a 500 for a forged form).
    if expected is None or sent is None or not sent.isascii() or not hmac.compare_digest(expected, sent):
        raise CsrfError


CsrfChecked = Depends(check_csrf)
