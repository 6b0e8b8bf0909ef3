"""A unit of database work that a stop cancels is finished first, then the cancellation goes through."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.db.session import finish_even_if_cancelled


async def test_a_cancelled_caller_waits_for_the_work_then_is_cancelled() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def work() -> str:
        started.set()
        await release.wait()
        finished.append("committed")
        return "done"

    caller = asyncio.create_task(finish_even_if_cancelled(work()))
    await started.wait()
    caller.cancel()
    await asyncio.sleep(0)  # the cancellation reaches the caller while the work is still running
    assert not caller.done() and finished == []
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert finished == ["committed"]


async def test_the_result_and_errors_pass_through() -> None:
    async def ok() -> int:
        return 7

    async def broken() -> int:
        raise ValueError("no")

    assert await finish_even_if_cancelled(ok()) == 7
    with pytest.raises(ValueError, match="no"):
        await finish_even_if_cancelled(broken())


async def test_a_transaction_cancelled_midway_is_committed_and_frees_the_database(
        db_engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The case that made it: a stop mid-write left the connection inside its transaction, and on SQLite the next
    writer found the database locked."""
    inside, release = asyncio.Event(), asyncio.Event()

    async def write() -> None:
        async with sessionmaker() as session, session.begin():
            await session.execute(text("UPDATE teams SET name = 'written before the stop' WHERE id = 1"))
            inside.set()
            await release.wait()  # the statement is done, the commit not yet: where the cancel lands

    caller = asyncio.create_task(finish_even_if_cancelled(write()))
    await inside.wait()
    caller.cancel()
    await asyncio.sleep(0)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    async with asyncio.timeout(5), sessionmaker() as session, session.begin():  # no "database is locked"
        await session.execute(text("UPDATE teams SET slug = slug WHERE id = 1"))
        assert await session.scalar(text("SELECT name FROM teams WHERE id = 1")) == "written before the stop"
