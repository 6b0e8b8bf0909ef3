"""Users, roles, teams and bearer tokens (argon2 password hashes; tokens stored as SHA-256)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.db.base import utcnow
from core.errors import AuthenticationError, ConflictError, NotFoundError, ValidationFailedError
from core.users import repository
from core.users.models import ApiToken, Role, Team, User
from core.users.schemas import UserCreate, UserUpdate

_hasher = PasswordHasher()
# A real hash to verify against when the user does not exist, so timing does not reveal which emails exist.
_DUMMY_HASH = _hasher.hash("dummy-password-for-timing")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    return await repository.get_by_email(session, email.strip().lower())


async def get(session: AsyncSession, user_id: int) -> User:
    user = await repository.get(session, user_id)
    if user is None:
        raise NotFoundError(f"user {user_id} not found")
    return user


async def list_users(session: AsyncSession) -> Sequence[User]:
    return await repository.list_all(session)


async def count_users(session: AsyncSession) -> int:
    return await repository.count(session)


async def users_by_id(session: AsyncSession, ids: set[int]) -> dict[int, User]:
    """The users with these ids (unknown ids are absent), in one query."""
    return await repository.by_ids(session, ids)


# Who works tickets: admins configure the system and are not offered as assignees (they can still take one).
ASSIGNEE_ROLES = (Role.agent, Role.supervisor)


async def assignable_users(session: AsyncSession) -> Sequence[User]:
    """Everyone a ticket can be given to: the active agents and supervisors, by name."""
    return await repository.list_active(session, ASSIGNEE_ROLES)


async def team_by_slug(session: AsyncSession, slug: str) -> Team:
    team = await repository.get_team_by_slug(session, slug)
    if team is None:
        raise NotFoundError(f"queue {slug!r} not found")
    return team


async def create(
    session: AsyncSession, *, email: str, name: str, password: str, role: Role = Role.agent,
    language: str = "en", team: Team | None = None, capacity: int = 10, actor: User | None = None,
    display_name: str | None = None, languages: list[str] | None = None,
) -> User:
    email = email.strip().lower()
    if await get_by_email(session, email) is not None:
        raise ConflictError(f"a user with email {email} already exists")
    user = User(email=email, name=name, display_name=display_name, password_hash=hash_password(password),
                role=role, language=language, team_id=team.id if team else None, capacity=capacity,
                is_active=True, created_at=utcnow(), languages=list(languages or []), away=False)
    user.team = team
    session.add(user)
    await session.flush()
    audit.record(session, actor, "user.create", "user", user.id, email=email, role=role.value)
    return user


async def create_user(session: AsyncSession, body: UserCreate, actor: User | None) -> User:
    """An admin adds a user, in the queue `body.queue` names (none when it is empty)."""
    team = await team_by_slug(session, body.queue) if body.queue else None
    return await create(session, email=body.email, name=body.name, password=body.password, role=body.role,
                        language=body.language, team=team, capacity=body.capacity, actor=actor,
                        display_name=body.display_name, languages=body.languages)


async def update(session: AsyncSession, user: User, body: UserUpdate, actor: User) -> User:
    """An admin changes a user: the fields `body` leaves out or null stay as they are.

    Args:
        user: the user to change, loaded with its team (`get`).
        body: the changes; `queue=""` takes the user out of every queue.
        actor: the admin; the change is audited as `user.update` with the fields that changed.

    Raises:
        ValidationFailedError: the actor would demote or deactivate themselves (the last admin could lock
            everybody out of the admin pages).
        NotFoundError: the queue does not exist.
    """
    if user.id == actor.id and (
            (body.role is not None and body.role != Role.admin) or body.is_active is False):
        raise ValidationFailedError("you cannot demote or deactivate yourself")
    changed: dict[str, str] = {}
    fields = body.model_dump(exclude_none=True, include={"name", "role", "language", "capacity", "is_active"})
    for key, value in fields.items():
        if getattr(user, key) != value:
            changed[key] = str(value)
            setattr(user, key, value)
    if body.display_name is not None and user.display_name != (body.display_name or None):
        changed["display_name"] = body.display_name
        user.display_name = body.display_name or None
    if body.languages is not None and body.languages != list(user.languages or []):
        changed["languages"] = ",".join(body.languages)
        user.languages = list(body.languages)
    if body.queue is not None:
        team = await team_by_slug(session, body.queue) if body.queue else None
        if user.team_id != (team.id if team else None):
            changed["queue"] = team.slug if team else ""
        user.team_id = team.id if team else None
        user.team = team
    if body.password is not None:
        user.password_hash = hash_password(body.password)
        changed["password_changed"] = "yes"  # noqa: S105  (an audit flag, not a secret)
    if changed:
        audit.record(session, actor, "user.update", "user", user.id, **changed)
    await session.flush()
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
    return await repository.user_for_token_hash(session, _token_hash(token), utcnow())


def touch(user: User, every: timedelta = timedelta(minutes=1)) -> None:
    """Record that the user is active now (agents online); at most one write a minute."""
    now = utcnow()
    if user.last_seen_at is None or now - user.last_seen_at > every:
        user.last_seen_at = now


async def revoke_token(session: AsyncSession, token: str) -> None:
    await repository.delete_token(session, _token_hash(token))


async def list_teams(session: AsyncSession) -> Sequence[Team]:
    return await repository.list_teams(session)


async def create_team(session: AsyncSession, slug: str, name: str, actor: User | None) -> Team:
    if await repository.get_team_by_slug(session, slug) is not None:
        raise ConflictError(f"queue {slug!r} already exists")
    team = Team(slug=slug, name=name, created_at=utcnow())
    session.add(team)
    await session.flush()
    audit.record(session, actor, "team.create", "team", team.id, slug=slug)
    return team
