"""Exclusive leases across processes: PostgreSQL advisory locks held by a connection; SQLite always grants."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db.lease import LeaseLost, exclusive, lease_key
from core.db.session import create_engine


async def test_one_holder_at_a_time_and_the_next_one_takes_over(db_url: str, db_engine: AsyncEngine) -> None:
    if db_engine.dialect.name != "postgresql":
        async with exclusive(db_engine, "mailbox-a") as first, exclusive(db_engine, "mailbox-a") as second:
            assert first.held and second.held  # one process on SQLite: nothing to arbitrate
        return
    other = create_engine(db_url)  # another instance: its own pool, its own connections
    try:
        async with exclusive(db_engine, "mailbox-a") as first:
            assert first.held
            async with exclusive(other, "mailbox-a") as second, exclusive(other, "mailbox-b") as unrelated:
                assert not second.held
                assert unrelated.held
            await first.check()
        async with exclusive(other, "mailbox-a") as after:
            assert after.held
    finally:
        await other.dispose()


async def test_a_lost_connection_ends_the_lease(db_url: str, db_engine: AsyncEngine) -> None:
    if db_engine.dialect.name != "postgresql":
        pytest.skip("leases are PostgreSQL advisory locks; SQLite serves one process")
    other = create_engine(db_url)
    try:
        async with exclusive(db_engine, "bot-1") as lease:
            assert lease.held
            # The database drops the holder's connection (a restart, a network partition): the lock is gone.
            # pg_terminate_backend with a timeout waits until the backend has exited and released it.
            async with other.connect() as admin:
                terminated = (await admin.execute(text(
                    "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND ((classid::bigint << 32) | objid::bigint) = :key AND granted"),
                    {"key": lease_key("bot-1")})).scalars().all()
                await admin.commit()
            assert terminated == [True]
            async with exclusive(other, "bot-1") as taken_over:
                assert taken_over.held
                with pytest.raises(LeaseLost):
                    await lease.check()
                assert not lease.held
    finally:
        await other.dispose()


async def _advisory_locks(engine: AsyncEngine, name: str) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND ((classid::bigint << 32) | objid::bigint) = :key"), {"key": lease_key(name)})
        await conn.commit()
    return int(count or 0)


async def test_a_brief_lease_reuses_a_pooled_connection_and_never_returns_it_holding_the_lock(
        db_url: str, db_engine: AsyncEngine) -> None:
    """A leased job's tick takes its lease over a connection of the engine's pool (a new connection each second
    cost a backend start), which goes back to the pool only with the lock released: after a normal end, after the
    block failed, and after it was cancelled, another instance takes the lease at once and no lock is left."""
    if db_engine.dialect.name != "postgresql":
        pytest.skip("leases are PostgreSQL advisory locks; SQLite serves one process")
    other = create_engine(db_url)
    try:
        pids = set()
        for _ in range(3):
            async with exclusive(db_engine, "tick-job", brief=True) as lease:
                assert lease.held
                pids.add(await lease._conn.scalar(text("SELECT pg_backend_pid()")))  # type: ignore[union-attr]
        assert len(pids) == 1  # one pooled connection, reused
        assert await _advisory_locks(db_engine, "tick-job") == 0

        async def failing_tick() -> None:
            async with exclusive(db_engine, "tick-job", brief=True) as lease:
                assert lease.held
                raise RuntimeError("the tick failed")

        with pytest.raises(RuntimeError):
            await failing_tick()
        assert await _advisory_locks(db_engine, "tick-job") == 0

        entered = asyncio.Event()

        async def hold() -> None:
            async with exclusive(db_engine, "tick-job", brief=True) as lease:
                assert lease.held
                entered.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(hold())
        await entered.wait()
        async with exclusive(other, "tick-job", brief=True) as meanwhile:
            assert not meanwhile.held
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with exclusive(other, "tick-job", brief=True) as after:
            assert after.held
        assert await _advisory_locks(db_engine, "tick-job") == 0
    finally:
        await other.dispose()
