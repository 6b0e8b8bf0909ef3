"""Queries of the channel cursors. A reader saves its cursor only after the ingest transaction of what it read
committed (a crash before means a redelivery, which the idempotent ingest makes a no-op)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.cursors.models import ChannelCursor


async def get(session: AsyncSession, channel: str, name: str) -> ChannelCursor | None:
    return await session.get(ChannelCursor, (channel, name))


async def get_for_update(session: AsyncSession, channel: str, name: str) -> ChannelCursor | None:
    """The cursor, locked until the transaction ends (two writers of one cursor take turns)."""
    return await session.get(ChannelCursor, (channel, name), with_for_update=True)


async def put(session: AsyncSession, channel: str, name: str, value: str, now: datetime,
              current: ChannelCursor | None = None) -> None:
    """Set the cursor (the caller decides whether the new value is ahead of the old one; a caller that read the
    row for update already passes it as `current`)."""
    row = current if current is not None else await get_for_update(session, channel, name)
    if row is None:
        session.add(ChannelCursor(channel=channel, name=name, value=value, updated_at=now))
        return
    row.value = value
    row.updated_at = now
