"""Queries of channel configurations."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.channel_configs.models import ChannelConfig


async def list_all(session: AsyncSession) -> Sequence[ChannelConfig]:
    return (await session.scalars(select(ChannelConfig).order_by(ChannelConfig.kind, ChannelConfig.name))).all()


async def get(session: AsyncSession, config_id: int) -> ChannelConfig | None:
    return await session.get(ChannelConfig, config_id)


async def by_kind(session: AsyncSession, kind: str) -> Sequence[ChannelConfig]:
    return (await session.scalars(select(ChannelConfig).where(ChannelConfig.kind == kind)
                                  .order_by(ChannelConfig.name))).all()


async def fingerprint(session: AsyncSession) -> frozenset[tuple[int, int]]:
    """(id, version) of every configuration: what changed since the last look, in one small query."""
    rows = await session.execute(select(ChannelConfig.id, ChannelConfig.version))
    return frozenset((int(i), int(v)) for i, v in rows.all())


async def lock_kind(session: AsyncSession, kind: str) -> None:
    """Serialise changes of one kind until the transaction ends, so that two creates at the same moment (a
    double-click) cannot both find the kind free. PostgreSQL: a transaction-scoped advisory lock on the kind;
    SQLite: nothing needed, a transaction holds the app's one connection until it ends."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"channel_configs:{kind}"))))
