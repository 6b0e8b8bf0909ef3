"""Queries of the provider template cache."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.provider_templates.models import ProviderTemplate


async def replace_all(session: AsyncSession, channel: str, rows: Sequence[dict[str, Any]], now: datetime) -> None:
    """The channel's templates become `rows` (one DELETE, one INSERT)."""
    await session.execute(delete(ProviderTemplate).where(ProviderTemplate.channel == channel))
    if rows:
        await session.execute(insert(ProviderTemplate), [{**row, "channel": channel, "fetched_at": now}
                                                          for row in rows])


async def list_usable(session: AsyncSession, channel: str) -> Sequence[ProviderTemplate]:
    """The channel's approved templates this system can fill, by name."""
    return (await session.scalars(select(ProviderTemplate).where(
        ProviderTemplate.channel == channel, ProviderTemplate.status == "APPROVED",
        ProviderTemplate.supported.is_(True)).order_by(ProviderTemplate.name, ProviderTemplate.language))).all()


async def get(session: AsyncSession, channel: str, name: str, language: str) -> ProviderTemplate | None:
    return (await session.scalars(select(ProviderTemplate).where(
        ProviderTemplate.channel == channel, ProviderTemplate.name == name,
        ProviderTemplate.language == language))).first()


async def fetched_at(session: AsyncSession, channel: str) -> datetime | None:
    return await session.scalar(select(func.max(ProviderTemplate.fetched_at)).where(
        ProviderTemplate.channel == channel))
