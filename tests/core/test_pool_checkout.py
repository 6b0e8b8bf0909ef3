"""PostgreSQL connections handed out by the pool are live, without a ping round trip for one used a moment ago."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core.db.session import check_on_checkout, create_engine
from tests.support.waiting import wait_for


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the pings of asyncpg connections (the driver's own ping still runs)."""
    calls: list[int] = []
    original = AsyncAdapt_asyncpg_connection.ping

    def counting(self: AsyncAdapt_asyncpg_connection) -> None:
        calls.append(1)
        original(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counting)
    return calls


@pytest.fixture
def pg_url(db_url: str) -> str:
    if db_url.startswith("sqlite"):
        pytest.skip("a pool of PostgreSQL connections (SQLite has one connection to a file)")
    return db_url


def _engine(url: str, ping_after: float) -> AsyncEngine:
    engine = create_async_engine(url, pool_size=1, max_overflow=0)
    check_on_checkout(engine, ping_after=ping_after)
    return engine


async def _pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(url: str, pid: int) -> None:
    admin = create_engine(url)
    try:
        async with admin.connect() as conn:
            # With a timeout, pg_terminate_backend waits until the backend has exited (its socket is closed).
            assert (await conn.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})).scalar()
    finally:
        await admin.dispose()


async def test_a_connection_used_a_moment_ago_is_handed_out_without_a_ping(pg_url: str, pings: list[int]) -> None:
    engine = _engine(pg_url, ping_after=3600)
    try:
        first = await _pid(engine)
        assert [await _pid(engine) for _ in range(5)] == [first] * 5
        assert pings == []
    finally:
        await engine.dispose()


async def test_the_default_engine_does_not_ping_busy_connections(pg_url: str, pings: list[int]) -> None:
    engine = create_engine(pg_url)
    try:
        for _ in range(5):
            await _pid(engine)
        assert pings == []
    finally:
        await engine.dispose()


async def test_a_connection_the_server_closed_is_replaced_without_an_error(pg_url: str, pings: list[int]) -> None:
    engine = _engine(pg_url, ping_after=3600)
    try:
        async with engine.connect() as conn:
            old = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            raw = (await conn.get_raw_connection()).driver_connection
        await _terminate(pg_url, old)
        await wait_for(raw.is_closed, "the client to see the closed socket")
        new = await _pid(engine)
        assert new != old
        assert pings == []  # replaced because it was seen closed, not found out by a round trip
    finally:
        await engine.dispose()


async def test_an_idle_connection_is_pinged_and_a_dead_one_replaced(pg_url: str, pings: list[int]) -> None:
    engine = _engine(pg_url, ping_after=0)  # every connection counts as idle
    try:
        old = await _pid(engine)
        assert await _pid(engine) == old  # pinged, alive: kept
        assert len(pings) == 2  # each checkout of it pinged
        await _terminate(pg_url, old)
        # Whether or not the client has seen the close yet, the checkout does not hand out the dead connection.
        new = await _pid(engine)
        assert new != old
    finally:
        await engine.dispose()
