"""Key checks: a short cache (a revoked key stops within its time to live), the last-used time written at most once
a minute per key, never per request."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.apikeys import service
from core.apikeys.models import ApiKey
from core.apikeys.schemas import ApiKeyCreate, Scope
from core.clock import ManualClock


async def last_used(sessionmaker: async_sessionmaker[AsyncSession]) -> object:
    async with sessionmaker() as s:
        return (await s.scalars(select(ApiKey.last_used_at))).one()


async def test_last_used_is_written_once_a_minute_and_revocation_reaches_the_cache(
        sessionmaker: async_sessionmaker[AsyncSession], clock: ManualClock) -> None:
    async with sessionmaker() as s, s.begin():
        created = await service.create(s, ApiKeyCreate(name="k", scopes=[Scope.orders_write]), None)
    check = service.KeyCheck(sessionmaker, env_key="env-key", clock=clock)
    info = await check.lookup(created.key)
    assert info is not None and info.allows(Scope.orders_write) and not info.allows(Scope.rest_channel)
    first = await last_used(sessionmaker)
    assert first == clock.now()
    clock.advance(30)
    assert await check.lookup(created.key) is not None
    assert await last_used(sessionmaker) == first  # within the minute: no write
    clock.advance(31)
    assert await check.lookup(created.key) is not None
    assert await last_used(sessionmaker) == clock.now()

    async with sessionmaker() as s, s.begin():
        await service.revoke(s, created.id or 0, None, clock.now())
    assert await check.lookup(created.key) is not None  # another process's cache: still within its 5 seconds
    clock.advance(5)
    assert await check.lookup(created.key) is None
    env = await check.lookup("env-key")
    assert env is not None and env.id is None and env.allows(Scope.rest_channel)
    assert await check.lookup("sbk_unknown") is None and await check.lookup("garbage") is None
