"""Queries of the integration keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.apikeys.models import ApiKey


async def list_keys(session: AsyncSession) -> Sequence[ApiKey]:
    return (await session.scalars(select(ApiKey).order_by(ApiKey.id))).all()


async def get(session: AsyncSession, key_id: int) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def by_name(session: AsyncSession, name: str) -> ApiKey | None:
    return (await session.scalars(select(ApiKey).where(ApiKey.name == name))).first()


async def by_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    return (await session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash))).first()


async def touch(session: AsyncSession, key_id: int, when: datetime) -> None:
    await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when))
