"""All user, team and API-token queries."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from core.users.models import ApiToken, Role, Team, User


async def get(session: AsyncSession, user_id: int) -> User | None:
    return (await session.scalars(select(User).where(User.id == user_id).options(joinedload(User.team)))).first()


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.scalars(select(User).where(User.email == email).options(joinedload(User.team)))).first()


async def list_all(session: AsyncSession) -> Sequence[User]:
    return (await session.scalars(select(User).options(joinedload(User.team)).order_by(User.id))).all()


async def count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def by_ids(session: AsyncSession, ids: Collection[int]) -> dict[int, User]:
    if not ids:
        return {}
    return {u.id: u for u in (await session.scalars(select(User).where(User.id.in_(list(ids))))).all()}


async def list_active(session: AsyncSession, roles: Collection[Role] = ()) -> Sequence[User]:
    """Active users (of the given roles, or all), with their teams, by name."""
    stmt = select(User).where(User.is_active.is_(True)).options(joinedload(User.team))
    if roles:
        stmt = stmt.where(User.role.in_(list(roles)))
    return (await session.scalars(stmt.order_by(User.name, User.id))).all()


async def user_for_token_hash(session: AsyncSession, token_hash: str, now: datetime) -> User | None:
    """The active user holding an unexpired token with this hash."""
    stmt = (
        select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == token_hash, ApiToken.expires_at > now, User.is_active.is_(True))
        .options(joinedload(User.team))
    )
    return (await session.scalars(stmt)).first()


async def delete_token(session: AsyncSession, token_hash: str) -> None:
    await session.execute(delete(ApiToken).where(ApiToken.token_hash == token_hash))


async def list_teams(session: AsyncSession, *, by_name: bool = False) -> Sequence[Team]:
    return (await session.scalars(select(Team).order_by(Team.name if by_name else Team.id))).all()


async def get_team_by_slug(session: AsyncSession, slug: str) -> Team | None:
    return (await session.scalars(select(Team).where(Team.slug == slug))).first()
