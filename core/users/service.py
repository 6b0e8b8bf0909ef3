"""Users, roles, teams and bearer tokens (argon2 password hashes; tokens stored as SHA-256)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from core.audit import service as audit
from core.db.base import utcnow
from core.errors import AuthenticationError, ConflictError, NotFoundError
from core.users.models import ApiToken, Role, Team, User

_hasher = PasswordHasher()
# A real hash to verify against when the user does not exist, so timing does not reveal which emails exist.
_DUMMY_HASH = _hasher.hash("dummy-password-for-timing")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    stmt = select(User).where(User.email == email.strip().lower()).options(joinedload(User.team))
    return (await session.scalars(stmt)).first()


async def get(session: AsyncSession, user_id: int) -> User:
    user = (await session.scalars(select(User).where(User.id == user_id).options(joinedload(User.team)))).first()
    if user is None:
        raise NotFoundError(f"user {user_id} not found")
    return user


async def list_users(session: AsyncSession) -> Sequence[User]:
    return (await session.scalars(select(User).options(joinedload(User.team)).order_by(User.id))).all()


async def create(
    session: AsyncSession, *, email: str, name: str, password: str, role: Role = Role.agent,
    language: str = "en", team: Team | None = None, capacity: int = 10, actor: User | None = None,
) -> User:
    email = email.strip().lower()
    if await get_by_email(session, email) is not None:
        raise ConflictError(f"a user with email {email} already exists")
    user = User(email=email, name=name, password_hash=hash_password(password), role=role, language=language,
                team_id=team.id if team else None, capacity=capacity, is_active=True, created_at=utcnow())
    user.team = team
    session.add(user)
    await session.flush()
    audit.record(session, actor, "user.create", "user", user.id, email=email, role=role.value)
    return user


async def authenticate(session: AsyncSession, email: str, password: str) -> User:
    user = await get_by_email(session, email)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        raise AuthenticationError("invalid email or password") from None
    if user is None or not user.is_active:
        raise AuthenticationError("invalid email or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


async def issue_token(session: AsyncSession, user: User, ttl: timedelta) -> str:
    token = secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=_token_hash(token), created_at=utcnow(),
                         expires_at=utcnow() + ttl))
    await session.flush()
    return token


async def user_for_token(session: AsyncSession, token: str) -> User | None:
    stmt = (
        select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == _token_hash(token), ApiToken.expires_at > utcnow(), User.is_active.is_(True))
        .options(joinedload(User.team))
    )
    return (await session.scalars(stmt)).first()


def touch(user: User, every: timedelta = timedelta(minutes=1)) -> None:
    """Record that the user is active now (agents online); at most one write a minute."""
    now = utcnow()
    if user.last_seen_at is None or now - user.last_seen_at > every:
        user.last_seen_at = now


async def revoke_token(session: AsyncSession, token: str) -> None:
    await session.execute(delete(ApiToken).where(ApiToken.token_hash == _token_hash(token)))


async def list_teams(session: AsyncSession) -> Sequence[Team]:
    return (await session.scalars(select(Team).order_by(Team.id))).all()


async def create_team(session: AsyncSession, slug: str, name: str, actor: User | None) -> Team:
    if (await session.scalars(select(Team).where(Team.slug == slug))).first() is not None:
        raise ConflictError(f"queue {slug!r} already exists")
    team = Team(slug=slug, name=name, created_at=utcnow())
    session.add(team)
    await session.flush()
    audit.record(session, actor, "team.create", "team", team.id, slug=slug)
    return team
